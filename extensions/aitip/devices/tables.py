"""Catalog tables for devices: the registry (a device's token is kept as its SHA-256 only), firmware rollouts in
device groups, and each device's update within a rollout."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..catalog.base import Base, UTCDateTime, utcnow
from ..projects.tables import ProjectRecord


class DeviceRecord(Base):
    __tablename__ = "devices"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    hardware: Mapped[str] = mapped_column(String(64))
    group: Mapped[str] = mapped_column(String(64), index=True)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    token_hint: Mapped[str] = mapped_column(String(16))
    # What the device said at its last check-in: the version it runs, from which slot, and how its last update went.
    version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    slot: Mapped[str | None] = mapped_column(String(1), nullable=True)
    state: Mapped[str] = mapped_column(String(16), default="registered")
    message: Mapped[str] = mapped_column(Text, default="")
    last_seen: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    project: Mapped[ProjectRecord] = relationship(lazy="joined")


class DeviceRolloutRecord(Base):
    """A firmware release sent to device groups one after another (hawkBit's rollout groups): the next group
    starts once enough of this one installed it; too many failures stop everything (an emergency stop)."""

    __tablename__ = "device_rollouts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    release_id: Mapped[int] = mapped_column(ForeignKey("releases.id", ondelete="CASCADE"), index=True)
    version: Mapped[str] = mapped_column(String(64))
    hardware: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(255))
    poll_seconds: Mapped[float] = mapped_column(Float)
    # What every device of the rollout is told to install: the release's signed content and signature.
    update_payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    groups: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), index=True)
    group_index: Mapped[int] = mapped_column(Integer, default=0)
    message: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    project: Mapped[ProjectRecord] = relationship(lazy="joined")


class DeviceUpdateRecord(Base):
    __tablename__ = "device_updates"
    __table_args__ = (UniqueConstraint("rollout_id", "device_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rollout_id: Mapped[int] = mapped_column(ForeignKey("device_rollouts.id", ondelete="CASCADE"), index=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), index=True)
    group_index: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))  # assigned, installed, failed, stopped
    message: Mapped[str] = mapped_column(Text, default="")
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    reported_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
