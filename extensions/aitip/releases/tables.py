"""Catalog tables for releases: each project's release policy, the releases with their signed content, and every
decision and promotion (the audit trail keeps them too)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..catalog.base import Base, UTCDateTime, utcnow
from ..projects.tables import ProjectRecord


class ReleasePolicyRecord(Base):
    __tablename__ = "release_policies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), unique=True)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_by: Mapped[str] = mapped_column(String(255))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ReleaseRecord(Base):
    """A release: ``content`` is what was signed, whole; the other columns are read from it for queries."""

    __tablename__ = "releases"
    __table_args__ = (UniqueConstraint("project_id", "name", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(100))
    version: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    environment: Mapped[str] = mapped_column(String(16))
    content: Mapped[dict[str, Any]] = mapped_column(JSON)
    content_sha256: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(128))
    key_id: Mapped[str] = mapped_column(String(32))
    # The policy's approval stages and order when requested: later policy changes do not move the goalposts.
    approvals: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    project: Mapped[ProjectRecord] = relationship(lazy="joined")
    decisions: Mapped[list[ReleaseDecisionRecord]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", order_by="ReleaseDecisionRecord.id")
    promotions: Mapped[list[ReleasePromotionRecord]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", order_by="ReleasePromotionRecord.id")


class ReleaseDecisionRecord(Base):
    __tablename__ = "release_decisions"
    __table_args__ = (UniqueConstraint("release_id", "user"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    release_id: Mapped[int] = mapped_column(ForeignKey("releases.id", ondelete="CASCADE"), index=True)
    user: Mapped[str] = mapped_column(String(255))
    decision: Mapped[str] = mapped_column(String(16))
    stage: Mapped[int | None] = mapped_column(Integer, nullable=True)
    role: Mapped[str] = mapped_column(String(16))
    comment: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ReleasePromotionRecord(Base):
    __tablename__ = "release_promotions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    release_id: Mapped[int] = mapped_column(ForeignKey("releases.id", ondelete="CASCADE"), index=True)
    environment: Mapped[str] = mapped_column(String(16))
    by: Mapped[str] = mapped_column(String(255))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RolloutRecord(Base):
    """A release's model version moved onto an endpoint in steps: where it is, persisted after every change, so
    that a restarted platform resumes it at the same step. ``acting_as`` is the starter's identity, with which
    the rollout shifts the endpoint's traffic (checked each time, as for a person)."""

    __tablename__ = "release_rollouts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    release_id: Mapped[int] = mapped_column(ForeignKey("releases.id", ondelete="CASCADE"), index=True)
    endpoint: Mapped[str] = mapped_column(String(63))
    model: Mapped[str] = mapped_column(String(256))
    stable_version: Mapped[int] = mapped_column(Integer)
    canary_version: Mapped[int] = mapped_column(Integer)
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), index=True)
    step: Mapped[int] = mapped_column(Integer, default=0)
    step_started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    weight: Mapped[int] = mapped_column(Integer, default=0)
    runs: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    message: Mapped[str] = mapped_column(Text, default="")
    acting_as: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    project: Mapped[ProjectRecord] = relationship(lazy="joined")
    release: Mapped[ReleaseRecord] = relationship(lazy="joined")
