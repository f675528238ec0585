"""Which job (and so which user and project) holds each GPU process.

A running job records its kernel's pid and host. A GPU process is the kernel itself or one of its
descendants (a DataLoader worker, a ``torchrun`` child), so a process is attributed to the first job
found on its own pid or on its ancestors' pids. Pids are only meaningful on the host that owns them,
and only in the PID namespace NVML reports (the host's): a platform service in a container with its
own PID namespace sees no match, never a wrong one, as long as jobs record host-namespace pids.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import psutil
from sqlalchemy.orm import Session

from ..catalog import Catalog
from ..jobs import reads as job_reads
from .gpus import Snapshot

MAX_ANCESTRY = 32


@dataclass(frozen=True)
class JobRef:
    id: int
    project: str
    owner: str
    gpus: int

    def to_json(self) -> dict[str, object]:
        return asdict(self)


JobLookup = Callable[[int], JobRef | None]


@dataclass(frozen=True)
class Lineage:
    """A process's OS user and its ancestors' pids, nearest first."""

    os_user: str | None
    ancestors: tuple[int, ...]


ProcessLineage = Callable[[int], Lineage]


def process_lineage(pid: int) -> Lineage:
    """Read through psutil; a process that is gone or hidden has no user and no ancestors."""
    try:
        process = psutil.Process(pid)
        user = process.username()
        ancestors = tuple(parent.pid for parent in process.parents()[:MAX_ANCESTRY])
    except (psutil.Error, OSError):
        return Lineage(None, ())
    return Lineage(user, ancestors)


def find_job(pid: int, lookup: JobLookup, lineage: Lineage) -> JobRef | None:
    for candidate in (pid, *lineage.ancestors):
        job = lookup(candidate)
        if job is not None:
            return job
    return None


def attribute_processes(snapshot: Snapshot, lookup: JobLookup | None,
                        lineage: ProcessLineage = process_lineage) -> Snapshot:
    """Fill in each process's OS user and job, and each device's job ids and users, in place."""
    for device in snapshot.devices:
        jobs: set[int] = set()
        users: set[str] = set()
        for process in device.processes:
            found = lineage(process.pid)
            process.os_user = found.os_user
            job = find_job(process.pid, lookup, found) if lookup is not None else None
            process.job = job.to_json() if job is not None else None
            if job is not None:
                jobs.add(job.id)
                users.add(job.owner)
            elif found.os_user is not None:
                users.add(found.os_user)
        device.jobs, device.users = sorted(jobs), sorted(users)
    return snapshot


def running_jobs_by_kernel_pid(session: Session, host: str) -> dict[int, JobRef]:
    return {job.kernel_pid: JobRef(job.id, job.project.name, job.owner, job.gpus)
            for job in job_reads.running_kernels(session, host) if job.kernel_pid is not None}


class CatalogJobLookup:
    """pid → the job whose kernel it is on this host, from the catalog.

    The running jobs are read at most once per ``max_age_seconds``, so one sample of many GPU
    processes costs one query, and a node with no GPU processes costs none.
    """

    def __init__(self, catalog: Catalog, host: str | None = None, max_age_seconds: float = 2.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.catalog = catalog
        self.host = host or socket.gethostname()
        self.max_age_seconds = max_age_seconds
        self._clock = clock
        self._jobs: dict[int, JobRef] = {}
        self._loaded_at: float | None = None
        self._lock = threading.Lock()

    def refresh(self) -> None:
        with self.catalog.session() as session:
            jobs = running_jobs_by_kernel_pid(session, self.host)
        self._jobs, self._loaded_at = jobs, self._clock()

    def __call__(self, pid: int) -> JobRef | None:
        with self._lock:
            if self._loaded_at is None or self._clock() - self._loaded_at >= self.max_age_seconds:
                self.refresh()
            return self._jobs.get(pid)
