"""What callers may ask of the resources domain: the live node, its history, the GPU inventory, and
GPU-hours. Any signed-in user sees the node; job details on it, and GPU-hours, only for the projects
they belong to (hub admins see everything)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from ..catalog import Catalog
from ..catalog.service import CatalogService
from ..identity.principal import Principal
from ..projects.access import authorize, member_projects
from .accounting import gpu_hours
from .gpus import gpu_inventory
from .models import GpuHoursQuery, GpuHoursReport, SeriesQuery
from .monitor import GpuMonitor

HIDDEN_JOB = {"hidden": True}


def hide_foreign_jobs(snapshot: dict[str, Any], visible_projects: set[str]) -> dict[str, Any]:
    """Replace jobs of other projects by ``{"hidden": true}`` and drop their owners from device users."""
    for device in snapshot["devices"]:
        hidden_owners: set[str] = set()
        shown_owners: set[str] = set()
        for process in device["processes"]:
            job = process["job"]
            if job is None or job.get("project") in visible_projects:
                if job is not None:
                    shown_owners.add(job["owner"])
                continue
            hidden_owners.add(job["owner"])
            process["job"] = dict(HIDDEN_JOB)
        device["jobs"] = sorted({p["job"]["id"] for p in device["processes"] if p["job"] and "id" in p["job"]})
        device["users"] = sorted(user for user in device["users"]
                                 if user not in hidden_owners or user in shown_owners)
    return snapshot


class ResourceService(CatalogService):
    def __init__(self, catalog: Catalog, monitor: GpuMonitor) -> None:
        super().__init__(catalog)
        self.monitor = monitor

    async def snapshot(self, principal: Principal | None) -> dict[str, Any]:
        """The newest sample (one is taken now if the monitor has none yet)."""
        principal = self._signed_in(principal)
        latest = self.monitor.current()
        if latest is None:
            latest = await asyncio.to_thread(self.monitor.sample_once)
        snapshot = latest.to_json()
        if principal.is_admin:
            return snapshot
        visible = await self._in_transaction(lambda s: set(member_projects(s, principal).values()))
        return hide_foreign_jobs(snapshot, visible)

    async def series(self, principal: Principal | None, query: SeriesQuery) -> dict[str, Any]:
        self._signed_in(principal)
        return self.monitor.series(since=query.since, max_points=query.max_points)

    async def inventory(self, principal: Principal | None) -> dict[str, Any]:
        self._signed_in(principal)
        return (await asyncio.to_thread(gpu_inventory, self.monitor.probe)).to_json()

    async def gpu_hours(self, principal: Principal | None, query: GpuHoursQuery,
                        now: datetime | None = None) -> GpuHoursReport:
        principal = self._signed_in(principal)

        def work(session: Session) -> GpuHoursReport:
            if query.project is not None:
                project, _ = authorize(session, principal, "job.read", query.project)
                project_ids: set[int] | None = {project.id}
            elif principal.is_admin:
                project_ids = None
            else:
                project_ids = set(member_projects(session, principal))
            return gpu_hours(session, by=query.by, since=query.since, until=query.until, now=now,
                             project_ids=project_ids)

        return await self._in_transaction(work)
