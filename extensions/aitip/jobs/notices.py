"""A job's end, told outside the platform: ``job.<state>`` to the project's webhook subscriptions, and the
final state to the job's own ``callback_url``. Queued in the transaction that writes the final state (sent
if and only if that commits); :meth:`JobNotices.sent` after the commit sends them at once."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from .tables import JobRecord


def job_payload(job: JobRecord) -> dict[str, Any]:
    return {"summary": f"job {job.id} ({job.notebook_name}) {job.state}", "job_id": job.id,
            "project": job.project.name, "owner": job.owner, "state": job.state, "attempt": job.attempt,
            "notebook_name": job.notebook_name, "reason": job.reason, "mlflow_run_id": job.mlflow_run_id,
            "finished_at": job.finished_at.isoformat() if job.finished_at else None}


class JobNotices:
    """Through the webhooks service's API (``publish_in``, ``callback_in``, ``notify``)."""

    def __init__(self, webhooks: Any) -> None:
        self.webhooks = webhooks

    def queue(self, session: Session, job: JobRecord) -> None:
        event, payload = f"job.{job.state}", job_payload(job)
        self.webhooks.publish_in(session, job.project.name, event, payload)
        if job.callback_url and job.callback_secret:
            self.webhooks.callback_in(session, job.callback_url, job.callback_secret, event, payload,
                                      project=job.project.name)

    def sent(self) -> None:
        self.webhooks.notify()
