"""The metric time series: at each interval every router's per-version deltas become catalog rows (what rollout
analysis reads through :mod:`.reads`), and the sampled requests are written and pruned."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from .metrics import VariantMetrics
from .tables import MetricPointRecord, SampleRecord

MAX_SAMPLES_PER_ENDPOINT = 5000


class SeriesRecorder:
    """Remembers what each variant's counters were at the last flush, to write the difference."""

    def __init__(self) -> None:
        self._last: dict[tuple[int, int], VariantMetrics] = {}
        self._last_at: dict[tuple[int, int], float] = {}

    def points(self, routers: list[Any], now: float) -> list[MetricPointRecord]:
        found = []
        for router in routers:
            for version, metrics in list(router.metrics.variants.items()):
                key = (router.endpoint_id, version)
                earlier = self._last.get(key, VariantMetrics())
                delta = metrics.minus(earlier)
                seconds = now - self._last_at.get(key, router.metrics.since)
                self._last[key], self._last_at[key] = metrics.copy(), now
                if not (delta.requests or delta.labelled):
                    continue
                found.append(MetricPointRecord(
                    endpoint_id=router.endpoint_id, version=version, at=datetime.fromtimestamp(now, timezone.utc),
                    seconds=round(seconds, 3), requests=delta.requests, errors=delta.errors,
                    client_errors=delta.client_errors, rows=delta.rows,
                    latency_p50_ms=_ms(delta.quantile(0.5)), latency_p90_ms=_ms(delta.quantile(0.9)),
                    latency_p99_ms=_ms(delta.quantile(0.99)), buckets=delta.counts, labelled=delta.labelled,
                    correct=delta.correct))
        return found

    def forget(self, endpoint_id: int) -> None:
        for key in [key for key in self._last if key[0] == endpoint_id]:
            self._last.pop(key, None)
            self._last_at.pop(key, None)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def samples(endpoint_id: int, kept: list[dict[str, Any]]) -> list[SampleRecord]:
    return [SampleRecord(endpoint_id=endpoint_id, version=entry["version"], protocol=entry["protocol"],
                         status=entry["status"], latency_ms=entry["latency_ms"], request=entry["request"],
                         answer=entry["answer"], at=datetime.fromtimestamp(entry["at"], timezone.utc))
            for entry in kept]


def prune_samples(session: Session, endpoint_id: int) -> None:
    """Keep the newest samples of an endpoint only."""
    cutoff = session.scalar(select(SampleRecord.id).where(SampleRecord.endpoint_id == endpoint_id)
                            .order_by(SampleRecord.id.desc()).offset(MAX_SAMPLES_PER_ENDPOINT).limit(1))
    if cutoff is not None:
        session.execute(delete(SampleRecord).where(SampleRecord.endpoint_id == endpoint_id,
                                                   SampleRecord.id <= cutoff))
