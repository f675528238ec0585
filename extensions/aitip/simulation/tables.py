"""Catalog tables for simulations: the project's own scenario templates (each version kept), the policies that
simulate a model's versions after their evaluation passes, and each simulation with exactly what it attacked
(model version or endpoint, dataset version and hash, template version, notebook) and what it found."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..catalog.base import Base, UTCDateTime, utcnow
from ..projects.tables import ProjectRecord

SIMULATION_STATES = ("queued", "running", "passed", "failed", "error")


class SimulationTemplateRecord(Base):
    """One version of a project's scenario template (the shipped library lives in notebooks/simulate)."""

    __tablename__ = "simulation_templates"
    __table_args__ = (UniqueConstraint("project_id", "name", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    # The template as written (its own keys, ``extends`` included), and as resolved when it was saved.
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    resolved: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    project: Mapped[ProjectRecord] = relationship(lazy="joined")


class SimulationPolicyRecord(Base):
    """How one registered model of a project is simulated; with ``automatic``, each of its versions whose
    evaluation passes is simulated at once."""

    __tablename__ = "simulation_policies"
    __table_args__ = (UniqueConstraint("project_id", "model"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    model: Mapped[str] = mapped_column(String(256))
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    automatic: Mapped[bool] = mapped_column(default=True)
    updated_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    project: Mapped[ProjectRecord] = relationship(lazy="joined")


class SimulationRecord(Base):
    """One simulation: a sandboxed job that ran a template's notebook against one model version (or one
    endpoint) and one dataset version, judged against the template and the previous version's simulation."""

    __tablename__ = "simulations"
    __table_args__ = (CheckConstraint("state IN ('queued', 'running', 'passed', 'failed', 'error')", name="state"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    template_name: Mapped[str] = mapped_column(String(64))
    template_version: Mapped[int] = mapped_column(Integer)
    template_source: Mapped[str] = mapped_column(String(16))  # "library" (shipped) or "project"
    template: Mapped[dict[str, Any]] = mapped_column(JSON)  # as resolved when the simulation started
    kind: Mapped[str] = mapped_column(String(16))
    model: Mapped[str | None] = mapped_column(String(256), nullable=True, index=True)
    model_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    model_run_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # An LLM endpoint under test: its uri, request template and response field (header values withheld).
    endpoint: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    dataset: Mapped[str | None] = mapped_column(String(100), nullable=True)
    dataset_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    dataset_md5: Mapped[str] = mapped_column(String(64), default="")
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), nullable=True,
                                               index=True)
    notebook_sha256: Mapped[str] = mapped_column(String(64), default="")
    state: Mapped[str] = mapped_column(String(16), default="queued")
    # "manual", or "evaluation:<id>": the passed evaluation whose policy started it.
    trigger: Mapped[str] = mapped_column(String(64), default="manual")
    # The simulation of the model's previous version under the same template, compared with (regression).
    previous_id: Mapped[int | None] = mapped_column(ForeignKey("simulations.id", ondelete="SET NULL"),
                                                    nullable=True)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    verdict: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    report_path: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    project: Mapped[ProjectRecord] = relationship(lazy="joined")


class CheckedEvaluationRecord(Base):
    """A finished evaluation already looked at by the simulation policies (once, whatever it started)."""

    __tablename__ = "simulation_checked_evaluations"

    evaluation_id: Mapped[int] = mapped_column(ForeignKey("evaluations.id", ondelete="CASCADE"), primary_key=True)
    simulations: Mapped[int] = mapped_column(Integer, default=0)
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
