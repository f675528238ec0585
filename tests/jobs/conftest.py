"""A real job platform without the web layer: catalog, job service, worker, pooled kernels."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest_asyncio

from aitip.catalog import Catalog
from aitip.identity.directory import DirectoryEntry
from aitip.identity.principal import Principal
from aitip.identity.roles import Role
from aitip.jobs.events import JobSignals
from aitip.jobs.executor import Executor, LocalExecutor
from aitip.jobs.models import Job, JobState
from aitip.jobs.notebook_store import NotebookStore
from aitip.jobs.service import JobService
from aitip.jobs.tracking import Tracker
from aitip.jobs.worker import JobWorker
from aitip.projects.models import MemberAdd, ProjectCreate
from aitip.projects.service import ProjectService
from tests.support.directories import FixedDirectory

ANN = Principal("ann")
BOB = Principal("bob")
VIC = Principal("vic")


@dataclass
class JobPlatform:
    catalog: Catalog
    jobs: JobService
    projects: ProjectService
    worker: JobWorker
    home: Path

    async def wait(self, job_id: int, *states: JobState, timeout: float = 60) -> Job:
        deadline = time.monotonic() + timeout
        while True:
            job = await self.jobs.get(ANN, job_id)
            if job.state in states:
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} is {job.state.value}, not {[s.value for s in states]}: "
                                   f"{job.reason}")
            await self.jobs.signals.wait_job(job_id, 0.2)


async def make_platform(home: Path, *, slots: int = 2, pool: int = 1, tracker: Tracker | None = None,
                        lease_seconds: float = 6.0, gpu_count: int = 0, executor: Executor | None = None
                        ) -> JobPlatform:
    catalog = Catalog(f"sqlite:///{home / 'catalog.sqlite'}")
    catalog.migrate()
    store = NotebookStore(home / "notebooks")
    signals = JobSignals()
    users = {p.name: DirectoryEntry(p.name, p.groups, p.is_admin) for p in (ANN, BOB, VIC)}
    projects = ProjectService(catalog, FixedDirectory(users, set()))
    jobs = JobService(catalog, store, signals)
    executor = executor or LocalExecutor(max_concurrent_jobs=slots, pool_sizes={"aitip-python": pool})
    worker = JobWorker(catalog, executor, store, signals, tracker or Tracker(), home / "jobs",
                       lease_seconds=lease_seconds, heartbeat_seconds=0.5, poll_seconds=0.2, gpu_count=gpu_count)
    if not (await projects.list(ANN, _list_query())).total:
        await projects.create(ANN, ProjectCreate(name="lab"))
        await projects.add_member(ANN, "lab", MemberAdd(user="bob", role=Role.developer))
        await projects.add_member(ANN, "lab", MemberAdd(user="vic", role=Role.viewer))
    return JobPlatform(catalog, jobs, projects, worker, home)


def _list_query():  # noqa: ANN202
    from aitip.projects.models import ProjectListQuery

    return ProjectListQuery()


@pytest_asyncio.fixture
async def platform(tmp_path: Path) -> AsyncIterator[JobPlatform]:
    running = await make_platform(tmp_path)
    await running.worker.start()
    yield running
    await running.worker.stop()
    running.catalog.dispose()
    await asyncio.sleep(0)
