"""What this machine's GPUs and host are doing right now, read through NVML and psutil.

NVML is opened once per probe. Without a driver (``NVMLError_LibraryNotFound``) or on any other NVML
failure at start, the probe reports the host only and says "no GPU" with the reason. Every device
metric is read on its own: a metric the device does not support (``NVMLError_NotSupported``) is
``None``; any other NVML error on it is ``None`` too and its message is kept in ``errors``, so one
bad reading never hides the rest.

All calls go through ``pynvml.<function>`` at call time, which is what lets tests replace them with
a fake node (NVIDIA ships no NVML fake).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Self, TypeVar

import psutil

from ..i18n import N_

log = logging.getLogger("aitip.resources")

# Why a machine shows no GPU, written in English into its samples (and shown translated: resources.text).
NO_GPU = N_("no GPU: {why}")
NO_PYNVML = N_("nvidia-ml-py (pynvml) is not installed")
NVML_UNAVAILABLE = N_("NVML unavailable ({error})")
NVML_NO_DEVICES = N_("NVML found no devices")

T = TypeVar("T")


@dataclass
class GpuProcess:
    """A process holding a context on a GPU; ``job`` is filled in by attribution (see ``attribution``)."""

    pid: int
    used_memory_bytes: int | None
    kinds: list[str] = field(default_factory=list)  # "compute", "graphics"
    os_user: str | None = None
    job: dict[str, Any] | None = None


@dataclass
class GpuDevice:
    index: int
    uuid: str | None = None
    name: str | None = None
    utilization_gpu_percent: float | None = None
    utilization_memory_percent: float | None = None
    memory_used_bytes: int | None = None
    memory_total_bytes: int | None = None
    temperature_c: float | None = None
    power_w: float | None = None
    power_limit_w: float | None = None
    processes: list[GpuProcess] = field(default_factory=list)
    jobs: list[int] = field(default_factory=list)
    users: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """Stable across index renumbering where NVML gives a UUID."""
        return self.uuid or f"index-{self.index}"


@dataclass
class HostStats:
    hostname: str
    cpu_percent: float
    cpu_count: int
    memory_used_bytes: int
    memory_available_bytes: int
    memory_total_bytes: int
    load_average: list[float]


@dataclass
class Snapshot:
    """One reading of the node; ``to_json()`` is what REST and dashboards send."""

    time: float
    host: HostStats
    gpu_available: bool
    no_gpu_reason: str | None
    driver_version: str | None
    devices: list[GpuDevice]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class GpuInventory:
    """What the scheduler may hand out: ``count`` GPUs, and where that number came from."""

    count: int
    source: Literal["config", "nvml", "none"]
    devices: list[dict[str, Any]]
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def read_host_stats() -> HostStats:
    """CPU percent is since the previous call in this process (psutil's rule), so sample regularly."""
    memory = psutil.virtual_memory()
    return HostStats(
        hostname=socket.gethostname(),
        cpu_percent=float(psutil.cpu_percent(interval=None)),
        cpu_count=psutil.cpu_count(logical=True) or 1,
        memory_used_bytes=int(memory.used),
        memory_available_bytes=int(memory.available),
        memory_total_bytes=int(memory.total),
        load_average=[round(value, 2) for value in os.getloadavg()],
    )


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


class NvmlProbe:
    """One NVML session: opened on first use, read under a lock, closed by ``close()``."""

    def __init__(self, host_stats: Callable[[], HostStats] = read_host_stats) -> None:
        self._host_stats = host_stats
        self._lock = threading.RLock()
        self._opened = False
        self._initialized = False
        self.reason: str | None = None
        psutil.cpu_percent(interval=None)  # the first reading is meaningless; start the interval now

    def open(self) -> bool:
        """Initialize NVML once; False (with ``reason``) when this machine offers no usable GPU driver."""
        with self._lock:
            if self._opened:
                return self._initialized
            self._opened = True
            try:
                import pynvml
            except ImportError:
                self.reason = NO_GPU.format(why=NO_PYNVML)
                return False
            try:
                pynvml.nvmlInit()
            except pynvml.NVMLError as exc:
                self.reason = NO_GPU.format(why=NVML_UNAVAILABLE.format(error=exc))
                log.info("%s", self.reason)
                return False
            self._initialized = True
            return True

    @property
    def available(self) -> bool:
        return self.open()

    def close(self) -> None:
        with self._lock:
            if self._initialized:
                import pynvml

                try:
                    pynvml.nvmlShutdown()
                except pynvml.NVMLError as exc:
                    log.warning("NVML shutdown failed: %s", exc)
            self._opened = self._initialized = False
            self.reason = None

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def device_count(self) -> int:
        """NVML's device count; 0 without a driver or when NVML cannot count."""
        if not self.open():
            return 0
        import pynvml

        with self._lock:
            try:
                return int(pynvml.nvmlDeviceGetCount())
            except pynvml.NVMLError as exc:
                log.warning("NVML could not count devices: %s", exc)
                return 0

    def devices(self) -> list[GpuDevice]:
        if not self.open():
            return []
        import pynvml

        with self._lock:
            return [self._device(pynvml, index) for index in range(self.device_count())]

    def snapshot(self, now: float | None = None) -> Snapshot:
        taken_at = time.time() if now is None else now
        host = self._host_stats()
        if not self.open():
            return Snapshot(taken_at, host, False, self.reason, None, [])
        import pynvml

        with self._lock:
            driver = self._read(pynvml, {}, "driver_version", lambda: _text(pynvml.nvmlSystemGetDriverVersion()))
            devices = self.devices()
        reason = None if devices else NO_GPU.format(why=NVML_NO_DEVICES)
        return Snapshot(taken_at, host, bool(devices), reason, driver, devices)

    @staticmethod
    def _read(pynvml: Any, errors: dict[str, str], metric: str, call: Callable[[], T]) -> T | None:
        try:
            return call()
        except pynvml.NVMLError_NotSupported:
            return None
        except pynvml.NVMLError as exc:
            errors[metric] = str(exc)
            return None

    def _device(self, pynvml: Any, index: int) -> GpuDevice:
        device = GpuDevice(index=index)
        errors = device.errors
        handle = self._read(pynvml, errors, "handle", lambda: pynvml.nvmlDeviceGetHandleByIndex(index))
        if handle is None:
            return device
        read = self._read
        device.uuid = read(pynvml, errors, "uuid", lambda: _text(pynvml.nvmlDeviceGetUUID(handle)))
        device.name = read(pynvml, errors, "name", lambda: _text(pynvml.nvmlDeviceGetName(handle)))
        rates = read(pynvml, errors, "utilization", lambda: pynvml.nvmlDeviceGetUtilizationRates(handle))
        if rates is not None:
            device.utilization_gpu_percent = float(rates.gpu)
            device.utilization_memory_percent = float(rates.memory)
        memory = read(pynvml, errors, "memory", lambda: pynvml.nvmlDeviceGetMemoryInfo(handle))
        if memory is not None:
            device.memory_used_bytes, device.memory_total_bytes = int(memory.used), int(memory.total)
        temperature = read(pynvml, errors, "temperature_c",
                           lambda: pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU))
        device.temperature_c = None if temperature is None else float(temperature)
        milliwatts = read(pynvml, errors, "power_w", lambda: pynvml.nvmlDeviceGetPowerUsage(handle))
        device.power_w = None if milliwatts is None else milliwatts / 1000
        limit = read(pynvml, errors, "power_limit_w", lambda: pynvml.nvmlDeviceGetEnforcedPowerLimit(handle))
        device.power_limit_w = None if limit is None else limit / 1000
        device.processes = self._processes(pynvml, errors, handle)
        return device

    def _processes(self, pynvml: Any, errors: dict[str, str], handle: Any) -> list[GpuProcess]:
        """Compute and graphics contexts, one entry per pid (a process may hold both)."""
        by_pid: dict[int, GpuProcess] = {}
        for kind, function in (("compute", "nvmlDeviceGetComputeRunningProcesses"),
                               ("graphics", "nvmlDeviceGetGraphicsRunningProcesses")):
            found = self._read(pynvml, errors, f"{kind}_processes", lambda f=function: getattr(pynvml, f)(handle))
            for info in found or []:
                used = getattr(info, "usedGpuMemory", None)
                used = None if used is None else int(used)
                process = by_pid.setdefault(int(info.pid), GpuProcess(pid=int(info.pid), used_memory_bytes=used))
                if used is not None and (process.used_memory_bytes is None or used > process.used_memory_bytes):
                    process.used_memory_bytes = used
                process.kinds.append(kind)
        return sorted(by_pid.values(), key=lambda p: p.pid)


def gpu_inventory(probe: NvmlProbe | None = None) -> GpuInventory:
    """``$AITIP_GPUS`` when set (NVML is not touched); else NVML's devices; else none."""
    configured = os.environ.get("AITIP_GPUS")
    if configured is not None:
        try:
            count = int(configured)
        except ValueError:
            raise ValueError(f"$AITIP_GPUS must be a whole number of GPUs, got {configured!r}") from None
        return GpuInventory(max(0, count), "config", [], None)
    owned = probe is None
    probe = probe or NvmlProbe()
    try:
        if not probe.open():
            return GpuInventory(0, "none", [], probe.reason)
        devices = [{"index": d.index, "uuid": d.uuid, "name": d.name, "memory_total_bytes": d.memory_total_bytes}
                   for d in probe.devices()]
        return GpuInventory(len(devices), "nvml", devices, None if devices else NO_GPU.format(why=NVML_NO_DEVICES))
    finally:
        if owned:
            probe.close()


def gpu_count() -> int:
    """How many GPUs the job scheduler may assign on this machine."""
    return gpu_inventory().count
