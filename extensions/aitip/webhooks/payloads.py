"""What a delivery's body says: the JSON envelope, or a Slack-compatible message built from it.

The body is rendered once, when the event is queued, and stored; every attempt posts the same bytes
(only the signature's timestamp changes), so a receiver that dedupes on ``id`` sees one event.
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime
from typing import Any

from ..errors import InvalidInput

MAX_PAYLOAD_BYTES = 256 * 1024
EVENT_FAMILIES = ("job", "sweep", "dataset", "evaluation", "simulation", "release", "rollout", "device_rollout",
                  "webhook")
"""The sources of events; a subscription's filter names these (``job.*``), so a typo is refused."""
EVENT_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,30}\.[a-z][a-z0-9_]{0,30}$"
PING_EVENT = "webhook.ping"

_EVENT_NAME = re.compile(EVENT_NAME_PATTERN)
_SLACK_FIELDS = 10  # Slack's limit of fields in one section block
_SLACK_FIELD_CHARS = 2000
_SLACK_TEXT_CHARS = 3000
_SLACK_HEADER_CHARS = 150


def check_event(event: str) -> str:
    """An event is ``<family>.<what>`` (``job.succeeded``); anything else is a caller's mistake."""
    if not isinstance(event, str) or not _EVENT_NAME.match(event) or event.split(".")[0] not in EVENT_FAMILIES:
        raise InvalidInput("{event!r} is not an event name: use <family>.<what>, family one of {event_families}",
                           code="webhook_event_invalid",
                           event=event, event_families=', '.join(EVENT_FAMILIES))
    return event


def check_payload(data: Any) -> dict[str, Any]:
    """A payload is a JSON object of at most MAX_PAYLOAD_BYTES; refused here rather than at every attempt."""
    if not isinstance(data, dict):
        raise InvalidInput("a webhook payload must be a JSON object", code="webhook_payload_invalid")
    try:
        size = len(json.dumps(data, allow_nan=False, ensure_ascii=False).encode("utf-8"))
    except (TypeError, ValueError) as exc:
        raise InvalidInput("a webhook payload must be plain JSON: {exc}",
                           code="webhook_payload_invalid", exc=exc) from None
    if size > MAX_PAYLOAD_BYTES:
        raise InvalidInput("a webhook payload is at most {max_payload_bytes} bytes of JSON; this one is {size}",
                           code="webhook_payload_invalid", max_payload_bytes=MAX_PAYLOAD_BYTES, size=size)
    return data


def matches(patterns: list[str], event: str) -> bool:
    """``*`` matches everything, ``job`` and ``job.*`` every job event, ``job.failed`` just that one."""
    family = event.split(".", 1)[0]
    return any(p == "*" or p == event or p in (family, f"{family}.*") for p in patterns)


def body(payload: dict[str, Any]) -> bytes:
    """The exact bytes posted (and signed) for a stored payload."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def envelope(delivery_id: str, event: str, project: str | None, data: dict[str, Any],
             created_at: datetime) -> dict[str, Any]:
    """The ``json`` format: what happened, where, when, and the event's own data."""
    return {"id": delivery_id, "event": event, "project": project, "created_at": created_at.isoformat(),
            "data": data}


def _escape(text: str) -> str:
    """Slack's mrkdwn treats these three as markup; everything else is shown as written."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _scalar(value: Any) -> str | None:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | str) or (isinstance(value, float) and math.isfinite(value)):
        return str(value)
    return None


def headline(event: str, data: dict[str, Any]) -> str:
    """One line for a person: the payload's ``summary`` when it gives one, else the event and its subject."""
    summary = data.get("summary")
    if isinstance(summary, str) and summary.strip():
        return summary.strip()
    subject = next((f"{key} {data[key]}" for key in ("name", "id") if _scalar(data.get(key)) is not None), "")
    return f"{event} of {subject}" if subject else event


def plain_text(event: str, project: str | None, data: dict[str, Any]) -> str:
    """An e-mail's body: the headline, each scalar field on a line of its own, then the event's data as JSON."""
    lines = [headline(event, data), "", f"event: {event}"] + ([f"project: {project}"] if project else [])
    lines += [f"{key}: {shown}" for key, value in data.items() if (shown := _scalar(value)) is not None]
    return "\n".join([*lines, "", json.dumps(data, indent=2, ensure_ascii=False, default=str), ""])


def slack(delivery_id: str, event: str, project: str | None, data: dict[str, Any],
          created_at: datetime) -> dict[str, Any]:
    """The ``slack`` format: an incoming-webhook message, ``text`` for notifications plus Block Kit blocks
    (a header, the headline, the payload's scalar fields, a link when it has a ``url``, and a context line)."""
    line = headline(event, data)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(event, _SLACK_HEADER_CHARS)}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _clip(_escape(line), _SLACK_TEXT_CHARS)}},
    ]
    fields = []
    for key, value in data.items():
        shown = _scalar(value)
        if shown is None or key in ("summary", "url"):
            continue
        fields.append({"type": "mrkdwn", "text": _clip(f"*{_escape(str(key))}*\n{_escape(shown)}", _SLACK_FIELD_CHARS)})
        if len(fields) == _SLACK_FIELDS:
            break
    if fields:
        blocks.append({"type": "section", "fields": fields})
    link = data.get("url")
    if isinstance(link, str) and link.startswith(("https://", "http://")) and not re.search(r"[\s<>|]", link):
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"<{link}|Open in AITIP>"}})
    context = " · ".join(part for part in (f"project *{_escape(project)}*" if project else "",
                                           f"delivery `{delivery_id}`", created_at.isoformat(timespec="seconds"))
                         if part)
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
    prefix = f"[{project}] " if project else ""
    return {"text": _clip(_escape(f"{prefix}{line}"), _SLACK_TEXT_CHARS), "blocks": blocks}


def render(format: str, delivery_id: str, event: str, project: str | None, data: dict[str, Any],
           created_at: datetime) -> dict[str, Any]:
    renderer = slack if format == "slack" else envelope
    return renderer(delivery_id, event, project, data, created_at)
