"""Sample the node on an interval and keep a bounded history for dashboards.

Each device and the host get a ring buffer bounded twice: at most ``max_points`` points, none older
than ``retention_seconds``. A device that stops reporting (lost, removed) ages out with its history,
so memory stays bounded however long the service runs. Points are plain tuples; only the newest
snapshot keeps processes and their jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from traitlets import Float, Integer, TraitError, validate
from traitlets.config import LoggingConfigurable

from .attribution import JobLookup, ProcessLineage, attribute_processes, process_lineage
from .gpus import NvmlProbe, Snapshot

HOST_FIELDS = ("cpu_percent", "memory_used_bytes", "load_1m")
DEVICE_FIELDS = ("utilization_gpu_percent", "utilization_memory_percent", "memory_used_bytes", "temperature_c",
                 "power_w")

Point = tuple[Any, ...]  # (time, *values in the order of the series' fields)


class TimeSeries:
    """Points ``(t, v1, v2, ...)`` in time order, at most ``max_points`` and none older than the retention."""

    def __init__(self, fields: Sequence[str], max_points: int, retention_seconds: float) -> None:
        self.fields = tuple(fields)
        self.retention_seconds = retention_seconds
        self._points: deque[Point] = deque(maxlen=max_points)

    def append(self, t: float, values: Sequence[Any]) -> None:
        if len(values) != len(self.fields):
            raise ValueError(f"expected {len(self.fields)} values ({', '.join(self.fields)}), got {len(values)}")
        self._points.append((t, *values))
        self.trim(t)

    def trim(self, now: float) -> None:
        cutoff = now - self.retention_seconds
        while self._points and self._points[0][0] < cutoff:
            self._points.popleft()

    def points(self, since: float | None = None) -> list[Point]:
        if since is None:
            return list(self._points)
        return [point for point in self._points if point[0] >= since]

    def __len__(self) -> int:
        return len(self._points)


def _mean(values: Sequence[Any]) -> float | None:
    present = [value for value in values if value is not None]
    return sum(present) / len(present) if present else None


def downsample(points: Sequence[Point], max_points: int) -> list[Point]:
    """At most ``max_points`` points: consecutive runs of equal size averaged (missing values skipped)."""
    if max_points < 1:
        raise ValueError("max_points must be at least 1")
    if len(points) <= max_points:
        return list(points)
    size = math.ceil(len(points) / max_points)
    return [tuple(_mean(column) for column in zip(*points[start:start + size], strict=True))
            for start in range(0, len(points), size)]


def columns(fields: Sequence[str], points: Sequence[Point]) -> dict[str, list[Any]]:
    """Column-wise JSON (``t`` plus one list per field): what Bokeh/HoloViews sources take directly."""
    names = ("t", *fields)
    if not points:
        return {name: [] for name in names}
    return {name: list(values) for name, values in zip(names, zip(*points, strict=True), strict=True)}


class GpuMonitor(LoggingConfigurable):
    """Samples an :class:`NvmlProbe` on an interval inside the service's event loop (reads run on a thread)."""

    interval_seconds = Float(5.0, help="Seconds between samples of the GPUs and the host.").tag(config=True)
    max_points = Integer(720, help="Most points kept per device and for the host (a ring buffer).").tag(config=True)
    retention_seconds = Float(3600.0, help="Points older than this many seconds are dropped.").tag(config=True)

    @validate("interval_seconds", "retention_seconds")
    def _positive_seconds(self, proposal: Any) -> float:
        if proposal["value"] <= 0:
            raise TraitError(f"{proposal['trait'].name} must be > 0, got {proposal['value']}")
        return proposal["value"]

    @validate("max_points")
    def _at_least_one_point(self, proposal: Any) -> int:
        if proposal["value"] < 1:
            raise TraitError(f"max_points must be >= 1, got {proposal['value']}")
        return proposal["value"]

    def __init__(self, probe: NvmlProbe | None = None, job_lookup: JobLookup | None = None,
                 lineage: ProcessLineage = process_lineage, clock: Callable[[], float] = time.time,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._owns_probe = probe is None
        self.probe = probe or NvmlProbe()
        self.job_lookup = job_lookup
        self.lineage = lineage
        self._clock = clock
        self._lock = threading.Lock()  # guards the series; held only briefly
        self._sampling = threading.Lock()  # one sample at a time, so points stay in time order
        self._latest: Snapshot | None = None
        self._host = self._new_series(HOST_FIELDS)
        self._devices: dict[str, TimeSeries] = {}
        self._device_info: dict[str, dict[str, Any]] = {}
        self._task: asyncio.Task[None] | None = None

    def _new_series(self, fields: Sequence[str]) -> TimeSeries:
        return TimeSeries(fields, self.max_points, self.retention_seconds)

    # ----- sampling -----

    def sample_once(self) -> Snapshot:
        """Take one snapshot, attribute its GPU processes to jobs, and append it to the series."""
        with self._sampling:
            return self._sample()

    def _sample(self) -> Snapshot:
        now = self._clock()
        snapshot = self.probe.snapshot(now)
        try:
            attribute_processes(snapshot, self.job_lookup, self.lineage)
        except Exception:
            self.log.warning("could not attribute GPU processes to jobs", exc_info=True)
            attribute_processes(snapshot, None, self.lineage)
        host = snapshot.host
        with self._lock:
            self._latest = snapshot
            self._host.append(now, (host.cpu_percent, host.memory_used_bytes, host.load_average[0]))
            for device in snapshot.devices:
                series = self._devices.get(device.key)
                if series is None:
                    series = self._devices[device.key] = self._new_series(DEVICE_FIELDS)
                self._device_info[device.key] = {
                    "index": device.index, "uuid": device.uuid, "name": device.name,
                    "memory_total_bytes": device.memory_total_bytes, "power_limit_w": device.power_limit_w,
                }
                series.append(now, tuple(getattr(device, name) for name in DEVICE_FIELDS))
            self._trim(now)
        return snapshot

    def _trim(self, now: float) -> None:
        self._host.trim(now)
        for key, series in list(self._devices.items()):
            series.trim(now)
            if not len(series):
                del self._devices[key]
                del self._device_info[key]

    def _sample_logged(self) -> None:
        try:
            self.sample_once()
        except Exception:
            self.log.exception("GPU/host sample failed")

    async def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._owns_probe:
            await asyncio.to_thread(self.probe.close)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            sampling = loop.run_in_executor(None, self._sample_logged)
            try:
                await asyncio.shield(sampling)
            except asyncio.CancelledError:
                # Let the read in flight finish, so the probe is never closed under it.
                with contextlib.suppress(Exception):
                    await sampling
                raise
            await asyncio.sleep(max(0.0, self.interval_seconds - (loop.time() - started)))

    # ----- answers -----

    def current(self) -> Snapshot | None:
        """The newest snapshot (``None`` before the first sample); its ``time`` tells its age."""
        return self._latest

    def points_held(self) -> int:
        """Points in every series together: what the memory bound is about."""
        with self._lock:
            return len(self._host) + sum(len(series) for series in self._devices.values())

    def series(self, since: float | None = None, max_points: int | None = None) -> dict[str, Any]:
        """History from ``since`` (epoch seconds; all kept when ``None``), at most ``max_points`` per series."""
        if max_points is not None and max_points < 1:
            raise ValueError("max_points must be at least 1")
        with self._lock:
            now = self._clock()
            self._trim(now)
            latest = self._latest
            host_points = self._host.points(since)
            devices = [(dict(self._device_info[key]), series.points(since)) for key, series in self._devices.items()]

        def fit(points: list[Point]) -> list[Point]:
            return downsample(points, max_points) if max_points is not None else points

        host_info = {
            "hostname": latest.host.hostname if latest else None,
            "cpu_count": latest.host.cpu_count if latest else None,
            "memory_total_bytes": latest.host.memory_total_bytes if latest else None,
        }
        return {
            "now": now,
            "since": since,
            "interval_seconds": self.interval_seconds,
            "retention_seconds": self.retention_seconds,
            "gpu_available": latest.gpu_available if latest else None,
            "no_gpu_reason": latest.no_gpu_reason if latest else None,
            "host": {**host_info, **columns(HOST_FIELDS, fit(host_points))},
            "devices": [{**info, **columns(DEVICE_FIELDS, fit(points))}
                        for info, points in sorted(devices, key=lambda item: item[0]["index"])],
        }
