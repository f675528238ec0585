"""Devices: the registry, each project's TUF repository, and firmware rollouts over the air in device groups."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from ..domains.base import Domain, ServiceSpec, Stop

log = logging.getLogger(__name__)
FRESHNESS_SECONDS = 600.0  # how often expiring TUF metadata is looked for (the timestamp lives a day)


class DevicesDomain(Domain):
    name = "devices"
    title = "Devices"
    after = ("releases", "webhooks")  # firmware comes from releases; rollout events go to webhooks
    tables = ("aitip.devices.tables",)
    operations = "aitip.devices.operations"
    services = {"devices": ServiceSpec("aitip.devices.service:DevicesService",
                                       "devices need the releases domain, which this platform does not run")}
    parts = ("fleet",)

    def setup(self, context: Any, config: Any) -> None:
        from .. import settings
        from .fleet_control import FleetController
        from .service import DevicesService

        if context.mode == "worker" or context.releases is None or context.releases.firmware is None:
            return
        fleet = FleetController(context.catalog, webhooks=context.webhooks, parent=config)
        context.provide("fleet", fleet)
        context.provide("devices", DevicesService(context.catalog, fleet, context.releases.signer,
                                                  context.releases.firmware,
                                                  settings.aitip_home() / "devices" / "tuf"))

    async def start(self, context: Any, config: Any) -> None:
        if context.fleet is None:
            return
        await context.fleet.start()
        self._freshness = asyncio.create_task(self._keep_fresh(context.devices))

    @staticmethod
    async def _keep_fresh(devices: Any) -> None:
        while True:
            try:
                await asyncio.to_thread(devices.keep_fresh)
            except Exception:  # noqa: BLE001 - tried again at the next round
                log.exception("could not re-sign expiring TUF metadata")
            await asyncio.sleep(FRESHNESS_SECONDS)

    async def _stop(self, context: Any) -> None:
        task = getattr(self, "_freshness", None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await context.fleet.stop()

    def stops(self, context: Any) -> list[Stop]:
        return [("the fleet controller", lambda: self._stop(context))] if context.fleet is not None else []
