"""What jobs ask of the registry for sandboxed jobs, which the experiments domain plugs in: that the model
versions a sandbox names belong to the job's project (checked at submission), and their files, staged
read-only into the job's inputs before its kernel starts (so the kernel needs no credential to read them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ServiceUnavailable

MODELS_DIR = "models"


class SandboxModels:
    """No model registry: a sandbox that names model versions is refused (503)."""

    def check(self, project: str, models: list[dict[str, Any]]) -> None:
        """Raise (404/422) unless every ``{"name", "version"}`` is a version of the project's."""
        if models:
            raise ServiceUnavailable("this platform tracks no models: a sandbox cannot name model versions")

    def stage(self, models: list[dict[str, Any]], directory: Path) -> dict[str, str]:
        """Copy each version's files under ``directory``; ``{"name/version": path}`` for ``$AITIP_MODELS``."""
        raise ServiceUnavailable("this platform tracks no models")
