"""The tracking gateway: MLflow's REST API for a job's kernel, limited to the job's own project.

A kernel running as its owner cannot open the MLflow store. Its MLflow client talks to
``<platform>/api/aitip/v1/tracking`` with the job's credential instead; every request is checked here
against one table (what each endpoint touches: an experiment, a run, a logged model, a registered model)
and forwarded to MLflow's own server code, in this process, only when all it touches is the project's.
Anything not in the table is refused: a kernel can log, read and register its project's runs and models,
and nothing else. Artifacts (``mlflow-artifacts:/<project>/...``) are served from the project's directory
of the artifact root. Run writes arrive mostly through the job's spool (:mod:`.spool`); the spool is
drained before every request, so the kernel reads what it wrote.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from .records import PROJECT_TAG
from .scope import ProjectScope
from .spool import PROTECTED_TAG_PREFIXES

API = "api/2.0/mlflow/"
ARTIFACTS_API = "api/2.0/mlflow-artifacts/artifacts"
MAX_LISTED_ARTIFACTS = 10_000


@dataclass(frozen=True)
class JobCaller:
    job_id: int
    project: str
    owner: str


class ArtifactUpload:
    """An artifact written as its body arrives: into a temporary file beside it, renamed when complete."""

    def __init__(self, path: Path, limit: int) -> None:
        self.path = path
        self.limit = limit
        self.size = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        self._temporary = Path(temporary)
        self._file = os.fdopen(descriptor, "wb")

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.limit:
            self.discard()
            raise Refused(413, "INVALID_PARAMETER_VALUE", f"an artifact may have at most {self.limit} bytes")
        self._file.write(chunk)

    def commit(self) -> None:
        self._file.close()
        os.replace(self._temporary, self.path)

    def discard(self) -> None:
        if not self._file.closed:
            self._file.close()
        self._temporary.unlink(missing_ok=True)


@dataclass
class GatewayRequest:
    method: str
    path: str  # below the gateway's root, e.g. "api/2.0/mlflow/runs/get"
    query: dict[str, list[str]]
    body: bytes = b""
    content_type: str = ""
    upload: ArtifactUpload | None = None  # a PUT of an artifact, already streamed to disk

    def json(self) -> dict[str, Any]:
        if not self.body:
            return {}
        try:
            value = json.loads(self.body)
        except ValueError as error:
            raise Refused(400, "INVALID_PARAMETER_VALUE", f"the body is not JSON: {error}") from None
        if not isinstance(value, dict):
            raise Refused(400, "INVALID_PARAMETER_VALUE", "the body must be a JSON object")
        return value

    def field(self, name: str) -> Any:
        """A request parameter, from the query (GET, DELETE) or the JSON body."""
        if name in self.query:
            return self.query[name][0]
        return self.json().get(name) if self.method in ("POST", "PATCH", "PUT", "DELETE") else None


@dataclass
class GatewayResponse:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})
    file: Path | None = None  # a download, streamed by the handler


class Refused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def response(self) -> GatewayResponse:
        return GatewayResponse(self.status, json.dumps({"error_code": self.code, "message": self.message}).encode())


def _missing(what: str) -> Refused:
    return Refused(404, "RESOURCE_DOES_NOT_EXIST", f"{what} does not exist in this job's project")


# ----- the table: what each endpoint touches -----

Check = Callable[["TrackingGateway", JobCaller, GatewayRequest, re.Match[str]], "GatewayRequest | None"]


def _experiment(name: str = "experiment_id") -> Check:
    def check(gateway: TrackingGateway, caller: JobCaller, request: GatewayRequest, _: re.Match[str]) -> None:
        gateway.require_experiment(caller, request.field(name))
    return check


def _experiments(gateway: TrackingGateway, caller: JobCaller, request: GatewayRequest, _: re.Match[str]) -> None:
    ids = request.json().get("experiment_ids") or request.query.get("experiment_ids") or []
    if not ids:
        raise Refused(400, "INVALID_PARAMETER_VALUE", "name the project's experiments to search (experiment_ids)")
    for experiment_id in ids:
        gateway.require_experiment(caller, experiment_id)


def _run(name: str = "run_id") -> Check:
    def check(gateway: TrackingGateway, caller: JobCaller, request: GatewayRequest, _: re.Match[str]) -> None:
        run_id = request.field(name) or (request.field("run_uuid") if name == "run_id" else None)
        gateway.require_run(caller, run_id)
        _refuse_protected_tags(request)
    return check


def _run_create(gateway: TrackingGateway, caller: JobCaller, request: GatewayRequest, _: re.Match[str]) -> None:
    gateway.require_experiment(caller, request.field("experiment_id"))
    _refuse_protected_tags(request)


def _logged_model_create(gateway: TrackingGateway, caller: JobCaller, request: GatewayRequest,
                         _: re.Match[str]) -> None:
    gateway.require_experiment(caller, request.field("experiment_id"))
    if request.field("source_run_id"):
        gateway.require_run(caller, request.field("source_run_id"))


def _logged_model(gateway: TrackingGateway, caller: JobCaller, request: GatewayRequest, match: re.Match[str]) -> None:
    gateway.require_logged_model(caller, match.group("model_id"))


def _refuse_protected_tags(request: GatewayRequest) -> None:
    body = request.json() if request.method in ("POST", "PATCH") else {}
    keys = [body.get("key")] + [tag.get("key") for tag in body.get("tags") or [] if isinstance(tag, dict)]
    protected = sorted({key for key in keys if isinstance(key, str) and key.startswith(PROTECTED_TAG_PREFIXES)})
    if protected:
        raise Refused(403, "PERMISSION_DENIED", f"tags {protected} are the platform's; a job may not set them")


def _model(gateway: TrackingGateway, caller: JobCaller, request: GatewayRequest, _: re.Match[str]) -> None:
    gateway.require_model(caller, request.field("name"))
    _refuse_protected_tags(request)


def _model_create(gateway: TrackingGateway, caller: JobCaller, request: GatewayRequest,
                  _: re.Match[str]) -> GatewayRequest:
    """A new registered model is the project's: tagged with it (an existing one must be the project's)."""
    body = request.json()
    name = body.get("name")
    if not isinstance(name, str) or not name:
        raise Refused(400, "INVALID_PARAMETER_VALUE", "a registered model needs a name")
    if gateway.model_exists(name):
        gateway.require_model(caller, name)  # then MLflow answers RESOURCE_ALREADY_EXISTS, as without us
    _refuse_protected_tags(request)
    tags = [tag for tag in body.get("tags") or [] if isinstance(tag, dict)]
    body["tags"] = [*tags, {"key": PROJECT_TAG, "value": caller.project}]
    return GatewayRequest(request.method, request.path, request.query, json.dumps(body).encode(), "application/json")


def _version_create(gateway: TrackingGateway, caller: JobCaller, request: GatewayRequest, _: re.Match[str]) -> None:
    body = request.json()
    gateway.require_model(caller, body.get("name"))
    if body.get("run_id"):
        gateway.require_run(caller, body["run_id"])
    if body.get("model_id"):
        gateway.require_logged_model(caller, body["model_id"])
    gateway.require_source(caller, body.get("source"))
    _refuse_protected_tags(request)


def _search_experiments(gateway: TrackingGateway, caller: JobCaller, request: GatewayRequest,
                        _: re.Match[str]) -> None:
    return None  # answered, then filtered to the project's experiments (see filter_response)


RULES: list[tuple[str, re.Pattern[str], Check]] = [
    (method, re.compile(f"^{API}{pattern}$"), check) for method, pattern, check in [
        ("GET", r"experiments/get", _experiment()),
        ("GET", r"experiments/get-by-name", _search_experiments),
        ("POST", r"experiments/search", _search_experiments),
        ("GET", r"experiments/search", _search_experiments),
        ("POST", r"runs/create", _run_create),
        ("GET", r"runs/get", _run()),
        ("POST", r"runs/update", _run()),
        ("POST", r"runs/delete", _run()),
        ("POST", r"runs/restore", _run()),
        ("POST", r"runs/log-metric", _run()),
        ("POST", r"runs/log-parameter", _run()),
        ("POST", r"runs/set-tag", _run()),
        ("POST", r"runs/delete-tag", _run()),
        ("POST", r"runs/log-batch", _run()),
        ("POST", r"runs/log-inputs", _run()),
        ("POST", r"runs/outputs", _run()),
        ("POST", r"runs/log-model", _run()),
        ("POST", r"runs/search", _experiments),
        ("GET", r"metrics/get-history", _run()),
        ("GET", r"artifacts/list", _run()),
        ("POST", r"logged-models", _logged_model_create),
        ("POST", r"logged-models/search", _experiments),
        ("GET", r"logged-models/(?P<model_id>m-[0-9a-f]{32})", _logged_model),
        ("PATCH", r"logged-models/(?P<model_id>m-[0-9a-f]{32})", _logged_model),
        ("DELETE", r"logged-models/(?P<model_id>m-[0-9a-f]{32})", _logged_model),
        ("PATCH", r"logged-models/(?P<model_id>m-[0-9a-f]{32})/tags", _logged_model),
        ("DELETE", r"logged-models/(?P<model_id>m-[0-9a-f]{32})/tags", _logged_model),
        ("POST", r"logged-models/(?P<model_id>m-[0-9a-f]{32})/params", _logged_model),
        ("POST", r"registered-models/create", _model_create),
        ("GET", r"registered-models/get", _model),
        ("PATCH", r"registered-models/update", _model),
        ("POST", r"registered-models/set-tag", _model),
        ("DELETE", r"registered-models/delete-tag", _model),
        ("POST", r"registered-models/alias", _model),
        ("DELETE", r"registered-models/alias", _model),
        ("GET", r"registered-models/alias", _model),
        ("POST", r"registered-models/get-latest-versions", _model),
        ("GET", r"registered-models/get-latest-versions", _model),
        ("POST", r"model-versions/create", _version_create),
        ("GET", r"model-versions/get", _model),
        ("PATCH", r"model-versions/update", _model),
        ("POST", r"model-versions/set-tag", _model),
        ("DELETE", r"model-versions/delete-tag", _model),
        ("GET", r"model-versions/get-download-uri", _model),
    ]
]


class TrackingGateway:
    """Checks and forwards a job kernel's MLflow requests. ``drain(job_id)`` applies the job's spool first."""

    def __init__(self, tracking_uri: str, artifact_root: Path, drain: Callable[[int], Any] | None = None, *,
                 max_artifact_bytes: int = 5 * 1024**3) -> None:
        self.tracking_uri = tracking_uri
        self.artifact_root = artifact_root
        self.drain = drain
        self.max_artifact_bytes = max_artifact_bytes
        self._app: Any = None
        self._scope: ProjectScope | None = None
        self._lock = threading.Lock()

    # ----- MLflow's server, in this process -----

    def _server(self) -> Any:
        if self._app is None:
            with self._lock:
                if self._app is None:
                    os.environ["_MLFLOW_SERVER_FILE_STORE"] = self.tracking_uri
                    os.environ["_MLFLOW_SERVER_REGISTRY_STORE"] = self.tracking_uri
                    os.environ["_MLFLOW_SERVER_ARTIFACT_ROOT"] = "mlflow-artifacts:/"
                    os.environ["_MLFLOW_SERVER_SERVE_ARTIFACTS"] = "false"
                    # Never exposed itself: every request reaches it through the checks above.
                    os.environ["MLFLOW_SERVER_DISABLE_SECURITY_MIDDLEWARE"] = "true"
                    from mlflow.server import app

                    self._scope = ProjectScope(self._open_server_stores())
                    self._app = app
        return self._app

    def _open_server_stores(self) -> Any:
        """MLflow's server code keeps one tracking and one registry store per process (this gateway's: one
        platform per process), and points the process's tracking and registry URIs at them, which its
        handlers rely on (a model version's ``models:/`` source is looked up there)."""
        from mlflow.server import handlers

        handlers._tracking_store = handlers._model_registry_store = None  # a platform before, in this process
        store = handlers._get_tracking_store(self.tracking_uri, "mlflow-artifacts:/")
        handlers._get_model_registry_store(self.tracking_uri)
        return store

    @property
    def scope(self) -> ProjectScope:
        self._server()
        assert self._scope is not None
        return self._scope

    def warm_up(self) -> None:
        self._server()

    # ----- checks used by the table -----

    def require_experiment(self, caller: JobCaller, experiment_id: Any) -> None:
        if not isinstance(experiment_id, (str, int)) or str(experiment_id) not in self.scope.experiment_ids(
                caller.project):
            raise _missing(f"experiment {experiment_id!r}")

    def require_run(self, caller: JobCaller, run_id: Any) -> None:
        if not isinstance(run_id, str) or not re.fullmatch(r"[0-9a-f]{32}", run_id):
            raise Refused(400, "INVALID_PARAMETER_VALUE", f"bad run id {run_id!r}")
        if self.scope.run_refusal(run_id, caller.project) is not None:
            raise _missing(f"run {run_id}")

    def require_logged_model(self, caller: JobCaller, model_id: Any) -> None:
        from mlflow.exceptions import MlflowException

        try:
            model = self.scope.store.get_logged_model(str(model_id))
        except MlflowException:
            raise _missing(f"logged model {model_id!r}") from None
        self.require_experiment(caller, model.experiment_id)

    def model_exists(self, name: str) -> bool:
        return self._registered_model(name) is not None

    def _registered_model(self, name: str) -> Any:
        from mlflow.exceptions import MlflowException
        from mlflow.server.handlers import _get_model_registry_store

        try:
            return _get_model_registry_store(self.tracking_uri).get_registered_model(name)
        except MlflowException:
            return None

    def require_model(self, caller: JobCaller, name: Any) -> None:
        """A registered model is the project's when tagged with it; an untagged one (made outside the
        gateway) when every one of its versions came from the project's runs."""
        if not isinstance(name, str) or not name:
            raise Refused(400, "INVALID_PARAMETER_VALUE", "name the registered model")
        model = self._registered_model(name)
        if model is None:
            raise _missing(f"registered model {name!r}")
        owner = (model.tags or {}).get(PROJECT_TAG)
        if owner is not None:
            if owner != caller.project:
                raise _missing(f"registered model {name!r}")
            return
        from mlflow.server.handlers import _get_model_registry_store

        versions = _get_model_registry_store(self.tracking_uri).search_model_versions(f"name = '{_quote(name)}'")
        for version in versions:
            if not version.run_id or self.scope.run_refusal(version.run_id, caller.project) is not None:
                raise _missing(f"registered model {name!r}")

    def require_source(self, caller: JobCaller, source: Any) -> None:
        """A model version's source must be the project's own artifacts."""
        if not isinstance(source, str) or not source:
            raise Refused(400, "INVALID_PARAMETER_VALUE", "a model version needs a source")
        if source.startswith("models:/m-"):
            self.require_logged_model(caller, source[len("models:/"):].split("/")[0])
        elif source.startswith("runs:/"):
            self.require_run(caller, source[len("runs:/"):].split("/")[0])
        elif source.startswith("mlflow-artifacts:"):
            from .artifacts import relative_path

            if _project_path(relative_path(source), caller.project) is None:
                raise Refused(403, "PERMISSION_DENIED", f"source {source!r} is not this project's artifacts")
        else:
            raise Refused(403, "PERMISSION_DENIED",
                          f"source {source!r}: a job registers models from its project's runs or logged models")

    # ----- the request -----

    def handle(self, caller: JobCaller, request: GatewayRequest) -> GatewayResponse:
        try:
            if self.drain is not None:
                self.drain(caller.job_id)  # the kernel's own spooled writes first: it reads what it wrote
            if request.path == ARTIFACTS_API or request.path.startswith(ARTIFACTS_API + "/"):
                return self._artifacts(caller, request)
            for method, pattern, check in RULES:
                match = pattern.match(request.path)
                if match is not None and method == request.method:
                    forwarded = check(self, caller, request, match) or request
                    return self.filter_response(caller, request, self._forward(forwarded))
            raise Refused(403, "PERMISSION_DENIED", f"{request.method} {request.path} is not available to job "
                          "kernels: they reach their project's runs, logged models, registered models and artifacts")
        except Refused as refused:
            return refused.response()

    def _forward(self, request: GatewayRequest) -> GatewayResponse:
        from werkzeug.test import EnvironBuilder, run_wsgi_app

        query = urlencode([(key, value) for key, values in request.query.items() for value in values])
        builder = EnvironBuilder(path="/" + request.path, method=request.method, query_string=query,
                                 data=request.body or None, content_type=request.content_type or None)
        try:
            iterable, status, headers = run_wsgi_app(self._server(), builder.get_environ())
            body = b"".join(iterable)
            if hasattr(iterable, "close"):
                iterable.close()
        finally:
            builder.close()
        return GatewayResponse(int(status.split()[0]), body, {"Content-Type": headers.get("Content-Type",
                                                                                           "application/json")})

    def filter_response(self, caller: JobCaller, request: GatewayRequest, response: GatewayResponse) -> GatewayResponse:
        """Experiment searches and lookups by name answer only with the project's experiments."""
        endpoint = request.path[len(API):]
        if response.status != 200 or not endpoint.startswith(("experiments/search", "experiments/get-by-name")):
            return response
        answer = json.loads(response.body or b"{}")
        ids = self.scope.experiment_ids(caller.project)
        if endpoint.startswith("experiments/get-by-name"):
            if str(answer.get("experiment", {}).get("experiment_id")) not in ids:
                return _missing(f"experiment {request.field('experiment_name')!r}").response()
            return response
        answer["experiments"] = [e for e in answer.get("experiments") or [] if str(e.get("experiment_id")) in ids]
        return GatewayResponse(200, json.dumps(answer).encode())

    # ----- artifacts: mlflow-artifacts:/<project>/... -----

    def artifact_upload(self, caller: JobCaller, path: str) -> ArtifactUpload:
        """Where a PUT of ``path`` (below the gateway) is written as it arrives; checked before any byte."""
        relative = path[len(ARTIFACTS_API):].lstrip("/")
        target = _project_path(relative, caller.project)
        if target is None:
            raise Refused(403, "PERMISSION_DENIED", f"artifact path {relative!r} is not under this job's project "
                          f"({caller.project}/...)")
        return ArtifactUpload(self.artifact_root / target, self.max_artifact_bytes)

    def _artifacts(self, caller: JobCaller, request: GatewayRequest) -> GatewayResponse:
        relative = request.path[len(ARTIFACTS_API):].lstrip("/")
        if request.method == "GET" and not relative:
            return self._list(caller, request.query.get("path", [""])[0])
        target = _project_path(relative, caller.project)
        if target is None:
            raise Refused(403, "PERMISSION_DENIED", f"artifact path {relative!r} is not under this job's project "
                          f"({caller.project}/...)")
        path = self.artifact_root / target
        if request.method == "GET":
            if not path.is_file():
                raise Refused(404, "RESOURCE_DOES_NOT_EXIST", f"artifact {relative!r} does not exist")
            return GatewayResponse(200, headers={"Content-Type": "application/octet-stream"}, file=path)
        if request.method == "PUT":
            upload = request.upload or self.artifact_upload(caller, request.path)
            if request.upload is None:
                upload.write(request.body)
            upload.commit()
            return GatewayResponse(200, b"{}")
        if request.method == "DELETE":
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
            return GatewayResponse(200, b"{}")
        raise Refused(405, "INVALID_PARAMETER_VALUE", f"{request.method} is not an artifact operation")

    def _list(self, caller: JobCaller, relative: str) -> GatewayResponse:
        target = _project_path(relative, caller.project)
        if target is None:
            raise Refused(403, "PERMISSION_DENIED", f"artifact path {relative!r} is not under this job's project")
        directory = self.artifact_root / target
        files = []
        if directory.is_dir():
            for entry in sorted(directory.iterdir())[:MAX_LISTED_ARTIFACTS]:
                if entry.name.startswith(".") or entry.is_symlink():
                    continue
                is_dir = entry.is_dir()
                files.append({"path": entry.name, "is_dir": is_dir,
                              **({} if is_dir else {"file_size": entry.stat().st_size})})
        return GatewayResponse(200, json.dumps({"files": files}).encode())


def _project_path(relative: str, project: str) -> Path | None:
    """``relative`` as a path below the project's artifact directory, or None when it leaves it."""
    parts = [part for part in relative.split("/") if part not in ("", ".")]
    if not parts or parts[0] != project or ".." in parts or any("\\" in part or "\0" in part for part in parts):
        return None
    return Path(*parts)


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")
