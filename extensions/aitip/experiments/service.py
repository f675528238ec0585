"""The experiments service: a project's MLflow experiments, runs, metric curves, run comparison and
registered models, with the project roles checked here (``experiment.read``, ``model.read``,
``model.manage``).

MLflow is read, never written, except for a model's aliases (through ``MlflowClient``, by maintainers, on
the project's own versions). On an SQL-backed store (SQLite, PostgreSQL) reads go to MLflow's tables
through :class:`.sql_reader.SqlTrackingReader`; an MLflow server URL, and searches it does not translate,
go through ``MlflowClient``. A run belongs to the project its experiment belongs to
(:func:`.records.project_of_experiment`); a non-member learns nothing (404), as for other resources.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from sqlalchemy.orm import Session

from ..audit import record
from ..catalog import Catalog
from ..jobs import reads as job_reads
from ..catalog.service import CatalogService
from ..operations.actions import performs
from ..errors import Conflict, InvalidInput, NotFound
from ..settings import aitip_home
from ..identity.principal import Principal
from ..projects.access import authorize, refuse_if_archived
from .client_reader import ClientTrackingReader
from .downsample import lttb_indices
from .models import (
    AliasSet,
    CompareQuery,
    ExperimentList,
    ExperimentListQuery,
    JobSummary,
    MetricHistory,
    MetricHistoryQuery,
    ModelList,
    RegisteredModel,
    RunComparison,
    RunDetail,
    RunList,
    RunListQuery,
)
from .page_tokens import InvalidPageToken, PageTokens
from .records import Curve, StoreUnsupported, import_mlflow
from .search import RunSearch, parse_run_search
from .sql_reader import SqlTrackingReader, sql_store_kind
from .tracking_store import ensure_tracking_store

log = logging.getLogger("aitip.experiments")
T = TypeVar("T")
MAX_ARTIFACTS = 1000
MAX_DEFAULT_CURVES = 50


@lru_cache(maxsize=512)
def _parsed_search(filter_string: str, order_by: tuple[str, ...]) -> RunSearch:
    """Parsing with sqlparse costs about a millisecond; dashboards repeat the same few searches."""
    return parse_run_search(filter_string, list(order_by))


def curve_points(curve: Curve, max_points: int) -> list[dict[str, Any]]:
    """The curve's points, downsampled by LTTB (x = step; timestamp when every step is the same) to at
    most ``max_points``. Points whose value is NaN cannot be drawn and are left out of a downsampled curve."""
    steps, stamps, values = curve.steps, curve.timestamps, curve.values
    if len(values) > max_points:
        finite = np.isfinite(values)
        if not finite.all():
            steps, stamps, values = steps[finite], stamps[finite], values[finite]
        if len(values) > max_points:
            x = stamps if len(steps) and steps[0] == steps[-1] else steps
            kept = lttb_indices(x, values, max_points)
            steps, stamps, values = steps[kept], stamps[kept], values[kept]
    return [{"step": step, "timestamp": stamp, "value": value if np.isfinite(value) else None}
            for step, stamp, value in zip(steps.tolist(), stamps.tolist(), values.tolist())]


def list_artifacts(artifact_uri: str, tracking_uri: str, limit: int = MAX_ARTIFACTS) -> tuple[list[dict], bool]:
    """Every artifact of a run, breadth first, up to ``limit`` entries (and whether more exist)."""
    from mlflow.store.artifact.artifact_repository_registry import (
        get_artifact_repository,
    )

    repository = get_artifact_repository(artifact_uri, tracking_uri=tracking_uri)
    found: list[dict] = []
    pending: list[str | None] = [None]
    while pending:
        for info in repository.list_artifacts(pending.pop(0)):
            if len(found) >= limit:
                return found, True
            found.append({"path": info.path, "is_dir": info.is_dir, "file_size": info.file_size})
            if info.is_dir:
                pending.append(info.path)
    return found, False


def _job_summary(session: Session, job_id: int | None, project: str) -> JobSummary | None:
    job = job_reads.job(session, job_id) if job_id is not None else None
    if job is None or job.project.name != project:
        return None
    return JobSummary(id=job.id, project=project, owner=job.owner, state=job.state, notebook_name=job.notebook_name,
                      notebook_sha256=job.notebook_sha256, kernel=job.kernel, attempt=job.attempt,
                      submitted_at=job.submitted_at, started_at=job.started_at, finished_at=job.finished_at)


class ExperimentService(CatalogService):
    """Reads MLflow for project members. ``tracking_uri`` is the platform's (empty: tracking is off,
    and every project has no experiments)."""

    def __init__(self, catalog: Catalog, tracking_uri: str, *, page_token_key: bytes | None = None,
                 artifact_root: Path | None = None) -> None:
        """``artifact_root``: where the store's default artifacts go when this service is the first to
        open it (the store is then created whole, see :mod:`.tracking_store`)."""
        super().__init__(catalog)
        self.tracking_uri = tracking_uri
        self.artifact_root = artifact_root or aitip_home() / "mlartifacts"
        self._sql: SqlTrackingReader | None = (SqlTrackingReader(tracking_uri)
                                               if tracking_uri and sql_store_kind(tracking_uri) else None)
        self._mlflow: ClientTrackingReader | None = (ClientTrackingReader(tracking_uri, self.prepare_store)
                                                     if tracking_uri else None)
        self._tokens = PageTokens(page_token_key or secrets.token_bytes(32))
        self._warned_unsupported = False

    def warm_up(self, before: Callable[[], object] | None = None) -> None:
        """Import MLflow and open the store before the first request needs them (``import mlflow``
        alone takes seconds). ``before``, the job tracker's warm-up, runs first under the same import
        lock, so no two threads import MLflow at once."""
        if not self.tracking_uri:
            if before is not None:
                before()
            return
        import_mlflow(before)
        self.prepare_store()
        _parsed_search("", ())
        if self._sql is not None:
            try:
                self._sql.project_experiment_ids("")
            except StoreUnsupported:
                pass

    def prepare_store(self) -> None:
        """Create and migrate the tracking store, crash-safely, if it is not complete yet."""
        if self.tracking_uri:
            ensure_tracking_store(self.tracking_uri, self.artifact_root)

    def close(self) -> None:
        if self._sql is not None:
            self._sql.dispose()

    # ----- plumbing -----

    def _read(self, work: Callable[[Any], T], empty: T, *, sql: bool = True) -> T:
        """``work(reader)`` on the SQL reader when it can serve, else on MlflowClient; ``empty`` when
        tracking is off."""
        if sql and self._sql is not None:
            try:
                return work(self._sql)
            except StoreUnsupported as exc:
                # Checked again next time: a store being created or migrated right now looks like this too.
                if not self._warned_unsupported:
                    log.warning("reading MLflow through MlflowClient while its tables do not fit: %s", exc)
                    self._warned_unsupported = True
        if self._mlflow is None:
            return empty
        return work(self._mlflow)

    async def _for_project(self, principal: Principal | None, action: str, project: str,
                           work: Callable[[], T]) -> T:
        """Check ``action`` on ``project``, then run ``work`` (blocking reads) on the same worker thread."""
        principal = self._signed_in(principal)

        def run() -> T:
            with self.catalog.session() as session:
                authorize(session, principal, action, project)
            import_mlflow()
            return work()

        return await asyncio.to_thread(run)

    def _experiment_ids(self, project: str, include_deleted: bool = False) -> list[str]:
        return self._read(lambda reader: reader.project_experiment_ids(project, include_deleted=include_deleted), [])

    def _project_runs(self, project: str, run_ids: list[str]) -> dict[str, dict[str, Any]]:
        """The runs, all of which must be in the project's experiments (404 naming the first that is not)."""
        found = self._read(lambda reader: reader.get_runs(run_ids), {})
        experiments = set(self._experiment_ids(project, include_deleted=True))
        for run_id in run_ids:
            if run_id not in found or found[run_id]["experiment_id"] not in experiments:
                raise NotFound("run {run_id} does not exist in project {project!r}", detail={"run_id": run_id},
                               run_id=run_id, project=project)
        return found

    def _run_for_member(self, session: Session, principal: Principal, run_id: str,
                        action: str) -> tuple[dict[str, Any], str]:
        """The run and its project, when the caller may read that project's experiments."""
        missing = NotFound("run {run_id} does not exist or is not in a project you belong to", run_id=run_id)
        run = self._read(lambda reader: reader.get_runs([run_id]), {}).get(run_id)
        if run is None:
            raise missing
        project = self._read(lambda reader: reader.experiment_project(run["experiment_id"]), None)
        if project is None:
            raise missing
        try:
            authorize(session, principal, action, project)
        except NotFound:
            raise missing from None
        return run, project

    # ----- experiments -----

    @performs
    async def list_experiments(self, principal: Principal | None, project: str,
                               query: ExperimentListQuery | None = None, *, action: str) -> ExperimentList:
        include_deleted = bool(query and query.include_deleted)

        def work() -> ExperimentList:
            experiments = self._read(lambda reader: reader.project_experiments(
                project, include_deleted=include_deleted), [])
            counts = self._read(lambda reader: reader.run_counts([e["experiment_id"] for e in experiments]), {})
            return ExperimentList(experiments=[{**e, "run_count": counts.get(e["experiment_id"], 0)}
                                               for e in experiments])

        return await self._for_project(principal, action, project, work)

    # ----- runs -----

    @performs
    async def list_runs(self, principal: Principal | None, project: str, query: RunListQuery, *, action: str) -> RunList:
        def work() -> RunList:
            search = _parsed_search(query.filter, tuple(query.order_by))
            experiment_ids = self._experiment_ids(project)
            if query.experiment_id is not None:
                if query.experiment_id not in experiment_ids:
                    raise NotFound("experiment {experiment_id} is not an active experiment of project {project!r}",
                                   detail={"experiment_id": query.experiment_id},
                                   experiment_id=query.experiment_id, project=project)
                experiment_ids = [query.experiment_id]
            use_sql = search.sql_translatable and self._sql is not None

            def page(reader: Any) -> RunList:
                query_id = search.fingerprint([project, query.experiment_id or ""], reader.kind)
                cursor = self._tokens.read(query.page_token, query_id) if query.page_token else None
                if cursor is not None and not isinstance(cursor, int if reader.kind == "sql" else str):
                    raise InvalidPageToken("invalid page_token: it does not fit this store")
                runs, next_cursor = reader.search_runs(experiment_ids, search, query.max_results, cursor)
                token = self._tokens.issue(query_id, next_cursor) if next_cursor is not None else None
                return RunList(runs=runs, next_page_token=token)

            return self._read(page, RunList(runs=[], next_page_token=None), sql=use_sql)

        return await self._for_project(principal, action, project, work)

    @performs
    async def get_run(self, principal: Principal | None, run_id: str, *, action: str) -> RunDetail:
        principal = self._signed_in(principal)

        def work() -> RunDetail:
            import_mlflow()
            with self.catalog.session() as session:
                run, project = self._run_for_member(session, principal, run_id, action)
                job = _job_summary(session, run["job_id"], project)
            try:
                artifacts, truncated = list_artifacts(run["artifact_uri"], self.tracking_uri)
            except Exception:  # noqa: BLE001 - a run without reachable artifacts is still a run
                log.warning("cannot list the artifacts of run %s at %s", run_id, run["artifact_uri"], exc_info=True)
                artifacts, truncated = [], False
            return RunDetail(**run, project=project, artifacts=artifacts, artifacts_truncated=truncated, job=job,
                             metric_keys=sorted(run["metrics"]))

        return await asyncio.to_thread(work)

    @performs
    async def metric_history(self, principal: Principal | None, run_id: str,
                             query: MetricHistoryQuery, *, action: str) -> MetricHistory:
        principal = self._signed_in(principal)

        def work() -> MetricHistory:
            import_mlflow()
            with self.catalog.session() as session:
                self._run_for_member(session, principal, run_id, action)
            curve = self._read(lambda reader: reader.metric_curves([run_id], [query.key]), {}).get((run_id, query.key))
            if curve is None:
                raise NotFound("run {run_id} has no metric {key!r}", detail={"key": query.key},
                               run_id=run_id, key=query.key)
            return MetricHistory(key=query.key, total_points=len(curve.values),
                                 points=curve_points(curve, query.max_points))

        return await asyncio.to_thread(work)

    @performs
    async def compare_runs(self, principal: Principal | None, project: str, query: CompareQuery, *, action: str) -> RunComparison:
        def work() -> RunComparison:
            duplicates = sorted({run_id for run_id in query.run if query.run.count(run_id) > 1})
            if duplicates:
                raise InvalidInput("run {duplicates} is given more than once; compare distinct runs",
                                   detail={"duplicates": duplicates}, duplicates=duplicates[0])
            found = self._project_runs(project, list(query.run))
            runs = [found[run_id] for run_id in query.run]
            params = _side_by_side(runs, "params")
            metrics = _side_by_side(runs, "metrics")
            keys = list(query.key) or sorted(metrics)[:MAX_DEFAULT_CURVES]
            curves_by_run = self._read(lambda reader: reader.metric_curves(list(query.run), keys), {})
            curves = {key: {run["run_id"]: curve_points(curves_by_run[(run["run_id"], key)], query.max_points)
                            for run in runs if (run["run_id"], key) in curves_by_run}
                      for key in keys}
            differing = sorted(name for name, values in params.items() if len(set(values.values())) > 1)
            return RunComparison(runs=runs, params=params, differing_params=differing, metrics=metrics,
                                 curves=curves)

        return await self._for_project(principal, action, project, work)

    # ----- model registry -----

    @performs
    async def list_models(self, principal: Principal | None, project: str, *, action: str) -> ModelList:
        def work() -> ModelList:
            experiment_ids = self._experiment_ids(project, include_deleted=True)
            return ModelList(models=self._read(lambda reader: reader.project_models(experiment_ids), []))

        return await self._for_project(principal, action, project, work)

    @performs
    async def set_model_alias(self, principal: Principal | None, project: str, model: str, alias: str,
                              body: AliasSet, *, action: str) -> RegisteredModel:
        """Point ``alias`` at one of the project's versions. An alias is the whole model's (MLflow's), so one
        that points at another project's version is not this project's to move (409)."""
        return await self._change_alias(principal, project, model, alias, body.version, action)

    @performs
    async def delete_model_alias(self, principal: Principal | None, project: str, model: str, alias: str, *,
                                 action: str) -> RegisteredModel:
        return await self._change_alias(principal, project, model, alias, None, action)

    async def _change_alias(self, principal: Principal | None, project: str, model: str, alias: str,
                            version: int | None, action: str) -> RegisteredModel:
        principal = self._signed_in(principal)

        def run() -> RegisteredModel:
            with self.catalog.session() as session:
                refuse_if_archived(authorize(session, principal, action, project)[0])
            import_mlflow()
            found = self._project_model(project, model)  # a store there is: tracking off has no models
            assert self._mlflow is not None
            ours = {entry.version for entry in found.versions}
            if version is not None and version not in ours:
                raise NotFound("model {model!r} has no version {version} from project {project!r}",
                               model=model, version=version, project=project)
            client = self._mlflow.client
            current = client.get_registered_model(model).aliases.get(alias)
            if current is not None and int(current) not in ours:
                raise Conflict("alias {alias!r} of model {model!r} points at version {current}, which another "
                               "project made; ask its maintainers", code="alias_of_another_project",
                               alias=alias, model=model, current=current)
            if version is None:
                if current is None:
                    raise NotFound("model {model!r} has no alias {alias!r}", model=model, alias=alias)
                client.delete_registered_model_alias(model, alias)
            else:
                client.set_registered_model_alias(model, alias, str(version))
            with self.catalog.session() as session:  # after MLflow took it: the trail tells what happened
                record(session, principal.name, action, f"model:{model}",
                       {"project": project, "alias": alias, "version": version, "was": current})
            return self._project_model(project, model)

        return await asyncio.to_thread(run)

    # ----- the read API of the other domains (no caller: they checked theirs) -----

    def project_model(self, project: str, model: str) -> RegisteredModel:
        """The model as the project sees it (its versions, their runs and jobs, their aliases), or 404."""
        return self._project_model(project, model)

    def model_version_files(self, project: str, model: str, version: int, directory: Path) -> Path:
        """A copy of one of the project's model versions in ``directory`` (the platform's), to be looked at,
        never loaded: e.g. whether it has loss gradients for a simulation's attacks."""
        found = self._project_model(project, model)
        if version not in {entry.version for entry in found.versions}:
            raise NotFound("model {model!r} has no version {version} from project {project!r}",
                           model=model, version=version, project=project)
        import mlflow.artifacts

        from .artifacts import DESTINATION_ENV, register_artifacts_scheme

        assert self._mlflow is not None
        os.environ.setdefault(DESTINATION_ENV, str(self.artifact_root))  # mlflow-artifacts:/ are files there
        register_artifacts_scheme()
        client = self._mlflow.client
        source = client.get_model_version_download_uri(model, str(version))
        return Path(mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=str(directory),
                                                        tracking_uri=self.tracking_uri))

    def project_models(self, project: str) -> list[RegisteredModel]:
        experiment_ids = self._experiment_ids(project, include_deleted=True)
        return [RegisteredModel.model_validate(found)
                for found in self._read(lambda reader: reader.project_models(experiment_ids), [])]

    def _project_model(self, project: str, model: str) -> RegisteredModel:
        """The model as the project sees it (its versions only), or 404."""
        experiment_ids = self._experiment_ids(project, include_deleted=True)
        for found in self._read(lambda reader: reader.project_models(experiment_ids), []):
            if found["name"] == model:
                return RegisteredModel.model_validate(found)
        raise NotFound("project {project!r} has no versions of a model named {model!r}", project=project, model=model)


def _side_by_side(runs: list[dict[str, Any]], field: str) -> dict[str, dict[str, Any]]:
    """{name: {run_id: value or None}} over every name any of the runs has."""
    names = sorted({name for run in runs for name in run[field]})
    return {name: {run["run_id"]: run[field].get(name) for run in runs} for name in names}
