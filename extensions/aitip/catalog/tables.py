"""Imports every domain's tables so that ``Base.metadata`` is complete (for Alembic and tests)."""

from ..audit import tables as audit_tables  # noqa: F401
from ..datasets import tables as dataset_tables  # noqa: F401
from ..jobs import tables as job_tables  # noqa: F401
from ..projects import tables as project_tables  # noqa: F401
from ..webhooks import tables as webhook_tables  # noqa: F401
from .base import Base

metadata = Base.metadata
