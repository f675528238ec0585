"""A fake two-GPU node behind the real ``pynvml`` names (NVIDIA ships no NVML fake).

Tests change a ``FakeGpu``'s fields between samples, make any NVML function fail with any NVML
error code on one device, or make ``nvmlInit`` fail as it does on a machine without a driver.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pynvml
import pytest

GIB = 1024**3


@dataclass
class FakeGpu:
    uuid: str
    name: str
    gpu_percent: int = 0
    memory_percent: int = 0
    memory_used: int = 0
    memory_total: int = 80 * GIB
    temperature: int = 35
    power_mw: int = 60_000
    power_limit_mw: int = 700_000
    compute: list[tuple[int, int | None]] = field(default_factory=list)  # (pid, used bytes)
    graphics: list[tuple[int, int | None]] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)  # pynvml function name -> NVML error code


@dataclass(frozen=True)
class FakeHandle:
    index: int


class FakeNvml:
    def __init__(self, gpus: list[FakeGpu]) -> None:
        self.gpus = gpus
        self.init_error: int | None = None
        self.initialized = 0
        self.calls: Counter[str] = Counter()
        self.driver_version = "550.54.15"

    def _check(self, function: str, handle: FakeHandle | None = None) -> FakeGpu | None:
        self.calls[function] += 1
        if not self.initialized:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_UNINITIALIZED)
        if handle is None:
            return None
        if handle.index >= len(self.gpus):
            raise pynvml.NVMLError(pynvml.NVML_ERROR_GPU_IS_LOST)
        gpu = self.gpus[handle.index]
        if function in gpu.failures:
            raise pynvml.NVMLError(gpu.failures[function])
        return gpu

    def nvmlInit(self) -> None:
        self.calls["nvmlInit"] += 1
        if self.init_error is not None:
            raise pynvml.NVMLError(self.init_error)
        self.initialized += 1

    def nvmlShutdown(self) -> None:
        self._check("nvmlShutdown")
        self.initialized -= 1

    def nvmlSystemGetDriverVersion(self) -> str:
        self._check("nvmlSystemGetDriverVersion")
        return self.driver_version

    def nvmlDeviceGetCount(self) -> int:
        self._check("nvmlDeviceGetCount")
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeHandle:
        self._check("nvmlDeviceGetHandleByIndex", FakeHandle(index))
        return FakeHandle(index)

    def nvmlDeviceGetUUID(self, handle: FakeHandle) -> str:
        return self._check("nvmlDeviceGetUUID", handle).uuid

    def nvmlDeviceGetName(self, handle: FakeHandle) -> bytes:
        return self._check("nvmlDeviceGetName", handle).name.encode()  # older bindings return bytes

    def nvmlDeviceGetUtilizationRates(self, handle: FakeHandle) -> Any:
        gpu = self._check("nvmlDeviceGetUtilizationRates", handle)
        return SimpleNamespace(gpu=gpu.gpu_percent, memory=gpu.memory_percent)

    def nvmlDeviceGetMemoryInfo(self, handle: FakeHandle) -> Any:
        gpu = self._check("nvmlDeviceGetMemoryInfo", handle)
        return SimpleNamespace(used=gpu.memory_used, total=gpu.memory_total, free=gpu.memory_total - gpu.memory_used)

    def nvmlDeviceGetTemperature(self, handle: FakeHandle, sensor: int) -> int:
        assert sensor == pynvml.NVML_TEMPERATURE_GPU
        return self._check("nvmlDeviceGetTemperature", handle).temperature

    def nvmlDeviceGetPowerUsage(self, handle: FakeHandle) -> int:
        return self._check("nvmlDeviceGetPowerUsage", handle).power_mw

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: FakeHandle) -> int:
        return self._check("nvmlDeviceGetEnforcedPowerLimit", handle).power_limit_mw

    def nvmlDeviceGetComputeRunningProcesses(self, handle: FakeHandle) -> list[Any]:
        gpu = self._check("nvmlDeviceGetComputeRunningProcesses", handle)
        return [SimpleNamespace(pid=pid, usedGpuMemory=used) for pid, used in gpu.compute]

    def nvmlDeviceGetGraphicsRunningProcesses(self, handle: FakeHandle) -> list[Any]:
        gpu = self._check("nvmlDeviceGetGraphicsRunningProcesses", handle)
        return [SimpleNamespace(pid=pid, usedGpuMemory=used) for pid, used in gpu.graphics]

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        for name in dir(self):
            if name.startswith("nvml"):
                assert hasattr(pynvml, name), f"pynvml has no {name}: the fake would not replace anything"
                monkeypatch.setattr(pynvml, name, getattr(self, name))


def two_gpu_node() -> list[FakeGpu]:
    return [
        FakeGpu("GPU-aaaaaaaa-0000", "NVIDIA H100 80GB HBM3", gpu_percent=87, memory_percent=41,
                memory_used=30 * GIB, temperature=71, power_mw=412_500, compute=[(4242, 20 * GIB)]),
        FakeGpu("GPU-bbbbbbbb-1111", "NVIDIA H100 80GB HBM3", gpu_percent=3, memory_percent=0,
                memory_used=1 * GIB, temperature=38, power_mw=71_250, compute=[(5151, 512 * 1024**2)],
                graphics=[(5151, 256 * 1024**2), (6161, None)]),
    ]


@pytest.fixture
def fake_nvml(monkeypatch: pytest.MonkeyPatch) -> FakeNvml:
    monkeypatch.delenv("AITIP_GPUS", raising=False)
    fake = FakeNvml(two_gpu_node())
    fake.install(monkeypatch)
    return fake


@pytest.fixture
def real_nvml_without_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """The unpatched pynvml on a machine with no driver (this one); skipped where a GPU is present."""
    monkeypatch.delenv("AITIP_GPUS", raising=False)
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError_LibraryNotFound:
        return
    except pynvml.NVMLError as exc:
        pytest.skip(f"NVML fails here in another way ({exc}); the no-driver case needs a machine without one")
    pynvml.nvmlShutdown()
    pytest.skip("this machine has an NVIDIA driver; the no-GPU case runs on the fake (test_no_gpu_fake)")


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def fixed_host_stats() -> Any:
    from aitip.resources.gpus import HostStats

    return HostStats("node-1", cpu_percent=25.0, cpu_count=64, memory_used_bytes=100 * GIB,
                     memory_available_bytes=400 * GIB, memory_total_bytes=512 * GIB, load_average=[3.0, 2.0, 1.0])


USERS = ("ann", "bob", "carol", "vic", "dan")


async def make_projects(catalog: Any) -> None:
    """lab: ann (admin), bob (developer), vic (viewer); vision: carol (admin), group vision-team (viewer)."""
    from aitip.identity.directory import DirectoryEntry
    from aitip.identity.principal import Principal
    from aitip.identity.roles import Role
    from aitip.projects.models import MemberAdd, ProjectCreate
    from aitip.projects.service import ProjectService

    from tests.support.directories import FixedDirectory

    users = {name: DirectoryEntry(name, frozenset(), False) for name in USERS}
    projects = ProjectService(catalog, FixedDirectory(users, {"vision-team"}))
    await projects.create(Principal("ann"), ProjectCreate(name="lab"))
    await projects.add_member(Principal("ann"), "lab", MemberAdd(user="bob", role=Role.developer))
    await projects.add_member(Principal("ann"), "lab", MemberAdd(user="vic", role=Role.viewer))
    await projects.create(Principal("carol"), ProjectCreate(name="vision"))
    await projects.add_member(Principal("carol"), "vision", MemberAdd(group="vision-team", role=Role.viewer))


def add_job(catalog: Any, project: str, owner: str, gpus: int, state: str, started_at: Any = None,
            finished_at: Any = None, kernel_pid: int | None = None, kernel_host: str | None = None) -> int:
    """A job row as the worker leaves it (started/finished times, kernel pid and host while running)."""
    from aitip.jobs.tables import JobRecord
    from aitip.projects.tables import ProjectRecord
    from sqlalchemy import select

    with catalog.session() as session:
        project_id = session.scalar(select(ProjectRecord.id).where(ProjectRecord.name == project))
        job = JobRecord(project_id=project_id, owner=owner, state=state, notebook_name="train.ipynb",
                        notebook_sha256="0" * 64, kernel="aitip-python", gpus=gpus, started_at=started_at,
                        finished_at=finished_at, kernel_pid=kernel_pid, kernel_host=kernel_host)
        session.add(job)
        session.flush()
        return job.id
