"""The datasets domain's read API for the other domains: what they may know of a dataset version (which one,
its content hash, its columns), in a session they hold, without reading the datasets' tables themselves."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import NotFound
from ..i18n import N_
from .tables import DatasetRecord, DatasetVersionRecord, JobInputRecord


@dataclass(frozen=True)
class VersionBrief:
    dataset: str
    version: int
    format: str
    content_md5: str
    rows: int | None
    columns: tuple[str, ...] | None  # a table's column names; None for an image folder


def version_brief(session: Session, project_id: int, name: str, version: int | None) -> VersionBrief:
    """A ready version of the project's dataset (the latest when ``version`` is None), or 404."""
    dataset = session.scalar(select(DatasetRecord).where(DatasetRecord.project_id == project_id,
                                                         DatasetRecord.name == name))
    if dataset is None:
        raise NotFound("the project has no dataset named {name!r}", code="unknown_dataset", name=name)
    query = select(DatasetVersionRecord).where(DatasetVersionRecord.dataset_id == dataset.id,
                                               DatasetVersionRecord.state == "ready")
    query = query.where(DatasetVersionRecord.version == version) if version is not None \
        else query.order_by(DatasetVersionRecord.version.desc()).limit(1)
    found = session.scalar(query)
    if found is None:
        raise NotFound(N_("dataset {name!r} has no version {version}") if version is not None
                       else N_("dataset {name!r} has no version yet"), code="unknown_dataset_version", name=name,
                       version=version)
    schema = found.schema or {}
    columns = tuple(column["name"] for column in schema.get("columns") or ()) if schema.get("kind") == "table" \
        else None
    return VersionBrief(dataset=name, version=found.version, format=found.format, content_md5=found.content_md5,
                        rows=found.rows, columns=columns)


def versions_read_by(session: Session, job_id: int) -> list[tuple[str, int]]:
    """The (dataset, version) pairs a job read, declared or reported, in the order recorded."""
    rows = session.execute(
        select(DatasetRecord.name, DatasetVersionRecord.version).select_from(JobInputRecord)
        .join(DatasetVersionRecord, DatasetVersionRecord.id == JobInputRecord.dataset_version_id)
        .join(DatasetRecord, DatasetRecord.id == DatasetVersionRecord.dataset_id)
        .where(JobInputRecord.job_id == job_id).order_by(JobInputRecord.id)).all()
    return [(name, version) for name, version in rows]


def job_read(session: Session, job_id: int, name: str, version: int) -> bool:
    """Whether the job read (declared or reported) this version of a dataset of its project."""
    return session.scalar(
        select(JobInputRecord.id).join(DatasetVersionRecord, DatasetVersionRecord.id == JobInputRecord.dataset_version_id)
        .join(DatasetRecord, DatasetRecord.id == DatasetVersionRecord.dataset_id)
        .where(JobInputRecord.job_id == job_id, DatasetRecord.name == name, DatasetVersionRecord.version == version)
        .limit(1)) is not None
