"""A simulation as the API answers it: its record with the metric per condition, the endpoint's header values
withheld."""

from __future__ import annotations

from typing import Any

from .models import ConditionChange, Simulation, SimulationDetail
from .tables import SimulationRecord


def condition_metrics(result: dict[str, Any] | None) -> dict[str, float]:
    """{condition or condition@value: metric} of a published result, for lists and comparisons."""
    found: dict[str, float] = {}
    for row in (result or {}).get("conditions", ()):
        key = row["condition"] if row.get("value") is None else f"{row['condition']}@{row['value']:g}"
        found[key] = row["metric"]
    return found


def public_endpoint(endpoint: dict[str, Any] | None) -> dict[str, Any] | None:
    """An endpoint as shown back: its header names, never their values (they may hold keys)."""
    if endpoint is None:
        return None
    return {**endpoint, "headers": {name: "…" for name in endpoint.get("headers", {})}}


def simulation_answer(record_: SimulationRecord, *, detail: bool = False) -> Simulation:
    fields: dict[str, Any] = dict(
        id=record_.id, project=record_.project.name, template_name=record_.template_name,
        template_version=record_.template_version, template_source=record_.template_source, kind=record_.kind,
        model=record_.model, model_version=record_.model_version, model_run_id=record_.model_run_id,
        endpoint=public_endpoint(record_.endpoint), dataset=record_.dataset, dataset_version=record_.dataset_version,
        dataset_md5=record_.dataset_md5, job_id=record_.job_id, notebook_sha256=record_.notebook_sha256,
        state=record_.state, trigger=record_.trigger, previous_id=record_.previous_id,
        clean=(record_.result or {}).get("clean"), metrics=condition_metrics(record_.result),
        verdict=record_.verdict, error=record_.error, reason=record_.reason,
        has_report=record_.report_path is not None, created_by=record_.created_by, created_at=record_.created_at,
        finished_at=record_.finished_at)
    if detail:
        return SimulationDetail(**fields, template=record_.template, result=record_.result)
    return Simulation(**fields)


def condition_changes(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[ConditionChange]:
    """The clean value, then each condition and value of ``after`` beside ``before``'s (those ``before`` alone
    has last): the metric's change, None where a side lacks it."""
    def change(old: float | None, new: float | None) -> float | None:
        return None if old is None or new is None else new - old

    before, after = before or {}, after or {}
    changes = []
    if before.get("clean") is not None or after.get("clean") is not None:
        changes.append(ConditionChange(condition="clean", parameter=None, value=None, before=before.get("clean"),
                                       after=after.get("clean"), change=change(before.get("clean"),
                                                                               after.get("clean"))))
    earlier = {(row["condition"], row.get("value")): row for row in before.get("conditions", ())}
    for row in after.get("conditions", ()):
        old = earlier.pop((row["condition"], row.get("value")), None)
        value_before = old["metric"] if old else None
        changes.append(ConditionChange(condition=row["condition"], parameter=row.get("parameter"),
                                       value=row.get("value"), before=value_before, after=row["metric"],
                                       change=change(value_before, row["metric"])))
    for (condition, value), row in earlier.items():
        changes.append(ConditionChange(condition=condition, parameter=row.get("parameter"), value=value,
                                       before=row["metric"], after=None, change=None))
    return changes
