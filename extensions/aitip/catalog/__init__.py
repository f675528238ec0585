"""The platform catalog: the engine, sessions and Alembic migrations of the tables the domains declare
(:mod:`aitip.domains`)."""

from .base import Base
from .store import Catalog, normalize_url

__all__ = ["Base", "Catalog", "normalize_url"]
