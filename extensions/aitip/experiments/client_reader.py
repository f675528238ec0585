"""Reads any MLflow tracking store through ``MlflowClient``: the path for an MLflow server URL, and
for searches the SQL reader does not translate (dataset conditions). Slower, always right."""

from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np

from .records import JOB_ID_TAG, PROJECT_TAG, Curve, project_of_experiment, run_record
from .search import RunSearch

_PAGE = 1000


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def run_from_entity(run: Any) -> dict[str, Any]:
    """An ``mlflow.entities.Run`` as the dict both readers return."""
    info, data = run.info, run.data
    record = run_record(run_id=info.run_id, run_name=info.run_name, experiment_id=str(info.experiment_id),
                        status=info.status, start_time=info.start_time, end_time=info.end_time, user=info.user_id)
    record["params"] = dict(data.params)
    record["metrics"] = {key: _finite(value) for key, value in data.metrics.items()}
    record["tags"] = {key: value if value is not None else "" for key, value in data.tags.items()}
    job_id = data.tags.get(JOB_ID_TAG)
    record["job_id"] = int(job_id) if job_id and job_id.isdigit() else None
    record["artifact_uri"] = info.artifact_uri
    record["lifecycle_stage"] = info.lifecycle_stage
    return record


class ClientTrackingReader:
    kind = "mlflow"

    def __init__(self, tracking_uri: str, prepare: Any = None) -> None:
        """``prepare``: called once before the first client is made (creates the store crash-safely:
        MlflowClient would otherwise create a missing store itself, in steps a crash can interrupt)."""
        self.tracking_uri = tracking_uri
        self._prepare = prepare
        self._client: Any = None
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    from mlflow.tracking import MlflowClient

                    if self._prepare is not None:
                        self._prepare()
                    self._client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
        return self._client

    def _all_experiments(self, include_deleted: bool) -> list[Any]:
        from mlflow.entities import ViewType

        view = ViewType.ALL if include_deleted else ViewType.ACTIVE_ONLY
        found, token = [], None
        while True:
            page = self.client.search_experiments(view_type=view, max_results=_PAGE, page_token=token)
            found.extend(page)
            token = page.token
            if not token:
                return found

    def project_experiments(self, project: str, *, include_deleted: bool = False) -> list[dict[str, Any]]:
        found = [{"experiment_id": str(e.experiment_id), "name": e.name, "lifecycle_stage": e.lifecycle_stage,
                  "tags": dict(e.tags)}
                 for e in self._all_experiments(include_deleted)
                 if project_of_experiment(e.name, e.tags.get(PROJECT_TAG)) == project]
        return sorted(found, key=lambda e: int(e["experiment_id"]))

    def project_experiment_ids(self, project: str, *, include_deleted: bool = False) -> list[str]:
        return [e["experiment_id"] for e in self.project_experiments(project, include_deleted=include_deleted)]

    def experiment_project(self, experiment_id: str) -> str | None:
        from mlflow.exceptions import MlflowException

        try:
            experiment = self.client.get_experiment(experiment_id)
        except MlflowException:
            return None
        return project_of_experiment(experiment.name, experiment.tags.get(PROJECT_TAG))

    def run_counts(self, experiment_ids: list[str]) -> dict[str, int]:
        counts = {}
        for experiment_id in experiment_ids:
            total, token = 0, None
            while True:
                page = self.client.search_runs([experiment_id], max_results=_PAGE * 10, page_token=token)
                total += len(page)
                token = page.token
                if not token:
                    break
            counts[experiment_id] = total
        return counts

    def search_runs(self, experiment_ids: list[str], search: RunSearch, max_results: int,
                    cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        if not experiment_ids:
            return [], None
        page = self.client.search_runs(experiment_ids, filter_string=search.filter, max_results=max_results,
                                       order_by=list(search.order_by), page_token=cursor)
        return [run_from_entity(run) for run in page], page.token or None

    def get_runs(self, run_ids: list[str]) -> dict[str, dict[str, Any]]:
        from mlflow.exceptions import MlflowException

        found = {}
        for run_id in run_ids:
            try:
                found[run_id] = run_from_entity(self.client.get_run(run_id))
            except MlflowException:
                continue
        return found

    def metric_curves(self, run_ids: list[str], keys: list[str]) -> dict[tuple[str, str], Curve]:
        curves = {}
        for run_id in run_ids:
            for key in keys:
                history = sorted(self.client.get_metric_history(run_id, key),
                                 key=lambda m: (m.step, m.timestamp, m.value))
                if history:
                    curves[(run_id, key)] = Curve(np.array([m.step for m in history], dtype=np.int64),
                                                  np.array([m.timestamp for m in history], dtype=np.int64),
                                                  np.array([m.value for m in history], dtype=np.float64))
        return curves

    def project_models(self, experiment_ids: list[str]) -> list[dict[str, Any]]:
        wanted = set(experiment_ids)
        runs: dict[str, dict[str, Any] | None] = {}
        models: dict[str, dict[str, Any]] = {}
        token = None
        while True:
            page = self.client.search_model_versions(max_results=_PAGE, page_token=token)
            for version in page:
                if version.run_id and version.run_id not in runs:
                    runs[version.run_id] = self.get_runs([version.run_id]).get(version.run_id)
                run = runs.get(version.run_id) if version.run_id else None
                if run is None or run["experiment_id"] not in wanted:
                    continue
                model = models.setdefault(version.name, {"name": version.name, "description": None, "aliases": {},
                                                         "versions": []})
                model["versions"].append({
                    "version": int(version.version), "run_id": version.run_id, "job_id": run["job_id"],
                    "status": version.status, "creation_timestamp": version.creation_timestamp,
                    "source": version.source, "aliases": []})
            token = page.token
            if not token:
                break
        for name, model in models.items():
            registered = self.client.get_registered_model(name)
            model["description"] = registered.description
            model["versions"].sort(key=lambda entry: -entry["version"])
            for alias, version in sorted(registered.aliases.items()):
                for entry in model["versions"]:
                    if entry["version"] == int(version):
                        entry["aliases"].append(alias)
                        model["aliases"][alias] = int(version)
        return [models[name] for name in sorted(models)]
