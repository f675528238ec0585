"""Projects and their members: the roles every other domain checks."""

from __future__ import annotations

from typing import Any

from ..domains.base import Domain, ServiceSpec
from .service import ProjectService


class ProjectsDomain(Domain):
    name = "projects"
    title = "Projects"
    tables = ("aitip.projects.tables",)
    operations = "aitip.projects.operations"
    services = {"projects": ServiceSpec("aitip.projects.service:ProjectService", "projects are not served here")}

    def setup(self, context: Any, config: Any) -> None:
        context.provide("projects", ProjectService(context.catalog, context.directory))
