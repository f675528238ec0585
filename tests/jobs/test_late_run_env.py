"""The first cell never waits for MLflow: the run is created while the job starts, and the kernel gets
its environment later, before the first ``import mlflow`` and before any cell that starts after it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from aitip.jobs.models import JobState, JobSubmit
from aitip.jobs.tracking import RunInfo, Tracker
from tests.jobs.conftest import ANN, JobPlatform, make_platform
from tests.support.notebooks import notebook

pytestmark = pytest.mark.asyncio


class GatedTracker(Tracker):
    """Creates the run only when the test says so, or fails then."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.error: Exception | None = None

    def start(self, job: dict[str, Any]) -> RunInfo:
        assert self.release.wait(60), "the test never released the run"
        if self.error is not None:
            raise self.error
        return RunInfo("7", "run-abc", {"MLFLOW_RUN_ID": "run-abc", "MLFLOW_EXPERIMENT_ID": "7"})


@pytest_asyncio.fixture
async def gated(tmp_path: Path) -> AsyncIterator[tuple[JobPlatform, GatedTracker]]:
    tracker = GatedTracker()
    platform = await make_platform(tmp_path, tracker=tracker)
    await platform.worker.start()
    try:
        yield platform, tracker
    finally:
        tracker.release.set()
        await platform.worker.stop()
        platform.catalog.dispose()


async def _wait_output(platform: JobPlatform, job_id: int, text: str, timeout: float = 60) -> str:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        events, _ = await platform.jobs.events(ANN, job_id)
        shown = "".join(e.data["text"] for e in events if e.kind == "output")
        if text in shown:
            return shown
        assert asyncio.get_running_loop().time() < deadline, f"no {text!r} in the output: {shown!r}"
        await platform.jobs.signals.wait_job(job_id, 0.1)


async def test_import_mlflow_waits_for_the_run_the_first_cell_did_not(gated) -> None:
    platform, tracker = gated
    job = await platform.jobs.submit(ANN, JobSubmit(project="lab", notebook=notebook(
        "import os\nprint('before', os.environ.get('MLFLOW_RUN_ID'))",
        "import mlflow\nprint('after', os.environ['MLFLOW_RUN_ID'])")))
    await _wait_output(platform, job.id, "before None")
    assert (await platform.jobs.get(ANN, job.id)).state is JobState.running
    tracker.release.set()
    done = await platform.wait(job.id, JobState.succeeded, JobState.failed, timeout=120)
    assert done.state is JobState.succeeded, (done.reason, done.failed_cell)
    assert done.mlflow_run_id == "run-abc"
    assert await _wait_output(platform, job.id, "after") == "before None\nafter run-abc\n"


async def test_a_cell_that_starts_after_the_run_exists_sees_its_environment(gated) -> None:
    platform, tracker = gated
    job = await platform.jobs.submit(ANN, JobSubmit(project="lab", notebook=notebook(
        "import os\nprint('before', os.environ.get('MLFLOW_RUN_ID'))",
        "import pathlib, time\nwhile not pathlib.Path('go').exists():\n    time.sleep(0.01)",
        "print('later', os.environ.get('MLFLOW_RUN_ID'), os.environ.get('MLFLOW_EXPERIMENT_ID'))")))
    await _wait_output(platform, job.id, "before None")
    tracker.release.set()
    attempt = platform.worker.workspaces.root / f"{job.id}.1"
    for _ in range(600):
        if (attempt / "control" / "run-env.json").exists():
            break
        await asyncio.sleep(0.05)
    (attempt / "work" / "go").touch()
    done = await platform.wait(job.id, JobState.succeeded, JobState.failed, timeout=120)
    assert done.state is JobState.succeeded, (done.reason, done.failed_cell)
    assert await _wait_output(platform, job.id, "later") == "before None\nlater run-abc 7\n"


@pytest.mark.parametrize("import_mlflow", [True, False], ids=["import-fails", "next-cell-stops"])
async def test_a_run_that_cannot_be_created_fails_the_job(gated, import_mlflow: bool) -> None:
    platform, tracker = gated
    # Either the kernel already waits in `import mlflow` when the run fails, or the next cell never starts.
    first, second = ("print('before')", "import mlflow") if import_mlflow else (
        "print('before')\nimport time\ntime.sleep(0.5)", "x = 1")
    job = await platform.jobs.submit(ANN, JobSubmit(project="lab", notebook=notebook(first, second, "print('never')")))
    await _wait_output(platform, job.id, "before")
    tracker.error = RuntimeError("mlflow is down")
    tracker.release.set()
    failed = await platform.wait(job.id, JobState.failed, JobState.succeeded, timeout=120)
    assert failed.state is JobState.failed
    assert "MLflow run could not be created" in (failed.reason or "") and "mlflow is down" in (failed.reason or "")
    if import_mlflow:
        assert failed.failed_cell is not None and failed.failed_cell.ename == "ImportError"
    else:
        assert failed.failed_cell is None
    events, _ = await platform.jobs.events(ANN, job.id)
    assert "never" not in "".join(e.data["text"] for e in events if e.kind == "output")


class _Recorder:
    """The executor's observer interface, recording what it is told."""

    def __init__(self) -> None:
        self.cells: list[int] = []

    async def kernel_started(self, pid: int | None, host: str) -> None: ...

    async def cell_started(self, index: int, source: str) -> None:
        self.cells.append(index)

    async def cell_finished(self, index: int, status: str, seconds: float) -> None: ...

    async def output(self, index: int, name: str, text: str) -> None: ...


async def test_a_set_up_that_fails_in_the_kernel_fails_the_job_before_any_cell_runs(tmp_path: Path) -> None:
    """The set-up is sent ahead of the first cell without waiting for its reply; when it fails (here: an
    environment variable name the OS refuses) the kernel ends and the job says why."""
    from aitip.jobs.executor import ExecutionRequest, LocalExecutor

    executor = LocalExecutor(max_concurrent_jobs=1, pool_sizes={"aitip-python": 1})
    await executor.start()
    try:
        recorder = _Recorder()
        request = ExecutionRequest(1, 1, notebook("open('ran', 'w').write('yes')"), {}, "aitip-python", 60,
                                   tmp_path / "attempt-1" / "work", tmp_path / "attempt-1" / "output.ipynb",
                                   env={"BAD=NAME": "1"})
        result = await executor.execute(request, recorder, asyncio.get_running_loop().create_future())
    finally:
        await executor.stop()
    assert result.status == "failed"
    assert result.reason is not None and result.reason.startswith("the job's set-up failed in the kernel: ValueError")
    assert not (tmp_path / "attempt-1" / "work" / "ran").exists()
