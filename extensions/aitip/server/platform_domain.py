"""The platform's own part: the audit trail's table and the platform section of the operation table."""

from __future__ import annotations

from ..domains.base import Domain


class PlatformDomain(Domain):
    name = "platform"
    title = "Platform"
    tables = ("aitip.audit.tables",)
    operations = "aitip.server.operations"
