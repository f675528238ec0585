"""Health, identity, the OpenAPI document, and JSON 404s for unknown API paths."""

from __future__ import annotations

from jupyter_server.auth.decorator import allow_unauthenticated, authorized
from tornado import web

from ... import __version__
from ...errors import NotFound, Phrase
from ...operations.parameters import PATH_PARAMETERS
from ..routes import PARAMETER_PATTERNS, RouteOperation, misshapen_parameter
from .base import AitipHandler


class HealthHandler(AitipHandler):
    @allow_unauthenticated
    async def get(self) -> None:
        self.send({"status": "ok", "mode": self.context.mode, "version": __version__})


class WorkspaceHealthHandler(AitipHandler):
    operations = {"GET": RouteOperation("platform.health", "Is this user server's relay to the platform up")}

    @allow_unauthenticated
    async def get(self) -> None:
        self.send({"status": "ok", "mode": self.context.mode, "version": __version__,
                   "platform_configured": bool(self.context.platform_url)})


class OpenAPIHandler(AitipHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        from ..openapi import openapi_document

        self.send(openapi_document())


class NotFoundHandler(AitipHandler):
    """Unknown paths under the API answer a JSON 404 rather than an HTML page."""

    operations = {
        method: RouteOperation("platform.health", "Unknown API path")
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE")
    }

    def _missing(self, path: str) -> None:
        misshapen = misshapen_parameter(self.request.method, path)
        if misshapen is not None:  # an operation's path but for a value: say which, and what it should be
            template, name, value = misshapen
            raise NotFound("{value!r} is not a {parameter} of {method} /{template}: {description}",
                           detail={"parameter": name, "value": value, "pattern": PARAMETER_PATTERNS[name]},
                           value=value, parameter=name, method=self.request.method, template=template,
                           description=Phrase(PATH_PARAMETERS[name].description))
        raise NotFound("no API route {method} /{path}; see openapi.json",
                       method=self.request.method, path=path)

    async def before_body(self) -> None:
        self._missing(self.path_kwargs["path"])  # refused on its path: its body is never wanted

    @allow_unauthenticated
    async def get(self, path: str) -> None:
        self._missing(path)

    @allow_unauthenticated
    async def post(self, path: str) -> None:
        self._missing(path)

    @allow_unauthenticated
    async def put(self, path: str) -> None:
        self._missing(path)

    @allow_unauthenticated
    async def patch(self, path: str) -> None:
        self._missing(path)

    @allow_unauthenticated
    async def delete(self, path: str) -> None:
        self._missing(path)
