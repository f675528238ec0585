"""Webhook deliveries as a maintainer reads them in a terminal (``aitip webhooks ping``, ``deliveries``; ``--json``
for the payloads): where each went, how it ended, and every attempt with the address it reached."""

from __future__ import annotations

from typing import Any

from ..i18n import shell_gettext as _
from ..text_tables import local_time, shown_of, table


def _outcome(delivery: dict[str, Any]) -> str:
    if delivery.get("last_error"):
        return delivery["last_error"]
    return str(delivery["last_status_code"]) if delivery.get("last_status_code") is not None else "-"


def deliveries_text(page: dict[str, Any]) -> str:
    rows = [{_("delivery"): item["id"][:12], _("event"): item["event"], _("state"): item["state"],
             _("attempts"): f"{item['attempts']}/{item['max_attempts']}", _("last answer"): _outcome(item),
             _("to"): item["url"], _("created"): local_time(item["created_at"])} for item in page["items"]]
    return (table(rows, list(rows[0])) if rows else _("(none)")) + shown_of(len(rows), page["total"])


def delivery_text(delivery: dict[str, Any]) -> str:
    lines = [_("delivery {id}: {event} to {url} — {state}, {attempts} of {most} attempts").format(
        id=delivery["id"], event=delivery["event"], url=delivery["url"], state=delivery["state"],
        attempts=delivery["attempts"], most=delivery["max_attempts"])]
    if delivery.get("next_attempt_at") and delivery["state"] not in ("delivered", "failed"):
        lines.append(_("next attempt at {at}").format(at=local_time(delivery["next_attempt_at"])))
    rows = [{_("attempt"): attempt["number"], _("at"): local_time(attempt["started_at"]),
             _("ms"): attempt["duration_ms"], _("address"): attempt["address"] or "-",
             _("status"): attempt["status_code"] if attempt["status_code"] is not None else "-",
             _("error"): attempt["error"] or "-"} for attempt in delivery["attempt_log"]]
    if rows:
        lines += ["", table(rows, list(rows[0]))]
    return "\n".join(lines)
