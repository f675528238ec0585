"""What the extension hands its handlers: the mode, the services, and the relay's settings."""

from __future__ import annotations

from dataclasses import dataclass

from ..catalog import Catalog
from ..identity.directory import Directory
from ..projects.service import ProjectService


@dataclass
class PlatformContext:
    mode: str
    directory: Directory
    max_body_bytes: int
    catalog: Catalog | None = None
    projects: ProjectService | None = None
    platform_url: str = ""
    platform_token: str = ""
    relay_timeout: float = 60.0
