"""Payload rendering: the JSON envelope, the Slack message shape, event names and filters."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from aitip.errors import InvalidInput
from aitip.webhooks.payloads import (
    MAX_PAYLOAD_BYTES,
    check_event,
    check_payload,
    envelope,
    matches,
    slack,
)

AT = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def test_the_json_envelope() -> None:
    assert envelope("d1", "job.succeeded", "alpha", {"id": 3}, AT) == {
        "id": "d1", "event": "job.succeeded", "project": "alpha", "created_at": "2026-12-04T12:00:00+00:00",
        "data": {"id": 3}}


def test_a_slack_message_has_text_and_blocks() -> None:
    message = slack("d1", "job.failed", "alpha", {
        "summary": "job 3 failed: <oops> & more", "id": 3, "state": "failed", "retryable": False,
        "metrics": {"loss": 1.0}, "url": "https://aitip.example.com/jobs/3"}, AT)
    assert message["text"] == "[alpha] job 3 failed: &lt;oops&gt; &amp; more"
    header, headline, facts, link, context = message["blocks"]
    assert header == {"type": "header", "text": {"type": "plain_text", "text": "job.failed"}}
    assert headline == {"type": "section", "text": {"type": "mrkdwn", "text": "job 3 failed: &lt;oops&gt; &amp; more"}}
    assert facts == {"type": "section", "fields": [{"type": "mrkdwn", "text": "*id*\n3"},
                                                   {"type": "mrkdwn", "text": "*state*\nfailed"},
                                                   {"type": "mrkdwn", "text": "*retryable*\nno"}]}
    assert link["text"]["text"] == "<https://aitip.example.com/jobs/3|Open in AITIP>"
    assert context["type"] == "context" and "`d1`" in context["elements"][0]["text"]


def test_a_slack_message_without_summary_or_fields_still_reads() -> None:
    message = slack("d2", "dataset.registered", None, {"nested": {"a": 1}}, AT)
    assert message["text"] == "dataset.registered"
    assert [block["type"] for block in message["blocks"]] == ["header", "section", "context"]
    many = slack("d3", "sweep.succeeded", "alpha", {f"k{i}": i for i in range(30)}, AT)
    assert len(many["blocks"][2]["fields"]) == 10  # Slack's limit per section
    assert slack("d4", "job.succeeded", "alpha", {"id": 8}, AT)["text"] == "[alpha] job.succeeded of id 8"


@pytest.mark.parametrize(("patterns", "event", "expected"), [
    (["*"], "job.failed", True),
    (["job"], "job.failed", True),
    (["job.*"], "job.failed", True),
    (["job.failed"], "job.failed", True),
    (["job.succeeded"], "job.failed", False),
    (["sweep.*", "dataset"], "job.failed", False),
    (["sweep.*", "dataset"], "dataset.registered", True),
])
def test_event_filters(patterns: list[str], event: str, expected: bool) -> None:
    assert matches(patterns, event) is expected


def test_event_names_and_payloads_are_checked() -> None:
    assert check_event("evaluation.finished") == "evaluation.finished"
    for bad in ("job", "jobs.failed", "Job.failed", "job.failed.now", ""):
        with pytest.raises(InvalidInput, match="not an event name"):
            check_event(bad)
    with pytest.raises(InvalidInput, match="JSON object"):
        check_payload([1, 2])
    with pytest.raises(InvalidInput, match="plain JSON"):
        check_payload({"when": AT})
    with pytest.raises(InvalidInput, match="plain JSON"):
        check_payload({"loss": float("nan")})
    with pytest.raises(InvalidInput, match=f"at most {MAX_PAYLOAD_BYTES}"):
        check_payload({"blob": "x" * MAX_PAYLOAD_BYTES})
