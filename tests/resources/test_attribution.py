"""GPU processes → the job (and so the user and project) holding them."""

from __future__ import annotations

import os
import subprocess
import sys

import psutil
import pytest
from aitip.catalog import Catalog
from aitip.resources.attribution import (
    CatalogJobLookup,
    JobRef,
    Lineage,
    process_lineage,
)
from aitip.resources.gpus import NvmlProbe
from aitip.resources.monitor import GpuMonitor

from .conftest import GIB, FakeClock, FakeNvml, add_job, fixed_host_stats, make_projects

TRAIN = JobRef(7, "lab", "ann", 1)
EVAL = JobRef(8, "vision", "carol", 2)
LINEAGE = {
    4242: Lineage("svc", ()),  # a job's kernel itself
    5151: Lineage("svc", (900, 1)),  # a DataLoader worker under job 8's kernel (pid 900)
    6161: Lineage("eve", (1,)),  # someone's process outside the platform
}


def monitor_with(clock: FakeClock, lookup: object) -> GpuMonitor:
    return GpuMonitor(NvmlProbe(host_stats=fixed_host_stats), job_lookup=lookup, clock=clock,
                      lineage=lambda pid: LINEAGE.get(pid, Lineage(None, ())))


def test_processes_are_attributed_to_jobs_and_users(fake_nvml: FakeNvml, clock: FakeClock) -> None:
    kernels = {4242: TRAIN, 900: EVAL}
    snapshot = monitor_with(clock, kernels.get).sample_once().to_json()
    first, second = snapshot["devices"]
    assert [(p["pid"], p["job"], p["os_user"]) for p in first["processes"]] == [
        (4242, {"id": 7, "project": "lab", "owner": "ann", "gpus": 1}, "svc")]
    assert [(p["pid"], p["job"] and p["job"]["id"], p["os_user"]) for p in second["processes"]] == [
        (5151, 8, "svc"), (6161, None, "eve")]
    assert (first["jobs"], first["users"]) == ([7], ["ann"])
    assert (second["jobs"], second["users"]) == ([8], ["carol", "eve"])


def test_attribution_follows_the_processes_between_samples(fake_nvml: FakeNvml, clock: FakeClock) -> None:
    monitor = monitor_with(clock, {4242: TRAIN, 900: EVAL}.get)
    monitor.sample_once()
    fake_nvml.gpus[0].compute = []
    fake_nvml.gpus[1].compute = [(4242, 2 * GIB)]
    fake_nvml.gpus[1].graphics = []
    first, second = monitor.sample_once().devices
    assert (first.jobs, second.jobs, second.users) == ([], [7], ["ann"])


def test_without_a_lookup_only_os_users_are_known(fake_nvml: FakeNvml, clock: FakeClock) -> None:
    second = monitor_with(clock, None).sample_once().devices[1]
    assert [p.job for p in second.processes] == [None, None] and second.users == ["eve", "svc"]


def test_a_failing_lookup_still_records_the_sample(fake_nvml: FakeNvml, clock: FakeClock) -> None:
    def unreachable(pid: int) -> JobRef:
        raise ConnectionError("catalog down")

    monitor = monitor_with(clock, unreachable)
    snapshot = monitor.sample_once()
    assert [p.job for d in snapshot.devices for p in d.processes] == [None, None, None]
    assert len(monitor.series()["host"]["t"]) == 1


def test_a_real_child_of_a_job_kernel_is_attributed(fake_nvml: FakeNvml, clock: FakeClock) -> None:
    """psutil lineage: the GPU process is a child of the process recorded as the job's kernel."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        fake_nvml.gpus[0].compute = [(child.pid, GIB)]
        monitor = GpuMonitor(NvmlProbe(host_stats=fixed_host_stats), job_lookup={os.getpid(): TRAIN}.get, clock=clock)
        process = monitor.sample_once().devices[0].processes[0]
    finally:
        child.kill()
        child.wait()
    assert (process.pid, process.job, process.os_user) == (child.pid, TRAIN.to_json(), psutil.Process().username())
    assert process_lineage(child.pid) == Lineage(None, ()), "a process that is gone has no lineage"


@pytest.mark.asyncio
async def test_catalog_lookup_finds_running_kernels_on_this_host(catalog: Catalog) -> None:
    await make_projects(catalog)
    running = add_job(catalog, "lab", "ann", 1, "running", kernel_pid=4242, kernel_host="node-1")
    add_job(catalog, "vision", "carol", 2, "running", kernel_pid=5151, kernel_host="node-2")
    add_job(catalog, "lab", "bob", 1, "succeeded", kernel_pid=6161, kernel_host="node-1")
    clock = FakeClock(0.0)
    lookup = CatalogJobLookup(catalog, host="node-1", max_age_seconds=2.0, clock=clock)
    assert lookup(4242) == JobRef(running, "lab", "ann", 1)
    assert lookup(5151) is None, "a pid on another host is another process"
    assert lookup(6161) is None, "a finished job holds nothing"
    later = add_job(catalog, "lab", "bob", 2, "starting", kernel_pid=7171, kernel_host="node-1")
    assert lookup(7171) is None, "within max_age the cached answer stands: one query per sample"
    clock.advance(2.0)
    assert lookup(7171) == JobRef(later, "lab", "bob", 2)


@pytest.mark.asyncio
async def test_the_monitor_attributes_through_the_catalog(catalog: Catalog, fake_nvml: FakeNvml,
                                                          clock: FakeClock) -> None:
    await make_projects(catalog)
    job_id = add_job(catalog, "vision", "carol", 2, "running", kernel_pid=900, kernel_host="node-1")
    snapshot = monitor_with(clock, CatalogJobLookup(catalog, host="node-1")).sample_once()
    assert snapshot.devices[1].processes[0].job == {"id": job_id, "project": "vision", "owner": "carol", "gpus": 2}
    assert snapshot.devices[1].users == ["carol", "eve"]
