"""The AITIP SDK: typed calls to the platform API, for notebooks, scripts and agents.

Inside a user's server it needs no arguments: it reaches the platform through the server's own
workspace relay with the server's hub token. Elsewhere it uses ``aitip login``'s saved credentials,
or ``AITIP_URL`` / ``AITIP_TOKEN``.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterable, Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from .domains.registry import load, sdk_namespaces
from .experiments.models import ExperimentList, MetricHistory, ModelList, RunComparison, RunDetail, RunList
from .jobs.models import Job, JobEvent, JobList, Sweep, SweepList
from .projects.models import Me, Member, MemberList, Project, ProjectList
from .settings import user_config_dir

FOLLOW_AGAIN_STATUSES = (502, 503, 504)  # the hub's proxy while the platform service restarts
FOLLOW_FIRST_PAUSE, FOLLOW_LONGEST_PAUSE = 0.5, 5.0
FOLLOW_GIVE_UP_SECONDS = 300.0

M = TypeVar("M", bound=BaseModel)
API_PATH = "api/aitip/v1/"
_SSL_CONTEXTS: dict[tuple[str, str], Any] = {}


def _ssl_context() -> Any:
    """The certificate context httpx makes for ``verify=True`` (certifi's bundle, or ``SSL_CERT_FILE`` /
    ``SSL_CERT_DIR``), made once per process: each new one reads and parses the whole bundle (30-50 ms), which a
    dashboard paid on every page load for its viewer's client."""
    key = (os.environ.get("SSL_CERT_FILE", ""), os.environ.get("SSL_CERT_DIR", ""))
    context = _SSL_CONTEXTS.get(key)
    if context is None:
        context = _SSL_CONTEXTS[key] = httpx.create_ssl_context()
    return context


class AitipAPIError(Exception):
    """The platform refused a call; ``status``, ``code``, ``message`` and ``detail`` say why."""

    def __init__(self, status: int, code: str, message: str, detail: Any = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail


class NotConfigured(Exception):
    """No platform URL or token could be found."""


def credentials_file() -> Path:
    return user_config_dir() / "credentials.json"


def save_credentials(url: str, token: str, user: str | None = None) -> Path:
    path = credentials_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump({"url": url, "token": token, "user": user}, handle)
    os.replace(path.with_suffix(".tmp"), path)
    return path


def through_relay(url: str | None) -> bool:
    """Whether a client given ``url`` talks to the user server's workspace relay (inside a user server, no URL
    named) rather than to the platform service itself."""
    env = os.environ
    return url is None and not env.get("AITIP_URL") and bool(env.get("JUPYTERHUB_SERVICE_URL")
                                                              and env.get("AITIP_PLATFORM_URL"))


def resolve_endpoint(url: str | None = None, token: str | None = None) -> tuple[str, str]:
    """Explicit arguments, then AITIP_URL/AITIP_TOKEN, then the user server's own relay, then `aitip login`."""
    env = os.environ
    relayed = through_relay(url)
    if url is None and env.get("AITIP_URL"):
        url = env["AITIP_URL"]
    if token is None and env.get("AITIP_TOKEN"):
        token = env["AITIP_TOKEN"]
    if relayed:
        # Inside a user server spawned by the hub: go through this server's workspace relay.
        prefix = env.get("JUPYTERHUB_SERVICE_PREFIX", "/")
        url = env["JUPYTERHUB_SERVICE_URL"].rstrip("/")
        if not url.endswith(prefix.rstrip("/")):
            url += prefix.rstrip("/")
        token = token or env.get("JUPYTERHUB_API_TOKEN")
    if url is None or token is None:
        path = credentials_file()
        if path.exists():
            saved = json.loads(path.read_text())
            url = url or saved.get("url")
            token = token or saved.get("token")
    if not url or not token:
        raise NotConfigured("no AITIP platform configured: run `aitip login`, or set AITIP_URL and AITIP_TOKEN")
    url = url.rstrip("/") + "/"
    if not url.endswith(API_PATH):
        url += API_PATH
    return url, token


def parse_input(item: str | dict[str, Any]) -> dict[str, Any]:
    """A job input as the API takes it: ``"digits@2"`` -> ``{"dataset": "digits", "version": 2}``."""
    if isinstance(item, dict):
        return item
    name, _, version = item.partition("@")
    if version and not version.isdigit():
        raise ValueError(f"a job input is 'dataset' or 'dataset@version' (a number), not {item!r}")
    return {"dataset": name, **({"version": int(version)} if version else {})}


class Client:
    """Typed access to the platform API. Errors raise :class:`AitipAPIError`."""

    def __init__(self, url: str | None = None, token: str | None = None, *, timeout: float = 30.0,
                 language: str | None = None) -> None:
        """``language``: the one the platform's error messages are written in (``Accept-Language``); by default
        the shell's (``AITIP_LANG``, else the locale: :func:`aitip.i18n.language_from_environment`)."""
        from .i18n import language_from_environment, normalize

        self.url, token = resolve_endpoint(url, token)
        # The platform service's own URL (where devices check in), unless this client goes through a relay.
        self.platform_url = None if through_relay(url) else self.url.removesuffix(API_PATH)
        self._operations: Any = None
        chosen = normalize(language) or language_from_environment()
        self._http = httpx.Client(base_url=self.url, timeout=timeout, verify=_ssl_context(),
                                  headers={"Authorization": f"token {token}", "Accept": "application/json",
                                           "Accept-Language": chosen.replace("_", "-")})

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def request(self, method: str, path: str, *, json_body: Any = None, params: dict[str, Any] | None = None,
                model: type[BaseModel] | None = None) -> Any:
        """The answer's JSON, or with ``model`` the answer read into it."""
        try:
            response = self._http.request(method, path.lstrip("/"), json=json_body, params=params)
        except httpx.HTTPError as exc:
            raise AitipAPIError(503, "unreachable", f"cannot reach {self.url}: {exc}") from exc
        return self._answer(response, model)

    @classmethod
    def _answer(cls, response: httpx.Response, model: type[BaseModel] | None = None) -> Any:
        """The JSON of a successful answer (read straight into ``model``: one pass over the bytes instead of
        parsing them and then walking the parsed values); anything else raises :class:`AitipAPIError`."""
        if response.status_code >= 300:
            cls._raise(response)
        if response.status_code == 204 or not response.content:
            return None
        try:
            if model is not None:
                return model.model_validate_json(response.content)
            return response.json()
        except ValidationError as error:
            if any(problem["type"] == "json_invalid" for problem in error.errors()):
                cls._raise(response)  # a page, not the API: a URL that points elsewhere
            raise
        except ValueError:
            cls._raise(response)

    def upload(self, path: str, body: Iterable[bytes], length: int, *, params: dict[str, Any] | None = None,
               content_type: str = "application/octet-stream",
               timeout: httpx.Timeout = httpx.Timeout(30.0, read=3600.0)) -> Any:  # noqa: B008 - immutable
        """POST ``length`` bytes read from ``body`` (streamed, with their Content-Length); the JSON answer.

        The headers go first, with ``Expect: 100-continue``: a refusal (no right to write, an unknown
        project, a file over the limit) comes back before the body is sent, or stops it (see
        :mod:`aitip.http_expect`)."""
        from .http_expect import send_expecting_continue

        request = self._http.build_request("POST", path.lstrip("/"), params=params,
                                           headers={"Content-Type": content_type})
        try:
            response = send_expecting_continue(self._http, request, body, length, timeout=timeout)
        except httpx.HTTPError as exc:
            raise AitipAPIError(503, "unreachable", f"cannot reach {self.url}: {exc}") from exc
        return self._answer(response)

    def download(self, path: str, *, params: dict[str, Any] | None = None) -> bytes:
        """The bytes of a file the platform answers with (a dataset version's file)."""
        try:
            response = self._http.get(path.lstrip("/"), params=params, headers={"Accept": "*/*"})
        except httpx.HTTPError as exc:
            raise AitipAPIError(503, "unreachable", f"cannot reach {self.url}: {exc}") from exc
        if response.status_code >= 300:
            self._raise(response)
        return response.content

    @property
    def ops(self) -> Any:
        """Every operation of the platform as a method, by the names the MCP tools and the CLI use:
        ``client.ops.runs.compare(project="lab", run=[a, b])`` (see :mod:`aitip.sdk_operations`)."""
        from .sdk_operations import Operations

        if self._operations is None:
            self._operations = Operations(self)
        return self._operations

    @staticmethod
    def _raise(response: httpx.Response) -> None:
        """The platform's JSON error as :class:`AitipAPIError`; any other answer (a proxy's or the hub's error
        page, a misdirected URL) as one line: its reason and a plain-text summary, never its markup."""
        try:
            error = response.json()["error"]
            if not isinstance(error, dict) or not isinstance(error.get("message", ""), str):
                raise TypeError("not an AITIP error")
        except (ValueError, KeyError, TypeError):
            summary = plain_summary(response)
            if 300 <= response.status_code < 400 and response.headers.get("Location"):
                summary = f"redirected to {response.headers['Location']}" + (f" — {summary}" if summary else "")
            reason = response.reason_phrase or f"HTTP {response.status_code}"
            detail = {"content_type": response.headers.get("Content-Type"), "url": str(response.url)}
            message = f"{reason}: {summary}" if summary and summary.lower() != reason.lower() else reason
            raise AitipAPIError(response.status_code, "http_error", message, detail) from None
        raise AitipAPIError(response.status_code, error.get("code", "http_error"), error.get("message", ""),
                            error.get("detail"))

    def _typed(self, model: type[M], method: str, path: str, **kwargs: Any) -> M:
        return self.request(method, path, model=model, **kwargs)  # type: ignore[no-any-return]

    # ----- platform -----

    def health(self) -> dict[str, Any]:
        return self.request("GET", "health")  # type: ignore[no-any-return]

    def me(self) -> Me:
        return self._typed(Me, "GET", "me")

    # ----- projects -----

    def list_projects(self, *, include_archived: bool = False, limit: int = 100, offset: int = 0) -> ProjectList:
        params = {"include_archived": str(include_archived).lower(), "limit": limit, "offset": offset}
        return self._typed(ProjectList, "GET", "projects", params=params)

    def create_project(self, name: str, *, display_name: str | None = None, description: str = "") -> Project:
        body: dict[str, Any] = {"name": name, "description": description}
        if display_name is not None:
            body["display_name"] = display_name
        return self._typed(Project, "POST", "projects", json_body=body)

    def get_project(self, name: str) -> Project:
        return self._typed(Project, "GET", f"projects/{quote(name, safe='')}")

    def update_project(self, name: str, *, display_name: str | None = None, description: str | None = None) -> Project:
        body = {k: v for k, v in {"display_name": display_name, "description": description}.items() if v is not None}
        return self._typed(Project, "PATCH", f"projects/{quote(name, safe='')}", json_body=body)

    def archive_project(self, name: str) -> Project:
        return self._typed(Project, "POST", f"projects/{quote(name, safe='')}/archive")

    def unarchive_project(self, name: str) -> Project:
        return self._typed(Project, "POST", f"projects/{quote(name, safe='')}/unarchive")

    # ----- members -----

    def list_members(self, project: str) -> MemberList:
        return self._typed(MemberList, "GET", f"projects/{quote(project, safe='')}/members")

    def add_member(self, project: str, role: str, *, user: str | None = None, group: str | None = None) -> Member:
        body: dict[str, Any] = {"role": role}
        if user is not None:
            body["user"] = user
        if group is not None:
            body["group"] = group
        return self._typed(Member, "POST", f"projects/{quote(project, safe='')}/members", json_body=body)

    def _member_path(self, project: str, user: str | None, group: str | None) -> str:
        if (user is None) == (group is None):
            raise ValueError("give exactly one of user= or group=")
        kind, name = ("users", user) if user is not None else ("groups", group)
        return f"projects/{quote(project, safe='')}/members/{kind}/{quote(name or '', safe='')}"

    def set_member_role(self, project: str, role: str, *, user: str | None = None, group: str | None = None) -> Member:
        return self._typed(Member, "PATCH", self._member_path(project, user, group), json_body={"role": role})

    def remove_member(self, project: str, *, user: str | None = None, group: str | None = None) -> None:
        self.request("DELETE", self._member_path(project, user, group))

    # ----- jobs -----

    def submit_job(self, project: str, notebook: str | Path | dict[str, Any] | None = None, *,
                   shipped: str | None = None, parameters: dict[str, Any] | None = None, kernel: str | None = None,
                   cpus: float | None = None, gpus: int | None = None, memory_mb: int | None = None, priority: int = 50,
                   timeout_seconds: int = 3600, max_attempts: int = 3, tags: dict[str, str] | None = None,
                   code_version: str | None = None, notebook_name: str | None = None,
                   inputs: Iterable[str | dict[str, Any]] = (), callback: dict[str, str] | None = None) -> Job:
        """Run a notebook (a path to an .ipynb file, or the notebook document) as a job, or one the platform
        ships, by name (``shipped="train/digits_sklearn"``; :meth:`ops.notebooks.list` says which). ``inputs``: dataset
        versions it reads, as ``"digits@2"`` (``"digits"``: the latest) or ``{"dataset": ..., "version": ...}``;
        the job gets them as read-only files (``aitip.datasets.job_inputs()``). ``callback``: ``{"url": ...,
        "secret": optional}``, where the job's end is posted, signed (a secret the platform makes is in the
        answer's ``callback_secret``, once)."""
        if isinstance(notebook, (str, Path)):
            path = Path(notebook)
            document = json.loads(path.read_text(encoding="utf-8"))
            notebook_name = notebook_name or path.name
        else:
            document = notebook
        body: dict[str, Any] = {"project": project, "parameters": parameters or {},
                                "priority": priority, "timeout_seconds": timeout_seconds,
                                "max_attempts": max_attempts, "tags": tags or {}}
        for name, value in (("notebook", document), ("shipped", shipped)):
            if value is not None:
                body[name] = value
        if notebook_name:
            body["notebook_name"] = notebook_name
        if kernel:
            body["kernel"] = kernel
        if code_version:
            body["code_version"] = code_version
        declared = [parse_input(item) for item in inputs]
        if declared:
            body["inputs"] = declared
        if callback:
            body["callback"] = callback
        if cpus is not None or gpus is not None or memory_mb is not None:
            body["resources"] = {k: v for k, v in {"cpus": cpus, "gpus": gpus, "memory_mb": memory_mb}.items()
                                 if v is not None}
        return self._typed(Job, "POST", "jobs", json_body=body)

    def get_job(self, job_id: int) -> Job:
        return self._typed(Job, "GET", f"jobs/{int(job_id)}")

    def list_jobs(self, *, project: str | None = None, state: str | None = None, owner: str | None = None,
                  limit: int = 50, offset: int = 0) -> JobList:
        params = {k: v for k, v in {"project": project, "state": state, "owner": owner, "limit": limit,
                                    "offset": offset}.items() if v is not None}
        return self._typed(JobList, "GET", "jobs", params=params)

    def cancel_job(self, job_id: int) -> Job:
        return self._typed(Job, "POST", f"jobs/{int(job_id)}/cancel")

    def retry_job(self, job_id: int) -> Job:
        return self._typed(Job, "POST", f"jobs/{int(job_id)}/retry")

    def rerun_job(self, job_id: int, *, parameters: dict[str, Any] | None = None,
                  inputs: Iterable[str | dict[str, Any]] | None = None, cpus: float | None = None,
                  gpus: int | None = None, memory_mb: int | None = None, priority: int | None = None,
                  timeout_seconds: int | None = None, tags: dict[str, str] | None = None,
                  callback: dict[str, str] | None = None) -> Job:
        """Run job ``job_id``'s notebook again as your new job, changing what is given: ``parameters`` by name,
        ``inputs`` instead of its dataset versions (``"digits"``: the latest, ``"digits@2"``), resources,
        priority, timeout, ``tags`` added; the rest as that job had it."""
        body: dict[str, Any] = {"parameters": parameters or {}, "tags": tags or {}}
        if inputs is not None:
            body["inputs"] = [parse_input(item) for item in inputs]
        if cpus is not None or gpus is not None or memory_mb is not None:
            body["resources"] = {k: v for k, v in {"cpus": cpus, "gpus": gpus, "memory_mb": memory_mb}.items()
                                 if v is not None}
        for name, value in (("priority", priority), ("timeout_seconds", timeout_seconds), ("callback", callback)):
            if value is not None:
                body[name] = value
        return self._typed(Job, "POST", f"jobs/{int(job_id)}/rerun", json_body=body)

    def record_job_input(self, job_id: int, dataset: str, version: int) -> Job:
        """Inside job ``job_id`` (with its own credential): it read this dataset version (lineage)."""
        return self._typed(Job, "POST", f"jobs/{job_id}/inputs", json_body={"dataset": dataset, "version": version})

    def job_events(self, job_id: int, after: int = 0) -> list[JobEvent]:
        page = self.request("GET", f"jobs/{int(job_id)}/events", params={"after": after})
        return [JobEvent.model_validate(item) for item in page["items"]]

    def follow_job(self, job_id: int, after: int = 0, *, give_up_after: float = FOLLOW_GIVE_UP_SECONDS
                   ) -> Iterator[JobEvent]:
        """Live events (Server-Sent Events) until the job finishes. A broken stream, or the hub's proxy saying the
        platform is down for a moment (502, 503, 504), is reconnected where it left off (``Last-Event-ID``),
        waiting longer each time; after ``give_up_after`` seconds without a stream the last error is raised."""
        last = after
        failing_since: float | None = None
        pause = FOLLOW_FIRST_PAUSE
        while True:
            finished = False
            try:
                headers = {"Accept": "text/event-stream"}
                if last:
                    headers["Last-Event-ID"] = str(last)
                with self._http.stream("GET", f"jobs/{int(job_id)}/events", headers=headers,
                                       timeout=httpx.Timeout(30.0, read=60.0)) as response:
                    if response.status_code >= 400:
                        response.read()
                        self._raise(response)
                    failing_since, pause = None, FOLLOW_FIRST_PAUSE
                    for event_name, data in _sse_events(response.iter_lines()):
                        if event_name == "end":
                            finished = True
                            break
                        event = JobEvent.model_validate(data)
                        last = event.id
                        yield event
            except (httpx.TransportError, AitipAPIError) as error:
                if isinstance(error, AitipAPIError) and error.status not in FOLLOW_AGAIN_STATUSES:
                    raise
                failing_since = failing_since or time.monotonic()
                if time.monotonic() - failing_since > give_up_after:
                    raise
                time.sleep(pause)
                pause = min(pause * 2, FOLLOW_LONGEST_PAUSE)
                continue
            if finished:
                return

    def wait_job(self, job_id: int, timeout: float | None = None, poll: float = 1.0) -> Job:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.get_job(job_id)
            if job.state.finished:
                return job
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} is still {job.state.value} after {timeout} s")
            time.sleep(poll)

    def executed_notebook(self, job_id: int) -> dict[str, Any]:
        return self.request("GET", f"jobs/{int(job_id)}/notebook")  # type: ignore[no-any-return]

    # ----- sweeps -----

    def create_sweep(self, project: str, notebook: str | Path | dict[str, Any] | None = None, *,
                     space: dict[str, dict[str, Any]], objective: str, direction: str = "maximize",
                     strategy: str = "tpe", trials: int | None = None, parallelism: int = 2,
                     parameters: dict[str, Any] | None = None, seed: int = 0, kernel: str | None = None,
                     job: int | None = None, inputs: Iterable[str | dict[str, Any]] | None = None,
                     shipped: str | None = None, **options: Any) -> Sweep:
        """Search ``space`` ({name: {"type": "loguniform", "low": .., "high": ..}, ...}) for the best ``objective``,
        in ``notebook`` (a path or the document), in a notebook the platform ships (``shipped``, by name) or in job
        ``job``'s notebook (its settings kept). ``inputs``:
        dataset versions every trial reads (``"digits"``: the latest when the sweep starts)."""
        if isinstance(notebook, (str, Path)):
            document: dict[str, Any] | None = json.loads(Path(notebook).read_text(encoding="utf-8"))
            options.setdefault("notebook_name", Path(notebook).name)
        else:
            document = notebook
        body: dict[str, Any] = {"project": project, "space": space, "objective": objective,
                                "direction": direction, "strategy": strategy, "parallelism": parallelism,
                                "parameters": parameters or {}, "seed": seed, **options}
        for name, value in (("notebook", document), ("shipped", shipped), ("job", job), ("trials", trials),
                            ("kernel", kernel)):
            if value is not None:
                body[name] = value
        if inputs is not None:
            body["inputs"] = [parse_input(item) for item in inputs]
        return self._typed(Sweep, "POST", "sweeps", json_body=body)

    def get_sweep(self, sweep_id: int) -> Sweep:
        return self._typed(Sweep, "GET", f"sweeps/{int(sweep_id)}")

    def list_sweeps(self, project: str) -> SweepList:
        return self._typed(SweepList, "GET", "sweeps", params={"project": project})

    def cancel_sweep(self, sweep_id: int) -> Sweep:
        return self._typed(Sweep, "POST", f"sweeps/{int(sweep_id)}/cancel")

    def wait_sweep(self, sweep_id: int, timeout: float | None = None, poll: float = 2.0) -> Sweep:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            sweep = self.get_sweep(sweep_id)
            if sweep.state != "running":
                return sweep
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"sweep {sweep_id} is still running after {timeout} s")
            time.sleep(poll)

    # ----- experiments (MLflow) -----

    def experiments(self, project: str, *, include_deleted: bool = False) -> ExperimentList:
        """The project's MLflow experiments with their run counts."""
        return self._typed(ExperimentList, "GET", f"projects/{quote(project, safe='')}/experiments",
                           params={"include_deleted": str(include_deleted).lower()})

    def runs(self, project: str, *, filter: str = "", order_by: list[str] | None = None,  # noqa: A002
             max_results: int = 100, page_token: str | None = None, experiment_id: str | None = None) -> RunList:
        """A page of the project's runs; ``filter`` and ``order_by`` use MLflow's search syntax, e.g.
        ``runs("lab", filter="metrics.accuracy > 0.9", order_by=["metrics.accuracy DESC"])``."""
        params: dict[str, Any] = {"max_results": max_results, "order_by": list(order_by or [])}
        if filter:
            params["filter"] = filter
        if page_token:
            params["page_token"] = page_token
        if experiment_id is not None:
            params["experiment_id"] = experiment_id
        return self._typed(RunList, "GET", f"projects/{quote(project, safe='')}/runs", params=params)

    def iter_runs(self, project: str, **search: Any) -> Iterator[Any]:
        """Every run matching the search, page after page."""
        token = None
        while True:
            page = self.runs(project, page_token=token, **search)
            yield from page.runs
            token = page.next_page_token
            if not token:
                return

    def run(self, run_id: str) -> RunDetail:
        """One run: params, latest metrics, tags, artifacts, and the job that produced it."""
        return self._typed(RunDetail, "GET", f"runs/{quote(run_id, safe='')}")

    def metric_history(self, run_id: str, key: str, *, max_points: int = 1000) -> MetricHistory:
        """A metric's curve, downsampled to at most ``max_points`` points."""
        return self._typed(MetricHistory, "GET", f"runs/{quote(run_id, safe='')}/metric-history",
                           params={"key": key, "max_points": max_points})

    def compare_runs(self, project: str, run_ids: list[str], *, keys: list[str] | None = None,
                     max_points: int = 500) -> RunComparison:
        """2-20 runs side by side: parameter diff, latest metrics, curves."""
        return self._typed(RunComparison, "GET", f"projects/{quote(project, safe='')}/compare",
                           params={"run": list(run_ids), "key": list(keys or []), "max_points": max_points})

    def models(self, project: str) -> ModelList:
        """Registered models whose versions came from the project's runs."""
        return self._typed(ModelList, "GET", f"projects/{quote(project, safe='')}/models")

    # ----- datasets and resources -----

    def __getattr__(self, name: str) -> Any:
        """A domain's SDK namespace (:mod:`aitip.domains`), e.g. ``client.datasets.add("lab", "digits",
        "digits.csv")``, ``versions``, ``diff``... from the datasets domain."""
        location = sdk_namespaces().get(name) if not name.startswith("_") else None
        if location is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        namespace = load(location)(self)
        setattr(self, name, namespace)  # one per client: a namespace may remember (the last answer's version)
        return namespace

    def resources_now(self) -> dict[str, Any]:
        """GPUs now (or CPU and memory where there is no GPU), with the jobs on them."""
        return self.request("GET", "resources/now")  # type: ignore[no-any-return]

    def resources_history(self, *, since: float | None = None, max_points: int | None = None) -> dict[str, Any]:
        params = {k: v for k, v in (("since", since), ("max_points", max_points)) if v is not None}
        return self.request("GET", "resources/history", params=params)  # type: ignore[no-any-return]

    def gpu_hours(self, *, by: str = "user", project: str | None = None) -> dict[str, Any]:
        params = {"by": by, **({"project": project} if project else {})}
        return self.request("GET", "resources/usage", params=params)  # type: ignore[no-any-return]


SUMMARY_CHARS = 240


class _PageText(HTMLParser):
    """The words of an HTML page that say what it is about: its error block (JupyterHub's and Jupyter
    Server's error pages put the status and message in ``<div class="error">``), else its headings and
    paragraphs, else its title; scripts, styles and the rest of the markup left out."""

    _SKIPPED = {"script", "style", "noscript", "template", "svg"}
    _BLOCKS = {"h1", "h2", "h3", "p", "pre", "li", "td", "th", "div", "section", "main", "br", "title"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title: list[str] = []
        self.error: list[str] = []
        self.headings: list[str] = []
        self.body: list[str] = []
        self._stack: list[tuple[str, bool]] = []  # (tag, inside an error block)
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("br", "img", "meta", "link", "input", "hr"):  # void elements
            return
        classes = next((value or "" for name, value in attrs if name == "class"), "").split()
        in_error = (bool(self._stack) and self._stack[-1][1]) or "error" in classes
        self._stack.append((tag, in_error))
        if tag in self._SKIPPED:
            self._skipping += 1
        if tag in self._BLOCKS:
            self._break()

    def handle_endtag(self, tag: str) -> None:
        for index in range(len(self._stack) - 1, -1, -1):
            if self._stack[index][0] == tag:
                for closed, _ in self._stack[index:]:
                    if closed in self._SKIPPED:
                        self._skipping -= 1
                del self._stack[index:]
                break
        if tag in self._BLOCKS:
            self._break()

    def _break(self) -> None:
        for parts in (self.error, self.headings, self.body):
            if parts and parts[-1] != "\n":
                parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._skipping or not data.strip():
            return
        tags = [tag for tag, _ in self._stack]
        if "title" in tags:
            self.title.append(data)
            return
        if self._stack and self._stack[-1][1]:
            self.error.append(data)
        if any(tag in ("h1", "h2", "h3", "p", "pre") for tag in tags):
            self.headings.append(data)
        self.body.append(data)

    def summary(self) -> str:
        for parts in (self.error, self.headings, self.title, self.body):
            lines = [" ".join(line.split()) for line in "".join(parts).split("\n")]
            text = " — ".join(line for line in lines if line)
            if text:
                return text
        return ""


def plain_summary(response: httpx.Response) -> str:
    """What a non-API answer says, as one short line of plain text (an HTML page's title or error message,
    never its markup); empty when it says nothing."""
    content_type = response.headers.get("Content-Type", "").lower()
    try:
        text = response.text
    except (UnicodeDecodeError, LookupError):
        text = response.content.decode("utf-8", "replace")
    if "html" in content_type or "xml" in content_type or text.lstrip()[:1] == "<":
        page = _PageText()
        page.feed(text)
        page.close()
        summary = page.summary()
    elif content_type and not content_type.startswith(("text/", "application/json")):
        summary = f"({len(response.content)} bytes of {content_type.split(';')[0]})" if response.content else ""
    else:
        summary = " ".join(text.split())
    # "503 : Service Unavailable — ..." repeats the status the message already carries
    status = re.escape(str(response.status_code))
    reason = re.escape(response.reason_phrase or "")
    summary = re.sub(rf"^{status}\s*:?\s*({reason})?\s*(— )?", "", summary).strip()
    if len(summary) > SUMMARY_CHARS:
        summary = summary[:SUMMARY_CHARS - 1].rstrip() + "…"
    return summary


def _sse_events(lines: Iterator[str]) -> Iterator[tuple[str, Any]]:
    event, data = "message", []
    for line in lines:
        if not line:
            if data:
                yield event, json.loads("\n".join(data))
            event, data = "message", []
        elif line.startswith(":"):
            continue
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
