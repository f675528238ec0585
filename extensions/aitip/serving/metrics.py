"""Each variant's request metrics as the router sees them: requests by outcome, rows, and a latency histogram
(Prometheus's cumulative buckets). Exported in Prometheus's text format, and taken as deltas at an interval
into the catalog's time series (:mod:`.series`), which rollout analysis reads."""

from __future__ import annotations

import bisect
import time
from dataclasses import dataclass, field
from typing import Any

# Seconds; fine below 10 ms, where a served model answers.
BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
           10.0)


@dataclass
class VariantMetrics:
    requests: int = 0
    errors: int = 0  # the variant failed (5xx, unreachable)
    client_errors: int = 0  # the request was refused (4xx)
    rows: int = 0
    shadow_requests: int = 0
    retries: int = 0
    latency_sum: float = 0.0
    counts: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))  # per bucket, +Inf last
    labelled: int = 0  # answered rows whose true label arrived since (feedback)
    correct: int = 0  # of those, the rows the version predicted right

    def observe(self, seconds: float, status: int, rows: int = 0) -> None:
        self.requests += 1
        if status >= 500:
            self.errors += 1
        elif status >= 400:
            self.client_errors += 1
        self.rows += rows
        self.latency_sum += seconds
        self.counts[bisect.bisect_left(BUCKETS, seconds)] += 1

    def copy(self) -> VariantMetrics:
        return VariantMetrics(self.requests, self.errors, self.client_errors, self.rows, self.shadow_requests,
                              self.retries, self.latency_sum, list(self.counts), self.labelled, self.correct)

    def minus(self, earlier: VariantMetrics) -> VariantMetrics:
        return VariantMetrics(self.requests - earlier.requests, self.errors - earlier.errors,
                              self.client_errors - earlier.client_errors, self.rows - earlier.rows,
                              self.shadow_requests - earlier.shadow_requests, self.retries - earlier.retries,
                              self.latency_sum - earlier.latency_sum,
                              [now - then for now, then in zip(self.counts, earlier.counts)],
                              self.labelled - earlier.labelled, self.correct - earlier.correct)

    def quantile(self, q: float) -> float | None:
        """The latency below which ``q`` of the requests fell (the bucket's upper bound, interpolated)."""
        total = sum(self.counts)
        if not total:
            return None
        rank, seen = q * total, 0
        for index, count in enumerate(self.counts):
            if seen + count >= rank and count:
                lower = BUCKETS[index - 1] if index else 0.0
                upper = BUCKETS[index] if index < len(BUCKETS) else BUCKETS[-1] * 2
                return lower + (upper - lower) * (rank - seen) / count
            seen += count
        return BUCKETS[-1]

    def summary(self) -> dict[str, Any]:
        return {"requests": self.requests, "errors": self.errors, "client_errors": self.client_errors,
                "rows": self.rows, "shadow_requests": self.shadow_requests, "retries": self.retries,
                "latency_p50_ms": _ms(self.quantile(0.5)), "latency_p90_ms": _ms(self.quantile(0.9)),
                "latency_p99_ms": _ms(self.quantile(0.99)), "labelled": self.labelled, "correct": self.correct,
                "accuracy": round(self.correct / self.labelled, 6) if self.labelled else None,
                "latency_buckets": {str(bound): count for bound, count in zip((*BUCKETS, "+Inf"), self.counts)}}


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


@dataclass
class EndpointMetrics:
    """The metrics of one endpoint's variants (by model version), since the platform started."""

    project: str
    endpoint: str
    variants: dict[int, VariantMetrics] = field(default_factory=dict)
    since: float = field(default_factory=time.time)

    def of(self, version: int) -> VariantMetrics:
        found = self.variants.get(version)
        if found is None:
            found = self.variants[version] = VariantMetrics()
        return found


def _labels(**labels: Any) -> str:
    def escape(value: Any) -> str:
        return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    return "{" + ",".join(f'{name}="{escape(value)}"' for name, value in labels.items()) + "}"


def prometheus_text(endpoints: list[EndpointMetrics], in_flight: dict[tuple[str, str, int], int]) -> str:
    """The metrics in Prometheus's text exposition format (version 0.0.4)."""
    lines = ["# HELP aitip_serving_requests_total Requests a variant answered, by outcome.",
             "# TYPE aitip_serving_requests_total counter"]
    histogram: list[str] = ["# HELP aitip_serving_request_seconds Time from the router to the answer.",
                            "# TYPE aitip_serving_request_seconds histogram"]
    rows = ["# HELP aitip_serving_rows_total Rows predicted.", "# TYPE aitip_serving_rows_total counter"]
    flight = ["# HELP aitip_inflight_requests Requests in flight to a variant.",
              "# TYPE aitip_inflight_requests gauge"]
    labelled = ["# HELP aitip_serving_labelled_rows_total Answered rows whose true label arrived, by whether the "
                "version was right.", "# TYPE aitip_serving_labelled_rows_total counter"]
    for metrics in endpoints:
        for version, variant in sorted(metrics.variants.items()):
            base = {"project": metrics.project, "endpoint": metrics.endpoint, "version": version}
            ok = variant.requests - variant.errors - variant.client_errors
            for outcome, count in (("ok", ok), ("error", variant.errors), ("refused", variant.client_errors),
                                   ("shadow", variant.shadow_requests)):
                lines.append(f"aitip_serving_requests_total{_labels(**base, outcome=outcome)} {count}")
            cumulative = 0
            for bound, count in zip((*BUCKETS, "+Inf"), variant.counts):
                cumulative += count
                histogram.append(f"aitip_serving_request_seconds_bucket{_labels(**base, le=bound)} {cumulative}")
            histogram.append(f"aitip_serving_request_seconds_sum{_labels(**base)} {variant.latency_sum:.6f}")
            histogram.append(f"aitip_serving_request_seconds_count{_labels(**base)} {variant.requests}")
            rows.append(f"aitip_serving_rows_total{_labels(**base)} {variant.rows}")
            labelled.append(f"aitip_serving_labelled_rows_total{_labels(**base, correct='true')} {variant.correct}")
            labelled.append(f"aitip_serving_labelled_rows_total{_labels(**base, correct='false')} "
                            f"{variant.labelled - variant.correct}")
            flight.append(f"aitip_inflight_requests{_labels(**base)} "
                          f"{in_flight.get((metrics.project, metrics.endpoint, version), 0)}")
    return "\n".join(lines + histogram + rows + labelled + flight) + "\n"
