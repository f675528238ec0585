"""The evaluations' background part, a pass after every job's end (and every few seconds): versions that
training jobs registered get their policy's evaluation, and each evaluation whose job ended is judged.

Both steps read only the catalog (and MLflow through the experiments domain's read API), so the platform
may stop anywhere: a training job is marked as looked at in the transaction that records its evaluations,
and an evaluation whose job ended while the platform was down is judged at the next start."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..catalog.base import utcnow
from ..datasets import reads as dataset_reads
from ..domains.end_notices import EndNotices
from ..domains.passes import PassLoop
from ..errors import AitipError
from ..identity.principal import Principal
from ..jobs import reads as job_reads
from .gates import verdict
from .models import settings_from_json
from .results import read_published
from .service import EvaluationService
from .tables import CheckedTrainingJobRecord, EvaluationPolicyRecord, EvaluationRecord

log = logging.getLogger("aitip.evaluation")

FINISHED_JOB_STATES = ("succeeded", "failed", "cancelled", "timed_out")
UNSUBMITTED_GRACE = timedelta(minutes=2)  # a queued evaluation without a job this old was interrupted
RUN = "evaluation.run"


class EvaluationController(PassLoop):
    task_name = "aitip-evaluations"
    log = log

    def __init__(self, service: EvaluationService, signals: Any, *, poll_seconds: float = 5.0,
                 reports: Any = None, notices: EndNotices | None = None) -> None:
        super().__init__(signals, poll_seconds=poll_seconds, notices=notices)
        self.service = service
        self.reports = reports  # renders a judged evaluation's report (aitip.evaluation.reports), when set

    async def one_pass(self) -> None:
        """Start what new versions need, then judge what ended."""
        await self._start_for_new_versions()
        judged = await self.service._in_transaction(self._judge_ended)
        if judged:
            self.send_told()
        for evaluation_id in judged:
            self.service.changed(evaluation_id)
            if self.reports is not None:
                await asyncio.to_thread(self.reports.render_stored, evaluation_id)
                self.service.changed(evaluation_id)

    # ----- automatic evaluations -----

    async def _start_for_new_versions(self) -> None:
        jobs, policies = await self.service._in_transaction(self._unchecked_jobs)
        for job, wanted in jobs:
            started = 0
            if wanted:
                started = await self._evaluate_versions_of(job, policies)
            await self.service._in_transaction(lambda s, j=job.id, n=started: s.merge(
                CheckedTrainingJobRecord(job_id=j, evaluations=n, checked_at=utcnow())))

    def _unchecked_jobs(self, session: Session) -> tuple[list[tuple[Any, bool]],
                                                         dict[tuple[int, str], dict[str, Any]]]:
        """Succeeded jobs not looked at yet, each with whether its versions are to be evaluated: an evaluation's
        own job registers nothing to evaluate; a sweep's trials wait for the sweep's end, and only its best
        trial is evaluated."""
        policies = {(policy.project_id, policy.model): {"settings": policy.settings, "since": policy.created_at,
                                                        "project": policy.project.name}
                    for policy in session.scalars(select(EvaluationPolicyRecord)
                                                  .where(EvaluationPolicyRecord.automatic.is_(True)))}
        if not policies:
            return [], policies
        since = min(policy["since"] for policy in policies.values())
        found = []
        for job in job_reads.succeeded_since(session, {project_id for project_id, _ in policies}, since,
                                             exclude=select(CheckedTrainingJobRecord.job_id)):
            if "evaluation" in job.tags:
                found.append((job, False))
            elif job.sweep_id is None:
                found.append((job, True))
            else:
                sweep = job_reads.sweep_outcome(session, job.sweep_id)
                if sweep is None or sweep.state != "running":  # until then it is looked at again
                    found.append((job, sweep is not None and sweep.best_job_id == job.id))
        return found, policies

    async def _evaluate_versions_of(self, job: Any, policies: dict[tuple[int, str], dict[str, Any]]) -> int:
        project = job.project.name
        try:
            models = await asyncio.to_thread(self.service.experiments.project_models, project)
        except Exception:  # noqa: BLE001 - looked at again next pass
            log.exception("job %s: could not read the models it registered", job.id)
            raise
        started = 0
        for model in models:
            policy = policies.get((job.project.id, model.name))
            if policy is None or job.finished_at < policy["since"]:
                continue
            for entry in model.versions:
                if entry.job_id != job.id or await self._already_started(model.name, entry.version, job.id):
                    continue
                submitter = Principal(job.owner)
                try:
                    settings = settings_from_json(policy["settings"])
                    await self.service.start(submitter, project, model.name, entry.version, settings,
                                             trigger=f"job:{job.id}", action=RUN)
                    started += 1
                except Exception as error:  # noqa: BLE001 - kept as an errored evaluation; the job stands
                    message = str(getattr(error, "message", None) or error)
                    log.warning("job %s: the evaluation of %s v%s could not start: %s", job.id, model.name,
                                entry.version, message)
                    unstarted = {"code": getattr(error, "code", "not_started"),
                                 "message": f"the evaluation could not start: {message}"}
                    evaluation_id = await self.service._in_transaction(
                        lambda session, m=model.name, v=entry.version, r=entry.run_id, e=unstarted:
                        self._record_unstarted(session, job, m, v, r, policy["settings"], e))
                    self.send_told()
                    self.service.changed(evaluation_id)
        return started

    def _record_unstarted(self, session: Session, job: Any, model: str, version: int, run_id: str | None,
                          settings: dict[str, Any], error: dict[str, str]) -> int:
        """An automatic evaluation that could not start, kept as an errored evaluation saying why: the people who
        read the model's evaluations (the CLI, the page, a release's missing evidence) see what the log says.
        Its trigger marks the version as looked at, so it is not tried again each pass."""
        dataset = str(settings.get("dataset", ""))
        try:
            found = dataset_reads.version_brief(session, job.project.id, dataset, settings.get("dataset_version"))
            dataset_version, md5 = found.version, found.content_md5
        except AitipError:  # the dataset (version) itself is what is missing
            dataset_version, md5 = settings.get("dataset_version") or 0, ""
        now = utcnow()
        evaluation = EvaluationRecord(
            project_id=job.project.id, model=model, model_version=version, model_run_id=run_id, dataset=dataset[:100],
            dataset_version=dataset_version, dataset_md5=md5, settings=settings, state="error",
            trigger=f"job:{job.id}", error=error, reason=error["message"][:2000], created_by=job.owner,
            created_at=now, finished_at=now)
        session.add(evaluation)
        session.flush()
        self.tell(session, evaluation)
        return evaluation.id

    async def _already_started(self, model: str, version: int, job_id: int) -> bool:
        def read(session: Session) -> bool:
            return session.scalar(select(EvaluationRecord.id).where(
                EvaluationRecord.model == model, EvaluationRecord.model_version == version,
                EvaluationRecord.trigger == f"job:{job_id}").limit(1)) is not None

        return await self.service._in_transaction(read)

    # ----- judging -----

    def _judge_ended(self, session: Session) -> list[int]:
        changed: list[int] = []
        waiting = session.scalars(select(EvaluationRecord).where(EvaluationRecord.state.in_(("queued", "running")))
                                  .order_by(EvaluationRecord.id)).all()
        jobs = {job.id: job for job in job_reads.jobs(session, [e.job_id for e in waiting if e.job_id])}
        now = utcnow()
        for evaluation in waiting:
            job = jobs.get(evaluation.job_id) if evaluation.job_id is not None else None
            if job is None:
                if evaluation.job_id is not None or now - evaluation.created_at > UNSUBMITTED_GRACE:
                    self._end(evaluation, "error", error={"code": "job_missing",
                                                          "message": "the evaluation's job was not submitted or "
                                                          "no longer exists"})
                    self.tell(session, evaluation)
                    changed.append(evaluation.id)
                continue
            if job.state not in FINISHED_JOB_STATES:
                if job.state in ("starting", "running") and evaluation.state == "queued":
                    evaluation.state = "running"
                    changed.append(evaluation.id)
                continue
            self._judge(evaluation, job)
            self.tell(session, evaluation)
            changed.append(evaluation.id)
        return changed

    def _judge(self, evaluation: EvaluationRecord, job: Any) -> None:
        if job.state != "succeeded":
            error = {"code": f"job_{job.state}", "message": job.reason or f"the evaluation's job {job.state}"}
            if job.failed_cell:
                error["failed_cell"] = job.failed_cell
            self._end(evaluation, "error", error=error)
            return
        try:
            published = read_published(job.output_path)
        except ValueError as problem:
            self._end(evaluation, "error", error={"code": "malformed_result", "message": str(problem)[:2000]})
            return
        if published is None:
            self._end(evaluation, "error", error={"code": "no_result", "message": "the notebook published no "
                                                  "result (aitip.evaluation.publish)"})
            return
        thresholds = settings_from_json(evaluation.settings).thresholds
        baseline = published.baseline.metrics if published.baseline is not None else None
        # A first version has nothing to change from: its change checks are skipped (and say so); a baseline
        # that lacks a metric fails the check.
        judged = verdict(published.candidate.metrics, thresholds, baseline,
                         missing_baseline="skip" if evaluation.baseline_version is None else "fail")
        evaluation.metrics = published.candidate.metrics
        evaluation.baseline_metrics = baseline
        evaluation.result = published.model_dump(mode="json")
        evaluation.verdict = judged.model_dump(mode="json")
        overlap = published.data.get("overlap") or {}
        if overlap.get("rows"):
            evaluation.warnings = [*(evaluation.warnings or []),
                                   f"{overlap['rows']} of the {published.data.get('rows')} rows evaluated are also in "
                                   f"the data the model was trained on ({', '.join(overlap.get('with') or [])})"]
        self._end(evaluation, "passed" if judged.passed else "failed")

    @staticmethod
    def _end(evaluation: EvaluationRecord, state: str, *, error: dict[str, Any] | None = None) -> None:
        evaluation.state, evaluation.finished_at = state, utcnow()
        if error is not None:
            evaluation.error = error
            evaluation.reason = error["message"][:500]
