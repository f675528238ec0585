"""The webhooks service's rules: maintainers manage and read subscriptions, others are refused (non-members
learn nothing), unsafe URLs never get in, and publish fans out to the matching subscriptions only."""

from __future__ import annotations

import pytest
from aitip.audit import AuditEventRecord
from aitip.catalog import Catalog
from aitip.errors import InvalidInput, NotFound, PermissionDenied
from aitip.webhooks.models import (
    DeliveryListQuery,
    DeliveryState,
    PayloadFormat,
    SubscriptionCreate,
    SubscriptionListQuery,
)
from aitip.webhooks.service import WebhookService
from aitip.webhooks.targets import ALLOWED_NETWORKS_ENV
from sqlalchemy import select

from .conftest import ANN, DEV, EVE, MAY, VIC, make_dispatcher

pytestmark = pytest.mark.asyncio

HOOK = "http://127.0.0.1:9/hooks/T000/B000/secret-path"  # nothing listens: these tests send nothing


@pytest.fixture
def service(catalog: Catalog, projects, monkeypatch: pytest.MonkeyPatch) -> WebhookService:
    """The service with its dispatcher not started: what is queued stays queued."""
    monkeypatch.setenv(ALLOWED_NETWORKS_ENV, "127.0.0.1/32")
    return WebhookService(catalog, make_dispatcher(catalog))


async def test_a_maintainer_subscribes_and_sees_the_secret_once(service: WebhookService) -> None:
    created = await service.subscribe(MAY, "alpha", SubscriptionCreate(url=HOOK, events=["job.*", "job.*"],
                                                                       description="ops channel"))
    assert created.secret.startswith("whsec_") and created.created_by == "may" and created.events == ["job.*"]
    listed = await service.list_subscriptions(ANN, "alpha")
    assert [(s.id, s.url, s.format) for s in listed.items] == [(created.id, HOOK, PayloadFormat.json)]
    assert "secret" not in listed.items[0].model_dump()


@pytest.mark.parametrize("who", [VIC, DEV], ids=["viewer", "developer"])
async def test_viewers_and_developers_cannot_subscribe_or_read(service: WebhookService, who) -> None:
    with pytest.raises(PermissionDenied, match="webhook.manage needs the maintainer role"):
        await service.subscribe(who, "alpha", SubscriptionCreate(url=HOOK))
    with pytest.raises(PermissionDenied, match="webhook.read needs the maintainer role"):
        await service.list_subscriptions(who, "alpha")
    with pytest.raises(PermissionDenied):
        await service.deliveries(who, "alpha")


async def test_a_non_member_sees_nothing(service: WebhookService) -> None:
    created = await service.subscribe(MAY, "alpha", SubscriptionCreate(url=HOOK))
    await service.publish("alpha", "job.succeeded", {"id": 1})
    for attempt in (service.subscribe(EVE, "alpha", SubscriptionCreate(url=HOOK)),
                    service.list_subscriptions(EVE, "alpha"), service.deliveries(EVE, "alpha"),
                    service.unsubscribe(EVE, "alpha", created.id), service.ping(EVE, "alpha", created.id)):
        with pytest.raises(NotFound, match="does not exist or you are not a member"):
            await attempt
    with pytest.raises(NotFound):
        await service.list_subscriptions(MAY, "no-such-project")


async def test_a_stranger_is_refused_before_the_url_is_looked_at(service: WebhookService) -> None:
    with pytest.raises(NotFound):
        await service.subscribe(EVE, "alpha", SubscriptionCreate(url="http://10.0.0.1/"))


async def test_unsafe_urls_are_refused_and_nothing_is_kept(catalog: Catalog, projects) -> None:
    service = WebhookService(catalog, make_dispatcher(catalog, allowed_networks=[]))
    for url in ("http://127.0.0.1:9/h", "http://10.0.0.1/h", "http://169.254.169.254/", "http://[::1]/h",
                "http://localhost:9/h", "http://[::ffff:127.0.0.1]/h"):
        with pytest.raises(InvalidInput) as refused:
            await service.subscribe(MAY, "alpha", SubscriptionCreate(url=url))
        assert refused.value.code == "webhook_target_refused"
    assert (await service.list_subscriptions(MAY, "alpha", SubscriptionListQuery(include_inactive=True))).items == []


async def test_publish_fans_out_to_matching_subscriptions_only(service: WebhookService) -> None:
    jobs = await service.subscribe(MAY, "alpha", SubscriptionCreate(url=HOOK, events=["job.*"]))
    sweeps = await service.subscribe(MAY, "alpha", SubscriptionCreate(url=HOOK, events=["sweep.succeeded"],
                                                                      format=PayloadFormat.slack))
    everything = await service.subscribe(MAY, "alpha", SubscriptionCreate(url=HOOK))
    assert len(await service.publish("alpha", "job.failed", {"id": 1})) == 2
    assert len(await service.publish("alpha", "sweep.succeeded", {"id": 2})) == 2
    assert len(await service.publish("alpha", "sweep.failed", {"id": 3})) == 1
    assert len(await service.publish("alpha", "dataset.registered", {"name": "d"})) == 1

    def events_of(subscription_id: int) -> list[str]:
        return sorted(d.event for d in listed.items if d.subscription_id == subscription_id)

    listed = await service.deliveries(MAY, "alpha", DeliveryListQuery(limit=500))
    assert listed.total == 6 and {d.state for d in listed.items} == {DeliveryState.pending}
    assert events_of(jobs.id) == ["job.failed"]
    assert events_of(sweeps.id) == ["sweep.succeeded"]
    assert events_of(everything.id) == ["dataset.registered", "job.failed", "sweep.failed", "sweep.succeeded"]
    slack = next(d for d in listed.items if d.subscription_id == sweeps.id)
    assert set(slack.payload) == {"text", "blocks"}
    only = await service.deliveries(MAY, "alpha", DeliveryListQuery(subscription_id=jobs.id))
    assert [d.event for d in only.items] == ["job.failed"]


async def test_publish_checks_what_the_platform_sends(service: WebhookService) -> None:
    with pytest.raises(InvalidInput, match="not an event name"):
        await service.publish("alpha", "jobs.done", {})
    with pytest.raises(InvalidInput, match="plain JSON"):
        await service.publish("alpha", "job.succeeded", {"at": object()})
    with pytest.raises(NotFound):
        await service.publish("no-such-project", "job.succeeded", {})
    assert await service.publish("alpha", "job.succeeded", {"id": 1}) == []  # nobody listens


async def test_unsubscribing_stops_deliveries_and_keeps_the_log(service: WebhookService) -> None:
    created = await service.subscribe(MAY, "alpha", SubscriptionCreate(url=HOOK))
    [pending] = await service.publish("alpha", "job.succeeded", {"id": 1})
    with pytest.raises(PermissionDenied):
        await service.unsubscribe(VIC, "alpha", created.id)
    await service.unsubscribe(MAY, "alpha", created.id)
    assert (await service.list_subscriptions(MAY, "alpha")).items == []
    removed = await service.list_subscriptions(MAY, "alpha", SubscriptionListQuery(include_inactive=True))
    assert [s.active for s in removed.items] == [False]
    [delivery] = (await service.deliveries(MAY, "alpha")).items
    assert (delivery.id, delivery.state, delivery.last_error) == (pending, DeliveryState.failed,
                                                                 "the subscription was removed")
    assert await service.publish("alpha", "job.succeeded", {"id": 2}) == []
    with pytest.raises(NotFound, match=f"no webhook subscription {created.id}"):
        await service.unsubscribe(MAY, "alpha", created.id)


async def test_a_ping_reaches_one_subscription_whatever_its_filter(service: WebhookService) -> None:
    created = await service.subscribe(MAY, "alpha", SubscriptionCreate(url=HOOK, events=["dataset.*"]))
    delivery = await service.ping(MAY, "alpha", created.id)
    assert (delivery.event, delivery.subscription_id, delivery.state) == ("webhook.ping", created.id,
                                                                          DeliveryState.pending)
    assert delivery.payload["data"]["summary"] == "test event from may"


async def test_the_audit_trail_names_the_receiver_but_not_its_path(service: WebhookService,
                                                                   catalog: Catalog) -> None:
    created = await service.subscribe(MAY, "alpha", SubscriptionCreate(url=HOOK))
    await service.unsubscribe(MAY, "alpha", created.id)
    with catalog.session() as session:
        events = session.scalars(select(AuditEventRecord).where(AuditEventRecord.action.like("webhook.%"))
                                 .order_by(AuditEventRecord.id)).all()
        trail = [(e.actor, e.action, e.target, e.detail.get("origin")) for e in events]
    assert trail == [("may", "webhook.subscribe", "project:alpha", "http://127.0.0.1:9"),
                     ("may", "webhook.unsubscribe", "project:alpha", "http://127.0.0.1:9")]
    assert "secret-path" not in repr([e.detail for e in events])


async def test_an_email_subscription_needs_the_platforms_smtp_server(catalog: Catalog, projects) -> None:
    without = WebhookService(catalog, make_dispatcher(catalog, smtp_host=""))
    with pytest.raises(InvalidInput) as refused:
        await without.subscribe(MAY, "alpha", SubscriptionCreate(url="mailto:ops@example.com"))
    assert refused.value.code == "webhook_mail_unavailable"
    with_smtp = WebhookService(catalog, make_dispatcher(catalog, smtp_host="127.0.0.1"))
    created = await with_smtp.subscribe(MAY, "alpha", SubscriptionCreate(url="mailto:ops@example.com",
                                                                         events=["release.*"]))
    assert created.url == "mailto:ops@example.com"
    with pytest.raises(ValueError):
        SubscriptionCreate(url="mailto:ops@example.com,boss@example.com")
    with catalog.session() as session:
        detail = session.scalars(select(AuditEventRecord.detail).where(
            AuditEventRecord.action == "webhook.subscribe")).all()
    assert detail[-1]["origin"] == "mailto:ops@example.com"


async def test_what_is_sent_links_to_its_page_where_the_platforms_address_is_known(
        catalog: Catalog, projects, monkeypatch: pytest.MonkeyPatch) -> None:
    """The hub's public URL reaches the platform service as ``$JUPYTERHUB_PUBLIC_HUB_URL``; the dashboards'
    address follows from it, and each queued payload (subscriptions and callbacks alike) carries its page."""
    monkeypatch.setenv(ALLOWED_NETWORKS_ENV, "127.0.0.1/32")
    monkeypatch.setenv("JUPYTERHUB_PUBLIC_HUB_URL", "https://aitip.example.org/hub/")
    linked = WebhookService(catalog, make_dispatcher(catalog))
    await linked.subscribe(MAY, "alpha", SubscriptionCreate(url=HOOK))
    await linked.publish("alpha", "job.failed", {"job_id": 3, "state": "failed"})
    await linked.callback(HOOK, "whsec_x", "job.failed", {"job_id": 3}, project="alpha")
    listed = await linked.deliveries(MAY, "alpha", DeliveryListQuery(limit=10))
    assert [d.payload["data"]["url"] for d in listed.items] == [
        "https://aitip.example.org/services/dashboards/jobs?project=alpha&job=3"] * 2
    monkeypatch.delenv("JUPYTERHUB_PUBLIC_HUB_URL")
    unlinked = WebhookService(catalog, make_dispatcher(catalog))
    await unlinked.publish("alpha", "job.failed", {"job_id": 4})
    listed = await unlinked.deliveries(MAY, "alpha", DeliveryListQuery(limit=10))
    assert [d.payload["data"].get("url") for d in listed.items if d.payload["data"]["job_id"] == 4] == [None]
