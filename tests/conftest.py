"""Shared fixtures: throw-away catalogs on SQLite and PostgreSQL, and test identities."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from aitip.catalog import Catalog
from tests.support.requirements import require

POSTGRES_URL = os.environ.get("AITIP_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _postgres_unreachable_reason() -> str | None:
    import psycopg

    try:
        psycopg.connect(POSTGRES_URL, connect_timeout=3).close()
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return f"PostgreSQL not reachable at {POSTGRES_URL}: {exc}"
    return None


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own AITIP home; nothing touches the real user data dir."""
    home = tmp_path_factory.mktemp("aitip-home")
    monkeypatch.setenv("AITIP_HOME", str(home))
    monkeypatch.setenv("AITIP_MLFLOW_TRACKING_URI", "")
    monkeypatch.delenv("AITIP_CATALOG_URL", raising=False)
    return home


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The admin URL of a reachable PostgreSQL; skipped when none answers, except under CI=true."""
    require(_postgres_unreachable_reason(), "PostgreSQL tests must run; set AITIP_TEST_POSTGRES_URL")
    return POSTGRES_URL


@pytest.fixture
def postgres_database(postgres_server: str) -> Iterator[str]:
    """A fresh database, dropped after the test."""
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"aitip_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = make_url(postgres_server).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """Each catalog test runs on embedded SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'catalog.sqlite'}"
    return request.getfixturevalue("postgres_database")


@pytest.fixture
def catalog(catalog_url: str) -> Iterator[Catalog]:
    store = Catalog(catalog_url)
    store.migrate()
    yield store
    store.dispose()
