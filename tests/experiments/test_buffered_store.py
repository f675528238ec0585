"""The buffered ``aitip:`` tracking store on a real MLflow sqlite store: plain ``mlflow`` calls are batched,
every point lands (after a flush, at run end, at cell end, at exit), reads see buffered writes, refused
writes are reported, and threads may log at once. Points are checked through a plain ``sqlite:`` client,
which sees only what was really written."""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException

from aitip.experiments.buffered_store import (
    BufferedTrackingStore,
    BufferedWriteError,
    buffered_tracking_uri,
    inner_tracking_uri,
)
from aitip.experiments.job_tracker import MlflowTracker


@dataclass
class Tracking:
    inner_uri: str
    uri: str
    plain: MlflowClient  # reads the inner store directly: only what was really written
    experiment_id: str
    run_id: str
    home: Path

    def store(self) -> BufferedTrackingStore:
        from mlflow.tracking._tracking_service.utils import _get_store

        store = _get_store(self.uri)
        assert isinstance(store, BufferedTrackingStore)
        return store

    def stored_history(self, key: str, run_id: str | None = None) -> list[Metric]:
        return self.plain.get_metric_history(run_id or self.run_id, key)


@pytest.fixture(scope="session")
def empty_mlflow_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow sqlite store with its tables made, copied for each test (migrating one takes seconds)."""
    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.sqlite"
    MlflowClient(f"sqlite:///{path}").search_experiments(max_results=1)
    return path


@pytest.fixture
def tracking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, empty_mlflow_database: Path) -> Iterator[Tracking]:
    shutil.copyfile(empty_mlflow_database, tmp_path / "mlflow.sqlite")
    inner = f"sqlite:///{tmp_path / 'mlflow.sqlite'}"
    plain = MlflowClient(inner)
    experiment_id = plain.create_experiment("test", artifact_location=(tmp_path / "artifacts").as_uri())
    run_id = plain.create_run(experiment_id).info.run_id
    monkeypatch.setenv("MLFLOW_TRACKING_URI", buffered_tracking_uri(inner))
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    monkeypatch.setenv("AITIP_MLFLOW_FLUSH_SECONDS", "3600")  # no background flush unless a test asks
    yield Tracking(inner, buffered_tracking_uri(inner), plain, experiment_id, run_id, tmp_path)
    while mlflow.active_run() is not None:
        mlflow.end_run()


def count_bulk_writes(store: BufferedTrackingStore, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of each bulk transaction of metrics the store writes from now on."""
    writer = store.metric_writer()
    assert writer is not None
    sizes: list[int] = []
    original = writer.write

    def write(run_id: str, metrics: list[Metric]) -> None:
        sizes.append(len(metrics))
        original(run_id, metrics)

    monkeypatch.setattr(writer, "write", write)
    return sizes


def count_inner_batches(store: BufferedTrackingStore, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, int]]:
    calls: list[dict[str, int]] = []
    original = store.inner.log_batch

    def log_batch(run_id: str, metrics: Any = (), params: Any = (), tags: Any = ()) -> None:
        calls.append({"metrics": len(metrics), "params": len(params), "tags": len(tags)})
        original(run_id, metrics=metrics, params=params, tags=tags)

    monkeypatch.setattr(store.inner, "log_batch", log_batch)
    return calls


# ----- the URI -----

@pytest.mark.parametrize(("uri", "inner"), [
    ("aitip:sqlite:////abs/path/mlflow.sqlite", "sqlite:////abs/path/mlflow.sqlite"),
    ("aitip:sqlite:///relative.db", "sqlite:///relative.db"),
    ("aitip:http://127.0.0.1:5000", "http://127.0.0.1:5000"),
    ("aitip:postgresql://user:pw@db:5432/mlflow", "postgresql://user:pw@db:5432/mlflow"),
])
def test_uri_wraps_the_inner_tracking_uri(uri: str, inner: str) -> None:
    from mlflow.utils.uri import get_uri_scheme

    assert get_uri_scheme(uri) == "aitip"
    assert inner_tracking_uri(uri) == inner
    assert buffered_tracking_uri(inner) == uri
    assert buffered_tracking_uri(uri) == uri


@pytest.mark.parametrize("uri", ["aitip:", "aitip:aitip:sqlite:///x.db", "sqlite:///x.db"])
def test_bad_uris_are_refused(uri: str) -> None:
    with pytest.raises(MlflowException, match="aitip"):
        inner_tracking_uri(uri)


def test_mlflow_builds_the_buffered_store_for_the_scheme(tracking: Tracking) -> None:
    assert mlflow.get_tracking_uri() == tracking.uri
    store = tracking.store()
    assert store.inner_uri == tracking.inner_uri
    assert type(store.inner).__name__ == "SqlAlchemyStore"


# ----- every point lands -----

@pytest.mark.parametrize("bulk", [True, False], ids=["bulk", "log_batch"])
def test_ten_thousand_plain_log_metric_calls_are_all_stored_in_few_batches(
        tracking: Tracking, monkeypatch: pytest.MonkeyPatch, bulk: bool) -> None:
    monkeypatch.setenv("AITIP_MLFLOW_BULK_METRICS", "1" if bulk else "0")
    mlflow.start_run(run_id=tracking.run_id)
    batches = count_inner_batches(tracking.store(), monkeypatch)
    transactions = count_bulk_writes(tracking.store(), monkeypatch) if bulk else []
    start = 1_700_000_000_000
    for step in range(10_000):
        mlflow.log_metric("loss", 1.0 / (step + 1), step=step, timestamp=start + step)
    mlflow.end_run()  # the run's end flushes what the background flushes have not taken yet

    history = sorted(tracking.stored_history("loss"), key=lambda m: m.step)
    assert [m.step for m in history] == list(range(10_000))
    assert [m.timestamp for m in history] == [start + step for step in range(10_000)]
    assert [m.value for m in history] == [1.0 / (step + 1) for step in range(10_000)]
    assert tracking.plain.get_run(tracking.run_id).info.status == "FINISHED"
    if bulk:
        assert sum(b["metrics"] for b in batches) == 0  # none through MLflow's log_batch
        assert sum(transactions) == 10_000 and max(transactions) <= 10_000 and len(transactions) <= 10
    else:
        assert tracking.store().metric_writer() is None
        assert sum(b["metrics"] for b in batches) == 10_000
        assert max(b["metrics"] for b in batches) == 1000  # MLflow's batch limit
        assert len(batches) <= 50  # written in batches, not one call a point


def wait_for_stored(tracking: Tracking, key: str, count: int, timeout: float = 20) -> int:
    deadline = time.monotonic() + timeout
    while len(tracking.stored_history(key)) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return len(tracking.stored_history(key))


def test_background_flush_by_age(tracking: Tracking) -> None:
    store = BufferedTrackingStore(tracking.uri, flush_seconds=0.2)
    for step in range(2500):
        store.log_metric(tracking.run_id, Metric("acc", step / 2500, 1_700_000_000_000, step))
    assert wait_for_stored(tracking, "acc", 2500) == 2500  # no flush was asked for
    assert store.pending_count() == 0


def test_background_flush_by_size(tracking: Tracking) -> None:
    store = BufferedTrackingStore(tracking.uri, flush_seconds=3600, flush_points=1000)
    for step in range(999):
        store.log_metric(tracking.run_id, Metric("acc", 0.5, 1_700_000_000_000, step))
    time.sleep(0.5)
    assert tracking.stored_history("acc") == []  # below both thresholds: still buffered
    store.log_metric(tracking.run_id, Metric("acc", 0.5, 1_700_000_000_000, 999))
    assert wait_for_stored(tracking, "acc", 1000) == 1000


def test_reads_see_buffered_writes(tracking: Tracking) -> None:
    client = MlflowClient()
    for step in range(5):
        client.log_metric(tracking.run_id, "loss", 10.0 - step, step=step)
    client.log_param(tracking.run_id, "lr", "0.1")
    client.set_tag(tracking.run_id, "stage", "warm-up")
    assert tracking.plain.get_run(tracking.run_id).data.params == {}  # nothing written yet

    assert [m.value for m in client.get_metric_history(tracking.run_id, "loss")] == [10.0, 9.0, 8.0, 7.0, 6.0]
    client.log_metric(tracking.run_id, "loss", 5.0, step=5)
    run = client.get_run(tracking.run_id)
    assert run.data.metrics["loss"] == 5.0
    assert run.data.params["lr"] == "0.1" and run.data.tags["stage"] == "warm-up"
    client.set_tag(tracking.run_id, "stage", "done")
    (found,) = client.search_runs([tracking.experiment_id], "tags.stage = 'done'")
    assert found.info.run_id == tracking.run_id


def test_points_logged_before_exit_are_stored_by_the_exit_flush(tracking: Tracking) -> None:
    script = textwrap.dedent(f"""
        import sys
        from mlflow import MlflowClient
        from mlflow.entities import Metric
        client = MlflowClient()
        for step in range(4321):
            client.log_metric({tracking.run_id!r}, "exit_loss", float(step), step=step)
        client.log_param({tracking.run_id!r}, "at_exit", "yes")
        client.set_tag({tracking.run_id!r}, "exit_tag", "set")
        store = client._tracking_client.store
        print(type(store).__name__, store.pending_count(), flush=True)
        sys.exit(0)
    """)
    env = {**os.environ, "AITIP_MLFLOW_FLUSH_SECONDS": "3600", "AITIP_MLFLOW_MAX_BUFFERED": "1000000"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    kind, pending = done.stdout.split()
    assert kind == "BufferedTrackingStore" and int(pending) > 0  # still buffered when the script ended
    assert "aitip:" not in done.stderr  # no write reported lost
    history = tracking.stored_history("exit_loss")
    assert sorted(m.step for m in history) == list(range(4321))
    run = tracking.plain.get_run(tracking.run_id)
    assert run.data.params["at_exit"] == "yes" and run.data.tags["exit_tag"] == "set"


def test_async_logging_api_is_buffered_and_wait_stores(tracking: Tracking) -> None:
    mlflow.start_run(run_id=tracking.run_id)
    operations = [mlflow.log_metric("async_loss", float(step), step=step, synchronous=False) for step in range(50)]
    operations.append(mlflow.log_param("async_param", "1", synchronous=False))
    assert tracking.stored_history("async_loss") == []
    for operation in operations:
        operation.wait()
    assert len(tracking.stored_history("async_loss")) == 50
    mlflow.log_metric("after", 1.0, synchronous=False)
    mlflow.flush_async_logging()
    assert len(tracking.stored_history("after")) == 1


# ----- params and tags -----

def test_params_and_tags_through_every_fluent_call(tracking: Tracking) -> None:
    mlflow.start_run(run_id=tracking.run_id)
    mlflow.log_param("epochs", 3)
    mlflow.log_params({f"p{i}": i for i in range(250)})  # more than one batch of params
    mlflow.log_param("epochs", 3)  # the same value again is fine, as in MLflow
    mlflow.set_tag("team", "vision")
    mlflow.set_tags({f"t{i}": str(i) for i in range(150)})
    mlflow.set_tag("team", "speech")  # the last value wins
    mlflow.log_metrics({"a": 1.0, "b": 2.0}, step=7)
    mlflow.flush_async_logging()

    run = tracking.plain.get_run(tracking.run_id)
    assert run.data.params["epochs"] == "3" and len(run.data.params) == 251
    assert run.data.tags["team"] == "speech" and all(run.data.tags[f"t{i}"] == str(i) for i in range(150))
    assert run.data.metrics == {"a": 1.0, "b": 2.0}


def test_changing_a_param_in_the_same_process_is_refused_at_once(tracking: Tracking) -> None:
    mlflow.start_run(run_id=tracking.run_id)
    mlflow.log_param("lr", "0.1")
    with pytest.raises(MlflowException, match="Changing param values is not allowed"):
        mlflow.log_param("lr", "0.2")
    mlflow.flush_async_logging()
    assert tracking.plain.get_run(tracking.run_id).data.params == {"lr": "0.1"}


def test_a_param_refused_by_the_store_is_raised_by_the_flush_and_the_rest_is_stored(tracking: Tracking) -> None:
    tracking.plain.log_param(tracking.run_id, "lr", "0.1")  # e.g. the platform logged the job's parameters
    mlflow.start_run(run_id=tracking.run_id)
    mlflow.log_params({"batch": "32", "lr": "0.2", "seed": "7"})
    mlflow.log_metric("loss", 0.5)
    with pytest.raises(BufferedWriteError, match="lr") as raised:
        mlflow.flush_async_logging()
    assert raised.value.error_code == "INVALID_PARAMETER_VALUE", str(raised.value)
    assert "not stored" in str(raised.value)
    run = tracking.plain.get_run(tracking.run_id)
    assert run.data.params == {"lr": "0.1", "batch": "32", "seed": "7"}
    assert run.data.metrics == {"loss": 0.5}
    mlflow.flush_async_logging()  # reported once, then the store goes on


def test_a_background_flush_failure_is_raised_by_the_next_call(tracking: Tracking) -> None:
    tracking.plain.log_param(tracking.run_id, "lr", "0.1")
    store = BufferedTrackingStore(tracking.uri, flush_seconds=0.05)
    store.log_param(tracking.run_id, Param("lr", "0.3"))
    deadline = time.monotonic() + 10
    while store.pending_count() and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)
    with pytest.raises(BufferedWriteError, match="Changing param values is not allowed"):
        store.log_metric(tracking.run_id, Metric("loss", 1.0, 0, 0))
    store.log_metric(tracking.run_id, Metric("loss", 1.0, 0, 0))
    store.flush()
    assert len(tracking.stored_history("loss")) == 1


@pytest.mark.parametrize("bulk", [True, False], ids=["bulk", "log_batch"])
def test_writes_that_failed_for_a_passing_reason_are_kept_and_retried(
        tracking: Tracking, monkeypatch: pytest.MonkeyPatch, bulk: bool) -> None:
    import sqlite3

    store = BufferedTrackingStore(tracking.uri, bulk_metrics=bulk)
    if bulk:
        writer = store.metric_writer()
        assert writer is not None
        original_write = writer.write
        locked = iter([sqlite3.OperationalError("database is locked")])

        def flaky_write(run_id: str, metrics: list[Metric]) -> None:
            failure = next(locked, None)
            if failure is not None:
                raise failure
            original_write(run_id, metrics)

        monkeypatch.setattr(writer, "write", flaky_write)
    else:
        original = store.inner.log_batch
        failures = iter([ConnectionError("server unreachable")])

        def flaky(run_id: str, metrics: Any = (), params: Any = (), tags: Any = ()) -> None:
            failure = next(failures, None)
            if failure is not None:
                raise failure
            original(run_id, metrics=metrics, params=params, tags=tags)

        monkeypatch.setattr(store.inner, "log_batch", flaky)
    store.log_batch(tracking.run_id, [Metric("m", float(i), 0, i) for i in range(1500)],
                    [Param("p", "1")], [RunTag("t", "x")])
    with pytest.raises(BufferedWriteError, match="kept for a retry"):
        store.flush()
    assert store.pending_count() == 1502
    store.flush()
    assert len(tracking.stored_history("m")) == 1500
    assert tracking.plain.get_run(tracking.run_id).data.params == {"p": "1"}


def test_invalid_keys_fail_at_the_call_not_at_a_flush(tracking: Tracking) -> None:
    mlflow.start_run(run_id=tracking.run_id)
    with pytest.raises(MlflowException, match='Invalid value "bad name'):
        mlflow.log_metric("bad name?!", 1.0)
    with pytest.raises(MlflowException):
        mlflow.log_metric("loss", "not a number")  # type: ignore[arg-type]
    assert tracking.store().pending_count() == 0


# ----- threads -----

def test_threads_logging_and_reading_at_once(tracking: Tracking) -> None:
    store = BufferedTrackingStore(tracking.uri, flush_seconds=0.01, max_buffered=3000)
    per_thread, errors = 3000, []

    def log(name: str) -> None:
        try:
            for step in range(per_thread):
                store.log_metric(tracking.run_id, Metric(name, float(step), 1_700_000_000_000 + step, step))
                if step % 500 == 0:
                    store.set_tag(tracking.run_id, RunTag(f"{name}.progress", str(step)))
        except Exception as error:  # noqa: BLE001 - asserted below
            errors.append(error)

    def read() -> None:
        try:
            for _ in range(20):
                store.get_metric_history(tracking.run_id, "thread-0")
        except Exception as error:  # noqa: BLE001 - asserted below
            errors.append(error)

    threads = [threading.Thread(target=log, args=(f"thread-{i}",)) for i in range(4)]
    threads.append(threading.Thread(target=read))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    store.flush()
    assert errors == []
    for i in range(4):
        history = tracking.stored_history(f"thread-{i}")
        assert sorted(m.step for m in history) == list(range(per_thread))
    assert tracking.plain.get_run(tracking.run_id).data.tags["thread-3.progress"] == "2500"


# ----- the bulk path for metrics: exactly what MLflow's log_batch stores -----

MAX_FLOAT = 1.7976931348623157e308  # where MLflow stores +-inf
POOL_VALUES = [0.0, -0.0, 1.0, 0.5, 2, 3.25, math.nan, math.inf, -math.inf, MAX_FLOAT, -MAX_FLOAT]
POOL_KEYS = ["loss", "acc", "val/f1-score", "lr"]


def mixed_metrics(seed: int, count: int, runs: int = 3) -> list[tuple[int, Metric]]:
    """(run index, metric) drawn from small pools, so that duplicates, ties on (step, timestamp, value),
    NaN beside 0 at one point, +-inf beside +-max float, negative and out-of-order steps all occur."""
    rng = random.Random(seed)
    drawn: list[tuple[int, Metric]] = []
    while len(drawn) < count:
        metric = Metric(rng.choice(POOL_KEYS), rng.choice(POOL_VALUES), rng.choice([0, 1000, 1001, 2000]),
                        rng.randint(-2, 30))
        drawn.append((rng.randrange(runs), metric))
        if rng.random() < 0.1:
            drawn.append(drawn[-1])  # the same Metric object again
    return drawn


EDGE_CASES = [  # (run index, metric), in logging order
    (0, Metric("tie", math.nan, 5, 3)), (0, Metric("tie", 0.0, 5, 3)),  # same order: the first stays latest
    (1, Metric("tie", 0.0, 5, 3)), (1, Metric("tie", math.nan, 5, 3)),
    (0, Metric("inf", math.inf, 7, 1)), (0, Metric("inf", MAX_FLOAT, 7, 1)),  # one row: inf is stored as max
    (0, Metric("inf", -math.inf, 7, 2)), (0, Metric("inf", 1.0, 7, 2)),
    (1, Metric("late", 9.0, 10, 100)), (1, Metric("late", 1.0, 10, 5)), (1, Metric("late", 9.0, 10, 100)),
    (2, Metric("nan_only", math.nan, 1, 0)), (2, Metric("nan_only", math.nan, 1, 0)),
    (2, Metric("ints", 5, 3, 4)), (2, Metric("ints", 5.0, 3, 4)), (2, Metric("ints", 7, 2**40, 2**40)),
    (2, Metric("zero", 0.0, 1, 1)),
]
LATER_EDGE_CASES = [  # logged flushes later: ties with the stored latest value must leave it alone
    (0, Metric("tie", 0.0, 5, 3)), (0, Metric("tie", math.nan, 5, 3)),
    (1, Metric("tie", math.nan, 5, 3)), (1, Metric("tie", 0.0, 5, 3)),
    (2, Metric("zero", -0.0, 1, 1)), (2, Metric("nan_only", 0.0, 1, 0)),
]


def log_with_mlflow(client: MlflowClient, run_ids: list[str], metrics: list[tuple[int, Metric]]) -> None:
    """MLflow's own path: ``log_batch`` of at most 1,000 metrics, each run's in logging order."""
    for index, run_id in enumerate(run_ids):
        of_run = [metric for run, metric in metrics if run == index]
        for start in range(0, len(of_run), 1000):
            client.log_batch(run_id, metrics=of_run[start:start + 1000])


def canonical(value: float) -> str:
    return "nan" if math.isnan(value) else repr(value)  # repr tells -0.0 from 0.0


def stored_metrics(uri: str, run_ids: list[str]) -> list[dict[str, Any]]:
    """Per run, as MLflow reads it back and as the rows lie in the database (storage types included)."""
    import sqlalchemy

    client = MlflowClient(uri)
    engine = sqlalchemy.create_engine(uri)
    is_sqlite = engine.dialect.name == "sqlite"
    types = ", typeof(value), typeof(timestamp), typeof(step)" if is_sqlite else ""
    state = []
    try:
        with engine.connect() as connection:
            for run_id in run_ids:
                run = client.get_run(run_id)
                latest = {key: canonical(value) for key, value in run.data.metrics.items()}
                history = {key: sorted((m.step, m.timestamp, canonical(m.value))
                                       for m in client.get_metric_history(run_id, key)) for key in latest}
                rows = connection.execute(sqlalchemy.text(
                    f"SELECT key, value, timestamp, step, is_nan{types} FROM metrics WHERE run_uuid = :run"
                    " ORDER BY key, step, timestamp, value, is_nan"), {"run": run_id}).all()
                latest_rows = connection.execute(sqlalchemy.text(
                    f"SELECT key, value, timestamp, step, is_nan{types} FROM latest_metrics WHERE run_uuid = :run"
                    " ORDER BY key"), {"run": run_id}).all()
                state.append({"latest": latest, "history": history, "rows": [tuple(row) for row in rows],
                              "latest_rows": [tuple(row) for row in latest_rows]})
    finally:
        engine.dispose()
    return state


@pytest.fixture(params=["sqlite", "postgresql"])
def two_metric_stores(request: pytest.FixtureRequest, tmp_path: Path,
                      empty_mlflow_database: Path) -> Iterator[tuple[str, str]]:
    """Two empty MLflow stores of one kind: one written by MLflow, one by the bulk path. PostgreSQL runs on
    the test server the suite finds (or AITIP_TEST_POSTGRES_URL); skipped where none answers, except under CI."""
    if request.param == "sqlite":
        for name in ("plain", "bulk"):
            shutil.copyfile(empty_mlflow_database, tmp_path / f"{name}.sqlite")
        yield f"sqlite:///{tmp_path / 'plain.sqlite'}", f"sqlite:///{tmp_path / 'bulk.sqlite'}"
        return
    from sqlalchemy.engine import make_url as _url

    server = _url(request.getfixturevalue("postgres_server")).set(drivername="postgresql+psycopg").render_as_string(
        hide_password=False)
    import uuid

    import sqlalchemy
    from sqlalchemy.engine import make_url

    names = [f"aitip_bulk_test_{uuid.uuid4().hex[:8]}_{kind}" for kind in ("plain", "bulk")]
    admin = sqlalchemy.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        for name in names:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield tuple(make_url(server).set(database=name).render_as_string(hide_password=False)
                    for name in names)  # type: ignore[misc]
    finally:
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

        for engine in SqlAlchemyStore._engine_map.values():
            engine.dispose()
        with admin.connect() as connection:
            for name in names:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.mark.parametrize("rows_per_transaction", [10_000, 7])
def test_bulk_metrics_are_stored_exactly_as_mlflow_stores_them(
        two_metric_stores: tuple[str, str], monkeypatch: pytest.MonkeyPatch, rows_per_transaction: int) -> None:
    plain_uri, bulk_uri = two_metric_stores
    run_ids = {}
    for uri in two_metric_stores:
        client = MlflowClient(uri)
        experiment_id = client.create_experiment("equivalence")
        run_ids[uri] = [client.create_run(experiment_id).info.run_id for _ in range(3)]
        log_with_mlflow(client, run_ids[uri], mixed_metrics(seed=1, count=300))  # stored before, in both

    logged = EDGE_CASES + mixed_metrics(seed=2, count=4000) + LATER_EDGE_CASES + EDGE_CASES
    log_with_mlflow(MlflowClient(plain_uri), run_ids[plain_uri], logged)

    store = BufferedTrackingStore(buffered_tracking_uri(bulk_uri), flush_seconds=3600, flush_points=10**9,
                                  max_buffered=10**9)
    writer = store.metric_writer()
    assert writer is not None
    writer.rows_per_transaction = rows_per_transaction
    batches = count_inner_batches(store, monkeypatch)
    for index, (run, metric) in enumerate(logged):
        store.log_metric(run_ids[bulk_uri][run], metric)
        if index % 1500 == 1499:
            store.flush()  # later flushes meet rows, and latest values, already stored
    store.flush()
    assert batches == []  # every metric went through the bulk path

    expected = stored_metrics(plain_uri, run_ids[plain_uri])
    assert stored_metrics(bulk_uri, run_ids[bulk_uri]) == expected
    rows = [row for run in expected for row in run["rows"]]
    assert len(rows) < len(logged) + 300  # duplicates were dropped ...
    assert any(row[4] for row in rows) and any(row[1] == MAX_FLOAT for row in rows)  # ... NaN and inf stored
    assert [run["latest"]["tie"] for run in expected[:2]] == ["nan", "0.0"]  # the first of a tie stays latest
    assert expected[2]["latest"]["nan_only"] == "nan"


def test_the_bulk_path_is_used_only_for_mlflow_database_stores(
        tracking: Tracking, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    caplog.set_level(logging.INFO, logger="aitip.experiments")
    assert BufferedTrackingStore(tracking.uri).metric_writer() is not None
    assert BufferedTrackingStore(tracking.uri, bulk_metrics=False).metric_writer() is None
    assert BufferedTrackingStore("aitip:http://127.0.0.1:9").metric_writer() is None
    assert "the inner store is a RestStore, not MLflow's SqlAlchemyStore" in caplog.text
    monkeypatch.setenv("AITIP_MLFLOW_BULK_METRICS", "0")
    assert BufferedTrackingStore(tracking.uri).metric_writer() is None


def test_a_database_with_unexpected_metric_tables_falls_back_to_log_batch(
        tracking: Tracking, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    import sqlite3

    with sqlite3.connect(tracking.home / "mlflow.sqlite") as db:
        db.execute("ALTER TABLE metrics ADD COLUMN origin TEXT")
    store = BufferedTrackingStore(tracking.uri)
    assert store.metric_writer() is None
    assert "the metrics table has columns" in caplog.text and "origin" in caplog.text
    batches = count_inner_batches(store, monkeypatch)
    store.log_batch(tracking.run_id, [Metric("loss", float(step), 0, step) for step in range(1200)], [], [])
    store.flush()
    assert [b["metrics"] for b in batches] == [1000, 200]
    assert len(tracking.stored_history("loss")) == 1200


@pytest.mark.parametrize("bulk", [True, False], ids=["bulk", "log_batch"])
def test_metrics_of_a_deleted_or_unknown_run_are_refused_as_mlflow_refuses_them(
        tracking: Tracking, bulk: bool) -> None:
    store = BufferedTrackingStore(tracking.uri, bulk_metrics=bulk)
    tracking.plain.delete_run(tracking.run_id)
    store.log_metric(tracking.run_id, Metric("loss", 1.0, 0, 0))
    with pytest.raises(BufferedWriteError, match="must be in the 'active' state") as raised:
        store.flush()
    assert raised.value.error_code == "INVALID_PARAMETER_VALUE" and "not stored" in str(raised.value)
    store.log_metric("0" * 32, Metric("loss", 1.0, 0, 0))
    with pytest.raises(BufferedWriteError, match=f"Run with id={'0' * 32} not found") as raised:
        store.flush()
    assert raised.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    tracking.plain.restore_run(tracking.run_id)
    store.log_metric(tracking.run_id, Metric("loss", 2.0, 0, 1))
    store.flush()
    assert [m.value for m in tracking.stored_history("loss")] == [2.0]


def test_metrics_of_a_logged_model_go_through_log_batch_in_logging_order(
        tracking: Tracking, monkeypatch: pytest.MonkeyPatch) -> None:
    model_id = tracking.plain.create_logged_model(tracking.experiment_id, source_run_id=tracking.run_id).model_id
    store = BufferedTrackingStore(tracking.uri)
    batches = count_inner_batches(store, monkeypatch)
    transactions = count_bulk_writes(store, monkeypatch)
    store.log_batch(tracking.run_id, [Metric("loss", 3.0, 0, 0), Metric("loss", 2.0, 0, 1)], [], [])
    store.log_metric(tracking.run_id, Metric("loss", 1.0, 0, 2, model_id=model_id))
    store.log_metric(tracking.run_id, Metric("loss", 0.5, 0, 3))
    store.flush()
    assert transactions == [2, 1] and [b["metrics"] for b in batches] == [1]
    assert [m.value for m in sorted(tracking.stored_history("loss"), key=lambda m: m.step)] == [3.0, 2.0, 1.0, 0.5]
    assert tracking.plain.get_run(tracking.run_id).data.metrics == {"loss": 0.5}
    assert [m.value for m in tracking.plain.get_logged_model(model_id).metrics] == [1.0]


# ----- artifacts and the model registry under the scheme -----

def test_artifacts_and_model_registry_work_under_the_scheme(tracking: Tracking) -> None:
    report = tracking.home / "report.txt"
    report.write_text("hello")
    with mlflow.start_run(run_id=tracking.run_id):
        mlflow.log_artifact(str(report), artifact_path="reports")
        mlflow.log_metric("score", 0.9)
    assert (tracking.home / "artifacts" / tracking.run_id / "artifacts" / "reports" / "report.txt").exists()

    assert mlflow.get_registry_uri() == tracking.uri  # MLflow's default: the tracking URI
    client = MlflowClient()
    client.create_registered_model("buffered-model")
    source = f"{tracking.plain.get_run(tracking.run_id).info.artifact_uri}/reports"
    version = client.create_model_version("buffered-model", source, run_id=tracking.run_id)
    assert str(version.version) == "1"
    (stored,) = MlflowClient(tracking.inner_uri).search_model_versions("name='buffered-model'")
    assert stored.run_id == tracking.run_id and stored.source == source


def test_proxied_artifact_uris_resolve_against_the_inner_server(tracking: Tracking) -> None:
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    BufferedTrackingStore(tracking.uri)  # the first store of a process routes mlflow-artifacts: URIs
    repository = get_artifact_repository("mlflow-artifacts:/1/abc/artifacts", tracking_uri="aitip:http://127.0.0.1:5999")
    assert repository.artifact_uri == "http://127.0.0.1:5999/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts"


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``mlflow server`` with proxied artifacts (``mlflow-artifacts:``), as a team would run one."""
    import httpx

    from aitip.launcher import free_port

    home = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1", "--backend-store-uri", f"sqlite:///{home / 'mlflow.sqlite'}",
         "--artifacts-destination", (home / "artifacts").as_uri()],
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "mlflow server did not start"
            time.sleep(0.3)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)


def test_over_http_metrics_artifacts_models_and_registry(mlflow_server: str, tmp_path: Path) -> None:
    script = textwrap.dedent("""
        import mlflow, sys
        from mlflow.pyfunc import PythonModel

        class Doubler(PythonModel):
            def predict(self, context, model_input):
                return model_input * 2

        with open(sys.argv[1], "w") as notes:
            notes.write("notes")
        with mlflow.start_run() as run:
            for step in range(3000):
                mlflow.log_metric("http_loss", 1.0 / (step + 1), step=step)
            mlflow.log_param("kind", "doubler")
            mlflow.log_artifact(sys.argv[1])
            mlflow.pyfunc.log_model(name="model", python_model=Doubler(), pip_requirements=[],
                                    registered_model_name="http-doubler")
        print(run.info.run_id, mlflow.get_tracking_uri())
    """)
    env = {**os.environ, "MLFLOW_TRACKING_URI": buffered_tracking_uri(mlflow_server)}
    env.pop("MLFLOW_REGISTRY_URI", None)
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "notes.txt")], env=env,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    run_id, uri = done.stdout.split()[-2:]
    assert uri == buffered_tracking_uri(mlflow_server)
    plain = MlflowClient(mlflow_server)
    assert sorted(m.step for m in plain.get_metric_history(run_id, "http_loss")) == list(range(3000))
    assert plain.get_run(run_id).data.params == {"kind": "doubler"}
    assert {a.path for a in plain.list_artifacts(run_id)} >= {"notes.txt"}
    (version,) = plain.search_model_versions("name='http-doubler'")
    assert version.run_id == run_id


# ----- inside a kernel -----

def _run_cell(client: Any, code: str) -> tuple[dict[str, Any], str]:
    outputs: list[str] = []

    def keep(message: dict[str, Any]) -> None:
        content = message["content"]
        if message["msg_type"] == "stream":
            outputs.append(content["text"])
        elif message["msg_type"] == "error":
            outputs.append("\n".join(content["traceback"]))

    reply = client.execute_interactive(code, timeout=120, output_hook=keep)
    return reply["content"], "".join(outputs)


def test_points_logged_in_a_kernel_cell_are_stored_when_the_cell_ends(tracking: Tracking) -> None:
    from jupyter_client.manager import start_new_kernel

    env = {**os.environ, "MLFLOW_RUN_ID": tracking.run_id, "MLFLOW_REGISTRY_URI": tracking.inner_uri}
    manager, client = start_new_kernel(kernel_name="aitip-python", env=env, startup_timeout=60)
    try:
        reply, output = _run_cell(client, "import mlflow\nfor step in range(750):\n"
                                          "    mlflow.log_metric('cell_loss', step * 0.1, step=step)\n"
                                          "mlflow.log_param('cell_param', 'x')\n"
                                          "print(type(mlflow.tracking._tracking_service.utils._get_store()).__name__,"
                                          " mlflow.tracking._tracking_service.utils._get_store().pending_count())")
        assert reply["status"] == "ok", output
        assert output.split() == ["BufferedTrackingStore", "751"]  # all buffered while the cell ran
        assert len(tracking.stored_history("cell_loss")) == 750  # the kernel is alive: the cell end flushed
        assert tracking.plain.get_run(tracking.run_id).data.params == {"cell_param": "x"}

        tracking.plain.log_param(tracking.run_id, "lr", "0.1")
        reply, output = _run_cell(client, "mlflow.log_param('lr', '0.5')\nmlflow.log_metric('after', 1.0)")
        assert reply["status"] == "error"  # the cell fails: its param could not be stored
        assert reply["ename"] == "BufferedWriteError" and "lr" in reply["evalue"], reply
        assert "Changing param values is not allowed" in output
        assert len(tracking.stored_history("after")) == 1

        reply, output = _run_cell(client, "mlflow.log_metric('after', 2.0, step=1)")
        assert reply["status"] == "ok", output  # the failure was reported once
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


@pytest.mark.asyncio
async def test_a_job_kernel_gets_the_buffered_uri_and_each_cell_is_flushed(tmp_path: Path) -> None:
    from aitip.jobs.models import JobState, JobSubmit
    from tests.jobs.conftest import ANN, make_platform

    inner = f"sqlite:///{tmp_path / 'mlflow.sqlite'}"
    tracker = MlflowTracker(inner, tmp_path / "mlartifacts")
    platform = await make_platform(tmp_path, tracker=tracker)
    cells = [
        "import os\nos.environ['AITIP_MLFLOW_FLUSH_SECONDS'] = '3600'\nimport mlflow\n"
        f"assert os.environ['MLFLOW_TRACKING_URI'] == {buffered_tracking_uri(inner)!r}\n"
        f"assert os.environ['MLFLOW_REGISTRY_URI'] == {inner!r}\n"
        "for step in range(500):\n    mlflow.log_metric('job_loss', 1.0 / (step + 1), step=step)",
        "from mlflow import MlflowClient\n"
        "stored = MlflowClient(os.environ['MLFLOW_REGISTRY_URI']).get_metric_history("
        "mlflow.active_run().info.run_id, 'job_loss')\nassert len(stored) == 500, len(stored)",
    ]
    notebook = {"cells": [{"cell_type": "code", "metadata": {}, "source": source, "outputs": [],
                           "execution_count": None} for source in cells],
                "metadata": {"kernelspec": {"name": "aitip-python", "display_name": "AITIP", "language": "python"}},
                "nbformat": 4, "nbformat_minor": 5}
    await platform.worker.start()
    try:
        job = await platform.jobs.submit(ANN, JobSubmit(project="lab", notebook=json.loads(json.dumps(notebook))))
        done = await platform.wait(job.id, JobState.succeeded, JobState.failed, timeout=120)
        assert done.state is JobState.succeeded, (done.reason, done.failed_cell)
    finally:
        await platform.worker.stop()
        platform.catalog.dispose()
    assert len(MlflowClient(inner).get_metric_history(done.mlflow_run_id, "job_loss")) == 500


def test_the_buffered_uri_can_be_turned_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inner = f"sqlite:///{tmp_path / 'mlflow.sqlite'}"
    assert MlflowTracker(inner, tmp_path).kernel_tracking_uri("aitip-python") == buffered_tracking_uri(inner)
    assert MlflowTracker(inner, tmp_path, buffered_logging=False).kernel_tracking_uri("aitip-python") == inner
    monkeypatch.setenv("AITIP_MLFLOW_BUFFERED_LOGGING", "0")
    assert MlflowTracker(inner, tmp_path).kernel_tracking_uri("aitip-python") == inner
    monkeypatch.delenv("AITIP_MLFLOW_BUFFERED_LOGGING")
    # A kernel of another environment cannot load the plugin: it gets the plain URI.
    assert MlflowTracker(inner, tmp_path).kernel_tracking_uri("no-such-kernel") == inner
