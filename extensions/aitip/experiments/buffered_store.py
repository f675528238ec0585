"""An MLflow tracking store that makes plain ``mlflow.log_metric(...)`` fast without changing user code.

MLflow builds this store for tracking URIs of the form ``aitip:<inner tracking URI>``
(``aitip:sqlite:////abs/mlflow.sqlite``, ``aitip:http://127.0.0.1:5000``), through the
``mlflow.tracking_store`` entry point. Every call goes to the inner store MLflow would have built for
``<inner tracking URI>``, except run writes (metrics, params, tags, batches, and their async forms),
which are buffered in memory and written with the inner store's ``log_batch`` in chunks within
MLflow's limits (1,000 metrics, 100 params, 100 tags a batch).

Metrics bound for an MLflow database store (sqlite, PostgreSQL) skip ``log_batch``: its ORM code runs in
this process far slower than the database takes the rows. ``SqlMetricWriter`` writes the
very rows ``log_batch`` would (``metrics``, and ``latest_metrics`` kept at the maximum by step, timestamp
and value; duplicates ignored; refused for a run that is not active), 10,000 to a transaction. Params
and tags, and metrics tied to a logged model, still go through ``log_batch``; so does everything when
the inner store is not MLflow's ``SqlAlchemyStore`` on sqlite or PostgreSQL, when its tables are not
the ones expected, or when ``AITIP_MLFLOW_BULK_METRICS=0``.

Buffered writes are flushed:

- in the background, once the oldest write is ``AITIP_MLFLOW_FLUSH_SECONDS`` old (default 1 s), so a
  long cell still shows live curves, or once ``AITIP_MLFLOW_FLUSH_POINTS`` writes wait (default 10,000).
  A flush runs MLflow's store code, in this process for a database store: flushing less often keeps
  it out of a burst of logging, which then runs at the speed of MLflow's client alone;
- in the caller, before any other call to the store (reads see every write made before them:
  ``get_run``, ``search_runs``, ``get_metric_history``; ``update_run_info`` at run end), when
  ``AITIP_MLFLOW_MAX_BUFFERED`` writes are waiting (default 100,000: bounded memory), on
  ``mlflow.flush_async_logging()``, and on ``RunOperations.wait()`` of an async call;
- at the end of every IPython cell (``post_run_cell``): a cell whose writes could not be stored fails;
- at interpreter exit (``atexit``), so nothing is lost when a script or kernel exits normally.

A write the inner store refuses (a param logged again with another value, a deleted run) is never
dropped silently: the error is raised by the flush that met it, or, for a background flush, by the
next call into the store, and at exit it is printed. Writes that failed for another reason (the
server unreachable) stay buffered and are retried by the next flush.

The module is imported by MLflow in every process that loads its tracking stores (the platform, the
MLflow server), so importing it does nothing but define names and register the scheme.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import itertools
import logging
import os
import sys
import threading
import time
import warnings
import weakref
from dataclasses import dataclass, field
from typing import Any

from .mlflow_sql import column_mismatch, unsupported_store
from .spool import PROTECTED_TAG_PREFIXES, SpoolWriter, encode

SCHEME = "aitip"

# Imported before MLflow, this module is loaded again by MLflow's entry-point scan while it is still
# half-defined; the scan's warning is expected then, and the store registers itself at the bottom.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=f'Failure attempting to register store for scheme "{SCHEME}"')
    from mlflow.entities import LifecycleStage, Metric, Param, RunTag
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import (
        INTERNAL_ERROR,
        INVALID_PARAMETER_VALUE,
        RESOURCE_DOES_NOT_EXIST,
        ErrorCode,
    )
    from mlflow.store.tracking.abstract_store import AbstractStore
    from mlflow.utils.async_logging.run_operations import RunOperations
    from mlflow.utils.validation import (
        MAX_METRICS_PER_BATCH,
        MAX_PARAMS_TAGS_PER_BATCH,
        _validate_metric,
        _validate_param,
        _validate_run_id,
        _validate_tag,
    )

URI_PREFIX = f"{SCHEME}:"
SPOOL_ENV = "AITIP_MLFLOW_SPOOL"  # the job's spool file: writes go there, for the platform to drain
SPOOL_CONFIRM_ENV = "AITIP_MLFLOW_SPOOL_CONFIRM"  # where to ask the platform to drain it now
METRICS_PER_TRANSACTION = 10_000  # bulk path: large enough to amortize a commit, small enough to stay brief

_logger = logging.getLogger("aitip.experiments")


def buffered_tracking_uri(inner_uri: str) -> str:
    """The ``aitip:`` URI that buffers writes to ``inner_uri`` (unchanged if it already does)."""
    return inner_uri if inner_uri.startswith(URI_PREFIX) else URI_PREFIX + inner_uri


def inner_tracking_uri(uri: str) -> str:
    """The tracking URI an ``aitip:`` URI wraps."""
    if not uri.startswith(URI_PREFIX):
        raise MlflowException(f"not an {SCHEME} tracking URI: {uri!r}; expected '{URI_PREFIX}<tracking URI>'",
                              INVALID_PARAMETER_VALUE)
    inner = uri[len(URI_PREFIX):]
    if not inner or inner.startswith(URI_PREFIX):
        raise MlflowException(f"{uri!r} must wrap a tracking URI, e.g. '{URI_PREFIX}sqlite:////path/mlflow.sqlite'"
                              f" or '{URI_PREFIX}http://host:5000'", INVALID_PARAMETER_VALUE)
    return inner


class BufferedWriteError(MlflowException):
    """Buffered run writes that the inner store refused or could not take."""


@dataclass
class _RunBuffer:
    """Writes to one run waiting to be flushed. Params and tags are keyed: the last value wins."""

    metrics: list[Metric] = field(default_factory=list)
    params: dict[str, Param] = field(default_factory=dict)
    tags: dict[str, RunTag] = field(default_factory=dict)
    futures: list[concurrent.futures.Future[None]] = field(default_factory=list)

    def size(self) -> int:
        return len(self.metrics) + len(self.params) + len(self.tags)

    def put_back(self, later: _RunBuffer) -> None:
        """Unwritten writes return ahead of those buffered since, keeping the order they were made in."""
        self.metrics.extend(later.metrics)
        self.params.update(later.params)
        self.tags.update(later.tags)
        self.futures.extend(later.futures)


@dataclass
class _FailedWrite:
    run_id: str
    kind: str
    keys: list[str]
    error: BaseException
    kept: bool  # still buffered for a retry

    def describe(self) -> str:
        shown = ", ".join(sorted(set(self.keys))[:5]) + (", ..." if len(set(self.keys)) > 5 else "")
        fate = "kept for a retry" if self.kept else "not stored"
        return (f"{len(self.keys)} {self.kind} of run {self.run_id} ({shown}) {fate}: "
                f"{type(self.error).__name__}: {self.error}")


class _RefusedInSpool(_FailedWrite):
    """A write the platform refused when it drained the job's spool (it says which, in its message)."""

    def __init__(self, message: str) -> None:
        super().__init__("", "writes", [], MlflowException(message, INVALID_PARAMETER_VALUE), kept=False)

    def describe(self) -> str:
        return str(self.error.message)  # type: ignore[attr-defined]


def _confirm(url: str, token: str) -> list[str]:
    """POST to the platform's drain endpoint for this job; the messages of the writes it refused."""
    import json
    import urllib.request

    request = urllib.request.Request(url, data=b"{}", method="POST", headers={
        "Authorization": f"token {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - the platform's own URL
        answer = json.loads(response.read() or b"{}")
    return [str(message) for message in answer.get("errors") or []]


class _OperationsFlushedOnWait(RunOperations):
    """An async call's handle: ``wait()`` flushes, so it returns once the writes are stored."""

    def __init__(self, store: BufferedTrackingStore, futures: list[concurrent.futures.Future[None]]) -> None:
        super().__init__(futures)
        self._store = store

    def wait(self) -> None:
        self._store.flush()  # raises what was refused or kept for a retry, rather than block on it
        super().wait()


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name, "")
    return float(value) if value.strip() else default


class BufferedTrackingStore(AbstractStore):
    """Buffers run writes in memory and writes them in batches; every other call goes to the inner store."""

    def __init__(self, store_uri: str | None = None, artifact_uri: str | None = None, *,
                 flush_seconds: float | None = None, flush_points: int | None = None,
                 max_buffered: int | None = None, bulk_metrics: bool | None = None) -> None:
        from mlflow.tracking._tracking_service.utils import (
            _tracking_store_registry,
            get_tracking_uri,
        )

        super().__init__()
        self.store_uri = store_uri or get_tracking_uri()
        self.inner_uri = inner_tracking_uri(self.store_uri)
        # MLflow builds stores under a lock it does not re-enter: the inner one is built directly.
        self.inner = _tracking_store_registry.get_store_builder(self.inner_uri)(
            store_uri=self.inner_uri, artifact_uri=artifact_uri)
        self.flush_seconds = flush_seconds if flush_seconds is not None else _env_float(
            "AITIP_MLFLOW_FLUSH_SECONDS", 1.0)
        self.flush_points = flush_points if flush_points is not None else int(_env_float(
            "AITIP_MLFLOW_FLUSH_POINTS", 10_000))
        self.max_buffered = max_buffered if max_buffered is not None else int(_env_float(
            "AITIP_MLFLOW_MAX_BUFFERED", 100_000))
        self.bulk_metrics = bulk_metrics if bulk_metrics is not None else os.environ.get(
            "AITIP_MLFLOW_BULK_METRICS", "1").strip().lower() not in ("0", "false", "no", "off")
        self._metric_writer: SqlMetricWriter | None = None
        self._metric_writer_checked = False
        # A job kernel that may not open the store appends its writes to its job's spool, which the platform
        # drains (see .spool); it confirms with the platform at flushes, which reports what was refused.
        spool_path = os.environ.get(SPOOL_ENV)
        self._spool = SpoolWriter(spool_path) if spool_path else None
        self._confirm_url = os.environ.get(SPOOL_CONFIRM_ENV, "")
        self._warned_unconfirmed = False
        self._reset_state()
        _watch(self)

    def _reset_state(self) -> None:
        self._lock = threading.Lock()  # guards the buffer, the counters and the errors
        self._changed = threading.Condition(self._lock)
        self._flush_lock = threading.RLock()  # one flush at a time, so writes reach the store in order
        self._pending: dict[str, _RunBuffer] = {}
        self._pending_count = 0
        self._oldest: float | None = None
        self._errors: list[_FailedWrite] = []
        self._accepted_params: dict[str, dict[str, str]] = {}
        self._flusher: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"BufferedTrackingStore({self.store_uri!r})"

    # ----- buffered writes -----

    def log_metric(self, run_id: str, metric: Metric) -> None:
        _validate_metric(metric.key, metric.value, metric.timestamp, metric.step)
        self._buffer(run_id, (metric,), (), ())

    def log_param(self, run_id: str, param: Param) -> None:
        self._buffer(run_id, (), (_validate_param(param.key, param.value),), ())

    def set_tag(self, run_id: str, tag: RunTag) -> None:
        self._buffer(run_id, (), (), (self._allowed_tag(_validate_tag(tag.key, tag.value)),))

    def _allowed_tag(self, tag: RunTag) -> RunTag:
        """A job kernel may not set the platform's own tags (the platform refuses them too, later)."""
        if self._spool is not None and tag.key.startswith(PROTECTED_TAG_PREFIXES):
            raise MlflowException(f"tag {tag.key!r} is the platform's; a job may not set it", INVALID_PARAMETER_VALUE)
        return tag

    def log_batch(self, run_id: str, metrics: Any, params: Any, tags: Any) -> None:
        metrics, params, tags = self._validated(metrics, params, tags)
        self._buffer(run_id, metrics, params, tags)

    def log_metric_async(self, run_id: str, metric: Metric) -> RunOperations:
        return self.log_batch_async(run_id, [metric], [], [])

    def log_param_async(self, run_id: str, param: Param) -> RunOperations:
        return self.log_batch_async(run_id, [], [param], [])

    def set_tag_async(self, run_id: str, tag: RunTag) -> RunOperations:
        return self.log_batch_async(run_id, [], [], [tag])

    def log_batch_async(self, run_id: str, metrics: Any, params: Any, tags: Any) -> RunOperations:
        metrics, params, tags = self._validated(metrics, params, tags)
        future: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._buffer(run_id, metrics, params, tags, future)
        return _OperationsFlushedOnWait(self, [future])

    def flush_async_logging(self) -> None:
        self.flush()

    def end_async_logging(self) -> None:
        self.flush()
        self.inner.end_async_logging()

    def shut_down_async_logging(self) -> None:
        self.flush()
        self.inner.shut_down_async_logging()

    def _validated(self, metrics: Any, params: Any, tags: Any) -> tuple[list[Metric], list[Param], list[RunTag]]:
        """MLflow's own checks, run now so a bad key fails at the line that logged it, not at a flush."""
        for metric in metrics:
            _validate_metric(metric.key, metric.value, metric.timestamp, metric.step)
        return (list(metrics), [_validate_param(p.key, p.value) for p in params],
                [self._allowed_tag(_validate_tag(t.key, t.value)) for t in tags])

    def _buffer(self, run_id: str, metrics: Any, params: Any, tags: Any,
                future: concurrent.futures.Future[None] | None = None) -> None:
        if self._errors:
            self._raise_errors()
        _validate_run_id(run_id)
        added = len(metrics) + len(params) + len(tags)
        with self._lock:
            if params:
                self._accept_params(run_id, params)
            buffer = self._pending.get(run_id)
            if buffer is None:
                buffer = self._pending[run_id] = _RunBuffer()
            if metrics:
                buffer.metrics.extend(metrics)
            for param in params:
                buffer.params[param.key] = param
            for tag in tags:
                buffer.tags[tag.key] = tag
            if future is not None:
                buffer.futures.append(future)
            before = self._pending_count
            self._pending_count = before + added
            if before == 0:
                self._oldest = time.monotonic()
                if self._flusher is None:
                    self._start_flusher()
                self._changed.notify()
            elif before < self.flush_points <= self._pending_count:
                self._changed.notify()
            overfull = self._pending_count >= self.max_buffered
        if overfull:
            self._write_pending()
            self._raise_errors()

    def _accept_params(self, run_id: str, params: Any) -> None:
        """A param logged again with another value is refused now, as MLflow would (caller holds the lock)."""
        accepted = self._accepted_params.setdefault(run_id, {})
        for param in params:
            old = accepted.get(param.key)
            if old is not None and old != param.value:
                raise MlflowException(
                    f"Changing param values is not allowed. Param with key='{param.key}' was already logged "
                    f"with value='{old}' for run ID='{run_id}'. Attempted logging new value '{param.value}'.",
                    INVALID_PARAMETER_VALUE)
        for param in params:
            accepted[param.key] = param.value

    # ----- flushing -----

    def flush(self) -> None:
        """Write everything buffered; raise what could not be stored, now or by an earlier background flush."""
        self._write_pending()
        self._confirm_spool()
        self._raise_errors()

    def _confirm_spool(self) -> None:
        """Have the platform drain this job's spool now, and learn what it refused. A platform out of reach
        is no loss: the writes are on disk and it drains them when it is back."""
        spool = self._spool
        if spool is None or not spool.appended or not self._confirm_url:
            return
        appended = spool.appended
        try:
            refused = _confirm(self._confirm_url, os.environ.get("AITIP_TOKEN", ""))
        except (OSError, ValueError) as error:
            if not self._warned_unconfirmed:
                self._warned_unconfirmed = True
                _logger.warning("aitip: the platform did not confirm this job's tracking writes (%s); they are kept "
                                "in %s and stored when it drains them", error, spool.path)
            return
        spool.appended -= appended
        if refused:
            with self._lock:
                self._errors = (self._errors + [_RefusedInSpool(message) for message in refused])[-50:]

    def pending_count(self) -> int:
        return self._pending_count

    def _start_flusher(self) -> None:
        self._flusher = threading.Thread(target=self._flush_in_background, name="aitip-mlflow-flush", daemon=True)
        self._flusher.start()

    def _flush_in_background(self) -> None:
        retry_at = 0.0  # after a failed flush, the store is left alone a while
        while True:
            with self._lock:
                while True:
                    now = time.monotonic()
                    if now < retry_at:
                        self._changed.wait(retry_at - now)
                        continue
                    if self._pending_count >= self.flush_points:
                        break
                    if self._pending_count and self._oldest is not None:
                        wait = self._oldest + self.flush_seconds - now
                        if wait <= 0:
                            break
                        self._changed.wait(wait)
                    else:
                        self._changed.wait()
            if not self._write_pending():
                retry_at = time.monotonic() + max(self.flush_seconds, 1.0)

    def _write_pending(self) -> bool:
        """Write what is buffered; False if some of it stays buffered for a retry."""
        with self._flush_lock:
            with self._lock:
                if not self._pending_count:
                    return True
                pending, self._pending = self._pending, {}
                self._pending_count = 0
                self._oldest = None
            written = [self._write_run(run_id, buffer) for run_id, buffer in pending.items()]
            return all(written)

    def _write_run(self, run_id: str, buffer: _RunBuffer) -> bool:
        if self._spool is not None:
            return self._append_to_spool(run_id, buffer)
        chunks: list[tuple[str, list[Any]]] = [("metrics", chunk) for chunk in self._metric_chunks(buffer.metrics)]
        params, tags = list(buffer.params.values()), list(buffer.tags.values())
        chunks += [("params", params[i:i + MAX_PARAMS_TAGS_PER_BATCH])
                   for i in range(0, len(params), MAX_PARAMS_TAGS_PER_BATCH)]
        chunks += [("tags", tags[i:i + MAX_PARAMS_TAGS_PER_BATCH])
                   for i in range(0, len(tags), MAX_PARAMS_TAGS_PER_BATCH)]
        failures: list[_FailedWrite] = []
        for index, (kind, chunk) in enumerate(chunks):
            try:
                self._write_chunk(run_id, kind, chunk)
            except Exception as error:  # noqa: BLE001 - kept or reported below, never dropped silently
                if _refused(error):
                    failures += self._write_one_by_one(run_id, kind, chunk, error)
                    continue
                unwritten = _RunBuffer()
                for later_kind, later in chunks[index:]:
                    if later_kind == "metrics":
                        unwritten.metrics.extend(later)
                    else:
                        getattr(unwritten, later_kind).update((item.key, item) for item in later)
                unwritten.futures = buffer.futures
                failures.append(_FailedWrite(run_id, kind, [item.key for item in chunk], error, kept=True))
                self._put_back(run_id, unwritten)
                buffer.futures = []
                break
        with self._lock:
            self._errors = (self._errors + failures)[-50:]  # a store down for long must not grow this forever
            for failure in failures:
                if failure.kind == "params" and not failure.kept:
                    accepted = self._accepted_params.get(run_id, {})
                    for key in failure.keys:
                        accepted.pop(key, None)
        refused = [failure for failure in failures if not failure.kept]
        for future in buffer.futures:
            if refused:
                future.set_exception(_error_for(refused))
            else:
                future.set_result(None)
        return all(not failure.kept for failure in failures)

    def _append_to_spool(self, run_id: str, buffer: _RunBuffer) -> bool:
        assert self._spool is not None
        try:
            self._spool.append(encode(run_id, buffer.metrics, list(buffer.params.values()),
                                      list(buffer.tags.values())))
        except OSError as error:  # a full disk: kept, and retried by the next flush
            keys = [m.key for m in buffer.metrics] + list(buffer.params) + list(buffer.tags)
            with self._lock:
                self._errors = (self._errors + [_FailedWrite(run_id, "writes", keys, error, kept=True)])[-50:]
            futures, buffer.futures = buffer.futures, []
            self._put_back(run_id, buffer)
            buffer.futures = futures
            return False
        for future in buffer.futures:
            future.set_result(None)
        return True

    def metric_writer(self) -> SqlMetricWriter | None:
        """The bulk path for metrics, or None where they go through ``log_batch`` (decided once, at first use)."""
        if not self._metric_writer_checked:
            with self._flush_lock:
                if not self._metric_writer_checked:
                    if self.bulk_metrics:
                        self._metric_writer = SqlMetricWriter.for_store(self.inner)
                    self._metric_writer_checked = True
        return self._metric_writer

    def _metric_chunks(self, metrics: list[Metric]) -> list[list[Metric]]:
        """Metrics in logging order, cut where they change path: bulk transactions, or ``log_batch`` batches."""
        writer = self.metric_writer() if metrics else None
        if writer is None:
            return [metrics[i:i + MAX_METRICS_PER_BATCH] for i in range(0, len(metrics), MAX_METRICS_PER_BATCH)]
        chunks: list[list[Metric]] = []
        for bulk, group in itertools.groupby(metrics, key=SqlMetricWriter.takes):
            same_path = list(group)
            size = writer.rows_per_transaction if bulk else MAX_METRICS_PER_BATCH
            chunks += [same_path[i:i + size] for i in range(0, len(same_path), size)]
        return chunks

    def _write_chunk(self, run_id: str, kind: str, chunk: list[Any]) -> None:
        if kind == "metrics" and self._metric_writer is not None and SqlMetricWriter.takes(chunk[0]):
            self._metric_writer.write(run_id, chunk)
            return
        self.inner.log_batch(run_id, metrics=chunk if kind == "metrics" else [],
                             params=chunk if kind == "params" else [], tags=chunk if kind == "tags" else [])

    def _write_one_by_one(self, run_id: str, kind: str, chunk: list[Any], error: Exception) -> list[_FailedWrite]:
        """A refused params or tags batch is retried item by item, so one bad item does not sink the others."""
        if kind == "metrics" or len(chunk) == 1:
            return [_FailedWrite(run_id, kind, [item.key for item in chunk], error, kept=False)]
        failures = []
        for item in chunk:
            try:
                self._write_chunk(run_id, kind, [item])
            except Exception as item_error:  # noqa: BLE001 - reported to the caller
                failures.append(_FailedWrite(run_id, kind, [item.key], item_error, kept=False))
        return failures

    def _put_back(self, run_id: str, unwritten: _RunBuffer) -> None:
        with self._lock:
            later = self._pending.pop(run_id, None)
            if later is not None:
                unwritten.put_back(later)
            self._pending[run_id] = unwritten
            self._pending_count = sum(buffer.size() for buffer in self._pending.values())
            self._oldest = self._oldest or time.monotonic()

    def _raise_errors(self) -> None:
        with self._lock:
            errors, self._errors = self._errors, []
        if errors:
            raise _error_for(errors)

    def _after_fork_in_child(self) -> None:
        """A forked child starts empty: the parent still owns, and flushes, what was buffered."""
        self._reset_state()

    # ----- everything else goes to the inner store, after a flush -----

    def _call_inner(self, method: str, /, *args: Any, **kwargs: Any) -> Any:
        """Flush, make the call, then raise what the flush could not store: a run's end is still recorded."""
        if self._pending_count:
            self._write_pending()
        result = getattr(self.inner, method)(*args, **kwargs)
        if self._errors:
            self._raise_errors()
        return result

    def __getattr__(self, name: str) -> Any:
        # Only reached for names this class does not define: what the inner store's own class adds.
        if name.startswith("__") or name in ("inner", "_pending_count", "_errors"):
            raise AttributeError(name)
        value = getattr(self.inner, name)
        if not callable(value):
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._call_inner(name, *args, **kwargs)

        return call


class SqlMetricWriter:
    """Writes plain metrics into MLflow's own tables in one statement per table and transaction: the rows
    ``SqlAlchemyStore.log_batch`` would write, without its per-row ORM work.

    What ``log_batch`` does and this repeats: the run must exist and be active; values are sanitized by
    the store's own ``sanitize_metric_value`` (NaN as 0 with ``is_nan``, +-inf as +-max float); a row
    already stored (same key, timestamp, step, value, is_nan) is left alone; ``latest_metrics`` holds, per
    run and key, the first row logged with the greatest (step, timestamp, value). Keys and values were
    validated when logged."""

    METRIC_COLUMNS = frozenset({"key", "value", "timestamp", "step", "is_nan", "run_uuid"})
    EXPECTED_TABLES = {  # table: (columns, primary key); exactly these, or the bulk path is not used
        "metrics": (METRIC_COLUMNS, METRIC_COLUMNS),
        "latest_metrics": (METRIC_COLUMNS, frozenset({"key", "run_uuid"})),
    }
    RUN_COLUMNS = frozenset({"run_uuid", "lifecycle_stage"})

    def __init__(self, store: Any, insert: Any) -> None:
        from mlflow.store.tracking.dbmodels.models import SqlLatestMetric, SqlMetric, SqlRun
        from sqlalchemy import bindparam, select, tuple_

        self.engine = store.engine
        self.rows_per_transaction = METRICS_PER_TRANSACTION
        self._sanitize = store.sanitize_metric_value
        self._is_sqlite = self.engine.dialect.name == "sqlite"
        metrics, latest, runs = SqlMetric.__table__, SqlLatestMetric.__table__, SqlRun.__table__
        self._insert_metrics = insert(metrics).on_conflict_do_nothing()
        upsert = insert(latest)
        self._upsert_latest = upsert.on_conflict_do_update(
            index_elements=[latest.c.key, latest.c.run_uuid],
            set_={name: upsert.excluded[name] for name in ("value", "timestamp", "step", "is_nan")},
            where=tuple_(upsert.excluded.step, upsert.excluded.timestamp, upsert.excluded.value)
            > tuple_(latest.c.step, latest.c.timestamp, latest.c.value))
        self._run_stage = select(runs.c.lifecycle_stage).where(runs.c.run_uuid == bindparam("run_uuid"))

    @staticmethod
    def takes(metric: Metric) -> bool:
        """Metrics of a logged model also go to its own table, which only ``log_batch`` writes."""
        return metric.model_id is None

    @classmethod
    def for_store(cls, store: Any) -> SqlMetricWriter | None:
        """The writer for ``store``, or None (with the reason logged) where ``log_batch`` must do."""
        try:
            insert, reason = cls._insert_for(store)
            if reason is None:
                reason = cls._schema_mismatch(store.engine)
            if reason is None:
                return cls(store, insert)
        except Exception as error:  # noqa: BLE001 - the slow path is always correct
            reason = f"the database could not be inspected: {type(error).__name__}: {error}"
        log = _logger.info if reason.startswith("the inner store is") else _logger.warning
        log("metrics to %s go through MLflow's log_batch: %s", getattr(store, "db_uri", store), reason)
        return None

    @staticmethod
    def _insert_for(store: Any) -> tuple[Any, str | None]:
        reason = unsupported_store(store)
        if reason is not None:
            return None, reason
        if store.engine.dialect.name == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        else:
            from sqlalchemy.dialects.postgresql import insert
        return insert, None

    @classmethod
    def _schema_mismatch(cls, engine: Any) -> str | None:
        """Why the tables (in the database, and in the MLflow models ``log_batch`` writes) are not as expected."""
        import sqlalchemy
        from mlflow.store.tracking.dbmodels.models import SqlLatestMetric, SqlMetric, SqlRun

        inspector = sqlalchemy.inspect(engine)
        models = {"metrics": SqlMetric, "latest_metrics": SqlLatestMetric}
        for table, (columns, primary_key) in cls.EXPECTED_TABLES.items():
            mismatch = column_mismatch(inspector, models[table], columns)
            if mismatch is not None:
                return mismatch
            found_key = set(inspector.get_pk_constraint(table)["constrained_columns"])
            if found_key != primary_key:
                return f"the {table} table's primary key is {sorted(found_key)}, expected {sorted(primary_key)}"
        run_columns = {column.name for column in SqlRun.__table__.columns}
        found_run_columns = {column["name"] for column in inspector.get_columns("runs")}
        if not cls.RUN_COLUMNS <= run_columns or not cls.RUN_COLUMNS <= found_run_columns:
            return f"the runs table lacks one of {sorted(cls.RUN_COLUMNS)}"
        return None

    def write(self, run_id: str, metrics: list[Metric]) -> None:
        """Store ``metrics`` of one run in one transaction, or nothing of them."""
        rows, latest = self._rows(run_id, metrics)
        with self.engine.begin() as connection:
            if self._is_sqlite:  # as MLflow's sessions do: before the first write, so outside its transaction
                connection.exec_driver_sql("PRAGMA foreign_keys = ON")
                connection.exec_driver_sql("PRAGMA busy_timeout = 20000")
            stage = connection.execute(self._run_stage, {"run_uuid": run_id}).scalars().all()
            if not stage:
                raise MlflowException(f"Run with id={run_id} not found", RESOURCE_DOES_NOT_EXIST)
            if stage[0] != LifecycleStage.ACTIVE:
                raise MlflowException(f"The run {run_id} must be in the 'active' state. "
                                      f"Current state is {stage[0]}.", INVALID_PARAMETER_VALUE)
            connection.execute(self._insert_metrics, rows)
            connection.execute(self._upsert_latest, latest)

    def _rows(self, run_id: str, metrics: list[Metric]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The rows to insert, each once, and per key the greatest of them: ties go to the first logged."""
        rows: dict[tuple[Any, ...], dict[str, Any]] = {}
        greatest: dict[str, tuple[tuple[Any, Any, Any], dict[str, Any]]] = {}
        sanitize = self._sanitize
        for metric in metrics:
            is_nan, value = sanitize(metric.value)
            key, timestamp, step = metric.key, metric.timestamp, metric.step
            identity = (key, timestamp, step, value, is_nan)
            row = rows.get(identity)
            if row is None:
                row = rows[identity] = {"key": key, "value": value, "timestamp": timestamp, "step": step,
                                        "is_nan": is_nan, "run_uuid": run_id}
            order = (step, timestamp, value)
            best = greatest.get(key)
            if best is None or order > best[0]:
                greatest[key] = (order, row)
        return list(rows.values()), [row for _, row in greatest.values()]


def _refused(error: BaseException) -> bool:
    """The store said no (4xx): retrying will not help. Anything else (5xx, no connection) may pass later."""
    if not isinstance(error, MlflowException):
        return False
    return 400 <= error.get_http_status_code() < 500


def _error_for(failures: list[_FailedWrite]) -> BufferedWriteError:
    first = failures[0].error
    code = ErrorCode.Value(first.error_code) if isinstance(first, MlflowException) else INTERNAL_ERROR
    lines = "\n".join(f"  - {failure.describe()}" for failure in failures[:10])
    more = f"\n  ... and {len(failures) - 10} more" if len(failures) > 10 else ""
    error = BufferedWriteError(f"MLflow could not store buffered run writes:\n{lines}{more}", error_code=code)
    error.__cause__ = first
    return error


def _delegate(name: str) -> Any:
    def method(self: BufferedTrackingStore, *args: Any, **kwargs: Any) -> Any:
        return self._call_inner(name, *args, **kwargs)

    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"The inner store's ``{name}``, after flushing buffered writes."
    return method


def _delegate_property(name: str) -> property:
    return property(lambda self: getattr(self.inner, name))


for _name, _member in list(vars(AbstractStore).items()):
    if _name.startswith("__") or _name in vars(BufferedTrackingStore):
        continue
    if isinstance(_member, property):
        setattr(BufferedTrackingStore, _name, _delegate_property(_name))
    elif callable(_member) and not isinstance(_member, staticmethod):
        setattr(BufferedTrackingStore, _name, _delegate(_name))


# ----- process-wide hooks: cell end, exit, fork -----

_live_stores: weakref.WeakSet[BufferedTrackingStore] = weakref.WeakSet()
_hooks_lock = threading.Lock()
_hooked_shells: weakref.WeakSet[Any] = weakref.WeakSet()
_process_hooks_installed = False


def flush_all() -> None:
    """Flush every live buffered store in this process; raise the first failure after trying them all."""
    first: BaseException | None = None
    for store in list(_live_stores):
        try:
            store.flush()
        except Exception as error:  # noqa: BLE001 - the others are still flushed
            first = first or error
    if first is not None:
        raise first


def _watch(store: BufferedTrackingStore) -> None:
    global _process_hooks_installed
    with _hooks_lock:
        _live_stores.add(store)
        if not _process_hooks_installed:
            atexit.register(_flush_at_exit)
            os.register_at_fork(after_in_child=_after_fork_in_child)
            _register_model_registry_scheme()
            _register_proxied_artifacts()
            _process_hooks_installed = True
        _hook_ipython()


def inner_model_registry_store(store_uri: str, tracking_uri: str | None = None) -> Any:
    """The model registry an ``aitip:`` registry URI names: the inner URI's (the registry is not buffered)."""
    import inspect

    from mlflow.tracking._model_registry.utils import _get_store_registry

    inner = inner_tracking_uri(store_uri)
    builder = _get_store_registry().get_store_builder(inner)
    if "tracking_uri" in inspect.signature(builder).parameters:
        return builder(store_uri=inner, tracking_uri=tracking_uri)
    return builder(store_uri=inner)


def _register_model_registry_scheme() -> None:
    """MLflow's registry URI defaults to the tracking URI: without this, ``aitip:`` would have no model
    registry unless MLFLOW_REGISTRY_URI names the inner store (which AITIP jobs also set)."""
    try:
        from mlflow.tracking._model_registry.utils import _get_store_registry

        _get_store_registry().register(SCHEME, inner_model_registry_store)
    except Exception:  # noqa: BLE001 - a registry API change must not break tracking
        import logging

        logging.getLogger("aitip.experiments").warning("could not register the %s: model registry scheme",
                                                       SCHEME, exc_info=True)


def _register_proxied_artifacts() -> None:
    """``mlflow-artifacts:`` URIs resolve locally (``$AITIP_MLFLOW_ARTIFACTS``) or through the inner
    tracking server, never through the ``aitip:`` URI, which MLflow would refuse (see .artifacts)."""
    try:
        from .artifacts import register_artifacts_scheme

        register_artifacts_scheme()
    except Exception:  # noqa: BLE001 - an artifact API change must not break tracking
        import logging

        logging.getLogger("aitip.experiments").warning("could not route mlflow-artifacts: URIs", exc_info=True)


def _hook_ipython() -> None:
    """Inside IPython (a notebook kernel), flush at the end of every cell."""
    if "IPython" not in sys.modules:
        return
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None or shell in _hooked_shells:
        return
    shell.events.register("post_run_cell", _flush_after_cell)
    _hooked_shells.add(shell)


def _flush_after_cell(result: Any) -> None:
    """A cell whose writes could not be stored fails, with the reason, like the log call would have."""
    try:
        flush_all()
    except Exception as error:  # noqa: BLE001 - shown in the cell and made its error
        from IPython import get_ipython

        shell = get_ipython()
        if shell is not None:
            shell.showtraceback()
        if result is not None and getattr(result, "error_in_exec", None) is None \
                and getattr(result, "error_before_exec", None) is None:
            result.error_in_exec = error


def _flush_at_exit() -> None:
    """Nobody is left to raise to at exit: failures are printed on stderr."""
    for store in list(_live_stores):
        for attempt in range(2):  # what failed for a passing reason gets one retry
            try:
                store.flush()
            except Exception as error:  # noqa: BLE001 - printed below
                print(f"aitip: {error}", file=sys.stderr, flush=True)
            if not store.pending_count():
                break
        if store.pending_count():
            print(f"aitip: {store.pending_count()} buffered MLflow writes to {store.inner_uri} are lost at exit",
                  file=sys.stderr, flush=True)


def _after_fork_in_child() -> None:
    for store in list(_live_stores):
        store._after_fork_in_child()


def _register_tracking_scheme() -> None:
    registry = getattr(sys.modules.get("mlflow.tracking._tracking_service.utils"), "_tracking_store_registry", None)
    if registry is not None:
        registry.register(SCHEME, BufferedTrackingStore)


_register_tracking_scheme()
