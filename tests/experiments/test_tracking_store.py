"""The MLflow tracking store is created whole or not at all: a process killed (SIGKILL) at every step of
its creation leaves a store that the next start completes, and on which runs are created and logged."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from aitip.experiments.tracking_store import TrackingStoreError, ensure_tracking_store, forget_ready_stores

CREATION_STEPS = ["tracking_store.locked", "tracking_store.initial_tables", "tracking_store.migrated",
                  "tracking_store.default_experiment", "tracking_store.wal", "tracking_store.synced",
                  "tracking_store.replaced"]

ENSURE = ("import sys; from pathlib import Path; from aitip.experiments.tracking_store import ensure_tracking_store; "
          "ensure_tracking_store(sys.argv[1], Path(sys.argv[2]))")

USE = """
import sys
from mlflow.tracking import MlflowClient
client = MlflowClient(tracking_uri=sys.argv[1])
experiment = client.create_experiment("aitip/faults")
run = client.create_run(experiment)
client.log_metric(run.info.run_id, "loss", 0.5, step=1)
client.set_terminated(run.info.run_id)
assert client.get_run(run.info.run_id).data.metrics == {"loss": 0.5}
print("ok")
"""


def _run(code: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=180,
                          env={**os.environ, **(env or {})})


def _tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


@pytest.fixture(autouse=True)
def _fresh_process_cache():
    forget_ready_stores()
    yield
    forget_ready_stores()


def test_a_new_store_is_complete_in_wal_mode_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    store = tmp_path / "mlflow.sqlite"
    ensure_tracking_store(f"sqlite:///{store}", tmp_path / "artifacts")
    assert {"runs", "metrics", "experiments", "alembic_version", "logged_models"} <= _tables(store)
    with sqlite3.connect(store) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("SELECT name FROM experiments WHERE experiment_id = 0").fetchone() == ("Default",)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    assert _run(USE, f"sqlite:///{store}").stdout.strip() == "ok"


@pytest.mark.parametrize("step", CREATION_STEPS)
def test_killed_at_each_step_of_creation_the_next_start_completes_the_store(tmp_path: Path, step: str) -> None:
    store, uri = tmp_path / "mlflow.sqlite", f"sqlite:///{tmp_path / 'mlflow.sqlite'}"
    killed = _run(ENSURE, uri, str(tmp_path / "artifacts"),
                  env={"AITIP_FAULT_POINT": step, "AITIP_FAULT_ONCE_FILE": str(tmp_path / "fired")})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert (tmp_path / "fired").read_text() == step
    # Before the rename the real file does not exist; after it, it is whole.
    assert store.exists() == (step == "tracking_store.replaced")
    restarted = _run(ENSURE, uri, str(tmp_path / "artifacts"))
    assert restarted.returncode == 0, restarted.stderr[-2000:]
    assert [p.name for p in tmp_path.iterdir() if ".building-" in p.name] == []
    used = _run(USE, uri)
    assert used.stdout.strip() == "ok", used.stderr[-2000:]


def test_a_half_made_store_left_by_an_older_version_is_set_aside_when_it_holds_no_runs(tmp_path: Path) -> None:
    """What the SIGKILL of MLflow's own creation left: its initial tables, no migration recorded."""
    from mlflow.store.tracking.dbmodels.initial_models import Base as InitialBase
    from sqlalchemy import create_engine

    store = tmp_path / "mlflow.sqlite"
    engine = create_engine(f"sqlite:///{store}")
    InitialBase.metadata.create_all(engine)
    engine.dispose()
    ensure_tracking_store(f"sqlite:///{store}", tmp_path / "artifacts")
    assert [p.name.split("-")[0] for p in tmp_path.glob("mlflow.sqlite.half-made-*")] == ["mlflow.sqlite.half"]
    assert _run(USE, f"sqlite:///{store}").stdout.strip() == "ok"


def test_a_half_made_store_holding_runs_is_refused_with_what_to_do(tmp_path: Path) -> None:
    from mlflow.store.tracking.dbmodels.initial_models import Base as InitialBase
    from sqlalchemy import create_engine, text

    store = tmp_path / "mlflow.sqlite"
    engine = create_engine(f"sqlite:///{store}")
    InitialBase.metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO experiments (experiment_id, name, lifecycle_stage) "
                                "VALUES (1, 'kept', 'active')"))
    engine.dispose()
    with pytest.raises(TrackingStoreError, match="holds runs.*back it up"):
        ensure_tracking_store(f"sqlite:///{store}", tmp_path / "artifacts")
    assert store.exists() and not list(tmp_path.glob("*.half-made-*"))


def test_an_outdated_store_is_upgraded_on_a_copy_and_keeps_its_runs(tmp_path: Path) -> None:
    store, uri = tmp_path / "mlflow.sqlite", f"sqlite:///{tmp_path / 'mlflow.sqlite'}"
    ensure_tracking_store(uri, tmp_path / "artifacts")
    assert _run(USE, uri).stdout.strip() == "ok"
    with sqlite3.connect(store) as db:
        db.execute("UPDATE alembic_version SET version_num = 'not-the-head'")
    forget_ready_stores()
    from mlflow.store.db.utils import _get_latest_schema_revision

    with pytest.raises(Exception, match="not-the-head"):  # alembic cannot find that revision: refused, not broken
        ensure_tracking_store(uri, tmp_path / "artifacts")
    with sqlite3.connect(store) as db:
        db.execute("UPDATE alembic_version SET version_num = ?", (_get_latest_schema_revision(),))
        assert db.execute("SELECT COUNT(*) FROM runs").fetchone() == (1,)
    assert [p.name for p in tmp_path.iterdir() if ".building-" in p.name] == []


@pytest.mark.postgres
@pytest.mark.parametrize("step", ["tracking_store.locked", "tracking_store.initial_tables", "tracking_store.migrated",
                                  "tracking_store.default_experiment"])
def test_on_postgresql_a_start_finishes_what_a_killed_one_began(postgres_database: str, tmp_path: Path,
                                                                step: str) -> None:
    uri = postgres_database.replace("postgresql://", "postgresql+psycopg://", 1)
    killed = _run(ENSURE, uri, str(tmp_path / "artifacts"),
                  env={"AITIP_FAULT_POINT": step, "AITIP_FAULT_ONCE_FILE": str(tmp_path / "fired")})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    restarted = _run(ENSURE, uri, str(tmp_path / "artifacts"))
    assert restarted.returncode == 0, restarted.stderr[-2000:]
    used = _run(USE, uri)
    assert used.stdout.strip() == "ok", used.stderr[-2000:]
