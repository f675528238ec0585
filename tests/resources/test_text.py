"""The node's resources as the CLI writes them for a person: read on the fake two-GPU node (the NVML library
faked, as in test_gpus.py) and on this machine's answer without a GPU."""

from __future__ import annotations

import pytest

from aitip.resources.gpus import NvmlProbe
from aitip.resources.text import history_text, no_gpu_text, snapshot_text

from .conftest import FakeNvml


def test_each_gpu_reads_with_its_use_and_the_jobs_on_it(fake_nvml: FakeNvml) -> None:
    with NvmlProbe() as probe:
        snapshot = probe.snapshot(now=1_700_000_000.0).to_json()
    snapshot["devices"][0]["jobs"] = [12]
    snapshot["devices"][0]["processes"][0]["job"] = {"id": 12, "owner": "ann", "project": "vision"}
    lines = snapshot_text(snapshot).splitlines()
    assert lines[0].startswith("at 2023-11-1") and lines[1].startswith(f"host {snapshot['host']['hostname']}: CPU ")
    assert lines[2] == "driver 550.54.15"
    header, first, second = lines[3:]
    assert header.split() == ["GPU", "NAME", "UTILIZATION", "MEMORY", "TEMPERATURE", "POWER", "JOB"]
    assert "NVIDIA H100 80GB HBM3" in first and "87 %" in first and "30.0 of 80.0 GiB" in first
    assert "71 °C" in first and "412 W" in first and first.endswith("12 (ann)")
    assert second.startswith("1 ") and second.endswith("-")


def test_without_a_gpu_the_host_and_the_reason_are_said() -> None:
    snapshot = {"time": 1_700_000_000.0, "gpu_available": False, "no_gpu_reason": "no GPU: NVML unavailable",
                "driver_version": None, "devices": [],
                "host": {"hostname": "vm", "cpu_percent": 12.5, "cpu_count": 2, "memory_used_bytes": 2 * 1024 ** 3,
                         "memory_available_bytes": 6 * 1024 ** 3, "memory_total_bytes": 8 * 1024 ** 3,
                         "load_average": [0.5, 0.25, 0.1]}}
    lines = snapshot_text(snapshot).splitlines()
    assert lines[1] == "host vm: CPU 12 % of 2 cores (load 0.50 0.25 0.10), memory 2.0 of 8.0 GiB used"
    assert lines[2] == "no GPU: NVML unavailable"


def test_the_history_is_summed_up_over_its_window() -> None:
    history = {"now": 1_700_000_100.0, "since": None, "interval_seconds": 5.0, "retention_seconds": 3600.0,
               "gpu_available": True, "no_gpu_reason": None,
               "host": {"hostname": "node-1", "cpu_count": 8, "memory_total_bytes": 64 * 1024 ** 3,
                        "t": [1_700_000_000.0, 1_700_000_005.0, 1_700_000_010.0], "cpu_percent": [10.0, 50.0, None],
                        "memory_used_bytes": [8 * 1024 ** 3, 16 * 1024 ** 3, None], "load_1m": [1.0, 2.0, None]},
               "devices": [{"index": 0, "utilization_gpu_percent": [90.0, 70.0, None]}]}
    lines = history_text(history).splitlines()
    assert lines[0].startswith("3 samples from 2023-11-1") and lines[0].endswith("(one every 5 s)")
    assert lines[1] == "host node-1: CPU mean 30 %, max 50 %; memory at most 16.0 of 64.0 GiB"
    assert lines[2] == "GPU 0: mean 80 %, max 90 %"
    assert history_text({**history, "host": {**history["host"], "t": []}}) == "no samples yet (one every 5 s)"


def test_why_there_is_no_gpu_is_said_in_the_readers_language(real_nvml_without_gpu: None,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The probe writes its reason in English into the samples; a Chinese shell reads the probe's own words in
    Chinese and NVML's error as NVML wrote it, and a reason the probe did not write as it was written."""
    probe = NvmlProbe()
    reason = probe.snapshot().no_gpu_reason
    probe.close()
    assert reason == "no GPU: NVML unavailable (NVML Shared Library Not Found)"
    assert no_gpu_text(reason) == reason
    monkeypatch.setenv("AITIP_LANG", "zh_CN")
    assert no_gpu_text(reason) == "无 GPU：NVML 不可用（NVML Shared Library Not Found）"
    assert no_gpu_text("no GPU: nvidia-ml-py (pynvml) is not installed") == "无 GPU：未安装 nvidia-ml-py（pynvml）"
    assert no_gpu_text("no GPU: the driver is being upgraded") == "无 GPU：the driver is being upgraded"
    assert no_gpu_text(None) == "无 GPU"
