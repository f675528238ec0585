"""The AITIP SDK: typed calls to the platform API, for notebooks, scripts and agents.

Inside a user's server it needs no arguments: it reaches the platform through the server's own
workspace relay with the server's hub token. Elsewhere it uses ``aitip login``'s saved credentials,
or ``AITIP_URL`` / ``AITIP_TOKEN``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from .projects.models import Me, Member, MemberList, Project, ProjectList
from .settings import user_config_dir

M = TypeVar("M", bound=BaseModel)
API_PATH = "api/aitip/v1/"


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


def resolve_endpoint(url: str | None = None, token: str | None = None) -> tuple[str, str]:
    """Explicit arguments, then AITIP_URL/AITIP_TOKEN, then the user server's own relay, then `aitip login`."""
    env = os.environ
    if url is None and env.get("AITIP_URL"):
        url = env["AITIP_URL"]
    if token is None and env.get("AITIP_TOKEN"):
        token = env["AITIP_TOKEN"]
    if url is None and env.get("JUPYTERHUB_SERVICE_URL") and env.get("AITIP_PLATFORM_URL"):
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


class Client:
    """Typed access to the platform API. Errors raise :class:`AitipAPIError`."""

    def __init__(self, url: str | None = None, token: str | None = None, *, timeout: float = 30.0) -> None:
        self.url, token = resolve_endpoint(url, token)
        self._http = httpx.Client(base_url=self.url, timeout=timeout,
                                  headers={"Authorization": f"token {token}", "Accept": "application/json"})

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def request(self, method: str, path: str, *, json_body: Any = None, params: dict[str, Any] | None = None) -> Any:
        try:
            response = self._http.request(method, path.lstrip("/"), json=json_body, params=params)
        except httpx.HTTPError as exc:
            raise AitipAPIError(503, "unreachable", f"cannot reach {self.url}: {exc}") from exc
        if response.status_code >= 400:
            try:
                error = response.json()["error"]
            except (ValueError, KeyError, TypeError):
                error = {"code": "http_error", "message": response.text[:500] or response.reason_phrase}
            raise AitipAPIError(response.status_code, error.get("code", "http_error"), error.get("message", ""),
                                error.get("detail"))
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def _typed(self, model: type[M], method: str, path: str, **kwargs: Any) -> M:
        return model.model_validate(self.request(method, path, **kwargs))

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
