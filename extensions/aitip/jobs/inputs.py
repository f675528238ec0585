"""What jobs ask of the datasets domain, which plugs its implementation in (:mod:`aitip.datasets.job_inputs`):
record a job's dataset inputs in the submission's transaction (or pin their versions for a sweep), list them,
and make them readable to the job's kernel. Jobs do not read the datasets' tables; a platform without a data
registry refuses inputs."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from ..errors import ServiceUnavailable
from .models import JobInput, JobInputRef


@dataclass(frozen=True)
class RecordedInput:
    dataset: str
    version: int
    new: bool  # not recorded for this job before


class JobInputs:
    """No data registry: no job has inputs, and one that declares some is refused (503)."""

    def record(self, session: Session, project_id: int, job_id: int, items: Sequence[JobInput],
               how: str = "declared") -> list[RecordedInput]:
        """Each item must be a ready version in the job's project; raises what the caller is told."""
        raise ServiceUnavailable("this platform has no dataset registry: a job cannot declare dataset inputs")

    def pin(self, session: Session, project_id: int, items: Sequence[JobInput]) -> list[JobInput]:
        """Each item at a version: the one it names, else the latest now (a sweep's trials all read the same);
        raises what the caller is told, as ``record`` does."""
        if items:
            raise ServiceUnavailable("this platform has no dataset registry: a job cannot declare dataset inputs")
        return []

    def refs(self, session: Session, job_ids: Iterable[int]) -> dict[int, list[JobInputRef]]:
        """Each job's recorded inputs (jobs without any are absent)."""
        return {}

    def materialize(self, job_id: int, directory: Path, *, private_registry: bool) -> dict[str, dict[str, Any]]:
        """Where the job's kernel reads each input (``$AITIP_INPUTS``); see the datasets domain."""
        return {}
