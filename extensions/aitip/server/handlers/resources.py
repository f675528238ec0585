"""GPUs, CPU and memory over REST: the newest sample, the time series, the inventory the scheduler uses,
and GPU-hours per user or project (each caller sees only jobs of the projects they belong to)."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ...errors import ServiceUnavailable
from ...resources.models import GpuHoursQuery, GpuHoursReport, SeriesQuery
from ...resources.service import ResourceService
from ..routes import Operation
from .base import AitipHandler


class ResourcesBase(AitipHandler):
    @property
    def service(self) -> ResourceService:
        if self.context.resources is None:
            raise ServiceUnavailable("resource monitoring is not running on this platform")
        return self.context.resources


class ResourcesNowHandler(ResourcesBase):
    operations = {"GET": Operation("resource.read", "GPUs (or CPU and memory without a GPU) now, with their jobs")}

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.send(await self.service.snapshot(self.principal))


class ResourcesHistoryHandler(ResourcesBase):
    operations = {"GET": Operation("resource.read", "The sampled time series (bounded, downsampled on request)",
                                   query=SeriesQuery)}

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.send(await self.service.series(self.principal, self.query(SeriesQuery)))


class ResourcesInventoryHandler(ResourcesBase):
    operations = {"GET": Operation("resource.read", "The GPUs the scheduler hands out, and where the count comes from")}

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.send(await self.service.inventory(self.principal))


class ResourcesUsageHandler(ResourcesBase):
    operations = {"GET": Operation("resource.usage", "GPU-hours per user or project", query=GpuHoursQuery,
                                   response=GpuHoursReport)}

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.send(await self.service.gpu_hours(self.principal, self.query(GpuHoursQuery)))
