"""GPU-hours per user and per project, from the jobs that held GPUs (the jobs domain's read API).

A job holds ``gpus`` GPUs from ``started_at`` until ``finished_at`` (or now, while it runs), so its
GPU-hours in a window are ``gpus`` × the overlap of that interval with the window. ``started_at`` is
set again when a job is requeued after a lost worker, so only a job's last attempt is counted; a
requeued job waiting in the queue counts nothing until it starts again.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from datetime import datetime
from typing import Literal

from sqlalchemy.orm import Session

from ..catalog.base import utcnow
from ..jobs.reads import ACTIVE_JOB_STATES, gpu_holds
from .models import GpuHoursEntry, GpuHoursReport


def gpu_hours(session: Session, *, by: Literal["user", "project"] = "user", since: datetime | None = None,
              until: datetime | None = None, now: datetime | None = None,
              project_ids: Collection[int] | None = None) -> GpuHoursReport:
    """Sum ``gpus × time held`` per owner or project inside ``[since, until)``; ``until`` is capped at now."""
    now = now or utcnow()
    window_end = min(until, now) if until is not None else now
    hours: defaultdict[str, float] = defaultdict(float)
    jobs: defaultdict[str, int] = defaultdict(int)
    running: defaultdict[str, int] = defaultdict(int)
    for owner, project, gpus, state, started_at, finished_at in (
            (h.owner, h.project, h.gpus, h.state, h.started_at, h.finished_at)
            for h in gpu_holds(session, window_end=window_end, since=since, project_ids=project_ids)):
        start = max(started_at, since) if since is not None else started_at
        end = min(finished_at or now, window_end)
        if end <= start:
            continue
        key = owner if by == "user" else project
        hours[key] += gpus * (end - start).total_seconds() / 3600
        jobs[key] += 1
        running[key] += int(state in ACTIVE_JOB_STATES)
    items = [GpuHoursEntry(name=key, gpu_hours=value, jobs=jobs[key], running_jobs=running[key])
             for key, value in hours.items()]
    items.sort(key=lambda item: (-item.gpu_hours, item.name))
    return GpuHoursReport(by=by, since=since, until=window_end, total_gpu_hours=sum(hours.values()), items=items)
