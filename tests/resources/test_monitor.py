"""The sampler: bounded history by count and by age, downsampling, and its life in an event loop."""

from __future__ import annotations

import asyncio
import gc
import json
import tracemalloc

import pytest
from aitip.resources.gpus import NvmlProbe
from aitip.resources.monitor import (
    DEVICE_FIELDS,
    HOST_FIELDS,
    GpuMonitor,
    TimeSeries,
    columns,
    downsample,
)
from traitlets import TraitError

from .conftest import GIB, FakeClock, FakeNvml, fixed_host_stats


def make_monitor(clock: FakeClock, **traits: object) -> GpuMonitor:
    return GpuMonitor(NvmlProbe(host_stats=fixed_host_stats), clock=clock, lineage=lambda pid: _no_lineage(), **traits)


def _no_lineage():
    from aitip.resources.attribution import Lineage

    return Lineage(None, ())


def test_series_follow_the_devices_between_samples(fake_nvml: FakeNvml, clock: FakeClock) -> None:
    monitor = make_monitor(clock)
    for percent in (10, 50, 90):
        fake_nvml.gpus[0].gpu_percent = percent
        fake_nvml.gpus[1].memory_used = percent * GIB
        monitor.sample_once()
        clock.advance(5)
    series = json.loads(json.dumps(monitor.series()))
    first, second = series["devices"]
    assert (first["index"], first["uuid"], first["memory_total_bytes"], first["power_limit_w"]) == (
        0, "GPU-aaaaaaaa-0000", 80 * GIB, 700.0)
    assert first["t"] == [1_700_000_000.0, 1_700_000_005.0, 1_700_000_010.0]
    assert first["utilization_gpu_percent"] == [10.0, 50.0, 90.0]
    assert second["memory_used_bytes"] == [10 * GIB, 50 * GIB, 90 * GIB]
    assert series["host"]["cpu_percent"] == [25.0] * 3 and series["host"]["load_1m"] == [3.0] * 3
    assert (series["host"]["hostname"], series["host"]["cpu_count"]) == ("node-1", 64)
    assert set(first) == {"index", "uuid", "name", "memory_total_bytes", "power_limit_w", "t", *DEVICE_FIELDS}
    assert set(series["host"]) == {"hostname", "cpu_count", "memory_total_bytes", "t", *HOST_FIELDS}
    assert series["gpu_available"] is True


BOUNDS = [
    # (max_points, retention_seconds, seconds between samples, samples, points kept)
    (5, 3600.0, 1.0, 12, 5),  # the count bound
    (100, 10.0, 3.0, 12, 4),  # the age bound: points at now-9, -6, -3, 0
    (3, 10.0, 3.0, 12, 3),  # both: the tighter wins
    (100, 3600.0, 1.0, 12, 12),  # neither reached
]


@pytest.mark.parametrize(("max_points", "retention", "step", "samples", "kept"), BOUNDS)
def test_series_are_bounded_by_count_and_by_age(fake_nvml: FakeNvml, clock: FakeClock, max_points: int,
                                                retention: float, step: float, samples: int, kept: int) -> None:
    monitor = make_monitor(clock, max_points=max_points, retention_seconds=retention)
    times = []
    for _ in range(samples):
        times.append(clock.now)
        monitor.sample_once()
        clock.advance(step)
    clock.advance(-step)
    series = monitor.series()
    assert series["host"]["t"] == times[-kept:]
    assert [len(device["t"]) for device in series["devices"]] == [kept, kept]
    assert monitor.points_held() == 3 * kept


def test_history_ages_out_even_when_sampling_has_stopped(fake_nvml: FakeNvml, clock: FakeClock) -> None:
    monitor = make_monitor(clock, retention_seconds=60)
    monitor.sample_once()
    clock.advance(61)
    series = monitor.series()
    assert series["host"]["t"] == [] and series["devices"] == [] and monitor.points_held() == 0


def test_a_device_that_disappears_keeps_its_history_until_retention(fake_nvml: FakeNvml, clock: FakeClock) -> None:
    monitor = make_monitor(clock, retention_seconds=30)
    monitor.sample_once()
    fake_nvml.gpus.pop()
    clock.advance(20)
    monitor.sample_once()
    assert [(d["uuid"], len(d["t"])) for d in monitor.series()["devices"]] == [
        ("GPU-aaaaaaaa-0000", 2), ("GPU-bbbbbbbb-1111", 1)]
    clock.advance(20)
    monitor.sample_once()
    assert [(d["uuid"], len(d["t"])) for d in monitor.series()["devices"]] == [("GPU-aaaaaaaa-0000", 2)]


def test_series_since(fake_nvml: FakeNvml, clock: FakeClock) -> None:
    monitor = make_monitor(clock)
    for _ in range(6):
        monitor.sample_once()
        clock.advance(10)
    series = monitor.series(since=1_700_000_030.0)
    assert series["host"]["t"] == [1_700_000_030.0, 1_700_000_040.0, 1_700_000_050.0]
    assert series["since"] == 1_700_000_030.0


def test_series_downsampled_on_request(fake_nvml: FakeNvml, clock: FakeClock) -> None:
    monitor = make_monitor(clock)
    for percent in range(10):
        fake_nvml.gpus[0].gpu_percent = percent * 10
        monitor.sample_once()
        clock.advance(1)
    device = monitor.series(max_points=3)["devices"][0]
    assert device["utilization_gpu_percent"] == [15.0, 55.0, 85.0]
    assert device["t"] == [1_700_000_001.5, 1_700_000_005.5, 1_700_000_008.5]
    with pytest.raises(ValueError, match="max_points"):
        monitor.series(max_points=0)


DOWNSAMPLE = [
    # (values, max_points, expected)
    ([1, 2, 3], 5, [1, 2, 3]),
    ([1, 2, 3, 4], 2, [1.5, 3.5]),
    ([1, 2, 3, 4, 5], 2, [2.0, 4.5]),
    ([1, 2, 3, 4, 5, 6, 7], 3, [2.0, 5.0, 7.0]),  # runs of ceil(7/3) = 3, the last one shorter
    ([1, None, 3, None], 2, [1.0, 3.0]),
    ([None, None, 5, 7], 2, [None, 6.0]),
    ([4] * 1000, 1, [4.0]),
]


@pytest.mark.parametrize(("values", "max_points", "expected"), DOWNSAMPLE)
def test_downsample(values: list[float | None], max_points: int, expected: list[float | None]) -> None:
    points = [(float(t), value) for t, value in enumerate(values)]
    reduced = downsample(points, max_points)
    assert len(reduced) <= max_points
    assert [value for _t, value in reduced] == expected


def test_time_series_refuses_points_of_the_wrong_shape() -> None:
    series = TimeSeries(("a", "b"), max_points=3, retention_seconds=10)
    with pytest.raises(ValueError, match="expected 2 values"):
        series.append(0.0, (1,))
    assert columns(("a", "b"), []) == {"t": [], "a": [], "b": []}


def test_memory_stays_bounded_over_a_long_run(fake_nvml: FakeNvml, clock: FakeClock) -> None:
    monitor = make_monitor(clock, max_points=50, retention_seconds=1e9)
    tracemalloc.start()
    try:
        for _ in range(100):  # every point held is now one allocated under tracing
            clock.advance(1)
            monitor.sample_once()
        gc.collect()  # a full collection also empties CPython's free lists (freed tuples it keeps for reuse)
        before, _ = tracemalloc.get_traced_memory()
        for _ in range(500):
            clock.advance(1)
            monitor.sample_once()
        gc.collect()
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert monitor.points_held() == 3 * 50
    # 500 more samples of three series would hold > 100 kB if kept; bounded, the size stays put.
    assert after - before < 16 * 1024, f"grew by {after - before} bytes"


@pytest.mark.parametrize(("trait", "value"), [("interval_seconds", 0.0), ("retention_seconds", -1.0),
                                              ("max_points", 0)])
def test_bounds_must_be_positive(trait: str, value: float) -> None:
    with pytest.raises(TraitError, match=trait):
        GpuMonitor(NvmlProbe(host_stats=fixed_host_stats), **{trait: value})


@pytest.mark.asyncio
async def test_start_samples_on_the_interval_and_stop_closes_nvml(fake_nvml: FakeNvml,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monitor = GpuMonitor(interval_seconds=0.05)  # builds, and so owns, its probe
    read = monitor.probe.snapshot
    failures = [RuntimeError("a transient failure")]

    def flaky_snapshot(now: float | None = None):
        if failures:
            raise failures.pop()
        return read(now)

    monkeypatch.setattr(monitor.probe, "snapshot", flaky_snapshot)
    await monitor.start()
    await monitor.start()  # idempotent
    assert monitor.running
    for _ in range(100):
        if len(monitor.series()["host"]["t"]) >= 3:
            break
        await asyncio.sleep(0.02)
    assert not failures and len(monitor.series()["host"]["t"]) >= 3, "the loop goes on after a failed sample"
    assert len(monitor.current().devices) == 2
    await monitor.stop()
    assert not monitor.running and fake_nvml.initialized == 0 and fake_nvml.calls["nvmlShutdown"] == 1
    samples = len(monitor.series()["host"]["t"])
    await asyncio.sleep(0.12)
    assert len(monitor.series()["host"]["t"]) == samples, "no sampling after stop"
