"""Workspace mode: a user's server relays ``/user/<name>/api/aitip/v1/...`` to the platform service
with the server's own hub token, so notebook code and JupyterLab reach the platform through their
own origin and the platform sees the server's owner."""

from __future__ import annotations

import json
import os
import posixpath

from jupyter_server.auth.decorator import authorized
from jupyter_server.utils import ensure_async
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from ...errors import (
    BadRequest,
    InvalidInput,
    NotFound,
    PermissionDenied,
    ServiceUnavailable,
)
from ..routes import RouteOperation
from .base import AitipHandler

_RELAYED_HEADERS = ("Content-Type", "Accept", "Accept-Language", "Last-Event-ID")
_RETURNED_HEADERS = ("Content-Type", "Location")


class _Relay(AitipHandler):
    async def _relay(self, path: str, body: bytes | None = None) -> None:
        context = self.context
        if not context.platform_url:
            raise ServiceUnavailable(
                "this server is not connected to an AITIP platform: set AITIP_PLATFORM_URL "
                "(JupyterHub sets it for servers it spawns)")
        owner = os.environ.get("JUPYTERHUB_USER")
        assert self.principal is not None
        if owner and self.principal.name != owner:
            raise PermissionDenied(
                "this server's aitip API acts only for its owner {owner!r}; call the platform service with your "
                "own token instead", owner=owner)
        url = f"{context.platform_url.rstrip('/')}/api/aitip/v1/{path}"
        if self.request.query:
            url += f"?{self.request.query}"
        headers = {name: self.request.headers[name] for name in _RELAYED_HEADERS if name in self.request.headers}
        headers["Authorization"] = f"token {context.platform_token}"
        method = self.request.method or "GET"
        if body is None and method in ("POST", "PUT", "PATCH"):
            body = self.request.body
        streaming = method == "GET" and "text/event-stream" in self.request.headers.get("Accept", "")
        options: dict[str, object] = {}
        if streaming:
            options = {"header_callback": self._relay_header, "streaming_callback": self._relay_chunk,
                       "request_timeout": 24 * 3600.0}
        request = HTTPRequest(url, method=method, headers=headers, body=body,
                              request_timeout=options.pop("request_timeout", context.relay_timeout),
                              allow_nonstandard_methods=True, follow_redirects=False, **options)
        try:
            response = await AsyncHTTPClient().fetch(request, raise_error=False)
        except OSError as exc:  # refused, reset, unresolvable: tornado raises these even with raise_error=False
            raise ServiceUnavailable("the AITIP platform service did not answer", detail=str(exc)) from exc
        if response.code == 599 and not self._headers_written:
            raise ServiceUnavailable("the AITIP platform service did not answer", detail=str(response.error))
        if streaming:
            if not self._finished:
                self.finish()
            return
        self.set_status(response.code)
        for name in _RETURNED_HEADERS:
            if name in response.headers:
                self.set_header(name, response.headers[name])
        if response.code == 204:
            self.finish()
        else:
            self.finish(response.body or b"")

    def _relay_header(self, line: str) -> None:
        """Headers of a streamed (SSE) answer, passed on before its first chunk."""
        line = line.strip()
        if line.startswith("HTTP/"):
            self.set_status(int(line.split()[1]))
        elif ":" in line:
            name, _, value = line.partition(":")
            if name.strip().title() in ("Content-Type", "Cache-Control"):
                self.set_header(name.strip().title(), value.strip())

    def _relay_chunk(self, chunk: bytes) -> None:
        self.write(chunk)
        self.flush()


class WorkspaceRelayHandler(_Relay):
    operations = {
        method: RouteOperation("workspace.forward", "Relayed to the platform service, which checks the real action")
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE")
    }

    @web.authenticated
    @authorized
    async def get(self, path: str) -> None:
        await self._relay(path)

    @web.authenticated
    @authorized
    async def post(self, path: str) -> None:
        await self._relay(path)

    @web.authenticated
    @authorized
    async def put(self, path: str) -> None:
        await self._relay(path)

    @web.authenticated
    @authorized
    async def patch(self, path: str) -> None:
        await self._relay(path)

    @web.authenticated
    @authorized
    async def delete(self, path: str) -> None:
        await self._relay(path)


class WorkspaceJobSubmitHandler(_Relay):
    """``POST jobs`` from JupyterLab may name a notebook in this server (``"path"``) instead of sending
    it: the relay reads it from the user's contents and submits its content."""

    operations = {
        "GET": RouteOperation("workspace.forward", "Relayed to the platform service"),
        "POST": RouteOperation("workspace.forward", "Submit a job; 'path' names a notebook in this server"),
    }

    @web.authenticated
    @authorized
    async def get(self) -> None:
        await self._relay("jobs")

    @web.authenticated
    @authorized
    async def post(self) -> None:
        try:
            body = json.loads(self.request.body or b"{}")
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadRequest("malformed JSON: {exc}", code="invalid_json", exc=exc) from exc
        if isinstance(body, dict) and "path" in body:
            path = body.pop("path")
            if not isinstance(path, str) or not path.endswith(".ipynb") or "notebook" in body:
                raise InvalidInput("'path' must name a .ipynb file in this server (and replaces 'notebook')")
            try:
                model = await ensure_async(self.contents_manager.get(path, content=True, type="notebook"))
            except web.HTTPError as exc:
                raise NotFound("no notebook at {path!r} in this server", path=path) from exc
            body["notebook"] = model["content"]
            body.setdefault("notebook_name", posixpath.basename(path))
        await self._relay("jobs", json.dumps(body).encode())
