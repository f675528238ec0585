"""The catalog on SQLite and PostgreSQL: migrations up from empty, schema matches the models,
transactions roll back whole."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, select

from aitip.catalog import Catalog, normalize_url
from aitip.domains.registry import load_tables
from aitip.projects.tables import MemberRecord, ProjectRecord


def test_migrations_run_up_from_empty_to_head(catalog_url: str) -> None:
    store = Catalog(catalog_url)
    assert store.current_revision() is None
    store.migrate()
    head = ScriptDirectory.from_config(store.alembic_config()).get_current_head()
    assert store.current_revision() == head
    tables = set(inspect(store.engine).get_table_names())
    assert {"projects", "project_members", "audit_events", "alembic_version"} <= tables
    store.migrate()  # idempotent: a second start changes nothing
    assert store.current_revision() == head
    store.dispose()


def test_migrated_schema_matches_the_models(catalog: Catalog) -> None:
    with catalog.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, load_tables())
    assert differences == [], f"models and migrations disagree; write a migration: {differences}"


def test_a_failed_transaction_leaves_nothing(catalog: Catalog) -> None:
    with pytest.raises(RuntimeError), catalog.session() as session:
        session.add(ProjectRecord(name="half", display_name="half", created_by="ann"))
        session.flush()
        raise RuntimeError("boom")
    with catalog.session() as session:
        assert session.scalars(select(ProjectRecord)).all() == []


def test_constraints_hold_in_the_database(catalog: Catalog) -> None:
    from sqlalchemy.exc import IntegrityError

    with catalog.session() as session:
        session.add(ProjectRecord(name="p", display_name="p", created_by="ann"))
    with pytest.raises(IntegrityError), catalog.session() as session:
        project = session.scalar(select(ProjectRecord))
        session.add(MemberRecord(project_id=project.id, kind="robot", name="x", role="viewer", added_by="ann"))
    with pytest.raises(IntegrityError), catalog.session() as session:
        session.add(ProjectRecord(name="p", display_name="again", created_by="bob"))


def test_sqlite_runs_in_wal_mode(tmp_path) -> None:
    store = Catalog(f"sqlite:///{tmp_path / 'c.sqlite'}")
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    store.dispose()


@pytest.mark.parametrize(
    ("given", "expected_driver"),
    [
        ("postgresql://u@h/db", "postgresql+psycopg"),
        ("postgres://u@h/db", "postgresql+psycopg"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg"),
        ("sqlite:////tmp/x.sqlite", "sqlite"),
    ],
)
def test_urls_pick_the_psycopg3_driver(given: str, expected_driver: str) -> None:
    assert normalize_url(given).split("://")[0] == expected_driver


def test_catalogs_migrated_from_several_threads_at_once_all_complete(tmp_path: Path) -> None:
    """Alembic's context is module-wide: unserialized, concurrent migrations in one process broke each other
    (a test platform starting while the last one's MLflow warm-up still migrated its store)."""
    import threading

    errors: list[BaseException] = []

    def migrate(index: int) -> None:
        try:
            Catalog(f"sqlite:///{tmp_path / f'catalog-{index}.sqlite'}").migrate()
        except BaseException as error:  # noqa: BLE001 - collected for the assertion
            errors.append(error)

    threads = [threading.Thread(target=migrate, args=(index,)) for index in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert all(Catalog(f"sqlite:///{tmp_path / f'catalog-{index}.sqlite'}").current_revision() for index in range(6))
