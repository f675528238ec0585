"""Catalog rows and live routers as the API's answers."""

from __future__ import annotations

from typing import Any

from .models import Endpoint, EndpointSettings, MetricPoint, Sample, Variant, VariantState, VariantTotals
from .tables import EndpointRecord, MetricPointRecord, SampleRecord


def endpoint_answer(endpoint: EndpointRecord, router: Any, base_path: str) -> Endpoint:
    variants = []
    for variant in endpoint.variants:
        process = router.variants.get(variant.version) if router is not None else None
        state = variant.state
        if state == VariantState.serving.value and process is None and endpoint.mode == "local":
            state = VariantState.starting.value  # the platform is starting it again
        variants.append(Variant(
            version=variant.version, weight=variant.weight, shadow=variant.version == endpoint.shadow_version,
            state=VariantState(state), reason=variant.reason, run_id=variant.run_id,
            replicas=process.ready_replicas if process is not None else 0,
            replicas_wanted=process.wanted if process is not None else 0,
            created_by=variant.created_by, created_at=variant.created_at))
    return Endpoint(id=endpoint.id, project=endpoint.project.name, name=endpoint.name, model=endpoint.model,
                    mode=endpoint.mode, settings=EndpointSettings.model_validate(endpoint.settings, strict=False).model_dump(mode="json"), variants=variants,
                    url=f"{base_path}serve/{endpoint.project.name}/{endpoint.name}/",
                    created_by=endpoint.created_by, created_at=endpoint.created_at, updated_at=endpoint.updated_at)


def metric_point(point: MetricPointRecord) -> MetricPoint:
    return MetricPoint(at=point.at, version=point.version, seconds=point.seconds, requests=point.requests,
                       errors=point.errors, client_errors=point.client_errors, rows=point.rows,
                       error_rate=point.errors / point.requests if point.requests else None,
                       latency_p50_ms=point.latency_p50_ms, latency_p90_ms=point.latency_p90_ms,
                       latency_p99_ms=point.latency_p99_ms, labelled=point.labelled,
                       accuracy=point.correct / point.labelled if point.labelled else None)


def totals(router: Any, version: int | None) -> list[VariantTotals]:
    if router is None:
        return []
    found = []
    for number, metrics in sorted(router.metrics.variants.items()):
        if version is not None and number != version:
            continue
        summary = metrics.summary()
        process = router.variants.get(number)
        found.append(VariantTotals(
            version=number, requests=summary["requests"], errors=summary["errors"],
            client_errors=summary["client_errors"], rows=summary["rows"], shadow_requests=summary["shadow_requests"],
            retries=summary["retries"], latency_p50_ms=summary["latency_p50_ms"],
            latency_p90_ms=summary["latency_p90_ms"], latency_p99_ms=summary["latency_p99_ms"],
            labelled=summary["labelled"], accuracy=summary["accuracy"],
            in_flight=process.in_flight if process is not None else 0))
    return found


def sample_answer(row: SampleRecord) -> Sample:
    return Sample(at=row.at, version=row.version, protocol=row.protocol, status=row.status,
                  latency_ms=row.latency_ms, request=row.request, answer=row.answer)
