"""Each job is an MLflow run in its project's experiment. The kernel gets the run's coordinates in its
environment, so plain ``mlflow.log_metric(...)`` in the notebook lands in the job's run; the executed
notebook (ipynb and HTML) becomes the run's artifact: the job's report.

A kernel that runs the platform's Python gets the tracking URI as ``aitip:<tracking URI>``: MLflow then
uses the buffered store of ``aitip.experiments.buffered_store``, which batches run writes (instead of one
request per ``log_metric``; the README's "Metric logging" has the figures) and flushes them at every cell's
end. Its model registry URI stays the plain tracking URI.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from pathlib import Path
from typing import Any

from ..jobs.tracking import KernelTrackingAccess, RunInfo, Tracker, run_name
from .artifacts import DESTINATION_ENV as ARTIFACTS_DESTINATION_ENV
from .artifacts import project_artifact_location, register_artifacts_scheme

log = logging.getLogger("aitip.jobs.tracking")

_STATUS = {"succeeded": "FINISHED", "failed": "FAILED", "timed_out": "FAILED", "cancelled": "KILLED"}


class MlflowTracker(Tracker):
    tracks = True

    def __init__(self, tracking_uri: str, artifact_root: Path, *, buffered_logging: bool | None = None) -> None:
        """``buffered_logging``: give kernels the buffered ``aitip:`` tracking URI (default: on, unless
        AITIP_MLFLOW_BUFFERED_LOGGING is 0/false/no/off)."""
        self.tracking_uri = tracking_uri
        self.artifact_root = artifact_root
        if buffered_logging is None:
            buffered_logging = os.environ.get("AITIP_MLFLOW_BUFFERED_LOGGING", "1").strip().lower() not in (
                "0", "false", "no", "off")
        self.buffered_logging = buffered_logging
        self._client: Any = None
        self._experiments: dict[str, str] = {}
        self._artifact_locations: dict[str, str] = {}
        self._run_starter: Any = None  # an SqlRunStarter where the store allows one, else False
        self._kernels_with_plugin: dict[str, bool] = {}

    @property
    def client(self) -> Any:
        if self._client is None:
            from mlflow.tracking import MlflowClient

            from .tracking_store import ensure_tracking_store

            ensure_tracking_store(self.tracking_uri, self.artifact_root)  # created whole, or not at all
            os.environ[ARTIFACTS_DESTINATION_ENV] = str(self.artifact_root)  # mlflow-artifacts:/ are files here
            register_artifacts_scheme()
            self._client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
            self._use_wal()
        return self._client

    def _use_wal(self) -> None:
        """An sqlite store commits in WAL mode (persistent in the file): far fewer fsyncs per run. New
        stores are created so; this turns it on for one made before."""
        if not self.tracking_uri.startswith("sqlite:///"):
            return
        import sqlite3

        with contextlib.closing(sqlite3.connect(self.tracking_uri[len("sqlite:///"):], timeout=30)) as db:
            db.execute("PRAGMA journal_mode=WAL")

    def warm_up(self) -> None:
        """Import MLflow and create its store before the first job needs it (seconds, once)."""
        self.client.search_experiments(max_results=1)

    def experiment_id(self, project: str) -> str:
        if project in self._experiments:
            return self._experiments[project]
        name = f"aitip/{project}"
        experiment = self.client.get_experiment_by_name(name)
        if experiment is None:
            location = project_artifact_location(project)
            try:
                experiment_id = self.client.create_experiment(name, artifact_location=location,
                                                              tags={"aitip.project": project})
            except Exception:  # noqa: BLE001 - created concurrently by another worker
                experiment = self.client.get_experiment_by_name(name)
                if experiment is None:
                    raise
                experiment_id = experiment.experiment_id
        else:
            experiment_id = experiment.experiment_id
        self._experiments[project] = experiment_id
        return experiment_id

    @property
    def run_starter(self) -> Any:
        """Runs created in one SQL transaction (``aitip.experiments.sql_runs``) where the store allows it."""
        if self._run_starter is None:
            from .sql_runs import SqlRunStarter

            self._run_starter = SqlRunStarter.for_store(self.client._tracking_client.store) or False
        return self._run_starter

    def artifact_location(self, experiment_id: str) -> str:
        if experiment_id not in self._artifact_locations:
            self._artifact_locations[experiment_id] = self.client.get_experiment(experiment_id).artifact_location
        return self._artifact_locations[experiment_id]

    @property
    def store(self) -> Any:
        """The MLflow tracking store itself (spools drain into it)."""
        return self.client._tracking_client.store

    def start(self, job: dict[str, Any], access: KernelTrackingAccess | None = None) -> RunInfo:
        """The job's run; the kernel's environment points MLflow at it, through ``access`` when the kernel
        may not open the store."""
        experiment_id = self.experiment_id(job["project"])
        tags = {
            "aitip.job_id": str(job["id"]),
            "aitip.attempt": str(job["attempt"]),
            "aitip.project": job["project"],
            "aitip.user": job["owner"],
            "aitip.notebook_sha256": job["notebook_sha256"],
            "aitip.kernel": job["kernel"],
            "mlflow.user": job["owner"],
            "mlflow.source.name": job["notebook_name"],
            "mlflow.runName": run_name(job),
        }
        if job.get("parent_run_id"):
            tags["mlflow.parentRunId"] = job["parent_run_id"]
        if job.get("code_version"):
            tags["mlflow.source.git.commit"] = job["code_version"]
        for key, value in (job.get("tags") or {}).items():
            tags[f"aitip.tag.{key}"] = value
        # As mlflow.log_param writes a value (str()): a notebook that logs its parameter too logs the same value.
        params = {name: str(value)[:6000] for name, value in (job.get("parameters") or {}).items()}
        run_id = self._create_run(experiment_id, tags, params)
        env = {"MLFLOW_RUN_ID": run_id, "MLFLOW_EXPERIMENT_ID": experiment_id}
        if access is not None:
            buffered = self._kernel_loads_plugin(job["kernel"])
            env.update(MLFLOW_TRACKING_URI=(self.kernel_tracking_uri(job["kernel"], access.gateway_url)),
                       MLFLOW_REGISTRY_URI=access.gateway_url, MLFLOW_TRACKING_TOKEN=access.token)
            if buffered:
                env.update(AITIP_MLFLOW_SPOOL=str(access.spool), AITIP_MLFLOW_SPOOL_CONFIRM=access.confirm_url)
        else:
            # The registry is never buffered. Naming it also spares every MLflow call a failed search for a
            # Spark session (paid on every call, it capped how fast log_metric could go).
            env.update(MLFLOW_TRACKING_URI=self.kernel_tracking_uri(job["kernel"]),
                       MLFLOW_REGISTRY_URI=self.tracking_uri, AITIP_MLFLOW_ARTIFACTS=str(self.artifact_root))
        return RunInfo(experiment_id, run_id, env)

    def _create_run(self, experiment_id: str, tags: dict[str, str], params: dict[str, str]) -> str:
        if self.run_starter:
            import time

            return str(self.run_starter.start(experiment_id, self.artifact_location(experiment_id), tags["mlflow.user"],
                                              tags, params, int(time.time() * 1000)))
        from mlflow.entities import Param

        run = self.client.create_run(experiment_id, tags=tags)
        if params:
            self.client.log_batch(run.info.run_id, params=[Param(key, value) for key, value in params.items()])
        return str(run.info.run_id)

    def _kernel_loads_plugin(self, kernel: str) -> bool:
        if not self.buffered_logging:
            return False
        if kernel not in self._kernels_with_plugin:
            self._kernels_with_plugin[kernel] = _runs_platform_python(kernel)
        return self._kernels_with_plugin[kernel]

    def kernel_tracking_uri(self, kernel: str, uri: str | None = None) -> str:
        """The buffered ``aitip:`` URI of ``uri`` (default: the platform's) for kernels that can load the
        store plugin, else the plain one."""
        uri = uri or self.tracking_uri
        if not self._kernel_loads_plugin(kernel):
            return uri
        from .buffered_store import buffered_tracking_uri

        return buffered_tracking_uri(uri)

    def finish(self, run: RunInfo | None, status: str, output_path: Path | None) -> None:
        if run is None:
            return
        try:
            if output_path is not None and output_path.exists():
                self.client.log_artifact(run.run_id, str(output_path), artifact_path="notebook")
                html = output_path.with_suffix(".html")
                html.write_text(_to_html(output_path))
                self.client.log_artifact(run.run_id, str(html), artifact_path="notebook")
        except Exception:  # noqa: BLE001 - the job's result stands even if its report could not be stored
            log.exception("could not store the executed notebook of run %s", run.run_id)
        self.client.set_terminated(run.run_id, _STATUS.get(status, "FAILED"))


def _runs_platform_python(kernel: str) -> bool:
    """The store plugin is an entry point of this environment: a kernel in another environment (the
    Triton one) would not know the ``aitip:`` scheme."""
    try:
        from jupyter_client.kernelspec import KernelSpecManager

        argv = KernelSpecManager().get_kernel_spec(kernel).argv
    except Exception:  # noqa: BLE001 - an unknown kernel fails later, with its own reason; plain URI here
        return False
    if not argv:
        return False
    version = sys.version_info
    if argv[0] in ("python", f"python{version[0]}", f"python{version[0]}.{version[1]}"):
        return True  # jupyter_client runs these with the platform's own interpreter
    return Path(argv[0]).absolute().parent == Path(sys.executable).absolute().parent  # this environment's bin/


def _to_html(notebook_path: Path) -> str:
    import nbformat
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter(template_name="lab").from_notebook_node(nbformat.read(notebook_path, as_version=4))
    return str(body)
