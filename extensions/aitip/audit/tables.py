"""Audit events, written in the transaction of the change they describe."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Integer, String
from sqlalchemy.orm import Mapped, Session, mapped_column

from ..catalog.base import Base, UTCDateTime, utcnow


class AuditEventRecord(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str] = mapped_column(String(512), index=True)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


def record(session: Session, actor: str, action: str, target: str, detail: dict[str, Any] | None = None) -> None:
    session.add(AuditEventRecord(actor=actor, action=action, target=target, detail=detail))
