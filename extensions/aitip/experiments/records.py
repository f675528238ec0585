"""What both MLflow readers (SQL tables, MLflow client) hand the service: plain dicts shaped like the
API's types, and the rules that tie MLflow experiments to AITIP projects."""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

PROJECT_TAG = "aitip.project"
JOB_ID_TAG = "aitip.job_id"
RUN_NAME_TAG = "mlflow.runName"
EXPERIMENT_PREFIX = "aitip/"
DELETED_VERSION_STAGE = "Deleted_Internal"  # MLflow's mark on a deleted model version
MLFLOW_MODULES = ("mlflow.exceptions", "mlflow.entities", "mlflow.utils.search_utils", "mlflow.tracking",
                  "mlflow.store.artifact.artifact_repository_registry")
_mlflow_imported = threading.Event()
_mlflow_import_lock = threading.Lock()


def import_mlflow(before: Callable[[], object] | None = None) -> None:
    """Import the MLflow modules the readers use, one thread at a time: two threads importing MLflow
    at once can see it half-initialized (``partially initialized module 'mlflow'``). ``before`` runs
    first under the same lock (another component's own MLflow warm-up)."""
    if before is None and _mlflow_imported.is_set():
        return
    with _mlflow_import_lock:
        if before is not None:
            before()
        if not _mlflow_imported.is_set():
            for name in MLFLOW_MODULES:
                importlib.import_module(name)
            _mlflow_imported.set()


class StoreUnsupported(Exception):
    """The SQL reader cannot answer this (another MLflow schema, a dataset filter): ask MLflow."""


@dataclass(frozen=True)
class Curve:
    """One metric's full history, ordered by step then timestamp; NaN values are NaN."""

    steps: np.ndarray
    timestamps: np.ndarray
    values: np.ndarray


def experiment_name(project: str) -> str:
    """The experiment the job tracker creates for a project's runs."""
    return f"{EXPERIMENT_PREFIX}{project}"


def project_of_experiment(name: str, project_tag: str | None) -> str | None:
    """An experiment belongs to the project its ``aitip.project`` tag names, else, untagged, to the
    project its ``aitip/<project>`` name names; else to none."""
    if project_tag is not None:
        return project_tag
    if name.startswith(EXPERIMENT_PREFIX):
        return name[len(EXPERIMENT_PREFIX):]
    return None


def run_record(*, run_id: str, run_name: str | None, experiment_id: str, status: str | None,
               start_time: int | None, end_time: int | None, user: str | None) -> dict[str, Any]:
    """A run as the API returns it, before its params, metrics and tags are filled in."""
    return {"run_id": run_id, "run_name": run_name, "experiment_id": experiment_id, "status": status or "UNKNOWN",
            "start_time": start_time, "end_time": end_time, "user": user, "job_id": None,
            "params": {}, "metrics": {}, "tags": {}}
