"""The routes the extension registers: one per path of the operation table (its handler generated from the
rows, or the row's explicit handler given the rows' declarations), and the few routes that are not platform
operations (the tracking gateway, JSON 404s, the landing page, a user server's relay)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from pydantic import BaseModel

from ..operations.parameters import PATH_PARAMETERS

API_PREFIX = "api/aitip/v1/"

PARAMETER_PATTERNS = {
    **{name: parameter.pattern for name, parameter in PATH_PARAMETERS.items()},
    "path": r".*",
    "serve_path": r".*",
    "ota_path": r"check-in|metadata/[^/]+|targets/.+",
    "mlflow_path": r"api/2\.0/mlflow(?:-artifacts)?/[^?#]*",
}


@dataclass(frozen=True)
class RouteOperation:
    """What a route that is no platform operation declares: the permission it needs and the types it speaks."""

    action: str
    summary: str
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200


@dataclass(frozen=True)
class Route:
    template: str
    handler: type
    prefix: str = API_PREFIX
    # Another API reached through the platform (the tracking gateway serves MLflow's REST API, documented by
    # MLflow): its permission is declared here, its paths and bodies are not described in our OpenAPI.
    foreign_api: bool = False

    @property
    def pattern(self) -> str:
        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            return f"(?P<{name}>{PARAMETER_PATTERNS[name]})"

        return self.prefix + re.sub(r"\{(\w+)\}", replace, self.template)

    @property
    def parameters(self) -> list[str]:
        return re.findall(r"\{(\w+)\}", self.template)

    @property
    def operations(self) -> dict[str, Any]:
        return self.handler.operations  # type: ignore[attr-defined, no-any-return]


@cache
def operation_routes() -> tuple[Route, ...]:
    """A route per path of the operation table (built once: a handler class is the same object every time)."""
    from ..operations.table import operations
    from .handlers.generic import operation_handler

    paths: dict[str, list[Any]] = {}
    for row in operations():
        paths.setdefault(row.path, []).append(row)
    return tuple(Route(path, operation_handler(rows)) for path, rows in paths.items())


@cache
def _loose_patterns() -> tuple[tuple[re.Pattern[str], str, frozenset[str]], ...]:
    """Each operation path with any segment standing for a parameter, its template and its methods."""
    return tuple((re.compile(re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(route.template))), route.template,
                  frozenset(route.operations)) for route in operation_routes())


def misshapen_parameter(method: str, path: str) -> tuple[str, str, str] | None:
    """For an API path no route takes: the first (template, parameter, value) where ``path`` is an operation's
    path of ``method`` but for a value not of its parameter's form (a run id that is not 32 hex digits), else
    None."""
    for loose, template, methods in _loose_patterns():
        found = loose.fullmatch(path)
        if found is None or method not in methods:
            continue
        for name, value in found.groupdict().items():
            if not re.fullmatch(PARAMETER_PATTERNS[name], value):
                return template, name, value
    return None


def platform_routes() -> list[Route]:
    from .handlers.devices import DeviceHandler
    from .handlers.meta import NotFoundHandler
    from .handlers.pages import PlatformHomeHandler
    from .handlers.serving import ServeHandler
    from .handlers.tracking import TrackingGatewayHandler
    from .mcp import MCP_PATH, McpHandler

    return [
        *operation_routes(),
        Route("tracking/{mlflow_path}", TrackingGatewayHandler, foreign_api=True),
        Route("{path}", NotFoundHandler),
        Route("home", PlatformHomeHandler, prefix=""),
        Route(MCP_PATH, McpHandler, prefix=""),
        # An endpoint's inference protocols: not our API (its paths are the protocols'), checked as serving.invoke.
        Route("serve/{project}/{endpoint}/{serve_path}", ServeHandler, prefix="", foreign_api=True),
        # Devices: check-in, TUF metadata and targets, by device token (checked as device.connect).
        Route("ota/{project}/{ota_path}", DeviceHandler, prefix="", foreign_api=True),
    ]


def workspace_routes() -> list[Route]:
    from .handlers.meta import WorkspaceHealthHandler
    from .handlers.workspace import WorkspaceJobSubmitHandler, WorkspaceRelayHandler

    return [
        Route("health", WorkspaceHealthHandler),
        Route("jobs", WorkspaceJobSubmitHandler),
        Route("{path}", WorkspaceRelayHandler),
    ]
