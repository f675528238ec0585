"""The registry's side of sandboxed jobs (:mod:`aitip.jobs.sandbox`): a sandbox may name only its project's
model versions, and the worker copies their files into the job's inputs, where its kernel reads them
without any credential."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import InvalidInput
from ..jobs.sandbox import SandboxModels


class RegistrySandboxModels(SandboxModels):
    """``experiments`` (the platform's ExperimentService) checks; ``tracker`` (the worker's) stages."""

    def __init__(self, experiments: Any = None, tracker: Any = None) -> None:
        self.experiments = experiments
        self.tracker = tracker

    def check(self, project: str, models: list[dict[str, Any]]) -> None:
        if not models:
            return
        if self.experiments is None:
            super().check(project, models)
        for wanted in models:
            model = self.experiments.project_model(project, wanted["name"])  # 404 naming it where it is not
            versions = sorted(version.version for version in model.versions)
            if wanted["version"] not in versions:
                raise InvalidInput("model {name!r} has no version {version} in project {project!r}; it has: {versions}",
                                   code="unknown_model_version",
                                   name=wanted['name'], version=wanted['version'], project=project,
                                   versions=', '.join(map(str, versions)))

    def stage(self, models: list[dict[str, Any]], directory: Path) -> dict[str, str]:
        if self.tracker is None:
            return super().stage(models, directory)
        import mlflow.artifacts

        client = self.tracker.client  # makes mlflow-artifacts:/ readable from the platform's store
        staged: dict[str, str] = {}
        for wanted in models:
            name, version = wanted["name"], int(wanted["version"])
            source = client.get_model_version_download_uri(name, str(version))
            target = directory / name / str(version)
            target.mkdir(parents=True, exist_ok=True)
            found = mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=str(target),
                                                        tracking_uri=self.tracker.tracking_uri)
            staged[f"{name}/{version}"] = found
        return staged
