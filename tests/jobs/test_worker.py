"""Jobs run for real: fresh pooled kernels, states, failures, timeouts, cancel, kernel death."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from aitip.errors import InvalidInput, NotFound, PermissionDenied
from aitip.jobs.models import JobState, JobSubmit
from tests.jobs.conftest import ANN, BOB, VIC, JobPlatform
from tests.support.notebooks import TRIVIAL, notebook
from tests.support.waiting import eventually

pytestmark = pytest.mark.asyncio


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "zombie" not in status


async def _kernel_pid(platform: JobPlatform, job_id: int) -> int:
    async def reported() -> list[int]:
        events, _ = await platform.jobs.events(ANN, job_id)
        return [int(event.data["kernel_pid"]) for event in events if event.data.get("kernel_pid")]
    pids = await eventually(reported, bool, interval=0.05)
    assert pids, "the job never reported its kernel"
    return pids[0]


async def test_a_job_runs_with_its_parameters_and_records_every_step(platform: JobPlatform) -> None:
    job = await platform.jobs.submit(ANN, JobSubmit(project="lab", notebook=TRIVIAL, parameters={"x": 21}))
    assert job.state is JobState.queued and job.attempt == 0
    done = await platform.wait(job.id, JobState.succeeded)
    assert done.attempt == 1 and done.first_cell_at is not None and done.finished_at is not None
    events, state = await platform.jobs.events(ANN, job.id)
    kinds = [e.kind for e in events]
    assert kinds[0] == "state" and "cell_started" in kinds and "cell_finished" in kinds
    assert [e.data["state"] for e in events if e.kind == "state"] == ["queued", "starting", "running", "succeeded"]
    outputs = "".join(e.data["text"] for e in events if e.kind == "output")
    assert outputs == "result 42\n"
    import nbformat

    executed = nbformat.read(await platform.jobs.output_notebook_path(ANN, job.id), as_version=4)
    assert executed.cells[1].metadata["tags"] == ["injected-parameters"]
    assert executed.cells[2].outputs[0]["text"] == "result 42\n"


async def test_a_raising_notebook_fails_with_the_failing_cell(platform: JobPlatform) -> None:
    job = await platform.jobs.submit(ANN, JobSubmit(project="lab", notebook=notebook("a = 1", "b = a / 0")))
    failed = await platform.wait(job.id, JobState.failed)
    assert failed.failed_cell is not None
    assert failed.failed_cell.index == 1 and failed.failed_cell.source == "b = a / 0"
    assert failed.failed_cell.ename == "ZeroDivisionError" and "a / 0" in (failed.failed_cell.traceback or "")
    assert "ZeroDivisionError" in (failed.reason or "")


async def test_a_kernel_that_dies_fails_the_job_with_the_reason(platform: JobPlatform) -> None:
    job = await platform.jobs.submit(ANN, JobSubmit(project="lab", notebook=notebook("import os; os._exit(7)")))
    failed = await platform.wait(job.id, JobState.failed)
    assert "kernel died" in (failed.reason or "") and "exit code 7" in (failed.reason or "")


async def test_timeout_kills_the_kernel(platform: JobPlatform) -> None:
    job = await platform.jobs.submit(ANN, JobSubmit(project="lab", notebook=notebook("import time; time.sleep(60)"),
                                                    timeout_seconds=2))
    pid = await _kernel_pid(platform, job.id)
    timed_out = await platform.wait(job.id, JobState.timed_out, timeout=30)
    assert "timeout of 2 s" in (timed_out.reason or "")
    await asyncio.sleep(0.5)
    assert not _alive(pid), "the timed-out job's kernel is still running"


async def test_cancel_kills_the_kernel_and_only_owners_or_maintainers_may(platform: JobPlatform) -> None:
    job = await platform.jobs.submit(BOB, JobSubmit(project="lab", notebook=notebook("import time; time.sleep(60)")))
    pid = await _kernel_pid(platform, job.id)
    await platform.wait(job.id, JobState.running)
    with pytest.raises(PermissionDenied):
        await platform.jobs.cancel(VIC, job.id)  # a viewer
    cancelled = await platform.jobs.cancel(BOB, job.id)  # the owner
    assert cancelled.cancel_requested
    done = await platform.wait(job.id, JobState.cancelled, timeout=20)
    assert "cancelled by bob" in (done.reason or "")
    await asyncio.sleep(0.5)
    assert not _alive(pid), "the cancelled job's kernel is still running"


async def test_a_queued_job_cancels_at_once(platform: JobPlatform) -> None:
    blockers = [await platform.jobs.submit(ANN, JobSubmit(project="lab", notebook=notebook("import time; time.sleep(30)")))
                for _ in range(2)]
    queued = await platform.jobs.submit(ANN, JobSubmit(project="lab", notebook=TRIVIAL))
    assert (await platform.jobs.cancel(ANN, queued.id)).state is JobState.cancelled
    for blocker in blockers:
        await platform.jobs.cancel(ANN, blocker.id)
    for blocker in blockers:
        await platform.wait(blocker.id, JobState.cancelled, timeout=20)


async def test_retry_reruns_the_exact_snapshot(platform: JobPlatform) -> None:
    first = await platform.jobs.submit(ANN, JobSubmit(project="lab", notebook=TRIVIAL, parameters={"x": 5}))
    await platform.wait(first.id, JobState.succeeded)
    again = await platform.jobs.retry(ANN, first.id)
    assert again.retry_of == first.id and again.notebook_sha256 == first.notebook_sha256
    assert again.parameters == {"x": 5}
    await platform.wait(again.id, JobState.succeeded)


async def test_viewers_cannot_submit_and_strangers_see_nothing(platform: JobPlatform) -> None:
    with pytest.raises(PermissionDenied):
        await platform.jobs.submit(VIC, JobSubmit(project="lab", notebook=TRIVIAL))
    job = await platform.jobs.submit(ANN, JobSubmit(project="lab", notebook=TRIVIAL))
    from aitip.identity.principal import Principal

    with pytest.raises(NotFound):
        await platform.jobs.get(Principal("mallory"), job.id)
    assert (await platform.jobs.get(VIC, job.id)).id == job.id


@pytest.mark.parametrize(("change", "code"), [
    ({"parameters": {"y": 1}}, "undeclared_parameter"),
    ({"parameters": {"x": "two"}}, "parameter_type"),
    ({"parameters": {"x": 1, "huge": "z" * 70_000}}, "parameters_too_large"),
    ({"notebook": notebook("print(1)"), "parameters": {"x": 1}}, "no_parameters_cell"),
    ({"kernel": "no-such-kernel"}, "unknown_kernel"),
    ({"notebook": {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{"cell_type": "code"}]}},
     "invalid_notebook"),
])
async def test_bad_submissions_write_nothing(tmp_path: Path, change: dict, code: str) -> None:
    """Refused by the job service before anything is written: the catalog is what is read, so no worker (and no
    kernel pool) is started for it."""
    from tests.jobs.conftest import make_platform

    platform = await make_platform(tmp_path)
    try:
        request = {"project": "lab", "notebook": TRIVIAL, **change}
        before = (await platform.jobs.list(ANN, _query())).total
        with pytest.raises(InvalidInput) as refused:
            await platform.jobs.submit(ANN, JobSubmit(**request))
        assert refused.value.code == code
        assert (await platform.jobs.list(ANN, _query())).total == before
    finally:
        platform.catalog.dispose()


def _query():  # noqa: ANN202
    from aitip.jobs.models import JobListQuery

    return JobListQuery()


async def test_kernels_get_no_platform_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.jobs.conftest import make_platform

    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "service-secret")
    monkeypatch.setenv("AITIP_CATALOG_URL", "postgresql://platform:secret@db/catalog")
    monkeypatch.setenv("CONFIGPROXY_AUTH_TOKEN", "proxy-secret")
    platform = await make_platform(tmp_path)
    await platform.worker.start()
    try:
        probe = notebook("import os\nprint(sorted(k for k in os.environ if 'TOKEN' in k or 'CATALOG' in k "
                         "or k.startswith('JUPYTERHUB')))")
        job = await platform.jobs.submit(ANN, JobSubmit(project="lab", notebook=probe))
        await platform.wait(job.id, JobState.succeeded)
        events, _ = await platform.jobs.events(ANN, job.id)
        assert "".join(e.data["text"] for e in events if e.kind == "output").strip() == "[]"
    finally:
        await platform.worker.stop()
        platform.catalog.dispose()
