"""Resources: GPUs and their use (NVML), GPU-hours, and the GPUs the job worker offers."""

from __future__ import annotations

from typing import Any

from ..domains.base import Domain, ServiceSpec, Stop


class ResourcesDomain(Domain):
    name = "resources"
    title = "Resources"
    after = ("jobs",)  # it counts the GPUs the worker offers, and attributes GPU processes to jobs
    operations = "aitip.resources.operations"
    services = {"resources": ServiceSpec("aitip.resources.service:ResourceService",
                                         "resource monitoring is not running on this platform")}
    parts = ("monitor",)

    def setup(self, context: Any, config: Any) -> None:
        from .attribution import CatalogJobLookup
        from .inventory import gpu_count
        from .monitor import GpuMonitor
        from .service import ResourceService

        if context.worker is not None:
            context.worker.offer_gpus(gpu_count())
        if context.mode == "worker":
            return
        monitor = GpuMonitor(parent=config, job_lookup=CatalogJobLookup(context.catalog))
        context.provide("monitor", monitor)
        context.provide("resources", ResourceService(context.catalog, monitor))

    async def start(self, context: Any, config: Any) -> None:
        if context.monitor is not None:
            await context.monitor.start()

    def stops(self, context: Any) -> list[Stop]:
        return [("the resource monitor", context.monitor.stop)] if context.monitor is not None else []
