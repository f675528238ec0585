"""The delivery worker: posts queued webhook deliveries, signed, to checked addresses, and retries them.

State is in the catalog. :func:`queue` adds a pending delivery in the caller's transaction; the
:class:`WebhookDispatcher` claims due deliveries, posts each on a task of its own (so a slow receiver holds
one task, never the others), records every attempt, and schedules the next with exponential backoff and
jitter until a 2xx answer or the last attempt. Whatever is pending when the platform stops, or when its
process dies, is claimed again at the next start: delivery is at least once, and ``X-Aitip-Delivery`` is
the same on every retry so that receivers can drop duplicates.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import smtplib
import socket
import ssl
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

import httpx
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session
from traitlets import Bool, Float, Integer, List, Unicode, default, validate
from traitlets.config import LoggingConfigurable

from ..catalog import Catalog
from ..catalog.base import utcnow
from ..errors import InvalidInput
from . import payloads
from .links import dashboards_url_from_hub
from .signing import signed_headers
from .tables import (
    WebhookAttemptRecord,
    WebhookDeliveryRecord,
    WebhookSubscriptionRecord,
)
from .targets import (
    ALLOWED_NETWORKS_ENV,
    Network,
    Target,
    allowed_networks,
    resolve_target,
)

log = logging.getLogger("aitip.webhooks")
USER_AGENT = "AITIP-Webhooks/1"
_EXCERPT_BYTES = 512


def new_delivery_id() -> str:
    return uuid.uuid4().hex


def queue(session: Session, *, url: str, event: str, data: dict[str, Any], max_attempts: int,
          project_id: int | None = None, project: str | None = None,
          subscription: WebhookSubscriptionRecord | None = None, secret: str | None = None,
          format: str = "json") -> WebhookDeliveryRecord:
    """Add a pending delivery, due now, rendered in ``format``; it is sent once the transaction commits."""
    delivery_id, now = new_delivery_id(), utcnow()
    record = WebhookDeliveryRecord(
        id=delivery_id, subscription=subscription, project_id=project_id, url=url, secret=secret, event=event,
        payload=payloads.render(format, delivery_id, event, project, data, now), state="pending", attempts=0,
        max_attempts=max_attempts, next_attempt_at=now, created_at=now)
    session.add(record)
    return record


@dataclass(frozen=True)
class _Prepared:
    delivery_id: str
    url: str
    secret: str
    event: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class _Outcome:
    started_at: datetime
    duration_ms: int
    status_code: int | None = None
    error: str | None = None
    address: str | None = None
    retry_after: float | None = None
    final: bool = False  # no later attempt can do better (the target is refused)

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    return float(value) if value.isdigit() else None


class WebhookDispatcher(LoggingConfigurable):
    """Sends the catalog's pending webhook deliveries; one per platform process (several may share a catalog)."""

    max_attempts = Integer(8, help="Attempts per delivery before it is failed (the first one included).").tag(
        config=True)
    base_delay_seconds = Float(
        10.0, help="Delay before the first retry; each later retry waits twice the one before, up to "
        "max_delay_seconds, less up to `jitter` of it at random (so that retries after an outage spread out). "
        "A receiver's Retry-After (seconds) is honoured when longer.").tag(config=True)
    max_delay_seconds = Float(3600.0, help="Longest wait between two attempts.").tag(config=True)
    jitter = Float(0.2, help="Fraction (0-1) of each retry delay taken off at random.").tag(config=True)
    connect_timeout_seconds = Float(5.0, help="Longest wait for a receiver to accept the connection.").tag(
        config=True)
    attempt_timeout_seconds = Float(
        20.0, help="Longest one attempt may take, connection to the answer's status line; a receiver that is "
        "slower has failed the attempt.").tag(config=True)
    concurrency = Integer(16, help="Deliveries in flight at once; a slow receiver holds one of them.").tag(
        config=True)
    poll_seconds = Float(5.0, help="How often the catalog is checked for due deliveries when nothing in this "
                         "process signalled one (deliveries queued by other processes, retries).").tag(config=True)
    retention_days = Float(30.0, help="Finished deliveries older than this are deleted (0: kept forever).").tag(
        config=True)
    ca_file = Unicode(
        help="CA bundle (PEM) that receivers' certificates are checked against, e.g. an internal CA. "
        "Default: $SSL_CERT_FILE or $SSL_CERT_DIR, else the certifi bundle.").tag(config=True)
    allowed_networks = List(
        Unicode(), help=f"CIDR networks receivers may be in although they are private, loopback or otherwise "
        f"refused (e.g. ['10.20.0.0/16'] for an in-cluster receiver). Default: ${ALLOWED_NETWORKS_ENV} "
        "(comma-separated); empty: public addresses only.").tag(config=True)

    smtp_host = Unicode(help="The SMTP server that mailto: subscriptions are sent through (empty: e-mail is "
                        "refused). Default: $AITIP_SMTP_HOST.").tag(config=True)
    smtp_port = Integer(25, help="The SMTP server's port (587 with STARTTLS, typically).").tag(config=True)
    smtp_starttls = Bool(False, help="Upgrade the SMTP connection with STARTTLS before sending.").tag(config=True)
    smtp_username = Unicode(help="Sign in to the SMTP server as this user (empty: no sign-in).").tag(config=True)
    smtp_password = Unicode(help="The SMTP user's password.").tag(config=True)
    smtp_sender = Unicode("aitip@localhost", help="The From: address of the platform's e-mail.").tag(config=True)

    dashboards_url = Unicode(
        help="Where people open the dashboards (e.g. https://aitip.example.org/services/dashboards/): an event "
        "carries a link to the page of what it is about. Default: from the hub's public URL "
        "($JUPYTERHUB_PUBLIC_HUB_URL, set from JupyterHub.public_url, which `aitip up` takes from "
        "$AITIP_PUBLIC_URL); empty: no links.").tag(config=True)

    @default("smtp_host")
    def _default_smtp_host(self) -> str:
        return os.environ.get("AITIP_SMTP_HOST", "")

    @default("dashboards_url")
    def _default_dashboards_url(self) -> str:
        return dashboards_url_from_hub(os.environ.get("JUPYTERHUB_PUBLIC_HUB_URL"))

    @default("allowed_networks")
    def _default_allowed_networks(self) -> list[str]:
        return [str(network) for network in allowed_networks()]

    @validate("jitter")
    def _valid_jitter(self, proposal: Any) -> float:
        if not 0.0 <= proposal["value"] <= 1.0:
            raise ValueError("jitter is a fraction between 0 and 1")
        return proposal["value"]

    @validate("max_attempts", "concurrency")
    def _at_least_one(self, proposal: Any) -> int:
        if proposal["value"] < 1:
            raise ValueError(f"{proposal['trait'].name} must be at least 1")
        return proposal["value"]

    def __init__(self, catalog: Catalog, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.catalog = catalog
        self.networks: tuple[Network, ...] = allowed_networks({ALLOWED_NETWORKS_ENV: ",".join(self.allowed_networks)})
        self.worker_id = f"{socket.gethostname()[:40]}/{os.getpid()}/{uuid.uuid4().hex[:8]}"
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._changed = asyncio.Condition()
        self._loop_task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None
        self._last_prune: float | None = None
        self._stopping = False

    @property
    def claim_seconds(self) -> float:
        """How long a claim lasts: longer than any attempt, so only a dead worker's claim runs out."""
        return self.attempt_timeout_seconds + 30.0

    def backoff(self, attempts: int) -> float:
        """Seconds to wait after ``attempts`` failed attempts."""
        delay = min(self.max_delay_seconds, self.base_delay_seconds * 2 ** max(0, attempts - 1))
        return delay * (1.0 - self.jitter * random.random())

    # ----- lifecycle -----

    async def start(self) -> None:
        if self._loop_task is not None:
            return
        self._stopping = False
        self._client = httpx.AsyncClient(
            verify=ssl.create_default_context(cafile=self.ca_file) if self.ca_file else httpx.create_ssl_context(),
            trust_env=False,  # a proxy from the environment would connect by name, undoing the address check
            follow_redirects=False,
            # No connection reuse: a pooled connection to an address was made for one host name's TLS check.
            limits=httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=0),
            timeout=httpx.Timeout(self.attempt_timeout_seconds, connect=self.connect_timeout_seconds),
        )
        self._loop_task = asyncio.create_task(self._run(), name="aitip-webhooks")
        log.info("webhook dispatcher %s started", self.worker_id)

    async def stop(self) -> None:
        """Stop sending; deliveries in flight go back to pending, due at once, for the next start."""
        if self._loop_task is None:
            return
        self._stopping = True  # the loop ends its pass (a claim it made is started, then cancelled below)
        self._wake.set()
        await self._loop_task
        self._loop_task = None
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.to_thread(self._transaction, self._release)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def notify(self) -> None:
        """Something was queued: look for due deliveries now rather than at the next poll."""
        self._wake.set()

    async def wait_settled(self, delivery_id: str, timeout: float | None = None) -> str:
        """Wait until this process has delivered or failed ``delivery_id``; its final state."""
        deadline = None if timeout is None else time.monotonic() + timeout
        async with self._changed:
            while True:
                state = await asyncio.to_thread(self._transaction, lambda s: s.scalar(
                    select(WebhookDeliveryRecord.state).where(WebhookDeliveryRecord.id == delivery_id)))
                if state is None:
                    raise KeyError(f"no webhook delivery {delivery_id!r}")
                if state != "pending":
                    return state
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError(f"webhook delivery {delivery_id} is still pending")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), left)

    # ----- the loop -----

    def _transaction(self, work: Any) -> Any:
        with self.catalog.session() as session:
            return work(session)

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            wait = self.poll_seconds
            try:
                free = self.concurrency - len(self._tasks)
                if free > 0:
                    claimed, next_due = await asyncio.to_thread(self._transaction,
                                                                lambda s, n=free: self._claim(s, n))
                    for delivery_id in claimed:
                        self._tasks[delivery_id] = asyncio.create_task(self._deliver(delivery_id))
                    if next_due is not None:
                        wait = min(wait, max(0.0, (next_due - utcnow()).total_seconds()))
                await self._prune_now_and_then()
            except Exception:
                log.exception("webhook dispatch pass failed; retrying")
            if self._stopping:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    def _claim(self, session: Session, limit: int) -> tuple[list[str], datetime | None]:
        """Claim up to ``limit`` due deliveries; also say when the next unclaimed one falls due."""
        now = utcnow()
        due = (WebhookDeliveryRecord.state == "pending") & (WebhookDeliveryRecord.next_attempt_at <= now)
        candidates = session.scalars(select(WebhookDeliveryRecord.id).where(due)
                                     .order_by(WebhookDeliveryRecord.next_attempt_at).limit(limit)).all()
        until = now + timedelta(seconds=self.claim_seconds)
        claimed = []
        for delivery_id in candidates:
            # Conditional: of two workers claiming at once, the second finds the row no longer due.
            result = session.execute(update(WebhookDeliveryRecord)
                                     .where(WebhookDeliveryRecord.id == delivery_id, due)
                                     .values(next_attempt_at=until, claimed_by=self.worker_id)
                                     .execution_options(synchronize_session=False))
            if result.rowcount == 1:
                claimed.append(delivery_id)
        next_due = session.scalar(select(func.min(WebhookDeliveryRecord.next_attempt_at))
                                  .where(WebhookDeliveryRecord.state == "pending",
                                         WebhookDeliveryRecord.next_attempt_at > now))
        return claimed, next_due

    def _release(self, session: Session) -> None:
        session.execute(update(WebhookDeliveryRecord)
                        .where(WebhookDeliveryRecord.state == "pending",
                               WebhookDeliveryRecord.claimed_by == self.worker_id)
                        .values(next_attempt_at=utcnow(), claimed_by=None)
                        .execution_options(synchronize_session=False))

    async def _prune_now_and_then(self) -> None:
        recently = self._last_prune is not None and time.monotonic() - self._last_prune < 3600
        if self.retention_days <= 0 or recently:
            return
        self._last_prune = time.monotonic()
        cutoff = utcnow() - timedelta(days=self.retention_days)
        await asyncio.to_thread(self._transaction, lambda s: s.execute(
            delete(WebhookDeliveryRecord).where(WebhookDeliveryRecord.state != "pending",
                                                WebhookDeliveryRecord.finished_at < cutoff)))

    # ----- one delivery -----

    async def _deliver(self, delivery_id: str) -> None:
        try:
            prepared = await asyncio.to_thread(self._transaction, lambda s: self._prepare(s, delivery_id))
            if prepared is not None:
                outcome = await self._attempt(prepared)
                await asyncio.to_thread(self._transaction, lambda s: self._record(s, delivery_id, outcome))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("webhook delivery %s: the attempt could not be made or recorded; its claim will "
                          "run out and it will be tried again", delivery_id)
        finally:
            self._tasks.pop(delivery_id, None)
            self._wake.set()
            async with self._changed:
                self._changed.notify_all()

    def _prepare(self, session: Session, delivery_id: str) -> _Prepared | None:
        delivery = session.get(WebhookDeliveryRecord, delivery_id)
        if delivery is None or delivery.state != "pending" or delivery.claimed_by != self.worker_id:
            return None
        secret = delivery.secret
        if delivery.subscription is not None:
            if not delivery.subscription.active:
                delivery.state, delivery.finished_at = "failed", utcnow()
                delivery.last_error, delivery.next_attempt_at = "the subscription was removed", None
                return None
            secret = delivery.subscription.secret
        return _Prepared(delivery_id, delivery.url, secret or "", delivery.event, delivery.payload)

    async def _attempt(self, prepared: _Prepared) -> _Outcome:
        started_at, clock = utcnow(), time.monotonic()

        def outcome(**fields: Any) -> _Outcome:
            return _Outcome(started_at=started_at, duration_ms=int((time.monotonic() - clock) * 1000), **fields)

        if prepared.url.startswith("mailto:"):
            try:
                async with asyncio.timeout(self.attempt_timeout_seconds):
                    await asyncio.to_thread(self._mail, prepared)
            except TimeoutError:
                return outcome(error=f"the SMTP server did not take the message within "
                                     f"{self.attempt_timeout_seconds:g} s")
            except smtplib.SMTPRecipientsRefused as exc:
                return outcome(error=f"the SMTP server refused the recipient: {exc.recipients}", final=True)
            except (smtplib.SMTPException, OSError) as exc:
                return outcome(error=f"SMTP: {type(exc).__name__}: {exc}")
            return outcome(status_code=250, address=f"{self.smtp_host}:{self.smtp_port}")
        try:
            target = await resolve_target(prepared.url, self.networks)
        except InvalidInput as exc:
            return outcome(error=exc.message, final=exc.code != "webhook_unresolvable")
        content = payloads.body(prepared.payload)
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, "Host": target.host_header,
                   **signed_headers(prepared.secret, content, event=prepared.event,
                                    delivery_id=prepared.delivery_id)}
        address = None
        try:
            async with asyncio.timeout(self.attempt_timeout_seconds):
                error = "no address to connect to"
                for address in target.addresses:
                    try:
                        return outcome(address=str(address), **await self._post(target, address, headers, content))
                    except httpx.TransportError as exc:
                        if not isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
                            return outcome(address=str(address), error=f"{type(exc).__name__}: {exc}")
                        error = f"cannot connect to {address}: {exc or type(exc).__name__}"
                return outcome(error=error)
        except TimeoutError:
            return outcome(address=str(address) if address else None,
                           error=f"no answer within {self.attempt_timeout_seconds:g} s")

    def _mail(self, prepared: _Prepared) -> None:
        """The event as a plain-text e-mail to the subscription's address, through the platform's SMTP server
        (SMTP's 250 recorded as the attempt's status)."""
        if not self.smtp_host:
            raise smtplib.SMTPException("the platform has no SMTP server (WebhookDispatcher.smtp_host)")
        data = prepared.payload.get("data", prepared.payload)
        project = prepared.payload.get("project")
        message = EmailMessage()
        message["From"] = self.smtp_sender
        message["To"] = prepared.url.removeprefix("mailto:")
        message["Subject"] = f"[AITIP{' ' + project if project else ''}] {payloads.headline(prepared.event, data)}"
        message["X-AITIP-Event"] = prepared.event
        message["X-AITIP-Delivery"] = prepared.delivery_id
        message.set_content(payloads.plain_text(prepared.event, project, data))
        with smtplib.SMTP(self.smtp_host, self.smtp_port, timeout=self.connect_timeout_seconds) as server:
            if self.smtp_starttls:
                server.starttls(context=ssl.create_default_context(cafile=self.ca_file or None))
            if self.smtp_username:
                server.login(self.smtp_username, self.smtp_password)
            server.send_message(message)

    async def _post(self, target: Target, address: Any, headers: dict[str, str], content: bytes) -> dict[str, Any]:
        """POST to ``address`` itself, naming the host in Host and, for https, in SNI and the certificate check."""
        assert self._client is not None, "the dispatcher is not started"
        extensions = {} if target.scheme != "https" or target.is_ip_literal else {"sni_hostname": target.host}
        request = self._client.build_request("POST", target.url_for(address), content=content, headers=headers,
                                             extensions=extensions)
        response = await self._client.send(request, stream=True)
        try:
            if 200 <= response.status_code < 300:
                return {"status_code": response.status_code}
            excerpt = b""
            async for chunk in response.aiter_bytes():
                excerpt += chunk
                if len(excerpt) >= _EXCERPT_BYTES:
                    break
        finally:
            await response.aclose()
        error = f"HTTP {response.status_code}"
        if response.is_redirect:
            error += " (redirects are not followed; give the final URL)"
        text = excerpt[:_EXCERPT_BYTES].decode("utf-8", "replace").strip()
        return {"status_code": response.status_code, "error": f"{error}: {text}" if text else error,
                "retry_after": _retry_after(response)}

    def _record(self, session: Session, delivery_id: str, outcome: _Outcome) -> None:
        delivery = session.get(WebhookDeliveryRecord, delivery_id)
        if delivery is None:
            return
        delivery.attempts += 1
        session.add(WebhookAttemptRecord(delivery_id=delivery_id, number=delivery.attempts,
                                         started_at=outcome.started_at, duration_ms=outcome.duration_ms,
                                         address=outcome.address, status_code=outcome.status_code,
                                         error=outcome.error))
        if delivery.state != "pending" or (delivery.claimed_by != self.worker_id and not outcome.ok):
            return  # our claim ran out meanwhile: the worker that holds it now decides what comes next
        delivery.last_status_code, delivery.last_error = outcome.status_code, outcome.error
        now = utcnow()
        delivery.claimed_by = None
        if outcome.ok:
            delivery.state, delivery.delivered_at, delivery.finished_at = "delivered", now, now
            delivery.next_attempt_at = None
        elif outcome.final or delivery.attempts >= delivery.max_attempts:
            delivery.state, delivery.finished_at, delivery.next_attempt_at = "failed", now, None
            log.warning("webhook delivery %s (%s) failed after %d attempts: %s", delivery_id, delivery.event,
                        delivery.attempts, outcome.error)
        else:
            delay = self.backoff(delivery.attempts)
            if outcome.retry_after is not None:
                delay = max(delay, min(outcome.retry_after, self.max_delay_seconds))
            delivery.next_attempt_at = now + timedelta(seconds=delay)
