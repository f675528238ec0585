"""The platform's own operations: liveness, the caller, the API's description (the platform section of the
operation table)."""

from __future__ import annotations

from ..projects.models import Me
from ..operations.table import Operation, Section

_HANDLERS = "aitip.server.handlers.meta"

SECTION = Section("platform", "Platform", (
    Operation("platform.health", "platform.health", "GET", "health", "Is the platform service up",
              handler=f"{_HANDLERS}:HealthHandler", not_in=frozenset({"mcp"})),
    Operation("platform.me", "platform.me", "GET", "me", "Who am I: hub identity, groups and project roles",
              response=Me, call="projects.me"),
    Operation("platform.openapi", "platform.openapi", "GET", "openapi.json",
              "The OpenAPI 3.1 description of this API", handler=f"{_HANDLERS}:OpenAPIHandler",
              not_in=frozenset({"mcp"})),
))
