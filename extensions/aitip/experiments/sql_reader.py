"""Reads an SQL-backed MLflow store (SQLite or PostgreSQL) straight from MLflow's own tables.

MLflow's ``search_runs`` spends most of its time building ORM objects (profiled in FIELD-NOTES). Here a
page of runs is one SQLAlchemy Core query for the runs and one each for their params, latest metrics
and tags, on a read-only engine kept alive for the life of the platform. Filters and orders come from
:mod:`.search` (MLflow's parser) and are translated to SQL with bound parameters, mirroring the
clauses MLflow's ``SqlAlchemyStore`` builds, so both give the same runs in the same order (a test
compares them on a table of searches).
"""

from __future__ import annotations

import concurrent.futures
import math
import operator
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import numpy as np
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ColumnElement,
    Connection,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    bindparam,
    case,
    create_engine,
    false,
    func,
    inspect,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.engine import make_url
from sqlalchemy.pool import QueuePool

from .records import (
    DELETED_VERSION_STAGE,
    JOB_ID_TAG,
    PROJECT_TAG,
    RUN_NAME_TAG,
    Curve,
    StoreUnsupported,
    experiment_name,
    project_of_experiment,
    run_record,
)
from .search import ATTRIBUTE, METRIC, PARAM, TAG, Condition, RunSearch

T = TypeVar("T")
# Up to this many curves (runs x keys) are read one indexed query each; more in one query.
CURVE_QUERIES = 64
# Histories kept until the store changes (a reloaded Experiments page, a second viewer of the same runs): a few
# answers, each of at most this many points (8 bytes each of step, timestamp and value), so at most ~40 MB.
CACHED_CURVES = 16
CACHED_CURVE_POINTS = 100_000

_tables = MetaData()
runs_table = Table(
    "runs", _tables,
    Column("run_uuid", String(32), primary_key=True), Column("name", String(250)), Column("user_id", String(256)),
    Column("status", String(9)), Column("start_time", BigInteger), Column("end_time", BigInteger),
    Column("lifecycle_stage", String(20)), Column("artifact_uri", String(200)), Column("experiment_id", Integer),
)
params_table = Table("params", _tables, Column("key", String(250)), Column("value", String(8000)),
                     Column("run_uuid", String(32)))
tags_table = Table("tags", _tables, Column("key", String(250)), Column("value", String(8000)),
                   Column("run_uuid", String(32)))
latest_metrics_table = Table(
    "latest_metrics", _tables, Column("key", String(250)), Column("value", Float), Column("timestamp", BigInteger),
    Column("step", BigInteger), Column("is_nan", Boolean), Column("run_uuid", String(32)),
)
metrics_table = Table(
    "metrics", _tables, Column("key", String(250)), Column("value", Float), Column("timestamp", BigInteger),
    Column("step", BigInteger), Column("is_nan", Boolean), Column("run_uuid", String(32)),
)
experiments_table = Table(
    "experiments", _tables, Column("experiment_id", Integer, primary_key=True), Column("name", String(256)),
    Column("lifecycle_stage", String(32)), Column("workspace", String(63)),
)
experiment_tags_table = Table("experiment_tags", _tables, Column("key", String(250)), Column("value", String),
                              Column("experiment_id", Integer))
registered_models_table = Table("registered_models", _tables, Column("name", String(256)),
                                Column("description", String(5000)), Column("workspace", String(63)))
model_versions_table = Table(
    "model_versions", _tables, Column("name", String(256)), Column("version", Integer),
    Column("creation_time", BigInteger), Column("source", String(500)), Column("run_id", String(32)),
    Column("status", String(20)), Column("current_stage", String(20)), Column("workspace", String(63)),
)
model_aliases_table = Table("registered_model_aliases", _tables, Column("alias", String(256)),
                            Column("version", Integer), Column("name", String(256)), Column("workspace", String(63)))

# Columns that only MLflow's workspaces feature adds; without them there is one (default) workspace.
_WORKSPACE_TABLES = ("experiments", "registered_models", "model_versions", "registered_model_aliases")
DEFAULT_WORKSPACE = "default"
_RUN_COLUMNS = (runs_table.c.run_uuid, runs_table.c.name, runs_table.c.experiment_id, runs_table.c.status,
                runs_table.c.start_time, runs_table.c.end_time, runs_table.c.user_id)
_ATTRIBUTE_COLUMNS = {"run_id": "run_uuid", "run_name": "name"}
_COMPARISONS: dict[str, Callable[[Any, Any], ColumnElement[bool]]] = {
    "=": operator.eq, "!=": operator.ne, ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
    "LIKE": lambda column, value: column.like(value),
    "ILIKE": lambda column, value: column.ilike(value),
    "IN": lambda column, value: column.in_(list(value)),
    "NOT IN": lambda column, value: not_(column.in_(list(value))),
}


def sql_store_kind(tracking_uri: str) -> str | None:
    """'sqlite' or 'postgresql' for a store this reader can read, else None."""
    try:
        backend = make_url(tracking_uri).get_backend_name()
    except Exception:  # noqa: BLE001 - not an SQLAlchemy URL (http://, file:, databricks)
        return None
    return backend if backend in ("sqlite", "postgresql") else None


def _compare(column: Any, comparator: str, value: Any) -> ColumnElement[bool]:
    return _COMPARISONS[comparator](column, value)


def _finite(value: float | None, is_nan: bool) -> float | None:
    if value is None or is_nan or not math.isfinite(value):
        return None
    return float(value)


def _plain_rows(result: Any) -> list[tuple[Any, ...]]:
    """A result's rows as the driver's plain tuples (no row objects), the result closed."""
    try:
        return result.cursor.fetchall() if result.cursor is not None else list(result.all())  # type: ignore[no-any-return]
    finally:
        result.close()


def _short_curves(curves: dict[tuple[str, str], Curve]) -> bool:
    return sum(len(curve.values) for curve in curves.values()) <= CACHED_CURVE_POINTS


class StoreVersionCache:
    """Answers kept until the store changes. The caller passes the store's current version with each
    lookup; a new version drops every answer, so a hit is as fresh as a new query would be.

    Identical lookups at the same version that arrive while the answer is being computed wait for that
    computation instead of running the query again ("single flight"): while a store is written many
    times a second no answer outlives its version, but a dashboard's concurrent viewers still share one
    query per version."""

    def __init__(self, entries: int) -> None:
        self.entries = entries
        self._answers: OrderedDict[Hashable, Any] = OrderedDict()
        self._version: object = None
        self._lock = threading.Lock()
        self._in_flight: dict[tuple[object, Hashable], concurrent.futures.Future[Any]] = {}

    def get(self, version: object, key: Hashable, compute: Callable[[], T],
            keep: Callable[[T], bool] | None = None) -> T:
        """The answer for ``key`` at ``version``, computed once; ``keep`` may decline to hold a large one."""
        if version is None or self.entries <= 0:
            return compute()
        with self._lock:
            if version != self._version:
                self._answers.clear()
                self._version = version
            elif key in self._answers:
                self._answers.move_to_end(key)
                return self._answers[key]  # type: ignore[no-any-return]
            flight = self._in_flight.get((version, key))
            leading = flight is None
            if flight is None:
                flight = self._in_flight[(version, key)] = concurrent.futures.Future()
        if not leading:
            return flight.result()  # type: ignore[no-any-return]
        try:
            answer = compute()
        except BaseException as error:
            with self._lock:
                self._in_flight.pop((version, key), None)
            flight.set_exception(error)
            raise
        with self._lock:
            self._in_flight.pop((version, key), None)
            if version == self._version and (keep is None or keep(answer)):
                self._answers[key] = answer
                while len(self._answers) > self.entries:
                    self._answers.popitem(last=False)
        flight.set_result(answer)
        return answer


class SqlTrackingReader:
    """Read-only access to MLflow's tables; one engine (and connection pool) for the platform's life.

    On SQLite, run pages, project experiment lists and short metric histories are cached until the store changes:
    ``PRAGMA data_version`` on a connection of our own moves whenever any other connection commits,
    and costs microseconds to ask. PostgreSQL has no such cheap signal and is not cached.
    """

    kind = "sql"

    def __init__(self, tracking_uri: str, *, pool_size: int = 8, cache_entries: int = 64) -> None:
        self.tracking_uri = tracking_uri
        self.backend = sql_store_kind(tracking_uri)
        if self.backend is None:
            raise ValueError(f"not an SQLite or PostgreSQL MLflow store: {tracking_uri!r}")
        self._pool_size = pool_size
        self._engine: Engine | None = None
        self._workspaces: set[str] = set()
        self._lock = threading.Lock()
        self._cache = StoreVersionCache(cache_entries)
        self._curve_cache = StoreVersionCache(CACHED_CURVES)  # off where store_version() is None
        self._version_connection: sqlite3.Connection | None = None
        self._version_lock = threading.Lock()

    # ----- the engine -----

    @property
    def sqlite_path(self) -> Path | None:
        if self.backend != "sqlite":
            return None
        database = make_url(self.tracking_uri).database
        return Path(database) if database else None

    def _create_engine(self) -> Engine:
        if self.backend == "sqlite":
            path = self.sqlite_path
            assert path is not None

            def connect() -> sqlite3.Connection:
                connection = self._open_sqlite()
                # As MLflow's own sessions: LIKE is case-sensitive, ILIKE is not.
                connection.execute("PRAGMA case_sensitive_like = true")
                return connection

            return create_engine("sqlite://", creator=connect, poolclass=QueuePool, pool_size=self._pool_size,
                                 max_overflow=self._pool_size)
        url = make_url(self.tracking_uri)
        if url.drivername in ("postgresql", "postgres"):
            url = url.set(drivername="postgresql+psycopg")
        return create_engine(url, pool_size=self._pool_size, max_overflow=self._pool_size, pool_pre_ping=True,
                             connect_args={"options": "-c default_transaction_read_only=on"})

    def _open_sqlite(self) -> sqlite3.Connection:
        path = self.sqlite_path
        assert path is not None
        return sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True, check_same_thread=False,
                               timeout=20)

    def store_version(self) -> int | None:
        """A number that changes whenever the store is written; None where there is no cheap one."""
        if self.backend != "sqlite" or self._cache.entries <= 0 or self._ready_engine() is None:
            return None
        with self._version_lock:
            if self._version_connection is None:
                self._version_connection = self._open_sqlite()
            return int(self._version_connection.execute("PRAGMA data_version").fetchone()[0])

    def _cached(self, key: Hashable, compute: Callable[[], T]) -> T:
        return self._cache.get(self.store_version(), key, compute)

    def _check_schema(self, engine: Engine) -> bool:
        """True when MLflow's tables are there (False: a store not created yet). Raises
        :class:`StoreUnsupported` when they lack a column this reader needs (another MLflow schema)."""
        with engine.connect() as connection:
            inspector = inspect(connection)
            present = set(inspector.get_table_names())
            if "runs" not in present or "latest_metrics" not in present:
                return False
            for table in _tables.sorted_tables:
                if table.name not in present:
                    raise StoreUnsupported(f"the MLflow store has no {table.name!r} table")
                columns = {column["name"] for column in inspector.get_columns(table.name)}
                if "workspace" in columns and table.name in _WORKSPACE_TABLES:
                    self._workspaces.add(table.name)
                needed = {column.name for column in table.columns} - {"workspace"}
                if not needed <= columns:
                    raise StoreUnsupported(f"the MLflow store's {table.name!r} table lacks {sorted(needed - columns)}")
        return True

    def _ready_engine(self) -> Engine | None:
        """The engine, created on first use; None while the store does not exist yet."""
        if self._engine is not None:
            return self._engine
        with self._lock:
            if self._engine is None:
                path = self.sqlite_path
                if path is not None and not path.exists():
                    return None
                engine = self._create_engine()
                try:
                    ready = self._check_schema(engine)
                except BaseException:
                    engine.dispose()
                    raise
                if not ready:
                    engine.dispose()
                    return None
                self._engine = engine
            return self._engine

    @contextmanager
    def connection(self) -> Iterator[Connection | None]:
        """A pooled read-only connection, or None while the store does not exist yet."""
        engine = self._ready_engine()
        if engine is None:
            yield None
            return
        with engine.connect() as connection:
            yield connection

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
        with self._version_lock:
            if self._version_connection is not None:
                self._version_connection.close()
                self._version_connection = None

    def _in_workspace(self, table: Table) -> list[ColumnElement[bool]]:
        return [table.c.workspace == DEFAULT_WORKSPACE] if table.name in self._workspaces else []

    # ----- experiments -----

    def _project_experiment_rows(self, connection: Connection, project: str,
                                 include_deleted: bool) -> list[Any]:
        """The project's experiments: tagged ``aitip.project=<project>``, or untagged and named
        ``aitip/<project>`` (the name the job tracker gives them)."""
        tag = experiment_tags_table.alias("project_tag")
        experiments = experiments_table
        statement = (
            select(experiments.c.experiment_id, experiments.c.name, experiments.c.lifecycle_stage)
            .select_from(experiments.outerjoin(tag, and_(tag.c.experiment_id == experiments.c.experiment_id,
                                                         tag.c.key == PROJECT_TAG)))
            .where(or_(tag.c.value == project,
                       and_(tag.c.value.is_(None), experiments.c.name == experiment_name(project))),
                   *self._in_workspace(experiments))
            .order_by(experiments.c.experiment_id)
        )
        if not include_deleted:
            statement = statement.where(experiments.c.lifecycle_stage == "active")
        return connection.execute(statement).all()

    def project_experiment_ids(self, project: str, *, include_deleted: bool = False) -> list[str]:
        def compute() -> list[str]:
            with self.connection() as connection:
                if connection is None:
                    return []
                return [str(row[0]) for row in self._project_experiment_rows(connection, project, include_deleted)]

        return list(self._cached(("experiment_ids", project, include_deleted), compute))

    def project_experiments(self, project: str, *, include_deleted: bool = False) -> list[dict[str, Any]]:
        with self.connection() as connection:
            if connection is None:
                return []
            found = [{"experiment_id": str(row[0]), "name": row[1], "lifecycle_stage": row[2], "tags": {}}
                     for row in self._project_experiment_rows(connection, project, include_deleted)]
            if found:
                by_id = {int(item["experiment_id"]): item for item in found}
                tags = select(experiment_tags_table.c.experiment_id, experiment_tags_table.c.key,
                              experiment_tags_table.c.value).where(experiment_tags_table.c.experiment_id.in_(by_id))
                for experiment_id, key, value in connection.execute(tags).all():
                    by_id[experiment_id]["tags"][key] = value if value is not None else ""
            return found

    def experiment_project(self, experiment_id: str) -> str | None:
        """The project an experiment belongs to (the inverse of :meth:`project_experiments`)."""
        with self.connection() as connection:
            if connection is None:
                return None
            tag = experiment_tags_table.alias("project_tag")
            row = connection.execute(
                select(experiments_table.c.name, tag.c.value)
                .select_from(experiments_table.outerjoin(tag, and_(
                    tag.c.experiment_id == experiments_table.c.experiment_id, tag.c.key == PROJECT_TAG)))
                .where(experiments_table.c.experiment_id == int(experiment_id), *self._in_workspace(experiments_table))
            ).first()
            return None if row is None else project_of_experiment(row[0], row[1])

    def run_counts(self, experiment_ids: list[str]) -> dict[str, int]:
        with self.connection() as connection:
            if connection is None or not experiment_ids:
                return {}
            rows = connection.execute(
                select(runs_table.c.experiment_id, func.count())
                .where(runs_table.c.experiment_id.in_([int(i) for i in experiment_ids]),
                       runs_table.c.lifecycle_stage == "active")
                .group_by(runs_table.c.experiment_id))
            return {str(experiment_id): count for experiment_id, count in rows}

    # ----- runs -----

    def search_runs(self, experiment_ids: list[str], search: RunSearch, max_results: int,
                    cursor: int | None) -> tuple[list[dict[str, Any]], int | None]:
        """A page of active runs in MLflow's order, from offset ``cursor``, and the next page's offset.
        The run dicts may be shared with other callers: read them, do not change them."""
        if not search.sql_translatable:
            raise StoreUnsupported("dataset conditions are searched by MLflow itself")
        offset = cursor or 0
        key = ("runs", tuple(experiment_ids), search.filter, search.order_by, max_results, offset)
        return self._cached(key, lambda: self._search_runs(experiment_ids, search, max_results, offset))

    def _search_runs(self, experiment_ids: list[str], search: RunSearch, max_results: int,
                     offset: int) -> tuple[list[dict[str, Any]], int | None]:
        with self.connection() as connection:
            if connection is None or not experiment_ids:
                return [], None
            source: Any = runs_table
            order: list[Any] = []
            for index, ordering in enumerate(search.orderings):
                source, keys = self._ordering(source, index, ordering)
                order.extend(keys)
            if not any(o.kind == ATTRIBUTE and o.key == "start_time" for o in search.orderings):
                order.append(runs_table.c.start_time.desc())
            order.append(runs_table.c.run_uuid)
            # Only the ids go through the sort (SQLite sorts narrow rows much faster); the page's
            # columns follow by primary key.
            statement = (
                select(runs_table.c.run_uuid).select_from(source)
                .where(runs_table.c.experiment_id.in_([int(i) for i in experiment_ids]),
                       runs_table.c.lifecycle_stage == "active",
                       *(self._condition(condition) for condition in search.conditions))
                .order_by(*order).limit(max_results + 1).offset(offset)
            )
            ids = connection.execute(statement).scalars().all()
            next_cursor = offset + max_results if len(ids) > max_results else None
            ids = ids[:max_results]
            if not ids:
                return [], next_cursor
            rows = {row[0]: row for row in connection.execute(
                select(*_RUN_COLUMNS).where(runs_table.c.run_uuid.in_(ids))).all()}
            return self._with_data(connection, [rows[run_id] for run_id in ids if run_id in rows]), next_cursor

    def get_runs(self, run_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Runs by id (any lifecycle stage), each with ``artifact_uri`` and ``lifecycle_stage`` too."""
        with self.connection() as connection:
            if connection is None or not run_ids:
                return {}
            rows = connection.execute(select(*_RUN_COLUMNS, runs_table.c.artifact_uri, runs_table.c.lifecycle_stage)
                                      .where(runs_table.c.run_uuid.in_(run_ids))).all()
            found = self._with_data(connection, rows)
            for run, row in zip(found, rows):
                run["artifact_uri"], run["lifecycle_stage"] = row[7], row[8]
            return {run["run_id"]: run for run in found}

    @staticmethod
    def _condition(condition: Condition) -> ColumnElement[bool]:
        comparator, value = condition.comparator, condition.value
        if condition.kind == ATTRIBUTE:
            if condition.key == "run_name":
                # As MLflow: the name is matched on the mlflow.runName tag (runs before 1.29 lack the column).
                return (select(tags_table.c.run_uuid)
                        .where(tags_table.c.run_uuid == runs_table.c.run_uuid, tags_table.c.key == RUN_NAME_TAG,
                               _compare(tags_table.c.value, comparator, value)).exists())
            column = runs_table.c[_ATTRIBUTE_COLUMNS.get(condition.key, condition.key)]
            return _compare(column, comparator, value)
        table = {METRIC: latest_metrics_table, PARAM: params_table, TAG: tags_table}[condition.kind]
        present = [table.c.run_uuid == runs_table.c.run_uuid, table.c.key == condition.key]
        if comparator == "IS NULL":
            return not_(select(table.c.run_uuid).where(*present).exists())
        if comparator == "IS NOT NULL":
            return select(table.c.run_uuid).where(*present).exists()
        matches = _compare(table.c.value, comparator, value)
        if condition.kind == METRIC:
            # NaN is stored as 0 with is_nan: it satisfies only "!=", and its placeholder never matches.
            matches = or_(matches, table.c.is_nan == true()) if comparator == "!=" else \
                and_(matches, table.c.is_nan == false())
        return select(table.c.run_uuid).where(*present, matches).exists()

    @staticmethod
    def _ordering(source: Any, index: int, ordering: Any) -> tuple[Any, list[Any]]:
        """MLflow's order: present values first (for metrics: numbers, then NaN, then missing), then the value."""
        if ordering.kind == ATTRIBUTE:
            value = runs_table.c[_ATTRIBUTE_COLUMNS.get(ordering.key, ordering.key)]
            missing = case((value.is_(None), 1), else_=0)
        else:
            table = {METRIC: latest_metrics_table, PARAM: params_table, TAG: tags_table}[ordering.kind]
            joined = table.alias(f"order_{index}")
            source = source.outerjoin(joined, and_(joined.c.run_uuid == runs_table.c.run_uuid,
                                                   joined.c.key == ordering.key))
            value = joined.c.value
            if ordering.kind == METRIC:
                missing = case((joined.c.is_nan == true(), 1), (value.is_(None), 2), else_=0)
            else:
                missing = case((value.is_(None), 1), else_=0)
        return source, [missing, value if ordering.ascending else value.desc()]

    @staticmethod
    def _with_data(connection: Connection, rows: list[Any]) -> list[dict[str, Any]]:
        """Run dicts for ``rows`` (in order), with their params, latest metrics and tags."""
        found = [run_record(run_id=row[0], run_name=row[1], experiment_id=str(row[2]), status=row[3],
                            start_time=row[4], end_time=row[5], user=row[6]) for row in rows]
        if not found:
            return found
        by_id = {run["run_id"]: run for run in found}
        ids = list(by_id)
        params = params_table.c
        for key, value, run_id in connection.execute(
                select(params.key, params.value, params.run_uuid).where(params.run_uuid.in_(ids))).all():
            by_id[run_id]["params"][key] = value
        metrics = latest_metrics_table.c
        for key, value, is_nan, run_id in connection.execute(
                select(metrics.key, metrics.value, metrics.is_nan, metrics.run_uuid)
                .where(metrics.run_uuid.in_(ids))).all():
            by_id[run_id]["metrics"][key] = _finite(value, is_nan)
        tags = tags_table.c
        for key, value, run_id in connection.execute(
                select(tags.key, tags.value, tags.run_uuid).where(tags.run_uuid.in_(ids))).all():
            run = by_id[run_id]
            run["tags"][key] = value if value is not None else ""
            if key == JOB_ID_TAG and value and value.isdigit():
                run["job_id"] = int(value)
        return found

    # ----- metric curves -----

    def metric_curves(self, run_ids: list[str], keys: list[str]) -> dict[tuple[str, str], Curve]:
        """Full histories, by (run id, key), ordered by step then timestamp; on SQLite the same question is
        answered from memory until the store changes, unless the answer is long. Callers must not change them."""
        return self._curve_cache.get(self.store_version(), ("curves", tuple(run_ids), tuple(keys)),
                                     lambda: self._read_curves(run_ids, keys), keep=_short_curves)

    def _read_curves(self, run_ids: list[str], keys: list[str]) -> dict[tuple[str, str], Curve]:
        with self.connection() as connection:
            if connection is None or not run_ids or not keys:
                return {}
            if len(run_ids) * len(keys) <= CURVE_QUERIES:
                return self._curves_one_by_one(connection, run_ids, keys)
            metrics = metrics_table
            result = connection.execute(
                select(metrics.c.run_uuid, metrics.c.key, metrics.c.step, metrics.c.timestamp, metrics.c.value,
                       metrics.c.is_nan)
                .where(metrics.c.run_uuid.in_(run_ids), metrics.c.key.in_(keys))
                .order_by(metrics.c.run_uuid, metrics.c.key, metrics.c.step, metrics.c.timestamp, metrics.c.value))
            # The driver's plain tuples: these columns need no type processing, and a row object per point
            # cost most of the time for long curves (80,000 points: 0.6 s against 0.1 s).
            rows = _plain_rows(result)
        if not rows:
            return {}
        run_column, key_column, steps, stamps, values, nans = zip(*rows)
        value_array = np.array(values, dtype=np.float64)
        value_array[np.array(nans, dtype=bool)] = np.nan
        step_array, stamp_array = np.array(steps, dtype=np.int64), np.array(stamps, dtype=np.int64)
        runs_of, keys_of = np.array(run_column, dtype=object), np.array(key_column, dtype=object)
        starts = np.concatenate(([0], np.flatnonzero((runs_of[1:] != runs_of[:-1]) | (keys_of[1:] != keys_of[:-1]))
                                 + 1, [len(rows)]))
        return {(run_column[start], key_column[start]): Curve(step_array[start:end], stamp_array[start:end],
                                                              value_array[start:end])
                for start, end in zip(starts[:-1].tolist(), starts[1:].tolist())}

    @staticmethod
    def _curves_one_by_one(connection: Connection, run_ids: list[str], keys: list[str]) -> dict[tuple[str, str], Curve]:
        """One indexed query per curve (run id, key): no run id and key strings made for every point, which is
        much of the cost of reading a few long curves in one query."""
        metrics = metrics_table
        query = (select(metrics.c.step, metrics.c.timestamp, metrics.c.value, metrics.c.is_nan)
                 .where(metrics.c.run_uuid == bindparam("run"), metrics.c.key == bindparam("key"))
                 .order_by(metrics.c.step, metrics.c.timestamp, metrics.c.value))
        curves = {}
        for run_id in dict.fromkeys(run_ids):
            for key in dict.fromkeys(keys):
                rows = _plain_rows(connection.execute(query, {"run": run_id, "key": key}))
                if not rows:
                    continue
                steps, stamps, values, nans = zip(*rows)
                value_array = np.array(values, dtype=np.float64)
                value_array[np.array(nans, dtype=bool)] = np.nan
                curves[(run_id, key)] = Curve(np.array(steps, dtype=np.int64), np.array(stamps, dtype=np.int64),
                                              value_array)
        return curves

    # ----- model registry -----

    def project_models(self, experiment_ids: list[str]) -> list[dict[str, Any]]:
        """Registered models with their versions that came from runs of these experiments."""
        with self.connection() as connection:
            if connection is None or not experiment_ids:
                return []
            versions, job_tag = model_versions_table, tags_table.alias("job_tag")
            rows = connection.execute(
                select(versions.c.name, versions.c.version, versions.c.run_id, versions.c.status,
                       versions.c.creation_time, versions.c.source, job_tag.c.value)
                .select_from(versions.join(runs_table, runs_table.c.run_uuid == versions.c.run_id)
                             .outerjoin(job_tag, and_(job_tag.c.run_uuid == versions.c.run_id,
                                                      job_tag.c.key == JOB_ID_TAG)))
                .where(runs_table.c.experiment_id.in_([int(i) for i in experiment_ids]),
                       or_(versions.c.current_stage.is_(None), versions.c.current_stage != DELETED_VERSION_STAGE),
                       *self._in_workspace(versions))
                .order_by(versions.c.name, versions.c.version.desc())
            ).all()
            if not rows:
                return []
            models: dict[str, dict[str, Any]] = {}
            for name, version, run_id, status, created, source, job_id in rows:
                model = models.setdefault(name, {"name": name, "description": None, "aliases": {}, "versions": []})
                model["versions"].append({
                    "version": int(version), "run_id": run_id, "status": status, "creation_timestamp": created,
                    "source": source, "aliases": [],
                    "job_id": int(job_id) if job_id and job_id.isdigit() else None})
            names = list(models)
            for name, description in connection.execute(
                    select(registered_models_table.c.name, registered_models_table.c.description)
                    .where(registered_models_table.c.name.in_(names),
                           *self._in_workspace(registered_models_table))).all():
                models[name]["description"] = description
            aliases = model_aliases_table
            for name, alias, version in connection.execute(
                    select(aliases.c.name, aliases.c.alias, aliases.c.version)
                    .where(aliases.c.name.in_(names), *self._in_workspace(aliases))
                    .order_by(aliases.c.name, aliases.c.alias)).all():
                model = models[name]
                for entry in model["versions"]:
                    # Only aliases that point at this project's versions: others are another project's.
                    if entry["version"] == int(version):
                        entry["aliases"].append(alias)
                        model["aliases"][alias] = int(version)
            return list(models.values())
