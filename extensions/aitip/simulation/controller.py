"""The simulations' background part, a pass after every job's end (and every few seconds): versions whose
evaluation passed get their model's simulation policy, and each simulation whose job ended is judged.

Both steps read only the catalog (other domains through their read APIs), so the platform may stop anywhere:
an evaluation is marked as looked at in the transaction after its simulations started, and a simulation whose
job ended while the platform was down is judged at the next start."""

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
from ..evaluation import reads as evaluation_reads
from ..identity.principal import Principal
from ..jobs import reads as job_reads
from ..errors import AitipError
from . import library, template_catalog
from .models import SimulationSettings
from .results import read_published
from .service import SimulationService
from .tables import CheckedEvaluationRecord, SimulationPolicyRecord, SimulationRecord

log = logging.getLogger("aitip.simulation")

FINISHED_JOB_STATES = ("succeeded", "failed", "cancelled", "timed_out")
UNSUBMITTED_GRACE = timedelta(minutes=2)  # a queued simulation without a job this old was interrupted
RUN = "simulation.run"


class SimulationController(PassLoop):
    task_name = "aitip-simulations"
    log = log

    def __init__(self, service: SimulationService, signals: Any, *, poll_seconds: float = 5.0,
                 notices: EndNotices | None = None) -> None:
        super().__init__(signals, poll_seconds=poll_seconds, notices=notices)
        self.service = service

    async def one_pass(self) -> None:
        """Start what passed evaluations call for, then judge what ended."""
        await self._start_after_evaluations()
        judged = await self.service._in_transaction(self._judge_ended)
        if judged:
            self.send_told()
        for simulation_id in judged:
            self.service.changed(simulation_id)
            await asyncio.to_thread(self.service.render_stored, simulation_id)
            self.service.changed(simulation_id)

    # ----- automatic simulations -----

    async def _start_after_evaluations(self) -> None:
        evaluations, policies = await self.service._in_transaction(self._unchecked_evaluations)
        for evaluation in evaluations:
            started = 0
            policy = policies.get((evaluation.project_id, evaluation.model))
            unstarted = None
            if policy is not None and evaluation.finished_at >= policy["since"]:
                try:
                    settings = SimulationSettings.model_validate(policy["settings"])
                    await self.service.start(Principal(evaluation.created_by), evaluation.project, evaluation.model,
                                             evaluation.model_version, settings,
                                             trigger=f"evaluation:{evaluation.id}", action=RUN)
                    started = 1
                except Exception as error:  # noqa: BLE001 - kept as an errored simulation; the evaluation stands
                    message = str(getattr(error, "message", None) or error)
                    log.warning("evaluation %s: the simulation of %s v%s could not start: %s", evaluation.id,
                                evaluation.model, evaluation.model_version, message)
                    unstarted = {"code": getattr(error, "code", "not_started"),
                                 "message": f"the simulation could not start: {message}"}

            def checked(session: Session, evaluation: Any = evaluation, started: int = started,
                        unstarted: dict[str, str] | None = unstarted) -> list[int]:
                session.merge(CheckedEvaluationRecord(evaluation_id=evaluation.id, simulations=started,
                                                      checked_at=utcnow()))
                if unstarted is None:
                    return []
                return [self._record_unstarted(session, evaluation, policies[(evaluation.project_id,
                                                                              evaluation.model)], unstarted)]

            unstarted_ids = await self.service._in_transaction(checked)
            if unstarted_ids:
                self.send_told()
            for simulation_id in unstarted_ids:
                self.service.changed(simulation_id)

    def _record_unstarted(self, session: Session, evaluation: Any, policy: dict[str, Any],
                          error: dict[str, str]) -> int:
        """An automatic simulation that could not start, kept as an errored simulation saying why: the people
        who read the model's simulations (the CLI, the page, a release's missing evidence) see what the log
        says, in the transaction that marks the evaluation looked at."""
        settings = policy["settings"]
        name, version = library.split_ref(str(settings.get("template", "")))
        try:
            found = template_catalog.find(session, evaluation.project_id, name, version)
            version, source, resolved = found.version, found.source, found.template
        except AitipError:  # the template itself is what is missing
            source, resolved = "", {}
        dataset, dataset_version, md5 = settings.get("dataset"), settings.get("dataset_version"), ""
        if dataset:
            try:
                found_data = dataset_reads.version_brief(session, evaluation.project_id, dataset, dataset_version)
                dataset_version, md5 = found_data.version, found_data.content_md5
            except AitipError:  # the dataset (version) itself is what is missing
                pass
        now = utcnow()
        simulation = SimulationRecord(
            project_id=evaluation.project_id, template_name=name[:64], template_version=version or 0,
            template_source=source, template=resolved, kind=resolved.get("kind", ""), model=evaluation.model,
            model_version=evaluation.model_version,
            endpoint=None, dataset=dataset, dataset_version=dataset_version, dataset_md5=md5,
            state="error", trigger=f"evaluation:{evaluation.id}", created_by=evaluation.created_by,
            error=error, reason=error["message"][:2000], created_at=now, finished_at=now)
        session.add(simulation)
        session.flush()
        self.tell(session, simulation)
        return simulation.id

    @staticmethod
    def _unchecked_evaluations(session: Session) -> tuple[list[Any], dict[tuple[int, str], dict[str, Any]]]:
        policies = {(policy.project_id, policy.model): {"settings": policy.settings, "since": policy.created_at}
                    for policy in session.scalars(select(SimulationPolicyRecord)
                                                  .where(SimulationPolicyRecord.automatic.is_(True)))}
        if not policies:
            return [], policies
        since = min(policy["since"] for policy in policies.values())
        found = evaluation_reads.passed_since(session, {project_id for project_id, _ in policies}, since,
                                              exclude=select(CheckedEvaluationRecord.evaluation_id))
        return found, policies

    # ----- judging -----

    def _judge_ended(self, session: Session) -> list[int]:
        changed: list[int] = []
        waiting = session.scalars(select(SimulationRecord).where(SimulationRecord.state.in_(("queued", "running")))
                                  .order_by(SimulationRecord.id)).all()
        jobs = {job.id: job for job in job_reads.jobs(session, [s.job_id for s in waiting if s.job_id])}
        now = utcnow()
        for simulation in waiting:
            job = jobs.get(simulation.job_id) if simulation.job_id is not None else None
            if job is None:
                if simulation.job_id is not None or now - simulation.created_at > UNSUBMITTED_GRACE:
                    self._end(simulation, "error", error={"code": "job_missing", "message": "the simulation's job "
                                                          "was not submitted or no longer exists"})
                    self.tell(session, simulation)
                    changed.append(simulation.id)
                continue
            if job.state not in FINISHED_JOB_STATES:
                if job.state in ("starting", "running") and simulation.state == "queued":
                    simulation.state = "running"
                    changed.append(simulation.id)
                continue
            self._judge(session, simulation, job)
            self.tell(session, simulation)
            changed.append(simulation.id)
        return changed

    def _judge(self, session: Session, simulation: SimulationRecord, job: Any) -> None:
        if job.state != "succeeded":
            error = {"code": f"job_{job.state}", "message": job.reason or f"the simulation's job {job.state}"}
            if job.failed_cell:
                error["failed_cell"] = job.failed_cell
                error["message"] = _failure_reason(job)
            self._end(simulation, "error", error=error)
            return
        try:
            published = read_published(job.output_path)
        except ValueError as problem:
            self._end(simulation, "error", error={"code": "malformed_result", "message": str(problem)[:2000]})
            return
        if published is None:
            self._end(simulation, "error", error={"code": "no_result", "message": "the notebook published no "
                                                  "result (aitip.simulation.results.publish)"})
            return
        result = published.model_dump(mode="json")
        previous = session.get(SimulationRecord, simulation.previous_id) if simulation.previous_id else None
        verdict = library.judge(simulation.template, result, previous.result if previous is not None else None)
        simulation.result, simulation.verdict = result, verdict
        if not verdict["passed"]:
            simulation.reason = "; ".join(verdict.get("reasons") or ())[:2000]
        self._end(simulation, "passed" if verdict["passed"] else "failed")

    @staticmethod
    def _end(simulation: SimulationRecord, state: str, *, error: dict[str, Any] | None = None) -> None:
        simulation.state, simulation.finished_at = state, utcnow()
        if error is not None:
            simulation.error = error
            simulation.reason = error["message"][:2000]


def _failure_reason(job: Any) -> str:
    """The reason a simulation's notebook stopped, as its failing cell said (an unreachable endpoint names
    itself there)."""
    cell = job.failed_cell or {}
    if cell.get("ename"):
        return f"{cell['ename']}: {cell.get('evalue') or ''}".strip()[:2000]
    return job.reason or "the simulation's job failed"
