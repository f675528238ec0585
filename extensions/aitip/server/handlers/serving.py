"""An endpoint's own route, ``serve/<project>/<endpoint>/...`` (under the hub at ``/services/aitip/serve/``):
the Open Inference Protocol and MLflow's ``/invocations``, relayed to the version the router picks. A caller
brings an endpoint's API key (checked against a cache, no query) or a hub token or session (``serving.invoke``
in the project). ``feedback`` takes the true labels of answered requests (by their ``X-Request-Id``), for the
versions' accuracy, from an API key or a member allowed ``serving.label``. The project's metrics in
Prometheus's text format, and a Triton packaging's archive."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from jupyter_server.auth import User
from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web

from ...errors import AitipError, Phrase, ServiceUnavailable
from ...i18n import DEFAULT_LANGUAGE, N_
from ...operations.binding import convert_path, running_service
from ...serving.keys import PREFIX as KEY_PREFIX
from ...serving.observations import INVOKE, LABEL
from ...serving.protocols import MAX_REQUEST_ID, feedback_labels
from ...serving.router import NoReplica, UnknownVersion
from ...serving.signature import BadInput
from ..job_identity import platform_principal
from ..routes import RouteOperation
from .base import AitipHandler, PlatformRequestMixin

SUMMARY = "Call an endpoint: the Open Inference Protocol (v2/...) or MLflow's invocations"
PINNED = re.compile(r"^v2/models/[^/]+/versions/([0-9]{1,9})/")
FORWARDED = ("Content-Type", "Accept")


class ServeHandler(PlatformRequestMixin, ExtensionHandlerMixin, JupyterHandler):
    """Not an :class:`AitipHandler`: an inference call is small and must be fast, so an API key is checked here
    before anything of the server's own request handling runs."""

    auth_resource = "aitip"
    operations = {method: RouteOperation("serving.invoke", SUMMARY) for method in ("GET", "POST")}
    api_key: str | None = None

    def _key(self) -> str | None:
        header = self.request.headers.get("X-API-Key")
        if header:
            return header.strip()
        scheme, _, value = self.request.headers.get("Authorization", "").strip().partition(" ")
        value = value.strip()
        return value if scheme.lower() in ("bearer", "token") and value.startswith(KEY_PREFIX) else None

    async def prepare(self) -> None:  # type: ignore[override]
        stream = getattr(self.request.connection, "stream", None)
        if stream is not None:  # the answer's header and body go out at once: no Nagle wait on a small answer
            stream.set_nodelay(True)
        self.api_key = self._key()
        if self.api_key is None:  # a hub token or session: the server's identity provider
            await super().prepare()
            return
        service = self.context.serving
        project, endpoint = self.path_kwargs["project"], self.path_kwargs["endpoint"]
        router = service.deployments.router(project, endpoint) if service is not None else None
        if router is None or not service.key_allows(self.api_key, router.endpoint_id):
            self.refuse(403, Phrase(N_("this API key may not call this endpoint (unknown, revoked, or made for "
                                       "another endpoint)")), "forbidden")
            return
        self.current_user = self._jupyter_current_user = User(username=f"api-key:{self.api_key[:18]}")

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        error = kwargs.get("exc_info", (None, None))[1]
        message = getattr(error, "log_message", None) or str(error or "") or "the request failed"
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": message, "code": "error"}))

    def check_xsrf_cookie(self) -> None:
        if self.api_key is None:
            super().check_xsrf_cookie()

    def refuse(self, status: int, message: Phrase, code: str) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": message.in_language(self.language), "code": code}))

    async def _serve(self, project: str, endpoint: str, path: str) -> None:
        service = self.context.serving
        if service is None:
            return self.refuse(503, Phrase(N_("serving is off on this platform")), "service_unavailable")
        router = service.deployments.router(project, endpoint)
        if self.api_key is None:
            user = self.current_user
            if user is None:
                return self.refuse(403, Phrase(N_("sign in to JupyterHub, or send 'Authorization: Bearer <API "
                                                  "key>'")), "forbidden")
            try:
                principal = await platform_principal(self.context.directory, user)
                await service.check_caller(principal, project, endpoint,
                                           LABEL if path == "feedback" else INVOKE)
            except AitipError as error:
                return self.refuse(error.status, error.phrase, error.code)
            router = service.deployments.router(project, endpoint)
            if router is None:
                return self.refuse(503, Phrase(N_("endpoint {endpoint!r} is not serving on this platform "
                                                  "(Kubernetes mode, or starting)"), endpoint=endpoint),
                                   "not_serving")
        if path == "feedback":
            return self._feedback(router)
        pinned = PINNED.match(path)
        headers = {name: value for name in FORWARDED if (value := self.request.headers.get(name))}
        if (language := self.language) != DEFAULT_LANGUAGE:  # the replica's refusals in the caller's words
            headers["Accept-Language"] = language
        try:
            version, answer = await router.forward(
                self.request.method or "GET", "/" + path, self.request.body or b"", headers,
                key=self.request.headers.get(router.sticky_header), version=int(pinned.group(1)) if pinned else None,
                protocol="mlflow" if path.startswith("invocations") else "oip", request_id=self._request_id())
        except NoReplica as error:
            return self.refuse(503, error.phrase, "no_replica")
        except UnknownVersion as error:
            return self.refuse(404, error.phrase, "version_not_deployed")
        self.set_status(answer.status)
        self.set_header("Content-Type", answer.headers.get("content-type", "application/json"))
        self.set_header("X-Model-Version", str(version))
        self.finish(answer.body)

    def _request_id(self) -> str | None:
        found = self.request.headers.get("X-Request-Id")
        return found if found and len(found) <= MAX_REQUEST_ID else None

    def _feedback(self, router: Any) -> None:
        if self.request.method != "POST":
            return self.refuse(405, Phrase(N_("POST the labels: {\"labels\": {\"<X-Request-Id>\": <true label>}}")),
                               "method_not_allowed")
        try:
            labels = feedback_labels(self.request.body)
        except BadInput as error:
            return self.refuse(400, error.phrase, "invalid_input")
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(router.label(labels)))

    @web.authenticated
    async def get(self, project: str, endpoint: str, serve_path: str) -> None:
        await self._serve(project, endpoint, serve_path)

    @web.authenticated
    async def post(self, project: str, endpoint: str, serve_path: str) -> None:
        await self._serve(project, endpoint, serve_path)


class PrometheusHandler(AitipHandler):
    @web.authenticated
    @authorized
    async def get(self, project: str) -> None:
        service = self.context.serving
        if service is None:
            raise ServiceUnavailable("serving is off on this platform")
        text = await service.prometheus(self.principal, project, action=self.operation.action)
        self.finish(text, set_content_type="text/plain; version=0.0.4; charset=utf-8")




class OptimizationPackageHandler(AitipHandler):
    """A Triton packaging's output as a .tar.gz (the navigator package and the Triton model repository)."""

    @web.authenticated
    @authorized
    async def get(self, project: str, optimization: str) -> None:
        values = convert_path(self.operation, self.path_kwargs)  # type: ignore[arg-type]
        path = await running_service(self.context, "optimizations").package_path(
            self.principal, project, values["optimization"], action=self.operation.action)
        self.set_header("Content-Disposition", f'attachment; filename="triton-{values["optimization"]}.tar.gz"')
        self.set_header("Content-Length", str(path.stat().st_size))
        with path.open("rb") as source:
            while chunk := await asyncio.to_thread(source.read, 1 << 20):
                self.write(chunk)
                await self.flush()
        self.finish(set_content_type="application/gzip")
