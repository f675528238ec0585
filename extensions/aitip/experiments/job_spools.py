"""Draining job kernels' tracking spools into MLflow (the spool itself: :mod:`aitip.experiments.spool`).

A spool is drained while its job runs (every ``interval`` seconds when it grew), when the kernel asks (the
end of a cell), before the tracking gateway answers that job, once more when the job's kernel is done, and
at start for spools a crash left undrained. Any process of the platform may drain any spool: a lock on
the drain's offset file keeps them in turn, and the offset lives with the job's report, where only the
platform writes.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..catalog import Catalog
from ..isolation.workspaces import Workspaces
from ..jobs import reads as job_reads
from .scope import ProjectScope
from .spool import DrainResult, SpoolDrainer

log = logging.getLogger("aitip.jobs.tracking")
_WORKSPACE = re.compile(r"^([0-9]{1,18})\.([0-9]{1,9})$")
MAX_KEPT_ERRORS = 100


class JobSpools:
    def __init__(self, catalog: Catalog, store: Callable[[], Any], workspaces: Workspaces, jobs_dir: Path) -> None:
        """``store()``: the MLflow tracking store (``AbstractStore``) the spools drain into, asked for at the
        first drain (opening it imports MLflow)."""
        self.catalog = catalog
        self.workspaces = workspaces
        self.jobs_dir = jobs_dir
        self._store = store
        self._drainer: SpoolDrainer | None = None
        self._scope: ProjectScope | None = None
        self._lock = threading.Lock()
        self._errors: dict[int, list[str]] = {}

    def _parts(self) -> tuple[SpoolDrainer, ProjectScope]:
        if self._drainer is None or self._scope is None:
            with self._lock:
                if self._drainer is None:
                    store = self._store()
                    self._drainer = SpoolDrainer(store)
                    self._scope = ProjectScope(store)
        assert self._drainer is not None and self._scope is not None
        return self._drainer, self._scope

    def spool_path(self, job_id: int, attempt: int) -> Path:
        return self.workspaces.spool_path(job_id, attempt)

    def offset_path(self, job_id: int, attempt: int) -> Path:
        return self.jobs_dir / str(job_id) / f"attempt-{attempt}" / "spool.offset"

    def _job(self, job_id: int) -> tuple[int, str] | None:
        with self.catalog.session() as session:
            job = job_reads.job(session, job_id)
            return (job.attempt, job.project.name) if job is not None else None

    def drain(self, job_id: int, attempt: int | None = None, project: str | None = None) -> DrainResult:
        """Apply the job's spool (its current attempt's unless ``attempt`` is given)."""
        if attempt is None or project is None:
            known = self._job(job_id)
            if known is None:
                return DrainResult()
            attempt, project = attempt or known[0], project or known[1]
        if not self.grew(job_id, attempt):
            return DrainResult()
        drainer, scope = self._parts()
        result = drainer.drain(self.spool_path(job_id, attempt), self.offset_path(job_id, attempt),
                               lambda run_id: scope.run_refusal(run_id, project))
        if result.errors:
            with self._lock:
                kept = self._errors.setdefault(job_id, [])
                kept.extend(result.errors)
                del kept[:-MAX_KEPT_ERRORS]
            log.warning("job %s: %d tracking writes refused, e.g. %s", job_id, len(result.errors), result.errors[0])
        return result

    def take_errors(self, job_id: int) -> list[str]:
        """What was refused since the kernel last asked (by this process's drains)."""
        with self._lock:
            return self._errors.pop(job_id, [])

    def grew(self, job_id: int, attempt: int) -> bool:
        try:
            size = self.spool_path(job_id, attempt).stat().st_size
        except FileNotFoundError:
            return False
        try:
            return size != int(self.offset_path(job_id, attempt).read_text().strip() or 0)
        except (FileNotFoundError, ValueError):
            return size > 0

    def recover(self) -> int:
        """Drain the spools a crash left behind (after a restart); the number drained."""
        if not self.workspaces.root.is_dir():
            return 0
        drained = 0
        for entry in os.scandir(self.workspaces.root):
            match = _WORKSPACE.match(entry.name)
            if match is None:
                continue
            job_id, attempt = int(match.group(1)), int(match.group(2))
            if not self.grew(job_id, attempt):
                continue
            known = self._job(job_id)
            if known is None:
                continue
            try:
                result = self.drain(job_id, attempt, known[1])
            except Exception:  # noqa: BLE001 - one bad spool must not stop the others or the start
                log.exception("job %s attempt %s: its tracking spool could not be drained", job_id, attempt)
                continue
            drained += 1
            log.info("job %s attempt %s: %d tracking writes recovered from its spool", job_id, attempt, result.stored)
        return drained
