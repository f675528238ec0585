"""The platform's side of a served model version on this machine: its host process (:mod:`.host`), started as
the deployment owner's account, and the replicas it reports — health-checked, restarted when they stop
answering, scaled between bounds with the requests in flight, and drained before they stop."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .upstream import UpstreamError, UpstreamPool

log = logging.getLogger("aitip.serving")

HEALTH_INTERVAL = 1.0
HEALTH_FAILURES = 3  # consecutive failed checks before a replica is restarted
SCALE_INTERVAL = 0.25


class StartFailed(RuntimeError):
    """The version could not be served: its model did not load (the reason is the host's)."""


@dataclass
class Replica:
    slot: int
    pid: int
    pool: UpstreamPool
    in_flight: int = 0
    healthy: bool = True
    failures: int = 0
    draining: bool = False


@dataclass
class Owner:
    """The account a version's processes run as (None everywhere: the platform's own, single-trust)."""

    uid: int | None = None
    gid: int | None = None
    groups: tuple[int, ...] = ()
    home: str | None = None


@dataclass
class VariantProcess:
    key: str  # "<endpoint id>-v<version>", the directory's name
    spec: dict[str, Any]
    directory: Path
    owner: Owner
    replicas_min: int = 1
    replicas_max: int = 1
    target_concurrency: float = 4.0
    scale_down_seconds: float = 30.0
    replicas: dict[int, Replica] = field(default_factory=dict)
    wanted: int = 1
    process: asyncio.subprocess.Process | None = None
    stopping: bool = False
    failure: str | None = None
    _loaded: asyncio.Future[None] | None = None
    _ready: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    _load_samples: list[float] = field(default_factory=list)
    _low_since: float | None = None

    @property
    def sockets_dir(self) -> Path:
        return self.directory / "sockets"

    async def start(self, timeout: float = 120.0) -> None:
        """Start the host and wait until the model loaded and a first replica answers; StartFailed if not."""
        self.wanted = self.replicas_min
        self._loaded = asyncio.get_running_loop().create_future()
        await self._launch()
        try:
            await asyncio.wait_for(asyncio.shield(self._loaded), timeout)
            await asyncio.wait_for(self._ready.wait(), timeout)
        except asyncio.TimeoutError:
            await self.stop(0)
            raise StartFailed(f"the model did not load within {timeout:.0f} s") from None
        except StartFailed:
            await self.stop(0)
            raise
        self._tasks += [asyncio.create_task(self._check_health()), asyncio.create_task(self._autoscale())]

    async def _launch(self) -> None:
        if self.sockets_dir.exists():
            shutil.rmtree(self.sockets_dir)
        self.sockets_dir.mkdir(mode=0o700)
        if self.owner.uid is not None:
            os.chown(self.sockets_dir, self.owner.uid, self.owner.gid or -1)
        spec = dict(self.spec, sockets_dir=str(self.sockets_dir), replicas=self.wanted, parent_pid=os.getpid())
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": os.environ.get("LANG", "C.UTF-8"),
               "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
               "HOME": self.owner.home or str(self.directory), "PYTHONDONTWRITEBYTECODE": "1",
               "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
        extra: dict[str, Any] = {}
        if self.owner.uid is not None:
            extra = {"user": self.owner.uid, "group": self.owner.gid, "extra_groups": list(self.owner.groups)}
        log_file = open(self.directory / "host.log", "ab")  # noqa: SIM115 - handed to the child
        try:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "aitip.serving.host", json.dumps(spec), stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE, stderr=log_file, env=env, cwd=str(self.directory),
                start_new_session=True, **extra)
        finally:
            log_file.close()
        self._tasks.append(asyncio.create_task(self._read_events(self.process)))

    async def _read_events(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        async for line in process.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            self._on_event(event)
        code = await process.wait()
        for replica in self.replicas.values():
            replica.pool.close()
        self.replicas.clear()
        self._ready.clear()
        if self._loaded is not None and not self._loaded.done():
            self._loaded.set_exception(StartFailed(self.failure or f"the serving process exited ({code}) "
                                                   f"before the model loaded; see {self.directory / 'host.log'}"))
            return
        if not self.stopping and self.failure is None:
            log.warning("serving %s: the host process exited (%s); starting it again", self.key, code)
            await asyncio.sleep(0.5)
            if not self.stopping:
                await self._launch()

    def _on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "loaded" and self._loaded is not None and not self._loaded.done():
            self._loaded.set_result(None)
        elif kind == "failed":
            self.failure = str(event.get("reason"))
            if self._loaded is not None and not self._loaded.done():
                self._loaded.set_exception(StartFailed(self.failure))
        elif kind == "ready":
            slot = int(event["slot"])
            old = self.replicas.pop(slot, None)
            if old is not None:
                old.pool.close()
            self.replicas[slot] = Replica(slot, int(event["pid"]), UpstreamPool(str(event["socket"]),
                                                                               uid=self.owner.uid))
            self._ready.set()
        elif kind == "exited":
            gone = self.replicas.get(int(event["slot"]))
            if gone is not None and gone.pid == int(event["pid"]):
                gone.pool.close()
                del self.replicas[gone.slot]
            if not any(r.healthy and not r.draining for r in self.replicas.values()):
                self._ready.clear()

    # ----- routing -----

    def pick(self, tried: set[int]) -> Replica | None:
        """The ready replica with the fewest requests in flight, not among ``tried`` (slots)."""
        best: Replica | None = None
        for replica in self.replicas.values():
            if replica.healthy and not replica.draining and replica.slot not in tried:
                if best is None or replica.in_flight < best.in_flight:
                    best = replica
        return best

    async def wait_ready(self, timeout: float) -> bool:
        if self.pick(set()) is not None:
            return True
        self._ready.clear()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout)
        return self.pick(set()) is not None

    @property
    def in_flight(self) -> int:
        return sum(replica.in_flight for replica in self.replicas.values())

    @property
    def ready_replicas(self) -> int:
        return sum(1 for r in self.replicas.values() if r.healthy and not r.draining)

    def _send(self, order: dict[str, Any]) -> None:
        if self.process is not None and self.process.stdin is not None and self.process.returncode is None:
            self.process.stdin.write((json.dumps(order) + "\n").encode())

    # ----- health and scale -----

    async def _check_health(self) -> None:
        while not self.stopping:
            await asyncio.sleep(HEALTH_INTERVAL)
            for replica in list(self.replicas.values()):
                if replica.draining:
                    continue
                try:
                    answer = await asyncio.wait_for(replica.pool.request("GET", "/v2/health/ready", b"", {}),
                                                    HEALTH_INTERVAL)
                    ok = answer.status == 200
                except (UpstreamError, asyncio.TimeoutError, OSError):
                    ok = False
                replica.healthy = ok
                replica.failures = 0 if ok else replica.failures + 1
                if replica.failures >= HEALTH_FAILURES:
                    log.warning("serving %s: replica %d stopped answering; restarting it", self.key, replica.slot)
                    replica.failures = 0
                    self._send({"restart": replica.slot})

    async def _autoscale(self) -> None:
        window = max(1, int(2.0 / SCALE_INTERVAL))
        while not self.stopping:
            await asyncio.sleep(SCALE_INTERVAL)
            self._load_samples = (self._load_samples + [self.in_flight])[-window:]
            await self.rescale(self.desired())

    def desired(self) -> int:
        load = sum(self._load_samples) / max(1, len(self._load_samples))
        return max(self.replicas_min, min(self.replicas_max, math.ceil(load / self.target_concurrency) or 1))

    async def rescale(self, desired: int) -> None:
        now = time.monotonic()
        if desired > self.wanted:
            self._low_since = None
            self.wanted = desired
            self._send({"replicas": desired})
        elif desired < self.wanted:
            if self._low_since is None:
                self._low_since = now
            elif now - self._low_since >= self.scale_down_seconds:
                self._low_since = None
                await self._shrink(desired)
        else:
            self._low_since = None

    async def _shrink(self, desired: int) -> None:
        """Take the highest slots out of routing, wait for their requests, then tell the host."""
        leaving = [replica for slot, replica in self.replicas.items() if slot >= desired]
        for replica in leaving:
            replica.draining = True
        deadline = time.monotonic() + float(self.spec.get("drain_seconds", 10))
        while any(replica.in_flight for replica in leaving) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        self.wanted = desired
        self._send({"replicas": desired})

    def set_bounds(self, replicas_min: int, replicas_max: int, target: float, scale_down_seconds: float) -> None:
        self.replicas_min, self.replicas_max, self.target_concurrency = replicas_min, replicas_max, target
        self.scale_down_seconds = scale_down_seconds

    def kill_replica(self, slot: int) -> None:
        self._send({"restart": slot})

    async def stop(self, drain_seconds: float = 10.0) -> None:
        """Stop routing to it, let requests in flight finish (up to ``drain_seconds``), stop the processes."""
        self.stopping = True
        for replica in self.replicas.values():
            replica.draining = True
        deadline = time.monotonic() + drain_seconds
        while self.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        self._send({"stop": True})
        process = self.process
        if process is not None and process.returncode is None:
            if process.stdin is not None:
                with contextlib.suppress(Exception):
                    process.stdin.close()
            try:
                await asyncio.wait_for(process.wait(), drain_seconds + 5)
            except asyncio.TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, 9)
                await process.wait()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(BaseException):
                await task
        self._tasks.clear()
        for replica in self.replicas.values():
            replica.pool.close()
        self.replicas.clear()
