"""The platform catalog: SQLAlchemy models of every domain, Alembic migrations, sessions."""

from .base import Base
from .store import Catalog, normalize_url

__all__ = ["Base", "Catalog", "normalize_url"]
