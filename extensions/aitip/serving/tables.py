"""Catalog tables for serving: endpoints, their versions (variants) with weights and states, the API keys that
may call an endpoint, the metric time series per version (read by rollout analysis), and a sample of
requests and answers (masked) for drift checks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..catalog.base import Base, UTCDateTime, utcnow
from ..projects.tables import ProjectRecord


class EndpointRecord(Base):
    __tablename__ = "serving_endpoints"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(63))
    model: Mapped[str] = mapped_column(String(256))
    mode: Mapped[str] = mapped_column(String(16))
    settings: Mapped[dict[str, Any]] = mapped_column(JSON)
    shadow_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    project: Mapped[ProjectRecord] = relationship(lazy="joined")
    variants: Mapped[list[VariantRecord]] = relationship(
        back_populates="endpoint", lazy="selectin", cascade="all, delete-orphan", order_by="VariantRecord.version")


class VariantRecord(Base):
    """One model version of an endpoint: its share of the traffic and whether it serves."""

    __tablename__ = "serving_variants"
    __table_args__ = (UniqueConstraint("endpoint_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("serving_endpoints.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    weight: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    run_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    endpoint: Mapped[EndpointRecord] = relationship(back_populates="variants")


class ApiKeyRecord(Base):
    """A key that may call one endpoint; only its SHA-256 is kept (the secret is shown once)."""

    __tablename__ = "serving_api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("serving_endpoints.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    secret_sha256: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class MetricPointRecord(Base):
    """One interval of one version's requests: what rollout analysis reads."""

    __tablename__ = "serving_metric_points"
    __table_args__ = (Index("ix_serving_metric_points_endpoint_at", "endpoint_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("serving_endpoints.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    seconds: Mapped[float] = mapped_column(Float)
    requests: Mapped[int] = mapped_column(Integer)
    errors: Mapped[int] = mapped_column(Integer)
    client_errors: Mapped[int] = mapped_column(Integer)
    rows: Mapped[int] = mapped_column(Integer)
    latency_p50_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    latency_p90_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    latency_p99_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    buckets: Mapped[list[int]] = mapped_column(JSON)
    labelled: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # rows whose label arrived
    correct: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class SampleRecord(Base):
    """A request and its answer, kept (masked) for drift checks."""

    __tablename__ = "serving_samples"
    __table_args__ = (Index("ix_serving_samples_endpoint_at", "endpoint_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("serving_endpoints.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    protocol: Mapped[str] = mapped_column(String(16))
    status: Mapped[int] = mapped_column(Integer)
    latency_ms: Mapped[float] = mapped_column(Float)
    request: Mapped[Any] = mapped_column(JSON)
    answer: Mapped[Any] = mapped_column(JSON)


class RememberedAnswerRecord(Base):
    """An answer to a request that named itself (``X-Request-Id``), kept until its true label arrives (or a day
    passes): labels that arrive after a restart of the platform still score the version that answered."""

    __tablename__ = "serving_remembered_answers"
    __table_args__ = (Index("ix_serving_remembered_answers_endpoint_at", "endpoint_id", "at"),)

    endpoint_id: Mapped[int] = mapped_column(ForeignKey("serving_endpoints.id", ondelete="CASCADE"),
                                             primary_key=True)
    request_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    predicted: Mapped[Any] = mapped_column(JSON)
