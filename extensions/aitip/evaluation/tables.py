"""Catalog tables for evaluations: the policies that say how a project's models are judged, each evaluation
with exactly what it judged (model version, dataset version and hash, notebook) and what it found, and the
training jobs already looked at for new versions to evaluate."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..catalog.base import Base, UTCDateTime, utcnow
from ..projects.tables import ProjectRecord

EVALUATION_STATES = ("queued", "running", "passed", "failed", "error")


class EvaluationPolicyRecord(Base):
    """How one registered model of a project is evaluated: the notebook, the data, the thresholds and the
    baseline; with ``automatic``, every version a training job registers is evaluated at once."""

    __tablename__ = "evaluation_policies"
    __table_args__ = (UniqueConstraint("project_id", "model"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    model: Mapped[str] = mapped_column(String(256))
    # The settings as the API took them (aitip.evaluation.models.PolicySettings), validated again on use.
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    automatic: Mapped[bool] = mapped_column(default=True)
    updated_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    project: Mapped[ProjectRecord] = relationship(lazy="joined")


class EvaluationRecord(Base):
    """One evaluation: a job that ran an evaluation notebook on one model version and one dataset version."""

    __tablename__ = "evaluations"
    __table_args__ = (CheckConstraint("state IN ('queued', 'running', 'passed', 'failed', 'error')", name="state"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    model: Mapped[str] = mapped_column(String(256))
    model_version: Mapped[int] = mapped_column(Integer)
    model_run_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    baseline_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    dataset: Mapped[str] = mapped_column(String(100))
    dataset_version: Mapped[int] = mapped_column(Integer)
    dataset_md5: Mapped[str] = mapped_column(String(64), default="")
    # The evaluation's job (its notebook snapshot, its MLflow run); None only until it is submitted.
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), nullable=True,
                                               index=True)
    notebook_sha256: Mapped[str] = mapped_column(String(64), default="")
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(16), default="queued")
    # "manual", or "job:<id>" for the training job whose registered version started it.
    trigger: Mapped[str] = mapped_column(String(64), default="manual")
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    baseline_metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # The result as the notebook published it (tables, plots, profile), for the report and the page.
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    verdict: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # What a reader of the verdict should know (e.g. the data evaluated is data the model was trained on).
    warnings: Mapped[list[str]] = mapped_column(JSON, default=list)
    report_path: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    project: Mapped[ProjectRecord] = relationship(lazy="joined")


class CheckedTrainingJobRecord(Base):
    """A finished job already looked at for versions it registered (once each, whatever it found), so that
    a restart neither misses a version nor evaluates one twice."""

    __tablename__ = "evaluation_checked_jobs"

    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    evaluations: Mapped[int] = mapped_column(Integer, default=0)
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
