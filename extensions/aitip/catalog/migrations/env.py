"""Alembic environment: runs on the connection the Catalog hands over, or on sqlalchemy.url."""

from __future__ import annotations

from aitip.domains.registry import load_tables
from alembic import context
from sqlalchemy import create_engine

config = context.config
metadata = load_tables()  # every domain's tables (aitip.domains)


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url"))
    with engine.begin() as fresh:
        _run(fresh)
    engine.dispose()


def _run(connection: object) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # type: ignore[attr-defined]
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("AITIP migrations run online only (the platform applies them at start)")
run_migrations()
