"""A job's or a sweep's end, told outside the platform: ``job.<state>`` / ``sweep.<state>`` to the project's
webhook subscriptions, and the final state to its own ``callback_url``. Queued in the transaction that writes the final state (sent
if and only if that commits); :meth:`JobNotices.sent` after the commit sends them at once."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from .tables import JobRecord, SweepRecord


def job_payload(job: JobRecord) -> dict[str, Any]:
    return {"summary": f"job {job.id} ({job.notebook_name}) {job.state}", "job_id": job.id,
            "project": job.project.name, "owner": job.owner, "state": job.state, "attempt": job.attempt,
            "notebook_name": job.notebook_name, "reason": job.reason, "mlflow_run_id": job.mlflow_run_id,
            "finished_at": job.finished_at.isoformat() if job.finished_at else None}


def sweep_payload(sweep: SweepRecord) -> dict[str, Any]:
    best = f", best {sweep.objective} {sweep.best_value:g} (job {sweep.best_job_id})" \
        if sweep.best_value is not None else ""
    return {"summary": f"sweep {sweep.id} {sweep.state}{best}", "sweep_id": sweep.id,
            "project": sweep.project.name, "owner": sweep.owner, "state": sweep.state, "objective": sweep.objective,
            "direction": sweep.direction, "trials": sweep.created_trials, "best_job_id": sweep.best_job_id,
            "best_value": sweep.best_value, "best_parameters": sweep.best_parameters, "reason": sweep.reason,
            "mlflow_run_id": sweep.mlflow_run_id,
            "finished_at": sweep.finished_at.isoformat() if sweep.finished_at else None}


class JobNotices:
    """Through the webhooks service's API (``publish_in``, ``callback_in``, ``notify``)."""

    def __init__(self, webhooks: Any) -> None:
        self.webhooks = webhooks

    def queue(self, session: Session, job: JobRecord) -> None:
        self._queue(session, job, "job", job_payload(job))

    def queue_sweep(self, session: Session, sweep: SweepRecord) -> None:
        self._queue(session, sweep, "sweep", sweep_payload(sweep))

    def _queue(self, session: Session, ended: JobRecord | SweepRecord, family: str, payload: dict[str, Any]) -> None:
        """``<family>.<state>`` to the project's subscribers, and to the record's own callback if it has one."""
        event, project = f"{family}.{ended.state}", ended.project.name
        self.webhooks.publish_in(session, project, event, payload)
        if ended.callback_url and ended.callback_secret:
            self.webhooks.callback_in(session, ended.callback_url, ended.callback_secret, event, payload,
                                      project=project)

    def sent(self) -> None:
        self.webhooks.notify()
