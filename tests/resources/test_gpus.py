"""The NVML probe on a fake two-GPU node and on this machine, which has no GPU."""

from __future__ import annotations

import json
import os

import psutil
import pynvml
import pytest
from aitip.resources.gpus import NvmlProbe, Snapshot

from .conftest import GIB, FakeNvml


def test_two_devices_reported_with_their_values(fake_nvml: FakeNvml) -> None:
    with NvmlProbe() as probe:
        snapshot = probe.snapshot()
    assert snapshot.gpu_available and snapshot.no_gpu_reason is None
    assert snapshot.driver_version == "550.54.15"
    first, second = snapshot.devices
    assert (first.index, first.uuid, first.name) == (0, "GPU-aaaaaaaa-0000", "NVIDIA H100 80GB HBM3")
    assert (first.utilization_gpu_percent, first.utilization_memory_percent) == (87.0, 41.0)
    assert (first.memory_used_bytes, first.memory_total_bytes) == (30 * GIB, 80 * GIB)
    assert (first.temperature_c, first.power_w, first.power_limit_w) == (71.0, 412.5, 700.0)
    assert [(p.pid, p.used_memory_bytes, p.kinds) for p in first.processes] == [(4242, 20 * GIB, ["compute"])]
    assert (second.index, second.uuid, second.utilization_gpu_percent, second.power_w) == (
        1, "GPU-bbbbbbbb-1111", 3.0, 71.25)
    assert first.errors == second.errors == {}


def test_a_process_with_compute_and_graphics_contexts_is_one_entry(fake_nvml: FakeNvml) -> None:
    with NvmlProbe() as probe:
        second = probe.snapshot().devices[1]
    assert [(p.pid, p.used_memory_bytes, p.kinds) for p in second.processes] == [
        (5151, 512 * 1024**2, ["compute", "graphics"]),
        (6161, None, ["graphics"]),  # NVML cannot say how much (WDDM, some MIG setups)
    ]


def test_values_changed_between_samples_are_read_again(fake_nvml: FakeNvml) -> None:
    with NvmlProbe() as probe:
        assert probe.snapshot().devices[0].utilization_gpu_percent == 87.0
        fake_nvml.gpus[0].gpu_percent = 12
        fake_nvml.gpus[0].compute = []
        again = probe.snapshot().devices[0]
    assert again.utilization_gpu_percent == 12.0 and again.processes == []


def test_nvml_is_initialized_once_and_shut_down_on_close(fake_nvml: FakeNvml) -> None:
    probe = NvmlProbe()
    for _ in range(3):
        probe.snapshot()
    assert fake_nvml.calls["nvmlInit"] == 1 and fake_nvml.initialized == 1
    probe.close()
    assert fake_nvml.initialized == 0 and fake_nvml.calls["nvmlShutdown"] == 1


UNSUPPORTED = [
    ("nvmlDeviceGetUtilizationRates", ("utilization_gpu_percent", "utilization_memory_percent")),
    ("nvmlDeviceGetMemoryInfo", ("memory_used_bytes", "memory_total_bytes")),
    ("nvmlDeviceGetTemperature", ("temperature_c",)),
    ("nvmlDeviceGetPowerUsage", ("power_w",)),
    ("nvmlDeviceGetEnforcedPowerLimit", ("power_limit_w",)),
    ("nvmlDeviceGetUUID", ("uuid",)),
    ("nvmlDeviceGetName", ("name",)),
]


@pytest.mark.parametrize(("function", "fields"), UNSUPPORTED, ids=[row[0] for row in UNSUPPORTED])
def test_a_metric_the_device_does_not_support_is_none_and_the_rest_still_read(
        fake_nvml: FakeNvml, function: str, fields: tuple[str, ...]) -> None:
    fake_nvml.gpus[1].failures[function] = pynvml.NVML_ERROR_NOT_SUPPORTED
    with NvmlProbe() as probe:
        first, second = probe.snapshot().devices
    for name in fields:
        assert getattr(second, name) is None, name
        assert getattr(first, name) is not None, name
    assert second.errors == {}, "not supported is a normal answer, not an error"
    untouched = {"utilization_gpu_percent", "memory_used_bytes", "temperature_c", "power_w", "uuid"} - set(fields)
    assert all(getattr(second, name) is not None for name in untouched)
    assert [p.pid for p in second.processes] == [5151, 6161]


@pytest.mark.parametrize(("code", "message"), [
    (pynvml.NVML_ERROR_NO_PERMISSION, "Insufficient Permissions"),
    (pynvml.NVML_ERROR_UNKNOWN, "Unknown Error"),
])
def test_other_nvml_errors_on_a_metric_are_none_and_reported(fake_nvml: FakeNvml, code: int, message: str) -> None:
    fake_nvml.gpus[0].failures["nvmlDeviceGetComputeRunningProcesses"] = code
    fake_nvml.gpus[0].failures["nvmlDeviceGetPowerUsage"] = code
    with NvmlProbe() as probe:
        first = probe.snapshot().devices[0]
    assert first.power_w is None and first.processes == []
    assert first.errors == {"power_w": message, "compute_processes": message}
    assert first.utilization_gpu_percent == 87.0


def test_a_lost_gpu_is_listed_with_its_error_and_no_values(fake_nvml: FakeNvml) -> None:
    fake_nvml.gpus[1].failures["nvmlDeviceGetHandleByIndex"] = pynvml.NVML_ERROR_GPU_IS_LOST
    with NvmlProbe() as probe:
        first, second = probe.snapshot().devices
    assert first.utilization_gpu_percent == 87.0
    assert second.index == 1 and second.uuid is None and second.utilization_gpu_percent is None
    assert second.errors == {"handle": "GPU is lost"}


def test_snapshot_is_plain_json(fake_nvml: FakeNvml) -> None:
    with NvmlProbe() as probe:
        snapshot = probe.snapshot(now=1_700_000_000.0)
    data = json.loads(json.dumps(snapshot.to_json()))
    assert data["time"] == 1_700_000_000.0
    assert set(data) == {"time", "host", "gpu_available", "no_gpu_reason", "driver_version", "devices"}
    assert data["devices"][0]["processes"][0] == {"pid": 4242, "used_memory_bytes": 20 * GIB, "kinds": ["compute"],
                                                  "os_user": None, "job": None}
    assert set(data["host"]) == {"hostname", "cpu_percent", "cpu_count", "memory_used_bytes",
                                 "memory_available_bytes", "memory_total_bytes", "load_average"}


def _assert_host_only(snapshot: Snapshot) -> None:
    assert not snapshot.gpu_available and snapshot.devices == []
    assert snapshot.no_gpu_reason.startswith("no GPU")
    host = snapshot.host
    assert host.cpu_count == psutil.cpu_count() and host.memory_total_bytes == psutil.virtual_memory().total
    assert 0 < host.memory_used_bytes < host.memory_total_bytes
    assert 0.0 <= host.cpu_percent <= 100.0 and len(host.load_average) == 3
    json.dumps(snapshot.to_json())


def test_no_gpu_on_this_machine_reports_the_host(real_nvml_without_gpu: None) -> None:
    """The real pynvml: nvmlInit raises NVMLError_LibraryNotFound without a driver."""
    probe = NvmlProbe()
    snapshot = probe.snapshot()
    _assert_host_only(snapshot)
    assert snapshot.driver_version is None
    assert snapshot.no_gpu_reason == "no GPU: NVML unavailable (NVML Shared Library Not Found)"
    assert probe.device_count() == 0 and probe.devices() == []
    probe.close()


@pytest.mark.parametrize(("code", "reason"), [
    (pynvml.NVML_ERROR_LIBRARY_NOT_FOUND, "no GPU: NVML unavailable (NVML Shared Library Not Found)"),
    (pynvml.NVML_ERROR_DRIVER_NOT_LOADED, "no GPU: NVML unavailable (Driver Not Loaded)"),
    (None, "no GPU: NVML found no devices"),
])
def test_no_gpu_fake(fake_nvml: FakeNvml, code: int | None, reason: str) -> None:
    """The same answer on any machine, driver or not: init failing, or a driver with zero devices."""
    if code is None:
        fake_nvml.gpus.clear()
    fake_nvml.init_error = code
    with NvmlProbe() as probe:
        snapshot = probe.snapshot()
        probe.snapshot()
    _assert_host_only(snapshot)
    assert snapshot.no_gpu_reason == reason
    assert snapshot.driver_version == (None if code else "550.54.15")
    assert fake_nvml.calls["nvmlInit"] == 1, "a failed init is not retried on every sample"


def test_host_load_average_is_the_systems() -> None:
    from aitip.resources.gpus import read_host_stats

    host = read_host_stats()
    assert host.load_average == pytest.approx([round(v, 2) for v in os.getloadavg()], abs=0.5)
