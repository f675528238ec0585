"""The audit trail: every catalog write records who did what, in the same transaction."""

from .tables import AuditEventRecord, record

__all__ = ["AuditEventRecord", "record"]
