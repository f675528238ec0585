"""A simulation's end, told outside the platform: ``simulation.<passed|failed|error>`` to the project's webhook
subscriptions (Slack, e-mail), with the checks that failed, queued in the transaction that writes the end (sent
if and only if that commits)."""

from __future__ import annotations

from typing import Any

from ..domains.end_notices import EndNotices
from .tables import SimulationRecord


def simulation_payload(simulation: SimulationRecord) -> dict[str, Any]:
    if simulation.model:
        target = f"{simulation.model} v{simulation.model_version}"
        if simulation.dataset_version:
            target += f" on {simulation.dataset} v{simulation.dataset_version}"
    else:
        target = (simulation.endpoint or {}).get("uri", "an endpoint")
    clean = (simulation.result or {}).get("clean")
    shown = f" (clean {clean:.4g})" if isinstance(clean, int | float) else ""
    failed = [str(reason) for reason in (simulation.verdict or {}).get("reasons") or () if reason]
    why = f": {simulation.reason}" if simulation.state == "error" and simulation.reason else \
        f": {'; '.join(failed)}" if failed else ""
    return {"summary": f"simulation {simulation.id} ({simulation.template_name}@{simulation.template_version}) of "
                       f"{target} {simulation.state}{shown}{why}",
            "simulation_id": simulation.id, "project": simulation.project.name, "state": simulation.state,
            "template": f"{simulation.template_name}@{simulation.template_version}", "model": simulation.model,
            "model_version": simulation.model_version, "dataset": simulation.dataset,
            "dataset_version": simulation.dataset_version, "trigger": simulation.trigger, "job_id": simulation.job_id,
            "clean": clean, "failed_checks": failed,
            "reason": simulation.reason or None,
            "finished_at": simulation.finished_at.isoformat() if simulation.finished_at else None}


def simulation_notices(webhooks: Any) -> EndNotices:
    return EndNotices(webhooks, "simulation", simulation_payload)
