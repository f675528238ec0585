"""A real Jupyter server (pytest-jupyter) running the aitip extension in platform mode."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError

from aitip.catalog import Catalog
from aitip.datasets.registry import DataRegistry
from aitip.identity.directory import IdentityProviderDirectory
from aitip.server.authorizer import StandalonePlatformAuthorizer
from tests.support.identity import TokenUsersIdentityProvider


USERS = {
    "tok-ann": {"name": "ann"},
    "tok-bob": {"name": "bob"},
    "tok-carol": {"name": "carol", "groups": ["vision"]},
    "tok-dave": {"name": "dave"},
    "tok-erin": {"name": "erin"},
    "tok-frank": {"name": "frank"},
    "tok-erin-ro": {"name": "erin-ro"},
    "tok-root": {"name": "root", "admin": True},
}
TOKENS = {info["name"]: token for token, info in USERS.items()}


KERNELS = Path(__file__).resolve().parents[2] / "kernels"


@pytest.fixture(autouse=True)
def aitip_kernelspecs(jp_data_dir: Path) -> None:
    """pytest-jupyter isolates the Jupyter paths; install the platform's kernel specs there."""
    for name in ("aitip-python", "aitip-gpu"):
        shutil.copytree(KERNELS / name, jp_data_dir / "kernels" / name, dirs_exist_ok=True)


@pytest.fixture(scope="session")
def migrated_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty catalog brought to the head revision by the platform's own ``Catalog.migrate()``, once a session.
    Migrations up from empty are tested in tests/catalog (SQLite and PostgreSQL) and by every ``aitip up`` of
    the integration tests."""
    path = tmp_path_factory.mktemp("migrated-catalog") / "catalog.sqlite"
    catalog = Catalog(f"sqlite:///{path}")
    catalog.migrate()
    catalog.dispose()
    return path


def copy_database(template: Path, target: Path) -> None:
    """A copy of the SQLite database ``template`` (a catalog, an MLflow store) at ``target``, made by SQLite's backup
    (whole, whatever its WAL held, in its journal mode), readable by its owner alone as the platform makes both."""
    os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    with contextlib.closing(sqlite3.connect(template)) as source, contextlib.closing(sqlite3.connect(target)) as copy:
        source.backup(copy)


@pytest.fixture(scope="session")
def made_tracking_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow SQLite store made complete by the platform's own ``ensure_tracking_store``, once a session: making
    one takes seconds of MLflow's migrations. Its making from nothing, and killed at each step, is tested in
    tests/experiments/test_tracking_store.py and by every ``aitip up`` of the integration tests."""
    from aitip.experiments.tracking_store import ensure_tracking_store

    root = tmp_path_factory.mktemp("made-tracking-store")
    ensure_tracking_store(f"sqlite:///{root / 'mlflow.sqlite'}", root / "mlartifacts")
    return root / "mlflow.sqlite"


@pytest.fixture
def tracking_uri(tmp_path: Path, made_tracking_store: Path) -> str:
    """This test's own MLflow store (a copy of the made one), as a URI."""
    copy_database(made_tracking_store, tmp_path / "mlflow.sqlite")
    return f"sqlite:///{tmp_path / 'mlflow.sqlite'}"


@pytest.fixture(scope="session")
def initialized_registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty data registry (Git + DVC, its first commit made) initialized by the platform's own
    ``DataRegistry``, once a session, as the platform makes it (umask 077). Its initialization from nothing is
    tested in tests/datasets and by every ``aitip up`` of the integration suite."""
    root = tmp_path_factory.mktemp("initialized-registry") / "registry"
    previous = os.umask(0o077)
    try:
        DataRegistry(root).close()
    finally:
        os.umask(previous)
    return root


@pytest.fixture
def jp_server_config(tmp_path, isolated_home: Path, migrated_catalog: Path,
                     initialized_registry: Path) -> dict[str, Any]:
    # The platform starts on a catalog already at head (its migrate() then finds nothing to do) and a data
    # registry already initialized where it keeps it (it opens it): migrating every test's catalog from empty
    # and running `git init` and `dvc init` cost ~0.25 s of each of the ~1,100 tests with a server.
    copy_database(migrated_catalog, tmp_path / "catalog.sqlite")
    shutil.copytree(initialized_registry, isolated_home / "datasets" / "registry", symlinks=True)
    return {
        "ServerApp": {
            "jpserver_extensions": {"aitip": True},
            "identity_provider_class": TokenUsersIdentityProvider,
            "authorizer_class": StandalonePlatformAuthorizer,
            "allow_unauthenticated_access": False,
        },
        "TokenUsersIdentityProvider": {"users": USERS},
        "AitipExtension": {
            "mode": "platform",
            "catalog_url": f"sqlite:///{tmp_path / 'catalog.sqlite'}",
            "directory_class": IdentityProviderDirectory,
            "run_jobs": False,
            "data_remote": "none",  # pushes to the DVC remote are tested in tests/datasets/test_remote.py
        },
    }


class Api:
    """Calls the aitip API as a named user and returns (status, JSON body) without raising."""

    def __init__(self, jp_fetch: Any) -> None:
        self._fetch = jp_fetch

    async def __call__(self, method: str, path: str, *, user: str | None = "ann", body: Any = None,
                       raw: bytes | None = None, headers: dict[str, str] | None = None,
                       params: dict[str, Any] | None = None) -> tuple[int, Any]:
        sent = {"Authorization": f"token {TOKENS[user]}" if user else "token nobody"}
        if body is not None or raw is not None:
            sent["Content-Type"] = "application/json"
        sent.update(headers or {})
        payload = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        kwargs: dict[str, Any] = {"method": method, "headers": sent, "params": params or {}}
        if payload is not None or method in ("POST", "PUT", "PATCH"):
            kwargs["body"] = payload if payload is not None else b""
        if method == "DELETE":
            kwargs["allow_nonstandard_methods"] = True
        try:
            response = await self._fetch("api", "aitip", "v1", *path.strip("/").split("/"), **kwargs)
        except HTTPClientError as error:
            response = error.response
            assert response is not None, error
        text = response.body.decode() if response.body else ""
        return response.code, (json.loads(text) if text else None)


@pytest.fixture
def api(jp_fetch: Any) -> Api:
    return Api(jp_fetch)
