"""The jobs domain's read API for the other domains: what they may know of a job, in a session they hold,
without reading the jobs' tables themselves (lineage, masking of a job's inputs, run summaries, GPU
accounting, attributing GPU processes to jobs)."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from .. import settings
from ..isolation.state import WORKSPACES_DIR
from ..projects.access import project_names
from .tables import JobRecord, SweepRecord

if TYPE_CHECKING:
    from ..projects.tables import ProjectRecord

# A job holds its kernel (and its GPUs) in these states.
ACTIVE_JOB_STATES = ("starting", "running")


@dataclass(frozen=True)
class JobBrief:
    id: int
    project: ProjectRecord  # the projects domain's record, for access checks (projects.access)
    owner: str
    state: str
    notebook_name: str
    notebook_sha256: str
    kernel: str
    attempt: int
    gpus: int
    mlflow_run_id: str | None
    kernel_pid: int | None
    submitted_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    tags: dict[str, str]
    reason: str | None
    failed_cell: dict[str, Any] | None
    output_path: str | None  # the executed notebook (the platform's own file)
    sweep_id: int | None  # a sweep's trial
    parameters: dict[str, Any]


def _brief(job: JobRecord) -> JobBrief:
    return JobBrief(id=job.id, project=job.project, owner=job.owner, state=job.state,
                    notebook_name=job.notebook_name, notebook_sha256=job.notebook_sha256, kernel=job.kernel,
                    attempt=job.attempt, gpus=job.gpus, mlflow_run_id=job.mlflow_run_id, kernel_pid=job.kernel_pid,
                    submitted_at=job.submitted_at, started_at=job.started_at, finished_at=job.finished_at,
                    tags=dict(job.tags or {}), reason=job.reason, failed_cell=job.failed_cell,
                    output_path=job.output_path, sweep_id=job.sweep_id, parameters=dict(job.parameters or {}))


def job(session: Session, job_id: int) -> JobBrief | None:
    found = session.get(JobRecord, job_id)
    return _brief(found) if found is not None else None


def jobs(session: Session, job_ids: Iterable[int]) -> list[JobBrief]:
    """The jobs that exist among ``job_ids``, by id."""
    wanted = sorted(set(job_ids))
    if not wanted:
        return []
    return [_brief(found) for found in session.scalars(select(JobRecord).where(JobRecord.id.in_(wanted))
                                                       .order_by(JobRecord.id)).unique()]


def ended_runs(session: Session, project_id: int, notebook_name: str, limit: int = 200) -> list[JobBrief]:
    """The project's ended jobs of a notebook, newest first."""
    rows = session.scalars(select(JobRecord).where(
        JobRecord.project_id == project_id, JobRecord.notebook_name == notebook_name,
        JobRecord.state.in_(("succeeded", "failed", "cancelled", "timed_out")))
        .order_by(JobRecord.finished_at.desc(), JobRecord.id.desc()).limit(limit)).unique()
    return [_brief(row) for row in rows]


def runs_of_notebook(session: Session, project_id: int, notebook_name: str, limit: int = 200, *,
                     tag_prefix: tuple[str, str] | None = None) -> list[JobBrief]:
    """The project's jobs of a notebook in any state, newest first; with ``tag_prefix`` (tag, prefix), only
    those whose tag starts with the prefix (asked of the database, so the limit counts only those)."""
    query = select(JobRecord).where(JobRecord.project_id == project_id, JobRecord.notebook_name == notebook_name)
    if tag_prefix is not None:
        tag, prefix = tag_prefix
        query = query.where(JobRecord.tags[tag].as_string().startswith(prefix, autoescape=True))
    rows = session.scalars(query.order_by(JobRecord.id.desc()).limit(limit)).unique()
    return [_brief(row) for row in rows]


def work_directory(brief: JobBrief) -> Path:
    """The working directory of the job's last attempt, as a local worker lays it out (the owner's files)."""
    return settings.aitip_home() / WORKSPACES_DIR / f"{brief.id}.{brief.attempt}" / "work"


def job_of_run(session: Session, run_id: str) -> JobBrief | None:
    """The job whose MLflow run this is."""
    found = session.scalar(select(JobRecord).where(JobRecord.mlflow_run_id == run_id))
    return _brief(found) if found is not None else None


def succeeded_since(session: Session, project_ids: Collection[int], since: datetime, *, exclude: Any,
                    limit: int = 100) -> list[JobBrief]:
    """Succeeded jobs of these projects that finished after ``since``, oldest first, but for the ids that
    ``exclude`` (a select of job ids: those another domain has looked at already) names."""
    if not project_ids:
        return []
    rows = session.scalars(select(JobRecord).where(JobRecord.project_id.in_(sorted(project_ids)),
                                                   JobRecord.state == "succeeded", JobRecord.finished_at >= since,
                                                   JobRecord.id.not_in(exclude))
                           .order_by(JobRecord.finished_at, JobRecord.id).limit(limit)).unique()
    return [_brief(row) for row in rows]


@dataclass(frozen=True)
class SweepOutcome:
    state: str  # running, succeeded, failed, cancelled
    best_job_id: int | None


def sweep_outcome(session: Session, sweep_id: int) -> SweepOutcome | None:
    """Whether a sweep has ended, and its best trial."""
    found = session.get(SweepRecord, sweep_id)
    return SweepOutcome(found.state, found.best_job_id) if found is not None else None


def running_kernels(session: Session, host: str) -> list[JobBrief]:
    """Active jobs whose kernel runs on ``host``, with its pid."""
    rows = session.scalars(select(JobRecord).where(JobRecord.state.in_(ACTIVE_JOB_STATES),
                                                   JobRecord.kernel_host == host,
                                                   JobRecord.kernel_pid.is_not(None))).unique()
    return [_brief(row) for row in rows]


@dataclass(frozen=True)
class GpuHold:
    """A job that held GPUs for a while (still holding them when ``finished_at`` is None and it is active)."""

    owner: str
    project: str
    gpus: int
    state: str
    started_at: datetime
    finished_at: datetime | None


def gpu_holds(session: Session, *, window_end: datetime, since: datetime | None = None,
              project_ids: Collection[int] | None = None) -> list[GpuHold]:
    """Jobs with GPUs that started before ``window_end`` and had not finished before ``since``."""
    statement = (
        select(JobRecord.owner, JobRecord.project_id, JobRecord.gpus, JobRecord.state, JobRecord.started_at,
               JobRecord.finished_at)
        .where(JobRecord.gpus > 0, JobRecord.started_at.is_not(None), JobRecord.started_at < window_end,
               or_(JobRecord.finished_at.is_not(None), JobRecord.state.in_(ACTIVE_JOB_STATES)))
    )
    if since is not None:
        statement = statement.where(or_(JobRecord.finished_at.is_(None), JobRecord.finished_at > since))
    if project_ids is not None:
        statement = statement.where(JobRecord.project_id.in_(sorted(project_ids) or [-1]))
    rows = session.execute(statement).all()  # columns only: a report may span thousands of jobs
    names = project_names(session, {row.project_id for row in rows})
    return [GpuHold(row.owner, names[row.project_id], row.gpus, row.state, row.started_at, row.finished_at)
            for row in rows]
