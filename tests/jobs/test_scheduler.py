"""Who runs next: priority, fair share between users, per-project quotas, and GPUs."""

from __future__ import annotations

from pathlib import Path

import pytest

from aitip.identity.roles import Role
from aitip.jobs.models import JobSubmit, Resources
from aitip.projects.models import MemberAdd, ProjectCreate
from tests.jobs.conftest import ANN, BOB, make_platform
from tests.support.notebooks import TRIVIAL

pytestmark = pytest.mark.asyncio


async def _submit(platform, who=ANN, project="lab", priority=50, gpus=0):  # noqa: ANN001, ANN202
    job = await platform.jobs.submit(who, JobSubmit(project=project, notebook=TRIVIAL, priority=priority,
                                                    resources=Resources(gpus=gpus)))
    return job.id


async def _pick(platform, slots: int, gpus: int = 0) -> list[int]:  # noqa: ANN001
    return await platform.worker.in_transaction(lambda s: platform.worker._pick(s, slots, gpus))


async def test_higher_priority_first_then_oldest(tmp_path: Path) -> None:
    platform = await make_platform(tmp_path)
    low = await _submit(platform, priority=10)
    high = await _submit(platform, priority=90)
    mid_old = await _submit(platform, priority=50)
    mid_new = await _submit(platform, priority=50)
    assert await _pick(platform, 4) == [high, mid_old, mid_new, low]


async def test_fair_share_alternates_users_at_equal_priority(tmp_path: Path) -> None:
    platform = await make_platform(tmp_path)
    ann_jobs = [await _submit(platform, ANN) for _ in range(3)]
    bob_jobs = [await _submit(platform, BOB) for _ in range(2)]
    assert await _pick(platform, 4) == [ann_jobs[0], bob_jobs[0], ann_jobs[1], bob_jobs[1]]


async def test_project_quota_caps_concurrent_jobs(tmp_path: Path) -> None:
    platform = await make_platform(tmp_path)
    await platform.projects.create(ANN, ProjectCreate(name="other"))
    await platform.projects.add_member(ANN, "other", MemberAdd(user="bob", role=Role.developer))
    platform.worker.project_quotas = {"lab": {"jobs": 1}}
    lab = [await _submit(platform, project="lab") for _ in range(3)]
    other = [await _submit(platform, project="other") for _ in range(2)]
    assert await _pick(platform, 5) == [lab[0], other[0], other[1]]


async def test_gpu_jobs_wait_for_free_gpus(tmp_path: Path) -> None:
    platform = await make_platform(tmp_path)
    two = await _submit(platform, gpus=2, priority=90)
    one = await _submit(platform, gpus=1)
    cpu = await _submit(platform)
    assert await _pick(platform, 3, gpus=0) == [cpu]
    assert await _pick(platform, 3, gpus=1) == [one, cpu]
    assert await _pick(platform, 3, gpus=2) == [two, cpu]
    platform.worker.project_quotas = {"lab": {"gpus": 1}}
    assert await _pick(platform, 3, gpus=4) == [one, cpu]


async def test_a_gpu_job_runs_with_its_gpus_visible(tmp_path: Path) -> None:
    from aitip.jobs.models import JobState
    from tests.support.notebooks import notebook

    platform = await make_platform(tmp_path, gpu_count=2)
    await platform.worker.start()
    try:
        probe = notebook("import os; print(os.environ['CUDA_VISIBLE_DEVICES'])")
        job = await platform.jobs.submit(ANN, JobSubmit(project="lab", notebook=probe, resources=Resources(gpus=2)))
        await platform.wait(job.id, JobState.succeeded)
        events, _ = await platform.jobs.events(ANN, job.id)
        assert "".join(e.data["text"] for e in events if e.kind == "output").strip() == "0,1"
    finally:
        await platform.worker.stop()
        platform.catalog.dispose()
