"""A judged record's end (an evaluation's, a simulation's) told outside the platform: ``<family>.<state>`` to its
project's webhook subscriptions (Slack, e-mail), queued in the transaction that writes the end (sent if and only if
that commits); :meth:`EndNotices.sent` after the commit sends them at once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

ENDED = ("passed", "failed", "error")


class EndNotices:
    """Through the webhooks service's API (``publish_in``, ``notify``); ``payload`` says what a record's end is."""

    def __init__(self, webhooks: Any, family: str, payload: Callable[[Any], dict[str, Any]]) -> None:
        self.webhooks, self.family, self.payload = webhooks, family, payload

    def queue(self, session: Session, record: Any) -> None:
        if record.state in ENDED:
            self.webhooks.publish_in(session, record.project.name, f"{self.family}.{record.state}",
                                     self.payload(record))

    def sent(self) -> None:
        self.webhooks.notify()
