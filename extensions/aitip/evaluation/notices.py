"""An evaluation's end, told outside the platform: ``evaluation.<passed|failed|error>`` to the project's webhook
subscriptions (Slack, e-mail), with the verdict's reasons, queued in the transaction that writes the end (sent
if and only if that commits)."""

from __future__ import annotations

from typing import Any

from ..domains.end_notices import EndNotices
from .tables import EvaluationRecord
from .text import headline_metric


def evaluation_payload(evaluation: EvaluationRecord) -> dict[str, Any]:
    judged = f"{evaluation.model} v{evaluation.model_version} on {evaluation.dataset} v{evaluation.dataset_version}"
    best = headline_metric(evaluation.metrics, (evaluation.settings or {}).get("thresholds") or {})
    shown = f" ({best[0]} {best[1]:.4g})" if best else ""
    reasons = [reason["message"] for reason in (evaluation.verdict or {}).get("reasons", ())
               if not reason.get("passed") and not reason.get("skipped")]
    why = f": {evaluation.reason}" if evaluation.state == "error" and evaluation.reason else \
        f": {'; '.join(reasons)}" if reasons else ""
    return {"summary": f"evaluation {evaluation.id} of {judged} {evaluation.state}{shown}{why}",
            "evaluation_id": evaluation.id, "project": evaluation.project.name, "state": evaluation.state,
            "model": evaluation.model, "model_version": evaluation.model_version, "dataset": evaluation.dataset,
            "dataset_version": evaluation.dataset_version, "baseline_version": evaluation.baseline_version,
            "trigger": evaluation.trigger, "job_id": evaluation.job_id,
            "headline": {"metric": best[0], "value": best[1]} if best else None,
            "failed_checks": reasons, "reason": evaluation.reason or None,
            "finished_at": evaluation.finished_at.isoformat() if evaluation.finished_at else None}


def evaluation_notices(webhooks: Any) -> EndNotices:
    return EndNotices(webhooks, "evaluation", evaluation_payload)
