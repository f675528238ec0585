"""The worker killed with SIGKILL mid-job, again and again: no job is lost, none stays stuck, and no job
ever runs twice at once (each attempt's kernel writes a trace; a later attempt never interleaves)."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aitip.jobs.models import JobListQuery, JobState, JobSubmit
from tests.jobs.conftest import ANN, make_platform
from tests.support import faults
from tests.support.notebooks import notebook

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]

KILLS = 8  # the platform-service test (tests/integration/test_platform_faults.py) does the full 20
JOBS = 24
LEASE = 3.0
HEARTBEAT = 0.5
TRACE = faults.TRACE


async def _until_ready(log_path: Path, starts: int, timeout: float = 60) -> None:
    """Wait until the ``starts``-th worker has started (it prints one line when ready)."""
    deadline = time.monotonic() + timeout
    while log_path.read_text(errors="replace").count("aitip worker ") < starts:
        if time.monotonic() > deadline:
            raise TimeoutError(log_path.read_text(errors="replace")[-3000:])
        await asyncio.sleep(0.05)


def _start_worker(home: Path, log) -> tuple[subprocess.Popen[bytes], float]:  # noqa: ANN001
    started = time.monotonic()
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "aitip"), "worker", "--slots", "2", "--pool", "1",
         "--lease-seconds", str(LEASE), "--heartbeat-seconds", str(HEARTBEAT)],
        env={**os.environ, "AITIP_HOME": str(home)}, stdout=log, stderr=subprocess.STDOUT)
    return process, started


async def test_sigkill_mid_job_loses_nothing_and_never_runs_a_job_twice(tmp_path: Path) -> None:
    platform = await make_platform(tmp_path)  # catalog, project and job service; the worker is a process
    markers = tmp_path / "markers"
    markers.mkdir()
    rng = random.Random(20261122)
    job_ids = []
    for index in range(JOBS):
        request = JobSubmit(project="lab", notebook=TRACE, max_attempts=10,
                            parameters={"marker": str(markers / f"{index}.trace"),
                                        "seconds": round(rng.uniform(0.3, 2.0), 2)})
        job_ids.append((await platform.jobs.submit(ANN, request)).id)

    log = (tmp_path / "workers.log").open("ab")
    worker, _ = _start_worker(tmp_path, log)
    kills = 0
    kill_times: list[float] = []
    doomed: set[int] = set()  # the kernels below each worker when it died
    try:
        while kills < KILLS:
            await _until_ready(tmp_path / "workers.log", kills + 1)
            await asyncio.sleep(rng.uniform(0.3, 3.0))
            doomed |= faults.kernels_below(worker.pid)
            worker.send_signal(signal.SIGKILL)
            kill_times.append(time.time())
            worker.wait()
            kills += 1
            worker, _ = _start_worker(tmp_path, log)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            listed = await platform.jobs.list(ANN, JobListQuery(limit=500))
            if all(job.state.finished for job in listed.items):
                break
            await asyncio.sleep(0.5)
    finally:
        doomed |= faults.kernels_below(worker.pid)
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
        log.close()

    jobs = {job.id: job for job in (await platform.jobs.list(ANN, JobListQuery(limit=500))).items}
    assert kills == KILLS
    not_finished = {i: j.state.value for i, j in jobs.items() if not j.state.finished}
    assert not_finished == {}, f"jobs lost or stuck: {not_finished}\n{(tmp_path / 'workers.log').read_text()[-3000:]}"
    # A job killed on every one of its attempts is failed with that reason: finished, not lost.
    unexplained = {i: (j.state.value, j.attempt, j.reason) for i, j in jobs.items()
                   if j.state is not JobState.succeeded
                   and not (j.state is JobState.failed and j.attempt == j.max_attempts
                            and "no attempts are left" in (j.reason or ""))}
    assert unexplained == {}
    assert sum(j.state is JobState.succeeded for j in jobs.values()) >= JOBS // 2
    retried = sum(1 for j in jobs.values() if j.attempt > 1)
    assert retried > 0, "no job was interrupted: the test did not test recovery"

    for index, job_id in enumerate(job_ids):
        faults.check_never_twice(markers / f"{index}.trace", jobs[job_id].attempt,
                                 jobs[job_id].state is JobState.succeeded)

    # Stuck: how long after a kill its running jobs were found and requeued (the restarted worker sees the
    # dead worker's process gone; a worker elsewhere would wait for the lease to expire).
    delays = []
    for job_id in jobs:
        events, _ = await platform.jobs.events(ANN, job_id)
        for event in events:
            if event.data.get("recovered"):
                at = event.at.timestamp()
                delays.append(at - max(k for k in kill_times if k <= at))
    assert delays and max(delays) <= LEASE + HEARTBEAT + 10, delays
    print(f"\n{KILLS} SIGKILLs, {JOBS} jobs: {len(delays)} recoveries, {retried} jobs re-run, "
          f"recovery after kill max {max(delays):.2f} s / median {sorted(delays)[len(delays) // 2]:.2f} s, "
          f"{sum(j.state is JobState.failed for j in jobs.values())} failed after {jobs[job_ids[0]].max_attempts} "
          f"killed attempts, 0 lost, 0 run twice at once")

    assert doomed, "no kernel ran below a killed worker: the test did not test their cleanup"
    leftovers = await asyncio.to_thread(faults.survivors, doomed)
    assert leftovers == set(), f"kernels left running after the workers died: {sorted(leftovers)}"
    platform.catalog.dispose()


TRACKED = notebook("import mlflow\nmlflow.log_metric('loss', 0.25, step=1)\nprint('logged')\n",
                          parameters="seed = 0")
STORE_STEPS = ["tracking_store.locked", "tracking_store.initial_tables", "tracking_store.migrated",
               "tracking_store.default_experiment", "tracking_store.wal", "tracking_store.synced",
               "tracking_store.replaced"]


@pytest.mark.parametrize("step", STORE_STEPS)
async def test_a_worker_killed_while_creating_the_tracking_store_comes_back_and_every_job_succeeds(
        tmp_path: Path, step: str) -> None:
    """The worker creates the MLflow store at start; SIGKILL at each step of that creation, then a restart:
    the store is whole and every job is a tracked run."""
    platform = await make_platform(tmp_path)
    store = tmp_path / "mlflow.sqlite"
    job_ids = [(await platform.jobs.submit(ANN, JobSubmit(project="lab", notebook=TRACKED,
                                                          parameters={"seed": index}))).id for index in range(2)]
    log = (tmp_path / "workers.log").open("ab")
    fault = {"AITIP_FAULT_POINT": step, "AITIP_FAULT_ONCE_FILE": str(tmp_path / "fired")}
    command = [str(Path(sys.executable).parent / "aitip"), "worker", "--slots", "2", "--pool", "1",
               "--tracking-uri", f"sqlite:///{store}"]
    killed = subprocess.Popen(command, env={**os.environ, "AITIP_HOME": str(tmp_path), **fault},
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        assert killed.wait(120) == -signal.SIGKILL, (tmp_path / "workers.log").read_text()[-3000:]
        assert (tmp_path / "fired").read_text() == step
        worker = subprocess.Popen(command, env={**os.environ, "AITIP_HOME": str(tmp_path)},
                                  stdout=log, stderr=subprocess.STDOUT)
        try:
            jobs = [await platform.wait(job_id, JobState.succeeded, JobState.failed, timeout=180) for job_id in job_ids]
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(60)
    finally:
        log.close()
    assert [job.state for job in jobs] == [JobState.succeeded] * 2, [job.reason for job in jobs]
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{store}")
    assert [client.get_run(job.mlflow_run_id).data.metrics for job in jobs] == [{"loss": 0.25}] * 2
    platform.catalog.dispose()
