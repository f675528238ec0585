"""Answers awaiting their true labels, kept in the catalog: written with the metric series at each interval,
read back when the platform starts, so that a label arriving after a restart still scores the version that
answered (the accuracy a rollout's analysis judges through the restart)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from .router import LABEL_MEMORY, LABEL_MEMORY_SECONDS
from .tables import RememberedAnswerRecord

CHUNK = 500  # ids per IN (...) list


def save(session: Session, endpoint_id: int, unsaved: dict[str, tuple[float, int, list[Any]]],
         scored: set[str]) -> None:
    """Replace the kept answers of these ids by the new ones, drop the scored ones, and keep at most a day's and
    ``LABEL_MEMORY`` answers of the endpoint."""
    gone = sorted(set(unsaved) | scored)
    for start in range(0, len(gone), CHUNK):
        session.execute(delete(RememberedAnswerRecord).where(
            RememberedAnswerRecord.endpoint_id == endpoint_id,
            RememberedAnswerRecord.request_id.in_(gone[start:start + CHUNK])))
    session.add_all([RememberedAnswerRecord(endpoint_id=endpoint_id, request_id=request_id, version=version,
                                            at=datetime.fromtimestamp(at, timezone.utc), predicted=predicted)
                     for request_id, (at, version, predicted) in unsaved.items()])
    session.flush()
    if not unsaved:
        return
    oldest = datetime.now(timezone.utc) - timedelta(seconds=LABEL_MEMORY_SECONDS)
    session.execute(delete(RememberedAnswerRecord).where(RememberedAnswerRecord.endpoint_id == endpoint_id,
                                                         RememberedAnswerRecord.at < oldest))
    cutoff = session.scalar(select(RememberedAnswerRecord.at).where(RememberedAnswerRecord.endpoint_id == endpoint_id)
                            .order_by(RememberedAnswerRecord.at.desc()).offset(LABEL_MEMORY).limit(1))
    if cutoff is not None:  # the newest LABEL_MEMORY stay
        session.execute(delete(RememberedAnswerRecord).where(RememberedAnswerRecord.endpoint_id == endpoint_id,
                                                             RememberedAnswerRecord.at <= cutoff))


def load(session: Session, endpoint_id: int) -> list[tuple[str, float, int, list[Any]]]:
    """The endpoint's kept answers of the last day, oldest first: ``(id, when, version, predicted)``."""
    oldest = datetime.now(timezone.utc) - timedelta(seconds=LABEL_MEMORY_SECONDS)
    rows = session.execute(select(RememberedAnswerRecord.request_id, RememberedAnswerRecord.at,
                                  RememberedAnswerRecord.version, RememberedAnswerRecord.predicted)
                           .where(RememberedAnswerRecord.endpoint_id == endpoint_id,
                                  RememberedAnswerRecord.at >= oldest)
                           .order_by(RememberedAnswerRecord.at.desc()).limit(LABEL_MEMORY)).all()
    return [(request_id, at.timestamp(), version, predicted) for request_id, at, version, predicted in reversed(rows)]
