"""The platform service itself (the hub-managed `aitip` service, whose process runs the job worker) killed
with SIGKILL mid-job again and again. The hub restarts it; no job is lost, none stays stuck, none runs twice
at once, and no kernel outlives its platform."""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import httpx
import pytest

from aitip.launcher import descendants
from tests.support import faults
from tests.support.paths import shared_directory
from tests.support.platform import RunningPlatform, start_platform

pytestmark = pytest.mark.integration
KILLS = 20
JOBS = 16


def _service_pid(platform: RunningPlatform) -> int | None:
    for pid in descendants(platform.process.pid):
        try:
            if b"aitip.server.platform" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
        except OSError:
            continue
    return None


def _wait_healthy(platform: RunningPlatform, previous: int | None, timeout: float = 60) -> int:
    """Until a new platform service process answers its health check; returns its pid."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid = _service_pid(platform)
        if pid is not None and pid != previous:
            try:
                if httpx.get(f"{platform.url}/services/aitip/api/aitip/v1/health", timeout=2).status_code == 200:
                    return pid
            except httpx.HTTPError:
                pass
        time.sleep(0.1)
    raise TimeoutError(f"the platform service did not come back\n{platform.log()[-3000:]}")


def test_sigkill_of_the_platform_service_loses_no_job(tmp_path: Path) -> None:
    platform = start_platform(tmp_path / "home")
    doomed: set[int] = set()  # the kernels below the platform service each time it was killed, and at its stop
    markers = shared_directory(tmp_path / "markers")  # job kernels run as the job owner's account
    rng = random.Random(11)
    try:
        token = platform.token(platform.admin_user, platform.admin_password)
        api = platform.api(token)
        assert api.post("projects", json={"name": "faults"}).status_code == 201
        job_ids = []
        for index in range(JOBS):
            response = api.post("jobs", json={"project": "faults", "notebook": faults.TRACE, "max_attempts": 10,
                                              "parameters": {"marker": str(markers / f"{index}.trace"),
                                                             "seconds": round(rng.uniform(0.3, 2.0), 2)}})
            assert response.status_code == 201, response.text
            job_ids.append(response.json()["id"])
        pid = _wait_healthy(platform, None)
        kill_times = []
        for _ in range(KILLS):
            time.sleep(rng.uniform(0.5, 3.0))
            doomed |= faults.kernels_below(pid)
            os.kill(pid, signal.SIGKILL)
            kill_times.append(time.time())
            pid = _wait_healthy(platform, pid)
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            try:
                jobs = {j["id"]: j for j in api.get("jobs", params={"project": "faults", "limit": 500}).json()["items"]}
            except httpx.HTTPError:
                time.sleep(0.5)
                continue
            if all(j["state"] in ("succeeded", "failed", "cancelled", "timed_out") for j in jobs.values()):
                break
            time.sleep(0.5)
        recovered = []
        for job_id in job_ids:
            for event in api.get(f"jobs/{job_id}/events").json()["items"]:
                if event["data"].get("recovered"):
                    at = time.mktime(time.strptime(event["at"][:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
                    recovered.append(at - max(k for k in kill_times if k <= at + 1))
        api.close()
    finally:
        doomed |= faults.kernels_below(platform.process.pid)
        code, left = platform.stop()
    assert code == 0 and left == []

    unexplained = {i: (j["state"], j["attempt"], j["reason"]) for i, j in jobs.items()
                   if j["state"] != "succeeded"
                   and not (j["state"] == "failed" and "no attempts are left" in (j["reason"] or ""))}
    assert unexplained == {}, f"jobs lost or stuck: {unexplained}"
    assert sum(j["state"] == "succeeded" for j in jobs.values()) >= JOBS // 2
    assert recovered, "no running job was interrupted: the test did not test recovery"
    for index, job_id in enumerate(job_ids):
        faults.check_never_twice(markers / f"{index}.trace", jobs[job_id]["attempt"],
                                 jobs[job_id]["state"] == "succeeded")
    print(f"\n{KILLS} SIGKILLs of the platform service, {JOBS} jobs: {len(recovered)} recoveries, "
          f"recovered within {max(recovered):.1f} s of a kill (median {sorted(recovered)[len(recovered) // 2]:.1f} s), "
          f"{sum(j['attempt'] > 1 for j in jobs.values())} jobs re-run, "
          f"{sum(j['state'] == 'failed' for j in jobs.values())} failed after 10 killed attempts, 0 lost, "
          "0 run twice at once")
    assert doomed, "no kernel ran below the killed platform service: the test did not test their cleanup"
    assert faults.survivors(doomed) == set(), "kernels outlived the killed platform"


@pytest.mark.parametrize("step", ["tracking_store.initial_tables", "tracking_store.migrated"])
def test_the_platform_service_killed_while_creating_the_tracking_store_comes_back_and_every_job_succeeds(
        tmp_path: Path, step: str) -> None:
    """The hub restarts the killed service; the store it left is completed, never half-made (every step is
    killed in tests/jobs/test_fault_injection.py; here two, through the real hub)."""
    from tests.support.notebooks import notebook

    fired = tmp_path / "fired"
    platform = start_platform(tmp_path / "home", environment={"AITIP_FAULT_POINT": step,
                                                               "AITIP_FAULT_ONCE_FILE": str(fired)})
    try:
        deadline = time.monotonic() + 120
        while not fired.exists():
            assert time.monotonic() < deadline, platform.log()[-3000:]
            time.sleep(0.2)
        _wait_healthy(platform, None)
        token = platform.token(platform.admin_user, platform.admin_password)
        api = platform.api(token)
        assert api.post("projects", json={"name": "store"}).status_code == 201
        tracked = notebook("import mlflow\nmlflow.log_metric('loss', 0.5, step=1)")
        job_ids = [api.post("jobs", json={"project": "store", "notebook": tracked}).json()["id"] for _ in range(3)]
        jobs = [platform.wait_for_job(token, job_id, {"succeeded", "failed"}) for job_id in job_ids]
        runs = [api.get(f"runs/{job['mlflow_run_id']}").json() for job in jobs]
        api.close()
    finally:
        code, left = platform.stop()
    assert fired.read_text() == step
    assert [job["state"] for job in jobs] == ["succeeded"] * 3, [job["reason"] for job in jobs]
    assert [run["metrics"] for run in runs] == [{"loss": 0.5}] * 3
    assert "table issues already exists" not in platform.log()
    assert code == 0 and left == []


def test_a_platform_service_that_dies_before_it_answers_is_started_again(tmp_path: Path) -> None:
    """A managed service that dies before its first answer (a crash while the store is made, on a loaded
    machine) is started again: either JupyterHub's 2-second service poll sees it first and restarts the
    service, or the hub's own wait sees it first and exits, and the launcher starts the hub again (what the
    first hub left is stopped). Which one wins is a race; both must end in a working platform."""
    fired = tmp_path / "fired"
    platform = start_platform(tmp_path / "home", environment={"AITIP_FAULT_POINT": "platform.starting",
                                                               "AITIP_FAULT_ONCE_FILE": str(fired)})
    try:
        _wait_healthy(platform, None)
        token = platform.token(platform.admin_user, platform.admin_password)
        api = platform.api(token)
        assert api.post("projects", json={"name": "again"}).status_code == 201
        api.close()
    finally:
        code, left = platform.stop()
    assert fired.read_text() == "platform.starting"
    log = platform.log()
    assert "Service aitip exited with status -9" in log
    hub_started_again = "while starting (a service died before it answered); starting it again (2/3)" in log
    assert hub_started_again or log.count("Running JupyterHub version") == 1, log[-3000:]
    assert code == 0 and left == []
