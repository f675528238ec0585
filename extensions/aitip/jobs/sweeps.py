"""Sweeps: grid, random and Optuna TPE search over a notebook's declared parameters. Trials are ordinary
child jobs; each trial's objective is read from its MLflow run; the sweep is an MLflow parent run that
records the best trial."""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import random
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..audit import record
from ..catalog import Catalog
from ..catalog.base import utcnow
from ..catalog.service import CatalogService
from ..operations.actions import performs
from ..errors import Conflict, InvalidInput, NotFound, PermissionDenied
from ..identity.principal import Principal
from ..identity.roles import Role
from ..projects.access import authorize, authorize_record, refuse_if_archived
from .models import Dimension, JobInputRef, JobState, JobSubmit, Sweep, SweepCreate, SweepList, Trial
from .parameters import declared_parameters, validate_parameters
from .service import JobService, resources_of, trial_tags
from .tables import JobRecord, SweepRecord

log = logging.getLogger("aitip.jobs.sweeps")
MAX_GRID = 1000


# ----- strategies -----

def _dimensions(space: dict[str, Any]) -> dict[str, Dimension]:
    return {name: Dimension.model_validate(spec) for name, spec in sorted(space.items())}


def grid_size(space: dict[str, Any]) -> int:
    return math.prod(len(d.values or []) for d in _dimensions(space).values())


def grid_point(space: dict[str, Any], index: int) -> dict[str, Any]:
    dims = _dimensions(space)
    combos = itertools.islice(itertools.product(*(d.values or [] for d in dims.values())), index, index + 1)
    return dict(zip(dims, next(combos), strict=True))


def random_point(space: dict[str, Any], seed: int, index: int) -> dict[str, Any]:
    rng = random.Random(f"{seed}/{index}")
    point: dict[str, Any] = {}
    for name, dim in _dimensions(space).items():
        if dim.type in ("grid", "choice"):
            point[name] = rng.choice(dim.values or [None])
        elif dim.type == "uniform":
            point[name] = rng.uniform(dim.low or 0, dim.high or 0)
        elif dim.type == "loguniform":
            point[name] = math.exp(rng.uniform(math.log(dim.low or 1), math.log(dim.high or 1)))
        else:
            point[name] = rng.randint(int(dim.low or 0), int(dim.high or 0))
    return point


def _distributions(space: dict[str, Any]) -> dict[str, Any]:
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    result: dict[str, Any] = {}
    for name, dim in _dimensions(space).items():
        if dim.type in ("grid", "choice"):
            result[name] = CategoricalDistribution(list(dim.values or []))
        elif dim.type == "int":
            result[name] = IntDistribution(int(dim.low or 0), int(dim.high or 0))
        else:
            result[name] = FloatDistribution(dim.low or 0, dim.high or 0, log=dim.type == "loguniform")
    return result


def tpe_point(space: dict[str, Any], seed: int, direction: str,
              history: list[tuple[dict[str, Any], float]]) -> dict[str, Any]:
    """Ask Optuna's TPE sampler for the next point, given every finished trial's value."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    distributions = _distributions(space)
    study = optuna.create_study(direction=direction, sampler=optuna.samplers.TPESampler(seed=seed + len(history)))
    for params, value in history:
        study.add_trial(optuna.trial.create_trial(
            params={k: v for k, v in params.items() if k in distributions},
            distributions=distributions, value=value))
    return study.ask(distributions).params


def next_point(sweep: SweepRecord, index: int, history: list[tuple[dict[str, Any], float]]) -> dict[str, Any]:
    if sweep.strategy == "grid":
        return grid_point(sweep.space, index)
    if sweep.strategy == "random":
        return random_point(sweep.space, sweep.seed, index)
    return tpe_point(sweep.space, sweep.seed, sweep.direction, history)


def _standing(principal: Principal) -> dict[str, Any]:
    """What made the creator's role in the project when the sweep was created (hub groups, hub admin), kept
    with the sweep so its trials are submitted with the same standing: a hub admin's or a group member's
    trials would otherwise be refused as a non-member's ("project does not exist")."""
    return {"groups": sorted(principal.groups), "admin": principal.is_admin}


def trial_submitter(owner: str, template: dict[str, Any]) -> Principal:
    """The principal a sweep's trials are submitted as: its owner, with the standing recorded at creation.
    Each submission still checks ``job.submit`` against the project's members as they are then."""
    standing = template.get("submitted_as") or {}
    return Principal(owner, groups=frozenset(standing.get("groups") or ()), is_admin=bool(standing.get("admin")))


def _sweep_model(sweep: SweepRecord, trials: list[JobRecord]) -> Sweep:
    results = sweep.results or {}
    return Sweep(
        id=sweep.id, project=sweep.project.name, owner=sweep.owner, state=sweep.state,  # type: ignore[arg-type]
        strategy=sweep.strategy, space=sweep.space, parameters=sweep.parameters or {}, trials=sweep.trials,
        parallelism=sweep.parallelism, objective=sweep.objective, direction=sweep.direction,
        created_trials=sweep.created_trials, best_job_id=sweep.best_job_id, best_value=sweep.best_value,
        best_parameters=sweep.best_parameters, mlflow_run_id=sweep.mlflow_run_id, reason=sweep.reason,
        created_at=sweep.created_at, finished_at=sweep.finished_at, callback_url=sweep.callback_url,
        trial_jobs=[Trial(job_id=j.id, index=j.trial_index or 0, parameters=j.parameters or {},
                          state=JobState(j.state), value=results.get(str(j.id))) for j in trials],
        job=(sweep.template or {}).get("job"),
        inputs=[JobInputRef(**item, how="declared") for item in (sweep.template or {}).get("inputs") or []],
    )


# ----- service -----

class SweepService(CatalogService):
    """Creating, reading and cancelling sweeps; advancing them is the controller's job."""

    def __init__(self, catalog: Catalog, jobs: JobService) -> None:
        super().__init__(catalog)
        self.jobs = jobs

    @staticmethod
    def _check_space(request: SweepCreate) -> int:
        declared = declared_parameters(request.notebook)
        for name in request.space:
            if name in request.parameters:
                raise InvalidInput("parameter {name!r} is both fixed and searched", code="invalid_sweep", name=name)
            if name not in declared:
                raise InvalidInput("searched parameter {name!r} is not declared in the notebook's parameters cell "
                                   "(declared: {declared})",
                                   code="undeclared_parameter",
                                   name=name, declared=', '.join(sorted(declared)) or 'none')
        dims = request.space
        if request.strategy == "grid":
            finite = [n for n, d in dims.items() if d.type not in ("grid", "choice")]
            if finite:
                raise InvalidInput("a grid sweep needs finite values; {finite} are ranges",
                                   code="invalid_sweep", finite=', '.join(finite))
            size = math.prod(len(d.values or []) for d in dims.values())
            if size > MAX_GRID:
                raise InvalidInput("the grid has {size} points; the limit is {max_grid}", code="invalid_sweep",
                                   size=size, max_grid=MAX_GRID)
            trials = min(request.trials or size, size)
        else:
            if request.trials is None:
                raise InvalidInput("a {strategy} sweep needs 'trials'", code="invalid_sweep",
                                   strategy=request.strategy)
            trials = request.trials
        # Every kind of value the sweep can produce must pass the notebook's declared types.
        probes = [random_point({k: v.model_dump() for k, v in dims.items()}, request.seed, i) for i in range(3)]
        for dim_name, dim in dims.items():
            for value in (dim.values or []):
                probes.append({**probes[0], dim_name: value})
        for probe in probes:
            validate_parameters(request.notebook, {**request.parameters, **probe})
        return trials

    @performs
    async def create(self, principal: Principal | None, request: SweepCreate, *, action: str) -> Sweep:
        principal = self._signed_in(principal)
        await self._in_transaction(lambda s: refuse_if_archived(authorize(s, principal, action,
                                                                          request.project)[0]))
        if request.job is not None:
            request = await self._in_transaction(lambda s: self._from_job(s, principal, request))
        trials = self._check_space(request)
        callback = await self.jobs.prepare_callback(request.callback)
        probe = JobSubmit(project=request.project, notebook=request.notebook, notebook_name=request.notebook_name,
                          parameters=request.parameters, kernel=request.kernel, resources=request.resources)
        self.jobs.validate_notebook(request.notebook)
        kernel = self.jobs.resolve_kernel(probe)
        sha256 = await asyncio.to_thread(self.jobs.store.put, request.notebook)
        template = {"notebook_sha256": sha256, "notebook_name": request.notebook_name, "kernel": kernel,
                    "resources": request.resources.model_dump() if request.resources else None,
                    "priority": request.priority, "timeout_seconds": request.timeout_seconds,
                    "tags": dict(request.tags), "submitted_as": _standing(principal), "job": request.job}

        def work(session: Session) -> Sweep:
            project, _ = authorize(session, principal, action, request.project)
            template["inputs"] = [item.model_dump() for item in
                                  self.jobs.inputs.pin(session, project.id, request.inputs or [])]
            sweep = SweepRecord(project_id=project.id, owner=principal.name, strategy=request.strategy,
                                space={k: v.model_dump() for k, v in request.space.items()},
                                parameters=request.parameters, trials=trials, parallelism=request.parallelism,
                                objective=request.objective, direction=request.direction, seed=request.seed,
                                template=template, results={},
                                callback_url=callback.url if callback else None,
                                callback_secret=callback.secret if callback else None)
            sweep.project = project
            session.add(sweep)
            session.flush()
            record(session, principal.name, action, f"sweep:{sweep.id}",
                   {"project": project.name, "strategy": request.strategy, "trials": trials})
            answer = _sweep_model(sweep, [])
            if callback is not None and callback.generated:
                answer.callback_secret = callback.secret  # shown once
            return answer

        sweep = await self._in_transaction(work)
        self.jobs.signals.queue_changed()
        return sweep

    def _from_job(self, session: Session, principal: Principal, request: SweepCreate) -> SweepCreate:
        """The request with the job's notebook, and its settings where the request gives none."""
        assert request.job is not None
        job, _ = self.jobs._load(session, principal, request.job, "job.read")
        if job.project.name != request.project:
            raise InvalidInput("job {job} is in project {job_project!r}, not {project!r}", code="invalid_sweep",
                               job=job.id, job_project=job.project.name, project=request.project)
        inputs = self.jobs.declared_inputs(session, job) if request.inputs is None else request.inputs
        fixed = {name: value for name, value in (job.parameters or {}).items() if name not in request.space}
        given = request.model_fields_set
        return request.model_copy(update={
            "notebook": self.jobs.store.get(job.notebook_sha256), "parameters": {**fixed, **request.parameters},
            "notebook_name": request.notebook_name if "notebook_name" in given else job.notebook_name,
            "kernel": request.kernel or job.kernel, "inputs": inputs,
            "resources": request.resources or resources_of(job)})

    def _load(self, session: Session, principal: Principal, sweep_id: int, action: str) -> tuple[SweepRecord, Role]:
        sweep = session.get(SweepRecord, sweep_id)
        if sweep is None:
            raise NotFound("sweep {sweep_id} does not exist or is not in a project you belong to", sweep_id=sweep_id)
        try:
            return sweep, authorize_record(principal, action, sweep.project)
        except NotFound:
            raise NotFound("sweep {sweep_id} does not exist or is not in a project you belong to",
                           sweep_id=sweep_id) from None

    @staticmethod
    def _trials(session: Session, sweep_id: int) -> list[JobRecord]:
        return list(session.scalars(select(JobRecord).where(JobRecord.sweep_id == sweep_id)
                                    .order_by(JobRecord.trial_index)).unique())

    @performs
    async def get(self, principal: Principal | None, sweep_id: int, *, action: str) -> Sweep:
        principal = self._signed_in(principal)

        def work(session: Session) -> Sweep:
            sweep, _ = self._load(session, principal, sweep_id, action)
            return _sweep_model(sweep, self._trials(session, sweep_id))

        return await self._in_transaction(work)

    @performs
    async def list(self, principal: Principal | None, project: str, *, action: str) -> SweepList:
        principal = self._signed_in(principal)

        def work(session: Session) -> SweepList:
            record_, _ = authorize(session, principal, action, project)
            sweeps = list(session.scalars(select(SweepRecord).where(SweepRecord.project_id == record_.id)
                                          .order_by(SweepRecord.id.desc())).unique())
            return SweepList(items=[_sweep_model(s, []) for s in sweeps], total=len(sweeps))

        return await self._in_transaction(work)

    @performs
    async def cancel(self, principal: Principal | None, sweep_id: int, *, action: str) -> Sweep:
        principal = self._signed_in(principal)

        def work(session: Session) -> Sweep:
            sweep, role = self._load(session, principal, sweep_id, action)
            if sweep.owner != principal.name and not role.at_least(Role.maintainer):
                raise PermissionDenied("only the sweep's owner ({owner}) or a maintainer may cancel it",
                                       owner=sweep.owner)
            if sweep.state != "running":
                raise Conflict("sweep {sweep_id} already finished ({state})", code="sweep_finished",
                               sweep_id=sweep_id, state=sweep.state)
            sweep.cancel_requested = True
            record(session, principal.name, action, f"sweep:{sweep_id}")
            return _sweep_model(sweep, self._trials(session, sweep_id))

        sweep = await self._in_transaction(work)
        self.jobs.signals.queue_changed()
        return sweep


# ----- controller -----

class SweepController:
    """Advances running sweeps on each worker pass: records finished trials' objectives, asks the
    strategy for new points while fewer than ``parallelism`` trials are active, and finishes sweeps."""

    def __init__(self, catalog: Catalog, jobs: JobService, tracker: Any) -> None:
        self.catalog = catalog
        self.jobs = jobs
        self.tracker = tracker
        self._lock = asyncio.Lock()

    async def advance(self) -> None:
        if self._lock.locked():
            return
        async with self._lock:
            sweep_ids = await asyncio.to_thread(self._running_ids)
            for sweep_id in sweep_ids:
                try:
                    await self._advance_one(sweep_id)
                except Exception:  # noqa: BLE001 - one broken sweep must not stop the others
                    log.exception("sweep %s could not advance", sweep_id)

    def _running_ids(self) -> list[int]:
        with self.catalog.session() as session:
            return list(session.scalars(select(SweepRecord.id).where(SweepRecord.state == "running")))

    def _objective(self, run_id: str | None, metric: str) -> float | None:
        if not run_id or not hasattr(self.tracker, "client"):
            return None
        value = self.tracker.client.get_run(run_id).data.metrics.get(metric)
        return float(value) if value is not None and math.isfinite(float(value)) else None

    def _parent_run(self, sweep: SweepRecord) -> str | None:
        if sweep.mlflow_run_id or not hasattr(self.tracker, "client"):
            return sweep.mlflow_run_id
        experiment_id = self.tracker.experiment_id(sweep.project.name)
        run = self.tracker.client.create_run(experiment_id, tags={
            "aitip.sweep_id": str(sweep.id), "aitip.project": sweep.project.name, "aitip.user": sweep.owner,
            "mlflow.user": sweep.owner, "mlflow.runName": f"sweep-{sweep.id}-{sweep.strategy}"})
        from mlflow.entities import Param

        self.tracker.client.log_batch(run.info.run_id, params=[
            Param("strategy", sweep.strategy), Param("objective", sweep.objective),
            Param("direction", sweep.direction), Param("trials", str(sweep.trials))])
        return str(run.info.run_id)

    async def _advance_one(self, sweep_id: int) -> None:
        state = await asyncio.to_thread(self._collect, sweep_id)
        if self.jobs.notices is not None:
            self.jobs.notices.sent()  # what a sweep's end queued (committed with it) goes out now
        if state is None:
            return
        sweep_owner, submitter, to_create, cancel_ids = state
        for job_id in cancel_ids:
            try:
                await self.jobs.cancel(Principal(sweep_owner, is_admin=True), job_id)
            except (Conflict, NotFound):
                pass
        for index, parameters, request in to_create:
            try:
                await self.jobs.submit(submitter, request, sweep=(sweep_id, index))
            except (InvalidInput, PermissionDenied, NotFound, Conflict) as exc:
                await asyncio.to_thread(self._fail, sweep_id, f"trial {index} could not be submitted: {exc}")
                return

    def _collect(self, sweep_id: int) -> tuple[str, Principal, list[tuple[int, dict[str, Any], JobSubmit]],
                                               list[int]] | None:
        with self.catalog.session() as session:
            sweep = session.get(SweepRecord, sweep_id)
            if sweep is None or sweep.state != "running":
                return None
            if sweep.mlflow_run_id is None:
                sweep.mlflow_run_id = self._parent_run(sweep)
            trials = SweepService._trials(session, sweep_id)
            results = dict(sweep.results or {})
            for job in trials:
                if JobState(job.state).finished and str(job.id) not in results:
                    results[str(job.id)] = self._objective(job.mlflow_run_id, sweep.objective) \
                        if job.state == JobState.succeeded.value else None
            sweep.results = results
            self._update_best(sweep, trials)
            active = [j for j in trials if not JobState(j.state).finished]
            if sweep.cancel_requested:
                if not active:
                    self._close(sweep, "cancelled", "cancelled on request")
                return (sweep.owner, trial_submitter(sweep.owner, sweep.template), [],
                        [j.id for j in active if not j.cancel_requested])
            if sweep.created_trials >= sweep.trials and not active:
                if sweep.best_job_id is None:
                    self._close(sweep, "failed", f"no trial reported the metric {sweep.objective!r}")
                else:
                    self._close(sweep, "succeeded", None)
                return None
            history = [(j.parameters or {}, results[str(j.id)]) for j in trials
                       if results.get(str(j.id)) is not None]
            to_create = []
            free = sweep.parallelism - len(active)
            while free > 0 and sweep.created_trials < sweep.trials:
                index = sweep.created_trials
                point = next_point(sweep, index, history)
                template = sweep.template
                request = JobSubmit(project=sweep.project.name, notebook=self.jobs.store.get(template["notebook_sha256"]),
                                    notebook_name=template["notebook_name"], kernel=template["kernel"],
                                    parameters={**(sweep.parameters or {}), **point},
                                    resources=template.get("resources"), priority=template["priority"],
                                    timeout_seconds=template["timeout_seconds"],
                                    tags={**template.get("tags", {}), **trial_tags(sweep.id, index)},
                                    inputs=template.get("inputs") or [])
                to_create.append((index, point, request))
                sweep.created_trials += 1
                free -= 1
            return sweep.owner, trial_submitter(sweep.owner, sweep.template), to_create, []

    @staticmethod
    def _update_best(sweep: SweepRecord, trials: list[JobRecord]) -> None:
        scored = [(value, int(job_id)) for job_id, value in (sweep.results or {}).items() if value is not None]
        if not scored:
            return
        pick = max if sweep.direction == "maximize" else min
        value, job_id = pick(scored)
        sweep.best_value, sweep.best_job_id = value, job_id
        best = next((j for j in trials if j.id == job_id), None)
        sweep.best_parameters = best.parameters if best is not None else None

    def _close(self, sweep: SweepRecord, state: str, reason: str | None) -> None:
        sweep.state, sweep.reason, sweep.finished_at = state, reason, utcnow()
        if self.jobs.notices is not None:
            self.jobs.notices.queue_sweep(Session.object_session(sweep), sweep)
        if sweep.mlflow_run_id and hasattr(self.tracker, "client"):
            client = self.tracker.client
            if sweep.best_value is not None:
                client.log_metric(sweep.mlflow_run_id, f"best_{sweep.objective}", sweep.best_value)
                client.set_tag(sweep.mlflow_run_id, "aitip.best_job_id", str(sweep.best_job_id))
                for name, value in (sweep.best_parameters or {}).items():
                    client.set_tag(sweep.mlflow_run_id, f"aitip.best.{name}", str(value))
            client.set_terminated(sweep.mlflow_run_id, {"succeeded": "FINISHED", "failed": "FAILED"}.get(state, "KILLED"))

    def _fail(self, sweep_id: int, reason: str) -> None:
        with self.catalog.session() as session:
            sweep = session.get(SweepRecord, sweep_id)
            if sweep is not None and sweep.state == "running":
                self._close(sweep, "failed", reason)
        if self.jobs.notices is not None:
            self.jobs.notices.sent()
