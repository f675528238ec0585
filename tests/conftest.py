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
    """Every test gets its own AITIP home; nothing touches the real user data dir. Components built in the
    test process run in single-trust mode (one OS account) unless a test asks for separate accounts
    (tests/isolation); the platform started by the integration tests runs as it would for real."""
    home = tmp_path_factory.mktemp("aitip-home")
    monkeypatch.setenv("AITIP_HOME", str(home))
    monkeypatch.setenv("AITIP_SHARED_ACCOUNT", "1")
    monkeypatch.setenv("AITIP_MLFLOW_TRACKING_URI", "")
    monkeypatch.delenv("AITIP_CATALOG_URL", raising=False)
    monkeypatch.setenv("AITIP_LANG", "en")  # the CLI speaks English to tests that read it, whatever the locale
    return home


_ACCOUNTS_BEFORE = pytest.StashKey[set[str]]()


def _hub_accounts() -> set[str]:
    import pwd

    return {entry.pw_name for entry in pwd.getpwall()
            if entry.pw_name.startswith("aitip-") and entry.pw_gecos.startswith("AITIP hub user ")}


def pytest_sessionstart(session: pytest.Session) -> None:
    """Tests run as root make real ``aitip-*`` Linux accounts (one per hub user a platform runs jobs or
    servers for). The accounts present before the run are noted by the process that runs every test, or
    under pytest-xdist by the controller: a worker that finished must not remove accounts another still uses."""
    if not hasattr(session.config, "workerinput"):
        session.config.stash[_ACCOUNTS_BEFORE] = _hub_accounts()


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The accounts this run made are removed once every test is over."""
    import subprocess

    before = session.config.stash.get(_ACCOUNTS_BEFORE, None)
    if before is None or os.geteuid() != 0:
        return
    for name in sorted(_hub_accounts() - before):
        subprocess.run(["userdel", name], capture_output=True, timeout=60)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Files holding integration or slow tests (a real hub, a browser, fault injection: minutes each) run first,
    the rest after them in their usual order: under pytest-xdist the short files then fill the workers' ends,
    instead of one long file running alone at the end while the other worker waits."""
    long_files = {item.path for item in items if item.get_closest_marker("integration") is not None
                  or item.get_closest_marker("slow") is not None}
    items.sort(key=lambda item: item.path not in long_files)


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
