"""Jobs as Ray tasks on a private loopback Ray cluster (one slow test: `ray.init` takes 15-30 s here)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from aitip.isolation.accounts import Accounts
from aitip.jobs.models import JobState, JobSubmit
from tests.jobs.conftest import ANN, make_platform
from tests.support.notebooks import TRIVIAL, notebook
from tests.support.paths import open_to_all_accounts

ray = pytest.importorskip("ray", reason="RayExecutor needs `pip install -e .[ray]`")
pytestmark = [pytest.mark.asyncio, pytest.mark.slow]


async def test_jobs_run_as_ray_tasks_with_streamed_output(tmp_path: Path) -> None:
    from aitip.jobs.ray_executor import RayExecutor

    executor = RayExecutor(num_cpus=2, max_concurrent_jobs=2)
    platform = await make_platform(open_to_all_accounts(tmp_path), executor=executor)
    # As root: each task's kernel drops to the job owner's account, as a local kernel does.
    accounts = Accounts.of_platform(tmp_path)
    platform.worker.accounts = accounts
    platform.worker.workspaces.separate_accounts = True
    await platform.worker.start()
    try:
        assert ray.is_initialized()
        ok = await platform.jobs.submit(ANN, JobSubmit(project="lab", notebook=TRIVIAL, parameters={"x": 5}))
        bad = await platform.jobs.submit(ANN, JobSubmit(project="lab", notebook=notebook("raise ValueError('no')")))
        slow = await platform.jobs.submit(ANN, JobSubmit(project="lab", timeout_seconds=3,
                                                         notebook=notebook("import time; time.sleep(60)")))
        done = await platform.wait(ok.id, JobState.succeeded, JobState.failed, timeout=120)
        assert done.state is JobState.succeeded, done.reason
        events, _ = await platform.jobs.events(ANN, ok.id)
        assert "".join(e.data["text"] for e in events if e.kind == "output") == "result 10\n"
        assert any(e.data.get("kernel_pid") for e in events)
        import nbformat

        executed = nbformat.read(await platform.jobs.output_notebook_path(ANN, ok.id), as_version=4)
        assert executed.cells[-1].outputs[0]["text"] == "result 10\n"
        failed = await platform.wait(bad.id, JobState.failed, timeout=60)
        assert failed.failed_cell is not None and failed.failed_cell.ename == "ValueError"
        timed_out = await platform.wait(slow.id, JobState.timed_out, timeout=60)
        assert "timeout of 3 s" in (timed_out.reason or "")
        who = await platform.jobs.submit(ANN, JobSubmit(project="lab", notebook=notebook(
            "import os\nprint('ids', os.getresuid(), os.getresgid())")))
        assert (await platform.wait(who.id, JobState.succeeded, JobState.failed, timeout=120)).state is JobState.succeeded
        events, _ = await platform.jobs.events(ANN, who.id)
        ann = accounts.lookup("ann")
        assert ann is not None
        assert "".join(e.data["text"] for e in events if e.kind == "output") == \
            f"ids {(ann.uid,) * 3} {(ann.gid,) * 3}\n"
    finally:
        await platform.worker.stop()
        platform.catalog.dispose()
        await asyncio.sleep(0)
