"""The datasets domain's side of job inputs (:class:`aitip.jobs.inputs.JobInputs`): which dataset versions a
job reads, recorded in the job's transaction, listed with the job, and made readable to its kernel."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import InvalidInput, NotFound
from ..jobs.inputs import JobInputs, RecordedInput
from ..jobs.models import JobInput, JobInputRef
from .service import DatasetService
from .tables import JobInputRecord


class DatasetJobInputs(JobInputs):
    def __init__(self, datasets: DatasetService) -> None:
        self.datasets = datasets

    @staticmethod
    def _version(session: Session, project_id: int, item: JobInput) -> tuple[Any, Any]:
        dataset = DatasetService._find(session, project_id, item.dataset)
        if dataset is None:
            raise InvalidInput("input dataset {dataset!r} does not exist in the job's project",
                               code="unknown_dataset", dataset=item.dataset)
        try:
            return dataset, DatasetService._load_version(session, dataset, item.version)
        except NotFound as missing:
            raise InvalidInput(missing.message, code="unknown_dataset_version") from None

    def record(self, session: Session, project_id: int, job_id: int, items: Sequence[JobInput],
               how: str = "declared") -> list[RecordedInput]:
        recorded = []
        for item in items:
            dataset, version = self._version(session, project_id, item)
            new = session.scalar(select(JobInputRecord).where(JobInputRecord.job_id == job_id,
                                                              JobInputRecord.dataset_version_id == version.id)) is None
            if new:
                session.add(JobInputRecord(job_id=job_id, dataset_version_id=version.id, how=how))
            recorded.append(RecordedInput(dataset=dataset.name, version=version.version, new=new))
        session.flush()
        return recorded

    def pin(self, session: Session, project_id: int, items: Sequence[JobInput]) -> list[JobInput]:
        pinned = []
        for item in items:
            dataset, version = self._version(session, project_id, item)
            pinned.append(JobInput(dataset=dataset.name, version=version.version))
        return pinned

    def refs(self, session: Session, job_ids: Iterable[int]) -> dict[int, list[JobInputRef]]:
        wanted = sorted(set(job_ids))
        found: dict[int, list[JobInputRef]] = {}
        if not wanted:
            return found
        for row in session.scalars(select(JobInputRecord).where(JobInputRecord.job_id.in_(wanted))
                                   .order_by(JobInputRecord.id)):
            found.setdefault(row.job_id, []).append(JobInputRef(dataset=row.dataset_version.dataset.name,
                                                                version=row.dataset_version.version, how=row.how))
        return found

    def materialize(self, job_id: int, directory: Path, *, private_registry: bool) -> dict[str, dict[str, Any]]:
        return self.datasets.materialize_job_inputs(job_id, directory, private_registry=private_registry)
