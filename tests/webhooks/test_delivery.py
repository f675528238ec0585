"""Deliveries to a real receiver: signed and verifiable, retried with every attempt recorded, failed after the
last, re-checked at each attempt, kept across a restart of the worker, and never held up by a slow receiver."""

from __future__ import annotations

import pytest
from aitip.catalog import Catalog
from aitip.webhooks import verify
from aitip.webhooks.models import (
    CallbackRequest,
    DeliveryListQuery,
    DeliveryState,
    PayloadFormat,
    SubscriptionCreate,
)
from aitip.webhooks.service import WebhookService
from aitip.webhooks.signing import DELIVERY_HEADER, EVENT_HEADER, SignatureError

from .conftest import HOLD, MAY, WAIT, Receiver, make_dispatcher

pytestmark = pytest.mark.asyncio


async def _subscribe(webhooks: WebhookService, url: str, **fields: object) -> str:
    created = await webhooks.subscribe(MAY, "alpha", SubscriptionCreate(url=url, **fields))
    return created.secret


async def _only_delivery(webhooks: WebhookService):
    listed = await webhooks.deliveries(MAY, "alpha")
    assert listed.total == 1
    return listed.items[0]


async def test_a_delivery_arrives_signed_and_the_receiver_verifies_it(webhooks: WebhookService,
                                                                      receiver: Receiver) -> None:
    secret = await _subscribe(webhooks, receiver.url())
    [delivery_id] = await webhooks.publish("alpha", "job.succeeded", {"id": 7, "state": "succeeded"})
    assert await webhooks.dispatcher.wait_settled(delivery_id, WAIT) == "delivered"

    [request] = receiver.requests
    assert verify(secret, request.headers, request.body) > 0
    assert request.headers[DELIVERY_HEADER] == delivery_id and request.headers[EVENT_HEADER] == "job.succeeded"
    assert request.headers["Content-Type"] == "application/json"
    body = request.json()
    assert body["id"] == delivery_id and body["event"] == "job.succeeded" and body["project"] == "alpha"
    assert body["data"] == {"id": 7, "state": "succeeded"}
    with pytest.raises(SignatureError, match="does not match"):
        verify(secret, request.headers, request.body.replace(b"succeeded", b"failed"))
    with pytest.raises(SignatureError, match="does not match"):
        verify("whsec_another", request.headers, request.body)

    delivery = await _only_delivery(webhooks)
    assert (delivery.state.value, delivery.attempts, delivery.last_status_code) == ("delivered", 1, 200)
    assert delivery.delivered_at is not None and delivery.next_attempt_at is None
    assert [(a.number, a.status_code, a.address) for a in delivery.attempt_log] == [(1, 200, "127.0.0.1")]


async def test_a_name_is_resolved_once_and_the_checked_address_is_the_one_connected_to(
        catalog: Catalog, projects, receiver: Receiver) -> None:
    # localhost resolves to loopback, admitted by this configuration; the request goes to the checked address
    # and names the host in its Host header.
    dispatcher = make_dispatcher(catalog, allowed_networks=["127.0.0.0/8", "::1/128"])
    webhooks = WebhookService(catalog, dispatcher)
    await dispatcher.start()
    try:
        secret = await _subscribe(webhooks, receiver.url(host="localhost"))
        [delivery_id] = await webhooks.publish("alpha", "dataset.registered", {"name": "users", "version": 3})
        assert await dispatcher.wait_settled(delivery_id, WAIT) == "delivered"
    finally:
        await dispatcher.stop()
    [request] = receiver.requests
    assert request.headers["Host"] == f"localhost:{receiver.port}"
    verify(secret, request.headers, request.body)
    [attempt] = (await _only_delivery(webhooks)).attempt_log
    assert attempt.address == "127.0.0.1"  # the receiver listens there only


async def test_a_receiver_that_fails_twice_gets_a_third_attempt_and_all_are_recorded(
        webhooks: WebhookService, receiver: Receiver) -> None:
    receiver.script = [500, 503]
    secret = await _subscribe(webhooks, receiver.url())
    [delivery_id] = await webhooks.publish("alpha", "sweep.succeeded", {"id": 2})
    assert await webhooks.dispatcher.wait_settled(delivery_id, WAIT) == "delivered"

    assert len(receiver.requests) == 3
    assert {r.headers[DELIVERY_HEADER] for r in receiver.requests} == {delivery_id}
    assert len({r.body for r in receiver.requests}) == 1  # the same event, re-signed per attempt
    for request in receiver.requests:
        verify(secret, request.headers, request.body)
    delivery = await _only_delivery(webhooks)
    assert (delivery.state.value, delivery.attempts) == ("delivered", 3)
    assert [(a.number, a.status_code) for a in delivery.attempt_log] == [(1, 500), (2, 503), (3, 200)]
    assert delivery.attempt_log[0].error.startswith("HTTP 500") and delivery.attempt_log[2].error is None


async def test_a_receiver_that_always_fails_ends_failed_after_the_configured_attempts(
        webhooks: WebhookService, receiver: Receiver) -> None:
    receiver.script = [500] * 10
    await _subscribe(webhooks, receiver.url())
    [delivery_id] = await webhooks.publish("alpha", "job.failed", {"id": 9})
    assert await webhooks.dispatcher.wait_settled(delivery_id, WAIT) == "failed"

    assert len(receiver.requests) == webhooks.dispatcher.max_attempts == 3
    delivery = await _only_delivery(webhooks)
    assert (delivery.state.value, delivery.attempts, delivery.max_attempts) == ("failed", 3, 3)
    assert delivery.last_status_code == 500 and delivery.last_error.startswith("HTTP 500")
    assert [a.number for a in delivery.attempt_log] == [1, 2, 3]
    assert delivery.finished_at is not None and delivery.delivered_at is None
    failed = await webhooks.deliveries(MAY, "alpha", DeliveryListQuery(state=DeliveryState.failed))
    assert [d.id for d in failed.items] == [delivery_id]


async def test_a_target_refused_at_send_time_fails_at_once(webhooks: WebhookService) -> None:
    # A callback URL is checked when registered and again by every attempt; 10/8 is not admitted here.
    delivery_id = await webhooks.callback("http://10.0.0.1/hook", "s" * 32, "job.succeeded", {"id": 1},
                                          project="alpha")
    assert await webhooks.dispatcher.wait_settled(delivery_id, WAIT) == "failed"
    delivery = await _only_delivery(webhooks)
    assert delivery.attempts == 1 and delivery.subscription_id is None
    assert "10.0.0.1" in delivery.last_error and "private network" in delivery.last_error


async def test_a_callback_is_signed_with_the_secret_its_registration_returned(
        webhooks: WebhookService, receiver: Receiver) -> None:
    registration = await webhooks.prepare_callback(CallbackRequest(url=receiver.url("/done")))
    assert registration.generated and registration.secret.startswith("whsec_")
    given = await webhooks.prepare_callback(CallbackRequest(url=receiver.url("/done"), secret="agent-secret-" * 3))
    assert not given.generated and given.secret == "agent-secret-" * 3

    delivery_id = await webhooks.callback(registration.url, registration.secret, "job.succeeded",
                                          {"id": 5, "state": "succeeded"}, project="alpha")
    assert await webhooks.dispatcher.wait_settled(delivery_id, WAIT) == "delivered"
    [request] = receiver.requests
    assert request.path == "/done"
    verify(registration.secret, request.headers, request.body)
    assert request.json()["data"] == {"id": 5, "state": "succeeded"}
    callbacks = await webhooks.deliveries(MAY, "alpha", DeliveryListQuery(callbacks=True))
    assert [d.id for d in callbacks.items] == [delivery_id]
    assert (await webhooks.deliveries(MAY, "alpha", DeliveryListQuery(callbacks=False))).total == 0


async def test_slack_format_posts_text_and_blocks(webhooks: WebhookService, receiver: Receiver) -> None:
    await _subscribe(webhooks, receiver.url("/slack"), format=PayloadFormat.slack, events=["job.*"])
    [delivery_id] = await webhooks.publish("alpha", "job.failed",
                                           {"summary": "job 3 failed in cell 4", "id": 3, "state": "failed"})
    assert await webhooks.dispatcher.wait_settled(delivery_id, WAIT) == "delivered"
    message = receiver.requests[0].json()
    assert message["text"] == "[alpha] job 3 failed in cell 4"
    assert [block["type"] for block in message["blocks"]] == ["header", "section", "section", "context"]
    assert message["blocks"][0]["text"] == {"type": "plain_text", "text": "job.failed"}


async def test_a_slow_receiver_does_not_hold_up_the_others(webhooks: WebhookService, receiver: Receiver) -> None:
    receiver.script = [HOLD]
    await _subscribe(webhooks, receiver.url("/slow"), events=["job.succeeded"])
    [slow_id] = await webhooks.publish("alpha", "job.succeeded", {"id": 1})
    await receiver.wait_for(1)  # the slow receiver now holds its request open
    await _subscribe(webhooks, receiver.url("/fast"), events=["job.failed"])
    [fast_id] = await webhooks.publish("alpha", "job.failed", {"id": 2})
    assert await webhooks.dispatcher.wait_settled(fast_id, WAIT) == "delivered"
    listed = {d.id: d.state.value for d in (await webhooks.deliveries(MAY, "alpha")).items}
    assert listed == {slow_id: "pending", fast_id: "delivered"}
    receiver.release.set()
    assert await webhooks.dispatcher.wait_settled(slow_id, WAIT) == "delivered"


async def test_pending_deliveries_survive_a_restart_of_the_worker(catalog: Catalog, projects, allow_loopback,
                                                                  receiver: Receiver) -> None:
    stopped = make_dispatcher(catalog)  # the platform is down: events are queued in the catalog only
    service = WebhookService(catalog, stopped)
    secret = (await service.subscribe(MAY, "alpha", SubscriptionCreate(url=receiver.url()))).secret
    [delivery_id] = await service.publish("alpha", "job.succeeded", {"id": 4})

    receiver.script = [HOLD]
    first = make_dispatcher(catalog)
    await first.start()
    await receiver.wait_for(1)
    await first.stop()  # stops with the attempt in flight: it goes back to pending, due at once
    delivery = (await service.deliveries(MAY, "alpha")).items[0]
    assert (delivery.state.value, delivery.attempts) == ("pending", 0)

    reopened = Catalog(catalog.url)  # a new process: nothing of the first worker is in memory
    second = make_dispatcher(reopened)
    try:
        await second.start()
        assert await second.wait_settled(delivery_id, WAIT) == "delivered"
    finally:
        await second.stop()
        reopened.dispose()
    assert len(receiver.requests) == 2
    assert {r.headers[DELIVERY_HEADER] for r in receiver.requests} == {delivery_id}
    verify(secret, receiver.requests[1].headers, receiver.requests[1].body)
    delivery = (await service.deliveries(MAY, "alpha")).items[0]
    assert (delivery.state.value, delivery.attempts) == ("delivered", 1)


async def test_stopping_with_nothing_in_flight_and_starting_twice_are_harmless(catalog: Catalog) -> None:
    dispatcher = make_dispatcher(catalog)
    await dispatcher.stop()
    await dispatcher.start()
    await dispatcher.start()
    await dispatcher.stop()
