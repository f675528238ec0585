"""The serving domain's read API for other domains: one version's requests in a time window, summed from the
metric series the platform writes every few seconds (a rollout's analysis), and serving settings checked and
completed as an endpoint takes them (a service release)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from .metrics import VariantMetrics
from .models import EndpointSettings
from .tables import EndpointRecord, MetricPointRecord


@dataclass(frozen=True)
class Window:
    requests: int
    errors: int  # the version failed (5xx, unreachable)
    client_errors: int  # refused requests (4xx): the callers' fault, not the version's
    latency_p99_ms: float | None
    labelled: int = 0  # answered rows whose true label arrived in the window
    correct: int = 0

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.labelled if self.labelled else None


def endpoint_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """Serving settings as an endpoint would take them, completed with the defaults (a ValueError says what is
    wrong): what a service release signs."""
    try:  # as the JSON body it came in (strict: "3" is no number)
        return EndpointSettings.model_validate_json(json.dumps(settings)).model_dump(mode="json")
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in error.errors())
        raise ValueError(f"the serving settings are not valid: {problems}") from None


LIVE_SETTINGS = ("scaling",)  # what a running endpoint takes without a new deployment


def endpoint_id(session: Session, project_id: int, name: str) -> int | None:
    return session.scalar(select(EndpointRecord.id).where(EndpointRecord.project_id == project_id,
                                                          EndpointRecord.name == name))


def version_window(session: Session, endpoint: int, version: int, since: datetime, until: datetime) -> Window:
    """What ``version`` served in the points written in ``(since, until]``."""
    points = session.scalars(select(MetricPointRecord).where(
        MetricPointRecord.endpoint_id == endpoint, MetricPointRecord.version == version,
        MetricPointRecord.at > since, MetricPointRecord.at <= until)).all()
    total = VariantMetrics()
    for point in points:
        total.requests += point.requests
        total.errors += point.errors
        total.client_errors += point.client_errors
        total.labelled += point.labelled
        total.correct += point.correct
        total.counts = [have + add for have, add in zip(total.counts, point.buckets, strict=False)]
    p99 = total.quantile(0.99)
    return Window(total.requests, total.errors, total.client_errors, None if p99 is None else round(p99 * 1000, 3),
                  total.labelled, total.correct)
