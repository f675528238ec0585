"""Which experiments and runs of the MLflow store a project owns, as the platform checks what a job's kernel
writes and reads through its spool and the tracking gateway.

An experiment belongs to the project its ``aitip.project`` tag names, else (untagged) to the project its
``aitip/<project>`` name names (:func:`.records.project_of_experiment`); a run to its experiment's project.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any

from .records import EXPERIMENT_PREFIX, PROJECT_TAG, project_of_experiment

EXPERIMENTS_TTL_SECONDS = 5.0
MAX_REMEMBERED_RUNS = 100_000


class ProjectScope:
    """Lookups over an MLflow ``AbstractStore``, cached: experiments briefly, a run's experiment for good."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._experiments: dict[str, tuple[float, frozenset[str]]] = {}
        self._run_experiment: OrderedDict[str, str] = OrderedDict()

    def experiment_ids(self, project: str) -> frozenset[str]:
        cached = self._experiments.get(project)
        if cached is not None and time.monotonic() - cached[0] < EXPERIMENTS_TTL_SECONDS:
            return cached[1]
        found = {e.experiment_id for e in self._search(f"tags.`{PROJECT_TAG}` = '{project}'")}
        named = self.store.get_experiment_by_name(f"{EXPERIMENT_PREFIX}{project}")
        if named is not None and project_of_experiment(named.name, named.tags.get(PROJECT_TAG)) == project:
            found.add(named.experiment_id)
        ids = frozenset(found)
        with self._lock:
            self._experiments[project] = (time.monotonic(), ids)
        return ids

    def _search(self, filter_string: str) -> list[Any]:
        from mlflow.entities import ViewType

        found, token = [], None
        while True:
            page = self.store.search_experiments(view_type=ViewType.ALL, max_results=1000,
                                                 filter_string=filter_string, page_token=token)
            found.extend(page)
            token = page.token
            if not token:
                return found

    def forget(self, project: str) -> None:
        with self._lock:
            self._experiments.pop(project, None)

    def run_experiment(self, run_id: str) -> str | None:
        """The run's experiment id, or None when the store has no such run."""
        known = self._run_experiment.get(run_id)
        if known is not None:
            return known
        from mlflow.exceptions import MlflowException

        try:
            experiment_id = str(self.store.get_run(run_id).info.experiment_id)
        except MlflowException:
            return None
        with self._lock:
            self._run_experiment[run_id] = experiment_id
            while len(self._run_experiment) > MAX_REMEMBERED_RUNS:
                self._run_experiment.popitem(last=False)
        return experiment_id

    def run_refusal(self, run_id: str, project: str) -> str | None:
        """Why a job of ``project`` may not touch run ``run_id`` (None when it may)."""
        experiment_id = self.run_experiment(run_id)
        if experiment_id is None:
            return f"run {run_id} does not exist"
        if experiment_id not in self.experiment_ids(project):
            self.forget(project)  # perhaps an experiment made a moment ago: ask once more
            if experiment_id not in self.experiment_ids(project):
                return f"run {run_id} does not exist in project {project!r}"
        return None
