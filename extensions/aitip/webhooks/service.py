"""The webhooks service: who may subscribe a project's events, what is queued for whom, and callbacks.

Faces call the principal-taking methods; the platform itself calls :meth:`WebhookService.publish` (or
:meth:`~WebhookService.publish_in` inside its own transaction) when a job, sweep or dataset event happens,
and :meth:`~WebhookService.callback` when a long operation that carried a ``callback_url`` ends. Sending is
the :class:`~aitip.webhooks.delivery.WebhookDispatcher`'s; this module only writes the catalog.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..audit import record
from ..catalog import Catalog
from ..catalog.base import utcnow
from ..catalog.service import CatalogService
from ..operations.actions import performs
from ..errors import Conflict, InvalidInput, NotFound
from ..identity.principal import Principal
from ..projects.access import authorize, load_project, refuse_if_archived
from . import payloads
from .delivery import WebhookDispatcher, queue
from .links import with_link
from .models import (
    CallbackRegistration,
    CallbackRequest,
    Delivery,
    DeliveryAttempt,
    DeliveryList,
    DeliveryListQuery,
    DeliveryState,
    PayloadFormat,
    Subscription,
    SubscriptionCreate,
    SubscriptionCreated,
    SubscriptionList,
    SubscriptionListQuery,
)
from .signing import new_secret
from .tables import WebhookDeliveryRecord, WebhookSubscriptionRecord
from .targets import parse, resolve_target

if TYPE_CHECKING:
    from ..projects.tables import ProjectRecord

MAX_SUBSCRIPTIONS_PER_PROJECT = 50
"""Each event fans out to every matching subscription; the cap bounds what one event can queue."""


def _subscription_model(subscription: WebhookSubscriptionRecord) -> Subscription:
    return Subscription(id=subscription.id, project=subscription.project.name, url=subscription.url,
                        events=list(subscription.events), format=PayloadFormat(subscription.format),
                        description=subscription.description, created_by=subscription.created_by,
                        created_at=subscription.created_at, active=subscription.active)


def _delivery_model(delivery: WebhookDeliveryRecord, project: str | None) -> Delivery:
    return Delivery(
        id=delivery.id, subscription_id=delivery.subscription_id, project=project, url=delivery.url,
        event=delivery.event, state=DeliveryState(delivery.state), attempts=delivery.attempts,
        max_attempts=delivery.max_attempts, last_status_code=delivery.last_status_code,
        last_error=delivery.last_error, next_attempt_at=delivery.next_attempt_at if delivery.state == "pending"
        else None, created_at=delivery.created_at, delivered_at=delivery.delivered_at,
        finished_at=delivery.finished_at, payload=delivery.payload,
        attempt_log=[DeliveryAttempt(number=a.number, started_at=a.started_at, duration_ms=a.duration_ms,
                                     address=a.address, status_code=a.status_code, error=a.error)
                     for a in delivery.attempt_log])


def _origin(url: str) -> str:
    """What the audit trail keeps of a URL: its path may be a credential (Slack's incoming webhooks); an e-mail
    address is kept whole."""
    if url.startswith("mailto:"):
        return url
    scheme, host, port, _ = parse(url)
    return f"{scheme}://{host}:{port}"


class WebhookService(CatalogService):
    """Project subscriptions, one-off callbacks, and the delivery log, with the rules of who may see what."""

    def __init__(self, catalog: Catalog, dispatcher: WebhookDispatcher) -> None:
        super().__init__(catalog)
        self.dispatcher = dispatcher

    # ----- subscriptions -----

    @performs
    async def subscribe(self, principal: Principal, project: str, request: SubscriptionCreate, *, action: str) -> SubscriptionCreated:
        """Subscribe ``request.url`` to the project's events; the answer holds the signing secret, once."""
        principal = self._signed_in(principal)
        # A stranger learns nothing, not even whether the URL would pass, before the role check.
        await self._in_transaction(lambda s: authorize(s, principal, action, project))
        if request.url.startswith("mailto:"):
            if not self.dispatcher.smtp_host:
                raise InvalidInput("e-mail needs the platform's SMTP server, which it was not given "
                                   "(WebhookDispatcher.smtp_host)", code="webhook_mail_unavailable")
        else:
            await resolve_target(request.url, self.dispatcher.networks)

        def work(session: Session) -> SubscriptionCreated:
            project_record, _ = authorize(session, principal, action, project)
            refuse_if_archived(project_record)
            active = session.scalar(select(func.count()).where(
                WebhookSubscriptionRecord.project_id == project_record.id, WebhookSubscriptionRecord.active.is_(True)))
            if active >= MAX_SUBSCRIPTIONS_PER_PROJECT:
                raise Conflict("project {project!r} has {active} webhook subscriptions, the most it may have; "
                               "remove one first", code="too_many_subscriptions", project=project, active=active)
            subscription = WebhookSubscriptionRecord(
                project=project_record, url=request.url, secret=new_secret(),
                events=list(dict.fromkeys(request.events)), format=request.format.value,
                description=request.description, created_by=principal.name, created_at=utcnow(), active=True)
            session.add(subscription)
            session.flush()
            record(session, principal.name, "webhook.subscribe", f"project:{project}",
                   {"subscription": subscription.id, "origin": _origin(request.url), "events": subscription.events,
                    "format": subscription.format})
            return SubscriptionCreated(**_subscription_model(subscription).model_dump(), secret=subscription.secret)

        return await self._in_transaction(work)

    @performs
    async def list_subscriptions(self, principal: Principal, project: str,
                                 query: SubscriptionListQuery | None = None, *, action: str) -> SubscriptionList:
        principal = self._signed_in(principal)
        query = query or SubscriptionListQuery()

        def work(session: Session) -> SubscriptionList:
            project_record, _ = authorize(session, principal, action, project)
            statement = select(WebhookSubscriptionRecord).where(
                WebhookSubscriptionRecord.project_id == project_record.id)
            if not query.include_inactive:
                statement = statement.where(WebhookSubscriptionRecord.active.is_(True))
            rows = session.scalars(statement.order_by(WebhookSubscriptionRecord.id)).all()
            return SubscriptionList(items=[_subscription_model(s) for s in rows])

        return await self._in_transaction(work)

    def _subscription(self, session: Session, project: ProjectRecord, subscription_id: int
                      ) -> WebhookSubscriptionRecord:
        subscription = session.get(WebhookSubscriptionRecord, subscription_id)
        if subscription is None or subscription.project_id != project.id or not subscription.active:
            raise NotFound("project {name!r} has no webhook subscription {subscription_id}",
                           name=project.name, subscription_id=subscription_id)
        return subscription

    @performs
    async def unsubscribe(self, principal: Principal, project: str, subscription_id: int, *, action: str) -> None:
        """Stop the subscription; its pending deliveries fail. Its delivery log stays readable."""
        principal = self._signed_in(principal)

        def work(session: Session) -> None:
            project_record, _ = authorize(session, principal, action, project)
            subscription = self._subscription(session, project_record, subscription_id)
            subscription.active = False
            subscription.secret = new_secret()  # the old secret signs nothing from now on
            now = utcnow()
            for delivery in session.scalars(select(WebhookDeliveryRecord).where(
                    WebhookDeliveryRecord.subscription_id == subscription.id,
                    WebhookDeliveryRecord.state == "pending")):
                delivery.state, delivery.finished_at, delivery.next_attempt_at = "failed", now, None
                delivery.last_error = "the subscription was removed"
            record(session, principal.name, "webhook.unsubscribe", f"project:{project}",
                   {"subscription": subscription.id, "origin": _origin(subscription.url)})

        await self._in_transaction(work)

    @performs
    async def ping(self, principal: Principal, project: str, subscription_id: int, *, action: str) -> Delivery:
        """Queue a ``webhook.ping`` to one subscription, whatever its filter: a receiver's set-up check."""
        principal = self._signed_in(principal)

        def work(session: Session) -> Delivery:
            project_record, _ = authorize(session, principal, action, project)
            subscription = self._subscription(session, project_record, subscription_id)
            delivery = queue(session, url=subscription.url, event=payloads.PING_EVENT,
                             data={"summary": f"test event from {principal.name}", "subscription": subscription.id},
                             max_attempts=self.dispatcher.max_attempts, project_id=project_record.id,
                             project=project_record.name, subscription=subscription, format=subscription.format)
            session.flush()
            return _delivery_model(delivery, project_record.name)

        delivery = await self._in_transaction(work)
        self.dispatcher.notify()
        return delivery

    # ----- the delivery log -----

    @performs
    async def deliveries(self, principal: Principal, project: str, query: DeliveryListQuery | None = None, *, action: str) -> DeliveryList:
        """The project's deliveries, newest first, each with its attempts (subscriptions' and callbacks')."""
        principal = self._signed_in(principal)
        query = query or DeliveryListQuery()

        def work(session: Session) -> DeliveryList:
            project_record, _ = authorize(session, principal, action, project)
            conditions = [WebhookDeliveryRecord.project_id == project_record.id]
            if query.subscription_id is not None:
                conditions.append(WebhookDeliveryRecord.subscription_id == query.subscription_id)
            if query.state is not None:
                conditions.append(WebhookDeliveryRecord.state == query.state.value)
            if query.event is not None:
                conditions.append(WebhookDeliveryRecord.event == query.event)
            if query.callbacks is not None:
                column = WebhookDeliveryRecord.subscription_id
                conditions.append(column.is_(None) if query.callbacks else column.is_not(None))
            total = session.scalar(select(func.count()).select_from(WebhookDeliveryRecord).where(*conditions))
            rows = session.scalars(select(WebhookDeliveryRecord).where(*conditions)
                                   .order_by(WebhookDeliveryRecord.created_at.desc(), WebhookDeliveryRecord.id)
                                   .offset(query.offset).limit(query.limit)).all()
            return DeliveryList(items=[_delivery_model(d, project_record.name) for d in rows], total=total or 0,
                                limit=query.limit, offset=query.offset)

        return await self._in_transaction(work)

    # ----- the platform's calls -----

    def publish_in(self, session: Session, project: str, event: str, payload: dict[str, Any]) -> list[str]:
        """Queue ``event`` for the project's matching subscriptions in the caller's own transaction (so the
        event is queued if and only if the change it reports is committed); call :meth:`notify` after the
        commit. Returns the delivery ids."""
        payloads.check_event(event)
        payload = with_link(self.dispatcher.dashboards_url, event, project, payloads.check_payload(payload))
        project_record = load_project(session, project)
        subscriptions = session.scalars(select(WebhookSubscriptionRecord).where(
            WebhookSubscriptionRecord.project_id == project_record.id, WebhookSubscriptionRecord.active.is_(True))
            .order_by(WebhookSubscriptionRecord.id)).all()
        ids = []
        for subscription in subscriptions:
            if payloads.matches(subscription.events, event):
                ids.append(queue(session, url=subscription.url, event=event, data=payload,
                                 max_attempts=self.dispatcher.max_attempts, project_id=project_record.id,
                                 project=project_record.name, subscription=subscription, format=subscription.format).id)
        return ids

    async def publish(self, project: str, event: str, payload: dict[str, Any]) -> list[str]:
        """Queue ``event`` (``job.succeeded``...) with ``payload`` for every active subscription of
        ``project`` whose filter matches; returns the delivery ids (none when nobody listens)."""
        ids = await self._in_transaction(lambda s: self.publish_in(s, project, event, payload))
        if ids:
            self.dispatcher.notify()
        return ids

    def notify(self) -> None:
        """Deliveries were queued by :meth:`publish_in` and committed: send them now, not at the next poll."""
        self.dispatcher.notify()

    async def prepare_callback(self, request: CallbackRequest) -> CallbackRegistration:
        """Check a long operation's ``callback_url`` when the operation is requested, and settle its secret.

        The caller's secret is used when it gives one (an agent verifies all its callbacks with one secret it
        already holds); otherwise a fresh one is made, to be returned once in the operation's answer. The
        caller keeps url and secret with the operation and passes them to :meth:`callback` at its end."""
        await resolve_target(request.url, self.dispatcher.networks)
        if request.secret is not None:
            return CallbackRegistration(url=request.url, secret=request.secret, generated=False)
        return CallbackRegistration(url=request.url, secret=new_secret(), generated=True)

    def callback_in(self, session: Session, url: str, secret: str, event: str, payload: dict[str, Any], *,
                    project: str | None = None) -> str:
        """Queue a one-off delivery of a long operation's final state to its ``callback_url`` in the caller's
        own transaction (as :meth:`publish_in`); its id. ``url`` was checked by :meth:`prepare_callback`;
        every attempt checks it again. ``project``, when given, shows it in that project's delivery log."""
        parse(url)
        payloads.check_event(event)
        payload = with_link(self.dispatcher.dashboards_url, event, project, payloads.check_payload(payload))
        project_record = load_project(session, project) if project is not None else None
        return queue(session, url=url, event=event, data=payload, max_attempts=self.dispatcher.max_attempts,
                     project_id=project_record.id if project_record else None, project=project, secret=secret).id

    async def callback(self, url: str, secret: str, event: str, payload: dict[str, Any], *,
                       project: str | None = None) -> str:
        """:meth:`callback_in` in a transaction of its own, sent at once."""
        delivery_id = await self._in_transaction(lambda s: self.callback_in(s, url, secret, event, payload,
                                                                            project=project))
        self.dispatcher.notify()
        return delivery_id
