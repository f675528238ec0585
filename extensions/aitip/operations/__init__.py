"""The operation table and what every face needs from it (see :mod:`.table`)."""

from .table import Operation, Section, operation, operations, sections

__all__ = ["Operation", "Section", "operation", "operations", "sections"]
