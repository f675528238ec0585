"""Where the platform writes MLflow's tables itself (bulk metrics, job runs): which stores allow it, and
whether a table is exactly as MLflow's model and the database have it. Any difference sends the writer
back to MLflow's own API."""

from __future__ import annotations

import sys
from typing import Any


def unsupported_store(store: Any) -> str | None:
    """Why ``store`` cannot be written directly, or None for MLflow's SQL store on SQLite or PostgreSQL."""
    module = sys.modules.get("mlflow.store.tracking.sqlalchemy_store")
    if module is None or type(store) is not getattr(module, "SqlAlchemyStore", None):
        return f"the inner store is a {type(store).__name__}, not MLflow's SqlAlchemyStore"
    dialect = store.engine.dialect.name
    if dialect not in ("sqlite", "postgresql"):
        return f"no bulk path for {dialect} databases"
    return None


def column_mismatch(inspector: Any, model: Any, expected: frozenset[str]) -> str | None:
    """Why ``model``'s table differs from ``expected`` columns, in MLflow's model or in the database."""
    table = model.__tablename__
    in_model = {column.name for column in model.__table__.columns}
    if in_model != expected:
        return f"MLflow's {table} model has columns {sorted(in_model)}, expected {sorted(expected)}"
    if not inspector.has_table(table):
        return f"the database has no {table} table"
    in_database = {column["name"] for column in inspector.get_columns(table)}
    if in_database != expected:
        return f"the {table} table has columns {sorted(in_database)}, expected {sorted(expected)}"
    return None
