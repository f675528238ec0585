"""Catalog tables for jobs and their event log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..catalog.base import Base, UTCDateTime, utcnow
from ..projects.tables import ProjectRecord

JOB_STATES = ("queued", "starting", "running", "succeeded", "failed", "cancelled", "timed_out")


class JobRecord(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint("state IN ('queued', 'starting', 'running', 'succeeded', 'failed', 'cancelled', "
                        "'timed_out')", name="state"),
        Index("ix_jobs_state_priority", "state", "priority"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    owner: Mapped[str] = mapped_column(String(255), index=True)
    state: Mapped[str] = mapped_column(String(16), default="queued")
    notebook_name: Mapped[str] = mapped_column(String(255))
    notebook_sha256: Mapped[str] = mapped_column(String(64))
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    kernel: Mapped[str] = mapped_column(String(255))
    cpus: Mapped[float] = mapped_column(Float, default=1.0)
    gpus: Mapped[int] = mapped_column(Integer, default=0)
    memory_mb: Mapped[int | None] = mapped_column(Integer, nullable=True)
    priority: Mapped[int] = mapped_column(Integer, default=50)
    timeout_seconds: Mapped[int] = mapped_column(Integer, default=3600)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    tags: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    code_version: Mapped[str | None] = mapped_column(String(255), nullable=True)
    retry_of: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), nullable=True)
    rerun_of: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), nullable=True)
    sweep_id: Mapped[int | None] = mapped_column(ForeignKey("sweeps.id", ondelete="SET NULL"), nullable=True,
                                                 index=True)
    trial_index: Mapped[int | None] = mapped_column(Integer, nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    lease_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True, index=True)
    kernel_pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    kernel_host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # SHA-256 of the running attempt's API token (aitip.jobs.credentials); None when no attempt runs.
    credential_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    mlflow_run_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    mlflow_experiment_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    failed_cell: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    output_path: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    # Where the job's end is posted, signed with this secret (aitip.webhooks); private to the platform.
    # How a sandboxed job is isolated (aitip.jobs.models.Sandbox); None: an ordinary job.
    sandbox: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    callback_url: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    callback_secret: Mapped[str | None] = mapped_column(String(256), nullable=True)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    first_cell_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    project: Mapped[ProjectRecord] = relationship(lazy="joined")


class JobEventRecord(Base):
    __tablename__ = "job_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    kind: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class SweepRecord(Base):
    """A hyper-parameter search: its trials are ordinary jobs with ``sweep_id`` set."""

    __tablename__ = "sweeps"
    __table_args__ = (
        CheckConstraint("state IN ('running', 'succeeded', 'failed', 'cancelled')", name="state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    owner: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16), default="running")
    strategy: Mapped[str] = mapped_column(String(16))
    space: Mapped[dict[str, Any]] = mapped_column(JSON)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    trials: Mapped[int] = mapped_column(Integer)
    parallelism: Mapped[int] = mapped_column(Integer)
    objective: Mapped[str] = mapped_column(String(250))
    direction: Mapped[str] = mapped_column(String(8))
    seed: Mapped[int] = mapped_column(Integer, default=0)
    template: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_trials: Mapped[int] = mapped_column(Integer, default=0)
    results: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    best_job_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    best_value: Mapped[float | None] = mapped_column(Float, nullable=True)
    best_parameters: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    mlflow_run_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Where the sweep's end is posted, signed with this secret (aitip.webhooks); private to the platform.
    callback_url: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    callback_secret: Mapped[str | None] = mapped_column(String(256), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    project: Mapped[ProjectRecord] = relationship(lazy="joined")
