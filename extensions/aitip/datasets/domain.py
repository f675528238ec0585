"""Datasets: the DVC-backed registry of versions, quality, lineage, masking and annotation; it gives jobs
their dataset inputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..domains.base import Domain, ServiceSpec, Stop


class DatasetsDomain(Domain):
    name = "datasets"
    title = "Datasets"
    after = ("jobs", "webhooks")  # it records and materializes the jobs' inputs; it publishes dataset events
    tables = ("aitip.datasets.tables",)
    operations = "aitip.datasets.operations"
    unavailable = "the dataset registry is not configured on this platform"
    services = {
        "datasets": ServiceSpec("aitip.datasets.service:DatasetService", unavailable),
        "annotations": ServiceSpec("aitip.datasets.annotations:AnnotationService", unavailable),
        "registrations": ServiceSpec("aitip.datasets.registrations:RegistrationService", unavailable),
    }
    sdk = {"datasets": "aitip.datasets.sdk:DatasetsAPI"}

    def setup(self, context: Any, config: Any) -> None:
        from .annotations import AnnotationService
        from .job_inputs import DatasetJobInputs
        from .lineage import mlflow_registry_view
        from .quality_gate import quality_gate
        from .registrations import RegistrationService
        from .registry import DataRegistry
        from .service import DatasetService

        root = Path(config.data_registry_path)
        registry = DataRegistry(root, None if config.data_remote in ("", "none") else config.data_remote)
        models = mlflow_registry_view(config.mlflow_tracking_uri) if config.mlflow_tracking_uri else None
        datasets = DatasetService(context.catalog, registry, root.parent / "staging",
                                  max_upload_bytes=config.max_upload_bytes, quality_check=quality_gate, models=models)
        datasets.events = context.webhooks
        context.provide("datasets", datasets)
        context.provide("annotations", AnnotationService(datasets))
        context.provide("registrations", RegistrationService(datasets))
        inputs = DatasetJobInputs(datasets)
        if context.jobs is not None:
            context.jobs.inputs = inputs
        if context.worker is not None:
            context.worker.inputs = inputs

    async def start(self, context: Any, config: Any) -> None:
        if context.registrations is not None:
            await context.registrations.recover()

    def stops(self, context: Any) -> list[Stop]:
        registrations = context.registrations
        return [("dataset registrations in the background", registrations.stop)] if registrations is not None else []

    def closes(self, context: Any) -> list[Stop]:
        return [("the dataset registry", context.datasets.close)] if context.datasets is not None else []
