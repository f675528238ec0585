"""What the job worker asks of experiment tracking: a run per job attempt, started before the kernel and
finished with the job's report. The MLflow implementation belongs to the experiments domain
(:mod:`aitip.experiments.job_tracker`), which plugs it into the worker; without it jobs run untracked.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any



@dataclass(frozen=True)
class RunInfo:
    experiment_id: str
    run_id: str
    env: dict[str, str]


@dataclass(frozen=True)
class KernelTrackingAccess:
    """How a kernel that may not open the MLflow store (it runs as the job's owner) reaches it: the
    platform's tracking gateway with the job's credential for reads, models and artifacts, and the job's
    spool for run writes, which the platform drains (and does at once when ``confirm_url`` is called)."""

    gateway_url: str
    token: str
    spool: Path
    confirm_url: str


class Tracker:
    """No tracking (tests of scheduling alone)."""

    tracks = False

    def start(self, job: dict[str, Any], access: KernelTrackingAccess | None = None) -> RunInfo | None:
        return None

    def finish(self, run: RunInfo | None, status: str, output_path: Path | None) -> None:
        return None


def run_name(job: dict[str, Any]) -> str:
    """The notebook and the job, e.g. ``train · job 12`` (``· attempt 2`` when it is run again)."""
    stem = Path(job.get("notebook_name") or "notebook").stem or "notebook"
    return f"{stem} · job {job['id']}" + (f" · attempt {job['attempt']}" if job["attempt"] > 1 else "")
