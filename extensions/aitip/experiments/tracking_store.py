"""The platform's MLflow tracking store, created and migrated once, crash-safely, before anything uses it.

MLflow creates its schema the first time a store is opened, in several steps that are not one transaction
on SQLite: a process killed in between left a half-made file that every later run creation failed on
("table issues already exists"). Here:

* an SQLite store is built in a temporary file next to the real one and renamed over it only when it is
  complete (tables, migrations, the default experiment, WAL mode), all under an exclusive file lock; an
  outdated store is upgraded the same way, on a copy. A half-made file left by older code is set aside
  when it holds no runs, and refused with a clear message when it does;
* on PostgreSQL, under an advisory lock, each step is transactional, and a start finishes what a killed
  one began;
* a tracking server (``http(s)://``) manages its own store.

Each step is a named fault point (:mod:`aitip.faults`), so the fault tests kill the process at every one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
import zlib
from pathlib import Path

from .. import faults
from ..file_lock import exclusive_file_lock
from ..migration_lock import MIGRATIONS
from .artifacts import SCHEME as ARTIFACTS_SCHEME
from .artifacts import relocate_file_artifacts

log = logging.getLogger("aitip.experiments.store")

_ready: set[str] = set()
_ready_lock = threading.Lock()


class TrackingStoreError(RuntimeError):
    """The store cannot be made usable without a person deciding (it holds data but is half-made)."""


def ensure_tracking_store(tracking_uri: str, artifact_root: Path) -> None:
    """Make the store at ``tracking_uri`` complete and current; cheap after the first call in a process."""
    if not tracking_uri or tracking_uri in _ready:
        return
    with _ready_lock, MIGRATIONS:
        if tracking_uri in _ready:
            return
        if tracking_uri.startswith("sqlite:///"):
            _ensure_sqlite(Path(tracking_uri[len("sqlite:///"):]), artifact_root)
        elif tracking_uri.startswith(("postgresql", "postgres:")):
            _ensure_postgresql(tracking_uri, artifact_root)
        moved = relocate_file_artifacts(tracking_uri, artifact_root)
        if moved:
            log.info("%d artifact locations of %s now served as mlflow-artifacts:/", moved, tracking_uri)
        _ready.add(tracking_uri)


def forget_ready_stores() -> None:
    """For tests that delete a store and start over in the same process."""
    with _ready_lock:
        _ready.clear()


# ----- SQLite -----


def _sqlite_state(path: Path) -> tuple[str, str | None]:
    """('ready'|'outdated'|'half-made'|'empty', revision) of an existing SQLite file."""
    from mlflow.store.db.utils import _get_latest_schema_revision

    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not tables - {"alembic_version"}:
            return "empty", None
        revision = None
        if "alembic_version" in tables:
            row = db.execute("SELECT version_num FROM alembic_version").fetchone()
            revision = row[0] if row else None
    if revision is None:
        return "half-made", None
    if not _all_orm_tables(tables):
        return "half-made", revision
    return ("ready" if revision == _get_latest_schema_revision() else "outdated"), revision


def _all_orm_tables(tables: set[str]) -> bool:
    from mlflow.store.db.base_sql_model import Base

    return set(Base.metadata.tables) <= tables


def _holds_runs(path: Path) -> bool:
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)) as db:
        with contextlib.suppress(sqlite3.DatabaseError):
            if db.execute("SELECT 1 FROM runs LIMIT 1").fetchone() is not None:
                return True
        with contextlib.suppress(sqlite3.DatabaseError):
            return db.execute("SELECT 1 FROM experiments WHERE experiment_id != 0 LIMIT 1").fetchone() is not None
    return False


def _sidecars(path: Path) -> list[Path]:
    return [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm"),
            path.with_name(path.name + "-journal")]


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _ensure_sqlite(path: Path, artifact_root: Path) -> None:
    path = path.absolute()
    with exclusive_file_lock(path.with_name(path.name + ".lock")):
        faults.point("tracking_store.locked")
        for stale in path.parent.glob(f".{path.name}.building-*"):
            stale.unlink(missing_ok=True)  # a build killed mid-way, with its -wal/-shm
        if path.exists():
            state, revision = _sqlite_state(path)
            if state == "ready":
                return
            if state == "outdated":
                log.warning("upgrading the MLflow store %s from schema %s", path, revision)
                _build_sqlite(path, artifact_root, copy_of=path)
                return
            if _holds_runs(path):
                raise TrackingStoreError(
                    f"the MLflow store {path} is half-made (schema revision {revision}) but holds runs: "
                    "back it up, then run `mlflow db upgrade sqlite:///...` on it, or move it away to start "
                    "a new one")
            aside = path.with_name(f"{path.name}.half-made-{int(time.time())}")
            log.warning("the MLflow store %s was half-made and empty (an interrupted creation); set aside as %s",
                        path, aside.name)
            for sidecar, moved in zip(_sidecars(path), _sidecars(aside)):
                if sidecar.exists():
                    os.replace(sidecar, moved)
        _build_sqlite(path, artifact_root)


def _build_sqlite(path: Path, artifact_root: Path, copy_of: Path | None = None) -> None:
    """A complete store in a temporary file, renamed over ``path`` once whole."""
    import sqlalchemy
    from mlflow.store.db.base_sql_model import Base  # noqa: F401 - every ORM model registered
    from mlflow.store.tracking.dbmodels.initial_models import Base as InitialBase
    from mlflow.store.db.utils import _upgrade_db
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    building = path.with_name(f".{path.name}.building-{os.getpid()}")
    for sidecar in _sidecars(building):
        sidecar.unlink(missing_ok=True)
    uri = f"sqlite:///{building}"
    os.close(os.open(building, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))  # the platform's alone, whatever the umask
    try:
        if copy_of is not None:
            with contextlib.closing(sqlite3.connect(copy_of, timeout=30)) as source, \
                    contextlib.closing(sqlite3.connect(building)) as target:
                source.backup(target)
            faults.point("tracking_store.copied")
        engine = sqlalchemy.create_engine(uri)
        try:
            if copy_of is None:
                InitialBase.metadata.create_all(engine)
                faults.point("tracking_store.initial_tables")
            _upgrade_db(engine)
            faults.point("tracking_store.migrated")
        finally:
            engine.dispose()
        store = SqlAlchemyStore(uri, f"{ARTIFACTS_SCHEME}:/")  # adds the default experiment
        store.engine.dispose()
        faults.point("tracking_store.default_experiment")
        with contextlib.closing(sqlite3.connect(building, timeout=30)) as db:
            db.execute("PRAGMA journal_mode=WAL")  # fewer fsyncs per run; persists in the file
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        faults.point("tracking_store.wal")
        with open(building, "rb") as handle:
            os.fsync(handle.fileno())
        for sidecar in _sidecars(building)[1:]:
            sidecar.unlink(missing_ok=True)  # checkpointed and empty: the real file starts without them
        faults.point("tracking_store.synced")
        os.replace(building, path)
        _fsync_directory(path.parent)
        faults.point("tracking_store.replaced")
    except BaseException:
        for sidecar in _sidecars(building):
            sidecar.unlink(missing_ok=True)
        raise
    log.info("MLflow store ready at %s", path)


# ----- PostgreSQL -----


def _ensure_postgresql(tracking_uri: str, artifact_root: Path) -> None:
    """Each step is a transaction of its own on PostgreSQL (the initial tables; then every migration,
    which MLflow's alembic environment runs in one transaction on a connection of its own), so a crash
    leaves either nothing, the initial tables alone, or the whole schema: the next start finishes it."""
    import sqlalchemy
    from mlflow.store.db.utils import _all_tables_exist, _get_latest_schema_revision, _get_schema_version, _upgrade_db
    from mlflow.store.tracking.dbmodels.initial_models import Base as InitialBase
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    engine = sqlalchemy.create_engine(tracking_uri)
    key = zlib.crc32(b"aitip mlflow store") & 0x7FFFFFFF
    try:
        with engine.connect() as lock:
            lock.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": key})
            lock.commit()
            faults.point("tracking_store.locked")
            try:
                if not _all_tables_exist(engine):
                    InitialBase.metadata.create_all(engine)
                    faults.point("tracking_store.initial_tables")
                if _get_schema_version(engine) != _get_latest_schema_revision():
                    _upgrade_db(engine)
                    faults.point("tracking_store.migrated")
                store = SqlAlchemyStore(tracking_uri, f"{ARTIFACTS_SCHEME}:/")
                store.engine.dispose()
                faults.point("tracking_store.default_experiment")
            finally:
                lock.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                lock.commit()
    finally:
        engine.dispose()
