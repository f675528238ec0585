"""Webhook deliveries as the CLI writes them for a maintainer, from the API's own answers."""

from __future__ import annotations

from aitip.webhooks.models import Delivery, DeliveryList
from aitip.webhooks.text import deliveries_text, delivery_text


def delivery(**changes: object) -> dict:
    answer = {"id": "0f3c9a7e5b2d4c1a9e8f", "subscription_id": 2, "project": "vision",
              "url": "https://hooks.example.com/aitip", "event": "evaluation.failed", "state": "pending",
              "attempts": 2, "max_attempts": 8, "last_status_code": None, "last_error": "connection refused",
              "next_attempt_at": "2026-12-06T10:00:04Z", "created_at": "2026-12-06T10:00:00Z", "delivered_at": None,
              "finished_at": None, "payload": {"event": "evaluation.failed"},
              "attempt_log": [{"number": 1, "started_at": "2026-12-06T10:00:00Z", "duration_ms": 12,
                               "address": "203.0.113.7", "status_code": 500, "error": None},
                              {"number": 2, "started_at": "2026-12-06T10:00:01Z", "duration_ms": 3,
                               "address": None, "status_code": None, "error": "connection refused"}]}
    answer.update(changes)
    return Delivery.model_validate(answer).model_dump(mode="json")


def test_a_delivery_reads_as_where_it_went_how_it_ended_and_each_attempt() -> None:
    lines = delivery_text(delivery()).splitlines()
    assert lines[0] == ("delivery 0f3c9a7e5b2d4c1a9e8f: evaluation.failed to https://hooks.example.com/aitip — "
                        "pending, 2 of 8 attempts")
    assert lines[1].startswith("next attempt at 2026-12-0")
    assert lines[3].split() == ["ATTEMPT", "AT", "MS", "ADDRESS", "STATUS", "ERROR"]
    assert lines[4].split()[3:] == ["12", "203.0.113.7", "500", "-"]
    assert lines[5].split()[3:] == ["3", "-", "-", "connection", "refused"]
    done = delivery_text(delivery(state="delivered", next_attempt_at=None, attempt_log=[]))
    assert done.splitlines() == ["delivery 0f3c9a7e5b2d4c1a9e8f: evaluation.failed to https://hooks.example.com/aitip"
                                 " — delivered, 2 of 8 attempts"]


def test_the_delivery_log_shows_each_outcome_and_the_page() -> None:
    page = DeliveryList.model_validate({"items": [delivery(), delivery(id="aa", state="delivered", last_error=None,
                                                                       last_status_code=200)],
                                        "total": 5, "limit": 2, "offset": 0}).model_dump(mode="json")
    lines = deliveries_text(page).splitlines()
    assert lines[0].split() == ["DELIVERY", "EVENT", "STATE", "ATTEMPTS", "LAST", "ANSWER", "TO", "CREATED"]
    assert lines[1].split()[:6] == ["0f3c9a7e5b2d", "evaluation.failed", "pending", "2/8", "connection", "refused"]
    assert lines[2].split()[:5] == ["aa", "evaluation.failed", "delivered", "2/8", "200"]
    assert lines[-1] == "(2 of 5)"
