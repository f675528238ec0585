"""The jobs service: submission (validated snapshot), reading, cancel, retry and rerun, with project roles.

Execution state changes (claim, heartbeat, finish) belong to :mod:`aitip.jobs.worker`; this module
owns what callers may ask for.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from ..audit import record
from ..catalog import Catalog
from ..catalog.base import utcnow
from ..catalog.service import CatalogService
from ..operations.actions import action_of, performs
from ..errors import Conflict, InvalidInput, NotFound, PermissionDenied, Phrase, ServiceUnavailable
from ..i18n import N_
from ..identity.principal import Principal
from ..identity.roles import Role
from ..projects.access import authorize, authorize_record, member_project_ids, refuse_if_archived
from ..validation_messages import refusal
from ..webhooks.models import CallbackRequest
from . import credentials, library
from .events import JobSignals
from .models import (
    JobInput,
    JobInputRef,
    FailedCell,
    Job,
    EventList,
    EventsQuery,
    JobEvent,
    JobList,
    JobListQuery,
    JobRerun,
    JobState,
    JobSubmit,
    Resources,
    ShippedNotebook,
)
from .inputs import JobInputs
from .sandbox import SandboxModels
from .notebook_store import NotebookStore
from .notices import JobNotices
from .parameters import validate_parameters
from .tables import JobEventRecord, JobRecord

DEFAULT_KERNEL = "aitip-python"


def job_model(job: JobRecord, inputs: list[JobInputRef] | None = None) -> Job:
    return Job(
        id=job.id, project=job.project.name, owner=job.owner, state=JobState(job.state),
        notebook_name=job.notebook_name, notebook_sha256=job.notebook_sha256, parameters=job.parameters or {},
        kernel=job.kernel, resources={"cpus": job.cpus, "gpus": job.gpus, "memory_mb": job.memory_mb},
        priority=job.priority, timeout_seconds=job.timeout_seconds, max_attempts=job.max_attempts,
        attempt=job.attempt, tags=job.tags or {}, code_version=job.code_version, retry_of=job.retry_of,
        rerun_of=job.rerun_of, cancel_requested=job.cancel_requested, reason=job.reason,
        failed_cell=FailedCell(**job.failed_cell) if job.failed_cell else None,
        mlflow_run_id=job.mlflow_run_id, mlflow_experiment_id=job.mlflow_experiment_id,
        callback_url=job.callback_url, inputs=inputs or [], sandbox=job.sandbox,
        submitted_at=job.submitted_at, started_at=job.started_at, first_cell_at=job.first_cell_at,
        finished_at=job.finished_at,
    )


def trial_tags(sweep_id: int, index: int) -> dict[str, str]:
    """The tags a sweep gives its trial."""
    return {"sweep": str(sweep_id), "trial": str(index)}


def _own_tags(job: JobRecord) -> dict[str, str]:
    """A job's tags less those its sweep gave it as a trial: a rerun of a trial is no trial of that sweep."""
    given = trial_tags(0, 0).keys() if job.sweep_id is not None else set()
    return {key: value for key, value in (job.tags or {}).items() if key not in given}


def resources_of(job: JobRecord) -> Resources:
    return Resources(cpus=job.cpus, gpus=job.gpus, memory_mb=job.memory_mb)


def add_event(session: Session, job: JobRecord, kind: str, data: dict[str, Any] | None = None) -> None:
    session.add(JobEventRecord(job_id=job.id, attempt=job.attempt, kind=kind, data=data or {}))


class KernelCatalog:
    """The kernel specs jobs may name, with the resources each declares (``metadata.aitip``)."""

    def __init__(self, refresh_seconds: float = 30.0) -> None:
        self._specs: dict[str, Any] = {}
        self._loaded_at = 0.0
        self._refresh = refresh_seconds

    def specs(self) -> dict[str, Any]:
        if time.monotonic() - self._loaded_at > self._refresh:
            from jupyter_client.kernelspec import KernelSpecManager

            self._specs = KernelSpecManager().get_all_specs()
            self._loaded_at = time.monotonic()
        return self._specs

    def resources(self, kernel: str) -> dict[str, Any]:
        return dict(self.specs()[kernel]["spec"].get("metadata", {}).get("aitip", {}).get("resources", {}))


class JobService(CatalogService):
    def __init__(self, catalog: Catalog, store: NotebookStore, signals: JobSignals | None = None,
                 kernels: KernelCatalog | None = None) -> None:
        super().__init__(catalog)
        self.store = store
        self.signals = signals or JobSignals()
        self.kernels = kernels or KernelCatalog()
        # Set where the platform delivers webhooks: a job's end goes to its subscribers and its callback.
        self.notices: JobNotices | None = None
        # A job's dataset inputs, through the datasets domain where the platform has a data registry.
        self.inputs = JobInputs()
        self.sandbox_models = SandboxModels()  # the experiments domain's, where the platform tracks models

    def _model(self, session: Session, job: JobRecord) -> Job:
        return job_model(job, self.inputs.refs(session, [job.id]).get(job.id))

    def _load(self, session: Session, principal: Principal, job_id: int, action: str) -> tuple[JobRecord, Role]:
        job = session.get(JobRecord, job_id)
        if job is None:
            raise NotFound("job {job_id} does not exist or is not in a project you belong to", job_id=job_id)
        try:
            role = authorize_record(principal, action, job.project)
        except NotFound:
            raise NotFound("job {job_id} does not exist or is not in a project you belong to", job_id=job_id) from None
        return job, role

    # ----- submission -----

    def resolve_kernel(self, request: JobSubmit) -> str:
        specs = self.kernels.specs()
        kernel = request.kernel
        if kernel is None:
            named = (request.notebook.get("metadata", {}).get("kernelspec") or {}).get("name")
            kernel = named if named in specs else DEFAULT_KERNEL
        if kernel not in specs:
            raise InvalidInput("unknown kernel {kernel!r}; available: {specs}",
                               code="unknown_kernel", detail={"available": sorted(specs)},
                               kernel=kernel, specs=', '.join(sorted(specs)))
        return kernel

    @staticmethod
    def validate_notebook(notebook: dict[str, Any]) -> None:
        import nbformat

        try:
            nbformat.validate(nbformat.from_dict(notebook))
        except nbformat.ValidationError as exc:
            raise InvalidInput("not a valid Jupyter notebook: {exc_message}", code="invalid_notebook",
                               exc_message=exc.message) from exc
        if not any(cell.get("cell_type") == "code" for cell in notebook["cells"]):
            raise InvalidInput("the notebook has no code cells to run", code="invalid_notebook")

    @performs
    async def submit(self, principal: Principal | None, request: JobSubmit, *, retry_of: int | None = None,
                     rerun_of: int | None = None, sweep: tuple[int, int] | None = None, action: str) -> Job:
        principal = self._signed_in(principal)
        await self._in_transaction(lambda s: refuse_if_archived(authorize(s, principal, action,
                                                                          request.project)[0]))
        self.validate_notebook(request.notebook)
        parameters = validate_parameters(request.notebook, request.parameters)
        kernel = self.resolve_kernel(request)
        declared = self.kernels.resources(kernel)
        resources = request.resources
        cpus = resources.cpus if resources else float(declared.get("cpus", 1))
        gpus = resources.gpus if resources else int(declared.get("gpus", 0))
        memory_mb = resources.memory_mb if resources else declared.get("memory_mb")
        callback = await self.prepare_callback(request.callback)
        sandbox = request.sandbox.model_dump(mode="json") if request.sandbox is not None else None
        if sandbox is not None:
            await asyncio.to_thread(self.sandbox_models.check, request.project, sandbox["models"])
        sha256 = await asyncio.to_thread(self.store.put, request.notebook)

        def work(session: Session) -> Job:
            project, _ = authorize(session, principal, action, request.project)
            refuse_if_archived(project)
            job = JobRecord(project_id=project.id, owner=principal.name, notebook_name=request.notebook_name,
                            notebook_sha256=sha256, parameters=parameters, kernel=kernel, cpus=cpus, gpus=gpus,
                            memory_mb=memory_mb, priority=request.priority, timeout_seconds=request.timeout_seconds,
                            max_attempts=request.max_attempts, tags=dict(request.tags),
                            code_version=request.code_version, retry_of=retry_of, rerun_of=rerun_of,
                            sweep_id=sweep[0] if sweep else None, trial_index=sweep[1] if sweep else None,
                            callback_url=callback.url if callback else None,
                            callback_secret=callback.secret if callback else None, sandbox=sandbox)
            job.project = project
            session.add(job)
            session.flush()
            if request.inputs:
                self.inputs.record(session, project.id, job.id, request.inputs)
            add_event(session, job, "state", {"state": "queued", "by": principal.name})
            record(session, principal.name, action, f"job:{job.id}",
                   {"project": project.name, "notebook": sha256, "kernel": kernel})
            answer = self._model(session, job)
            if callback is not None and callback.generated:
                answer.callback_secret = callback.secret  # shown once
            return answer

        job = await self._in_transaction(work)
        self.signals.queue_changed()
        return job

    async def wait_changed(self, job_id: int, timeout: float) -> None:
        """Until the job may have changed (in this process), or ``timeout``: how a follower waits."""
        await self.signals.wait_job(job_id, timeout)

    async def prepare_callback(self, callback: CallbackRequest | None) -> Any:
        """A long operation's checked callback target and its secret, or None; refused (422) before anything
        is written."""
        if callback is None:
            return None
        if self.notices is None:
            raise ServiceUnavailable("this platform delivers no callbacks (webhooks are not running)")
        return await self.notices.webhooks.prepare_callback(callback)

    # ----- reading -----

    @performs
    async def get(self, principal: Principal | None, job_id: int, *, action: str) -> Job:
        principal = self._signed_in(principal)
        return await self._in_transaction(lambda s: self._model(s, self._load(s, principal, job_id, action)[0]))

    async def shipped_notebooks(self, principal: Principal | None) -> list[ShippedNotebook]:
        """The notebooks the platform ships for jobs (:mod:`.library`): any signed-in caller may read them."""
        self._signed_in(principal)
        return [ShippedNotebook.model_validate(library.describe(name)) for name in library.names()]

    async def list(self, principal: Principal | None, query: JobListQuery) -> JobList:
        principal = self._signed_in(principal)

        def work(session: Session) -> JobList:
            statement = select(JobRecord)
            if query.project is not None:
                project, _ = authorize(session, principal, "job.read", query.project)
                statement = statement.where(JobRecord.project_id == project.id)
            elif not principal.is_admin:
                statement = statement.where(JobRecord.project_id.in_(member_project_ids(principal)))
            if query.state is not None:
                statement = statement.where(JobRecord.state == query.state.value)
            if query.owner is not None:
                statement = statement.where(JobRecord.owner == query.owner)
            total = session.scalar(select(func.count()).select_from(statement.subquery())) or 0
            page = session.scalars(statement.order_by(JobRecord.id.desc()).limit(query.limit).offset(query.offset))
            jobs = list(page.unique())
            inputs = self.inputs.refs(session, [job.id for job in jobs])
            return JobList(items=[job_model(job, inputs.get(job.id)) for job in jobs], total=total, limit=query.limit,
                           offset=query.offset)

        return await self._in_transaction(work)

    async def events(self, principal: Principal | None, job_id: int, after: int = 0,
                     limit: int = 1000, *, action: str | None = None) -> tuple[list[JobEvent], JobState]:
        """A job's events after ``after`` (``action``: the operation's, ``jobs.events`` by default)."""
        principal = self._signed_in(principal)
        action = action or action_of("jobs.events")

        def work(session: Session) -> tuple[list[JobEvent], JobState]:
            job, _ = self._load(session, principal, job_id, action)
            rows = session.scalars(select(JobEventRecord).where(JobEventRecord.job_id == job_id,
                                                                JobEventRecord.id > after)
                                   .order_by(JobEventRecord.id).limit(limit))
            events = [JobEvent(id=r.id, job_id=r.job_id, attempt=r.attempt, at=r.at, kind=r.kind, data=r.data or {})
                      for r in rows]
            return events, JobState(job.state)

        return await self._in_transaction(work)

    @performs
    async def event_page(self, principal: Principal | None, job_id: int, query: EventsQuery, *, action: str) -> EventList:
        """A page of a job's events after ``query.after``, with the job's state (the live stream is REST's)."""
        events, state = await self.events(principal, job_id, query.after, query.limit, action=action)
        return EventList(items=events, state=state.value)

    async def output_notebook_path(self, principal: Principal | None, job_id: int, *,
                                   action: str | None = None) -> str:
        """Where the executed notebook is (``action``: ``jobs.notebook``'s by default)."""
        principal = self._signed_in(principal)
        action = action or action_of("jobs.notebook")

        def work(session: Session) -> str:
            job, _ = self._load(session, principal, job_id, action)
            if not job.output_path:
                raise NotFound("job {job_id} has no executed notebook yet (state {state})",
                               job_id=job_id, state=job.state)
            return job.output_path

        return await self._in_transaction(work)

    # ----- what a running job reads -----

    async def verify_credential(self, token: str) -> credentials.JobCredential | None:
        """Who a job token speaks for, while the attempt it was minted for runs."""
        return await self._in_transaction(lambda s: credentials.verify(s, token))

    @performs
    async def record_input(self, principal: Principal | None, job_id: int, item: JobInput, *, action: str) -> Job:
        """The SDK inside a job reports a dataset version it read: lineage without declaring it up front.

        Only the job's own credential may: a person cannot add reads to a job after the fact."""
        principal = self._signed_in(principal)

        def work(session: Session) -> Job:
            job, _ = self._load(session, principal, job_id, action)
            if principal.job_id != job.id:
                raise PermissionDenied("only job {job_id} itself records what it reads (through the credential its "
                                       "kernel carries)", job_id=job_id)
            if JobState(job.state).finished:
                raise Conflict("job {job_id} already finished ({state})", code="job_finished",
                               job_id=job_id, state=job.state)
            authorize_record(principal, "dataset.read", job.project)
            recorded = self.inputs.record(session, job.project_id, job.id, [item], how="sdk")[0]
            if recorded.new:
                add_event(session, job, "input_read", {"dataset": recorded.dataset, "version": recorded.version})
            return self._model(session, job)

        return await self._in_transaction(work)

    async def job_scope(self, principal: Principal | None, job_id: int | None, action: str) -> tuple[int, str, str]:
        """The running job a job credential speaks for, checked for ``action`` in its project: (id, project,
        owner). Only the job's own kernel, through its credential, may act as the job."""
        principal = self._signed_in(principal)
        target = job_id if job_id is not None else principal.job_id
        if target is None:
            raise PermissionDenied("{action} is for a job's kernel, with the credential the job gave it "
                                   "($AITIP_TOKEN)", action=action)

        def work(session: Session) -> tuple[int, str, str]:
            job, _ = self._load(session, principal, target, action)  # non-members learn nothing (404)
            if principal.job_id != job.id:
                raise PermissionDenied("only job {id} itself does this, through its own credential", id=job.id)
            if JobState(job.state).finished:
                raise Conflict("job {id} already finished ({state})", code="job_finished",
                               id=job.id, state=job.state)
            return job.id, job.project.name, job.owner

        return await self._in_transaction(work)

    # ----- control -----

    @staticmethod
    def _owner_or_maintainer(principal: Principal, job: JobRecord, role: Role, verb: str) -> None:
        """``verb`` (marked with ``N_()``) says what the caller may not do, in the refusal's language."""
        if job.owner != principal.name and not role.at_least(Role.maintainer):
            raise PermissionDenied("only the job's owner ({owner}) or a maintainer of {name!r} may {verb} job "
                                   "{job}; you are {role}",
                                   owner=job.owner, name=job.project.name, verb=Phrase(verb), job=job.id,
                                   role=role.word)

    @performs
    async def cancel(self, principal: Principal | None, job_id: int, *, action: str) -> Job:
        principal = self._signed_in(principal)

        def work(session: Session) -> Job:
            job, role = self._load(session, principal, job_id, action)
            self._owner_or_maintainer(principal, job, role, N_("cancel"))
            state = JobState(job.state)
            if state.finished:
                raise Conflict("job {job_id} already finished ({state})", code="job_finished",
                               job_id=job_id, state=state.value)
            if state is JobState.queued and self._cancel_while_queued(session, job, principal):
                add_event(session, job, "state", {"state": "cancelled", "by": principal.name})
                if self.notices is not None:
                    self.notices.queue(session, job)
            else:
                job.cancel_requested = True
                add_event(session, job, "cancel_requested", {"by": principal.name})
            record(session, principal.name, action, f"job:{job_id}")
            return self._model(session, job)

        job = await self._in_transaction(work)
        self.signals.job_changed(job_id)
        self.signals.queue_changed()
        if self.notices is not None and job.state.finished:
            self.notices.sent()
        return job

    @staticmethod
    def _cancel_while_queued(session: Session, job: JobRecord, principal: Principal) -> bool:
        """Cancel only if no worker claimed the job since it was read (a plain write would undo the claim)."""
        cancelled = session.execute(
            update(JobRecord).where(JobRecord.id == job.id, JobRecord.state == JobState.queued.value)
            .values(state=JobState.cancelled.value, finished_at=utcnow(),
                    reason=f"cancelled by {principal.name} while queued")
            .execution_options(synchronize_session=False)).rowcount == 1
        session.refresh(job)
        return cancelled

    @performs
    async def retry(self, principal: Principal | None, job_id: int, *, action: str) -> Job:
        principal = self._signed_in(principal)

        def snapshot(session: Session) -> JobSubmit:
            job, role = self._load(session, principal, job_id, action)
            self._owner_or_maintainer(principal, job, role, N_("retry"))
            return JobSubmit(project=job.project.name, notebook=self.store.get(job.notebook_sha256),
                             notebook_name=job.notebook_name, parameters=job.parameters or {}, kernel=job.kernel,
                             resources=resources_of(job), priority=job.priority,
                             timeout_seconds=job.timeout_seconds, max_attempts=job.max_attempts,
                             tags=job.tags or {}, code_version=job.code_version,
                             inputs=self.declared_inputs(session, job), sandbox=job.sandbox)

        request = await self._in_transaction(snapshot)
        return await self.submit(principal, request, retry_of=job_id)

    def declared_inputs(self, session: Session, job: JobRecord) -> list[JobInput]:
        """The dataset versions the job declared (not those it only reported reading)."""
        return [JobInput(dataset=ref.dataset, version=ref.version)
                for ref in self.inputs.refs(session, [job.id]).get(job.id, []) if ref.how == "declared"]

    @performs
    async def rerun(self, principal: Principal | None, job_id: int, request: JobRerun, *, action: str) -> Job:
        """The job's notebook as the caller's new job, with what ``request`` changes: how an agent or a person
        trains again on a new dataset version or with other parameters without holding the notebook."""
        principal = self._signed_in(principal)

        def changed(session: Session) -> JobSubmit:
            job, _ = self._load(session, principal, job_id, action)
            inputs = self.declared_inputs(session, job) if request.inputs is None else request.inputs
            resources = resources_of(job).model_copy(
                update=request.resources.model_dump(exclude_unset=True) if request.resources else {})
            try:
                return JobSubmit(
                    project=job.project.name, notebook=self.store.get(job.notebook_sha256),
                    notebook_name=job.notebook_name, parameters={**(job.parameters or {}), **request.parameters},
                    kernel=job.kernel, resources=resources,
                    priority=job.priority if request.priority is None else request.priority,
                    timeout_seconds=request.timeout_seconds or job.timeout_seconds, max_attempts=job.max_attempts,
                    tags={**_own_tags(job), **request.tags}, code_version=job.code_version, inputs=inputs,
                    callback=request.callback, sandbox=job.sandbox)
            except ValidationError as exc:
                raise refusal(exc, N_("request body"), unnamed="(body)") from None

        submission = await self._in_transaction(changed)
        return await self.submit(principal, submission, rerun_of=job_id)
