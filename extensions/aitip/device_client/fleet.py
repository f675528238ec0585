"""A fleet of simulated devices in one process, for tests and the rollout benchmark: each device polls the real
platform over HTTP (asyncio), and installs as a real device does (:class:`DeviceUpdater`: TUF, the release
signature, an A/B slot), in a pool of threads since TUF's client is synchronous. Devices named in ``failing``
(read at each install) get an image that does not boot (the way hardware trouble shows up in a rollout)."""

from __future__ import annotations

import asyncio
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import urllib3
from yarl import URL

from .updater import DeviceUpdater, Provisioned


@dataclass
class DeviceLog:
    """What one simulated device did, in monotonic seconds."""

    name: str
    updated_at: float | None = None  # when it was told to install an update
    installed_at: float | None = None
    failed_at: float | None = None
    reported_at: float | None = None  # when the platform took its report of the update (installed or failed)
    stopped_at: float | None = None  # when it first heard of an emergency stop
    check_ins: int = 0
    errors: list[str] = field(default_factory=list)


class SimulatedFleet:
    def __init__(self, devices: dict[str, Provisioned], state_root: Path, *, failing: set[str] | None = None,
                 threads: int = 16, first_poll_spread: float = 1.0, long_poll: float = 0.0) -> None:
        self.devices = devices
        self.state_root = state_root
        self.failing = failing or set()
        self.threads = threads
        self.first_poll_spread = first_poll_spread
        self.long_poll = long_poll  # > 0: each check-in waits up to this long on the platform, then polls again
        self.logs = {name: DeviceLog(name) for name in devices}
        self._pool = urllib3.PoolManager(maxsize=threads, block=True)
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="device")
        self._updaters: dict[str, DeviceUpdater] = {}
        self._stop = asyncio.Event()

    def updater(self, name: str) -> DeviceUpdater:
        found = self._updaters.get(name)
        if found is None:
            found = self._updaters[name] = DeviceUpdater(
                self.devices[name], self.state_root / name, pool=self._pool, simulated=True,
                boot_check=lambda image: "the watchdog reset the board" if name in self.failing else None)
        return found

    async def _device(self, session: aiohttp.ClientSession, name: str) -> None:
        try:
            await self._live(session, name)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 - a device that broke says so in its log, not silently
            self.logs[name].errors.append(f"the device stopped: {type(error).__name__}: {error}")

    async def _live(self, session: aiohttp.ClientSession, name: str) -> None:
        log = self.logs[name]
        await asyncio.sleep(random.uniform(0, self.first_poll_spread))
        updater = await asyncio.get_running_loop().run_in_executor(self._executor, self.updater, name)
        provisioned = self.devices[name]
        headers = {**updater.fetcher.headers, "Content-Type": "application/json"}
        url = URL(provisioned.base + f"check-in?wait={self.long_poll:g}", encoded=True)  # a percent-escape stays
        while not self._stop.is_set():
            failed, reporting = False, updater.report is not None
            try:
                async with session.post(url, data=updater.check_in_body(), headers=headers) as response:
                    answer = updater.answered(response.status, await response.read())
                if reporting:
                    log.reported_at = time.monotonic()
            except Exception as error:  # noqa: BLE001 - a device retries at its next poll, as a real one does
                log.errors.append(f"{type(error).__name__}: {error}")
                answer, failed = {"action": "none", "poll_seconds": 1.0}, True
            log.check_ins += 1
            if answer["action"] == "stop" and log.stopped_at is None:
                log.stopped_at = time.monotonic()
            if answer["action"] == "update":
                log.updated_at = time.monotonic()
                installed = await asyncio.get_running_loop().run_in_executor(
                    self._executor, updater.install, answer["update"])
                if installed:
                    log.installed_at = time.monotonic()
                else:
                    log.failed_at = time.monotonic()
                continue  # report at once
            if self.long_poll > 0 and not failed:
                continue  # the platform held the call open while there was nothing to do
            try:
                await asyncio.wait_for(self._stop.wait(), float(answer.get("poll_seconds", 5.0)) *
                                       random.uniform(0.8, 1.0))
            except TimeoutError:
                pass

    async def run(self, until: Any, *, timeout: float) -> bool:
        """Run every device until ``until(self)`` holds (checked every 0.1 s) or ``timeout``; whether it held."""
        connector = aiohttp.TCPConnector(limit=0 if self.long_poll > 0 else 256)
        async with aiohttp.ClientSession(connector=connector) as session:
            tasks = [asyncio.create_task(self._device(session, name)) for name in self.devices]
            deadline = time.monotonic() + timeout
            held = False
            try:
                while time.monotonic() < deadline:
                    if until(self):
                        held = True
                        break
                    await asyncio.sleep(0.1)
            finally:
                self._stop.set()
                for task in tasks:  # a check-in held open as a long poll would keep a device up to its wait
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        return held

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self._pool.clear()

    def count(self, what: str) -> int:
        return sum(1 for log in self.logs.values() if getattr(log, f"{what}_at") is not None)
