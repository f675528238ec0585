"""Catalog tables for datasets, their versions, and which jobs read which versions (lineage)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..catalog.base import Base, UTCDateTime, utcnow
from ..projects.tables import ProjectRecord

VERSION_STATES = ("pending", "ready")


class DatasetRecord(Base):
    __tablename__ = "datasets"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    # {column: "hash" | "redact"}: masked for callers below maintainer.
    sensitive_columns: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    quality_rules: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Per-dataset salt of masked hashes: equal values stay joinable, but cannot be looked up across datasets.
    mask_salt: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    project: Mapped[ProjectRecord] = relationship(lazy="joined")


class DatasetVersionRecord(Base):
    __tablename__ = "dataset_versions"
    __table_args__ = (
        UniqueConstraint("dataset_id", "version"),
        CheckConstraint("state IN ('pending', 'ready')", name="state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    format: Mapped[str] = mapped_column(String(16))
    content_md5: Mapped[str] = mapped_column(String(64), default="")
    bytes: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), default=0)
    rows: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), nullable=True)
    files: Mapped[int] = mapped_column(Integer, default=1)
    schema: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    quality: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    message: Mapped[str] = mapped_column(Text, default="")
    author: Mapped[str] = mapped_column(String(255))
    parent_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    restored_from: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Made from another version (the accepted labels of an annotation task on it): lineage upstream.
    derived_from_id: Mapped[int | None] = mapped_column(ForeignKey("dataset_versions.id", ondelete="SET NULL"),
                                                        nullable=True)
    git_commit: Mapped[str | None] = mapped_column(String(64), nullable=True)
    tag: Mapped[str | None] = mapped_column(String(255), nullable=True)
    data_path: Mapped[str] = mapped_column(String(512), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    dataset: Mapped[DatasetRecord] = relationship(lazy="joined")
    derived_from: Mapped[DatasetVersionRecord | None] = relationship(remote_side="DatasetVersionRecord.id",
                                                                     lazy="select")


class DatasetRegistrationRecord(Base):
    """A registration running in the background: its handle, the step it is at, and how it ended (the
    version it made, or why there is none). Its callback target, when it has one, is told the end."""

    __tablename__ = "dataset_registrations"
    __table_args__ = (CheckConstraint("state IN ('working', 'registered', 'rejected', 'failed')", name="state"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    dataset: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(16), default="working")
    step: Mapped[str] = mapped_column(String(16), default="queued")
    filename: Mapped[str] = mapped_column(String(255))
    bytes: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), default=0)
    message: Mapped[str] = mapped_column(Text, default="")
    version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # {code, message, detail} of a refusal or a failure.
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    callback_url: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    callback_secret: Mapped[str | None] = mapped_column(String(256), nullable=True)

    project: Mapped[ProjectRecord] = relationship(lazy="joined")


class JobInputRecord(Base):
    """A job read this dataset version: declared at submission, or reported by the SDK inside the job."""

    __tablename__ = "job_inputs"
    __table_args__ = (UniqueConstraint("job_id", "dataset_version_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    dataset_version_id: Mapped[int] = mapped_column(ForeignKey("dataset_versions.id", ondelete="CASCADE"),
                                                    index=True)
    how: Mapped[str] = mapped_column(String(16), default="declared")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    dataset_version: Mapped[DatasetVersionRecord] = relationship(lazy="joined")


class AnnotationTaskRecord(Base):
    """Labelling work on one dataset version: items, the label set, who labels what, and the result."""

    __tablename__ = "annotation_tasks"
    __table_args__ = (
        UniqueConstraint("project_id", "name"),
        CheckConstraint("state IN ('open', 'exported')", name="state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    dataset_version_id: Mapped[int] = mapped_column(ForeignKey("dataset_versions.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    instructions: Mapped[str] = mapped_column(Text, default="")
    labels: Mapped[list[str]] = mapped_column(JSON, default=list)
    item_column: Mapped[str | None] = mapped_column(String(255), nullable=True)
    overlap: Mapped[int] = mapped_column(Integer, default=1)
    state: Mapped[str] = mapped_column(String(16), default="open")
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    exported_version_id: Mapped[int | None] = mapped_column(ForeignKey("dataset_versions.id", ondelete="SET NULL"),
                                                           nullable=True)

    project: Mapped[ProjectRecord] = relationship(lazy="joined")
    dataset_version: Mapped[DatasetVersionRecord] = relationship(lazy="joined", foreign_keys=[dataset_version_id])


class AnnotationItemRecord(Base):
    __tablename__ = "annotation_items"
    __table_args__ = (UniqueConstraint("task_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("annotation_tasks.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    key: Mapped[str] = mapped_column(String(1024))
    content: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class AnnotationAssignmentRecord(Base):
    __tablename__ = "annotation_assignments"
    __table_args__ = (
        UniqueConstraint("item_id", "annotator"),
        CheckConstraint("review IN ('pending', 'accepted', 'rejected')", name="review"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("annotation_tasks.id", ondelete="CASCADE"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("annotation_items.id", ondelete="CASCADE"), index=True)
    annotator: Mapped[str] = mapped_column(String(255), index=True)
    label: Mapped[str | None] = mapped_column(String(255), nullable=True)
    labelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    review: Mapped[str] = mapped_column(String(16), default="pending")
    reviewed_by: Mapped[str | None] = mapped_column(String(255), nullable=True)
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    item: Mapped[AnnotationItemRecord] = relationship(lazy="joined")
