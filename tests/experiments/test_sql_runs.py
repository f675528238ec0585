"""A job's run created in one SQL transaction reads back through MLflow exactly as one its client
created, on SQLite and PostgreSQL; other stores, and changed tables, take MLflow's client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow.exceptions import MlflowException

from aitip.experiments.sql_runs import SqlRunStarter
from aitip.experiments.job_tracker import MlflowTracker

JOB = {"id": 7, "attempt": 2, "project": "lab", "owner": "ann", "notebook_sha256": "ab" * 32,
       "notebook_name": "train.ipynb", "kernel": "aitip-python", "tags": {"purpose": "test"},
       "code_version": "0123abc", "parameters": {"lr": 0.1, "name": "digits", "layers": [64, 32], "long": "x" * 7000}}


@pytest.fixture(params=["sqlite", "postgresql"])
def tracking_uri(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'mlflow.sqlite'}"
        return
    from sqlalchemy.engine import make_url

    yield make_url(request.getfixturevalue("postgres_database")).set(drivername="postgresql+psycopg").render_as_string(
        hide_password=False)


def _as_read(tracker: MlflowTracker, run_id: str) -> dict:
    run = tracker.client.get_run(run_id)
    info = run.info
    return {"status": info.status, "stage": info.lifecycle_stage, "user": info.user_id, "name": info.run_name,
            "experiment": info.experiment_id, "end": info.end_time,
            "artifacts": info.artifact_uri.replace(run_id, "RUN"), "tags": run.data.tags, "params": run.data.params}


def test_sql_and_client_runs_read_back_the_same(tracking_uri: str, tmp_path: Path) -> None:
    tracker = MlflowTracker(tracking_uri, tmp_path / "artifacts")
    assert tracker.run_starter, "the SQL path was not taken"
    by_sql = tracker.start(JOB)
    tracker._run_starter = False
    by_client = tracker.start(JOB)
    assert by_sql.run_id != by_client.run_id
    assert _as_read(tracker, by_sql.run_id) == _as_read(tracker, by_client.run_id)
    read = _as_read(tracker, by_sql.run_id)
    assert read["status"] == "RUNNING" and read["name"] == "train · job 7 · attempt 2" and read["user"] == "ann"
    assert read["params"]["layers"] == "[64, 32]" and len(read["params"]["long"]) == 6000
    found = tracker.client.search_runs([by_sql.experiment_id], "params.name = 'digits'")
    assert {r.info.run_id for r in found} == {by_sql.run_id, by_client.run_id}
    tracker.client.log_metric(by_sql.run_id, "loss", 0.5)
    tracker.finish(by_sql, "succeeded", None)
    assert tracker.client.get_run(by_sql.run_id).info.status == "FINISHED"


def test_no_run_in_an_experiment_that_was_deleted(tmp_path: Path) -> None:
    tracker = MlflowTracker(f"sqlite:///{tmp_path / 'mlflow.sqlite'}", tmp_path / "artifacts")
    tracker.start(JOB)
    tracker.client.delete_experiment(tracker.experiment_id("lab"))
    before = tracker.client.search_runs([tracker.experiment_id("lab")], run_view_type=3)
    with pytest.raises(MlflowException, match="not active"):
        tracker.start(JOB)
    assert len(tracker.client.search_runs([tracker.experiment_id("lab")], run_view_type=3)) == len(before)


def test_bad_tags_are_refused_as_mlflow_refuses_them(tmp_path: Path) -> None:
    tracker = MlflowTracker(f"sqlite:///{tmp_path / 'mlflow.sqlite'}", tmp_path / "artifacts")
    with pytest.raises(MlflowException):
        tracker.start({**JOB, "tags": {"bad key?": "x"}})
    assert tracker.client.search_runs([tracker.experiment_id("lab")]) == []


def test_other_stores_and_changed_tables_take_the_client(tmp_path: Path) -> None:
    import sqlalchemy

    assert SqlRunStarter.for_store(object()) is None
    tracker = MlflowTracker(f"sqlite:///{tmp_path / 'mlflow.sqlite'}", tmp_path / "artifacts")
    store = tracker.client._tracking_client.store
    with store.engine.begin() as connection:
        connection.execute(sqlalchemy.text("ALTER TABLE runs ADD COLUMN extra TEXT"))
    assert SqlRunStarter.for_store(store) is None
    assert tracker.run_starter is False
    run = tracker.start(JOB)
    assert tracker.client.get_run(run.run_id).data.params["lr"] == "0.1"
