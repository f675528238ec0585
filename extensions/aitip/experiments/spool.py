"""A job's tracking spool: how a kernel that may not open the MLflow store still logs at full speed.

The kernel (running as the job's owner) appends its run writes — metrics, params, tags — as JSON lines to
a file of its own job that the platform created (``control/tracking.spool``, writable by the owner, not
replaceable). The platform drains it into MLflow in bulk: every second while the job runs, whenever the
kernel asks (the end of each cell, ``mlflow.flush_async_logging()``), before answering the kernel's reads
through the tracking gateway, after the kernel is gone, and at start for spools a crash left undrained. A
point is therefore never lost at kernel exit (it is on disk before the kernel lets go of it), nor when the
platform crashes (the drain resumes from its last committed offset; replaying a line is harmless: metrics
already stored are skipped, params and tags are set to the same values).

Everything in a spool is untrusted: each line is checked as MLflow checks a ``log_batch`` (keys, values,
sizes), may only touch active runs of the job's own project, and may not set the platform's ``aitip.*``
tags. A refused line is reported back to the kernel, never half-applied.

Line format: ``{"r": run_id, "m": [[key, value, timestamp_ms, step], ...], "p": [[key, value], ...],
"t": [[key, value], ...]}``.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import faults
from ..file_lock import exclusive_file_lock

MAX_LINE_BYTES = 8 * 1024 * 1024
READ_BYTES = 16 * 1024 * 1024
METRICS_PER_LINE = 10_000
PROTECTED_TAG_PREFIXES = ("aitip.", "mlflow.user", "mlflow.source.name", "mlflow.parentRunId")
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")


# ----- the kernel's side -----


def encode(run_id: str, metrics: list[Any], params: list[Any], tags: list[Any]) -> bytes:
    """The lines for one run's writes (metrics cut in lines of at most ``METRICS_PER_LINE``)."""
    lines = []
    rows = [[m.key, m.value, m.timestamp, m.step] for m in metrics]
    for start in range(0, max(len(rows), 1), METRICS_PER_LINE):
        record: dict[str, Any] = {"r": run_id}
        if rows[start:start + METRICS_PER_LINE]:
            record["m"] = rows[start:start + METRICS_PER_LINE]
        if start == 0 and params:
            record["p"] = [[p.key, p.value] for p in params]
        if start == 0 and tags:
            record["t"] = [[t.key, t.value] for t in tags]
        if len(record) > 1:
            lines.append(json.dumps(record, separators=(",", ":")))
    return ("\n".join(lines) + "\n").encode() if lines else b""


class SpoolWriter:
    """Appends to the spool the platform made for this job; never creates or replaces it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW)
        self._lock = threading.Lock()
        self.appended = 0  # lines written since the last confirmation

    def append(self, data: bytes) -> None:
        if not data:
            return
        with self._lock:
            view = memoryview(data)
            while view:
                written = os.write(self._descriptor, view)
                view = view[written:]
            self.appended += data.count(b"\n")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._descriptor)


# ----- the platform's side -----


@dataclass
class DrainResult:
    stored: int = 0  # points, params and tags written
    errors: list[str] = field(default_factory=list)
    pending_bytes: int = 0  # left for the next drain (an incomplete last line)


class SpoolRefused(ValueError):
    """A spool line that may not be applied (malformed, another project's run, a protected tag)."""


@dataclass(frozen=True)
class _Line:
    run_id: str
    metrics: list[Any]
    params: list[Any]
    tags: list[Any]

    @property
    def size(self) -> int:
        return len(self.metrics) + len(self.params) + len(self.tags)


def _decode(raw: bytes) -> _Line:
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.utils.validation import _validate_metric, _validate_param, _validate_tag

    try:
        record = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise SpoolRefused(f"not a JSON line: {error}") from None
    if not isinstance(record, dict) or set(record) - {"r", "m", "p", "t"}:
        raise SpoolRefused("a line is an object with keys r, m, p, t")
    run_id = record.get("r")
    if not isinstance(run_id, str) or not _RUN_ID.match(run_id):
        raise SpoolRefused(f"bad run id {run_id!r}")
    try:
        metrics = [Metric(str(key), float(value), int(timestamp), int(step))
                   for key, value, timestamp, step in record.get("m") or []]
        params = [Param(str(key), str(value)) for key, value in record.get("p") or []]
        tags = [RunTag(str(key), str(value)) for key, value in record.get("t") or []]
    except (TypeError, ValueError) as error:
        raise SpoolRefused(f"malformed entry: {error}") from None
    try:
        for metric in metrics:
            _validate_metric(metric.key, metric.value, metric.timestamp, metric.step)
        params = [_validate_param(p.key, p.value) for p in params]
        tags = [_validate_tag(t.key, t.value) for t in tags]
    except Exception as error:  # noqa: BLE001 - MLflow's own checks, reported as they say
        raise SpoolRefused(str(error)) from None
    protected = sorted({t.key for t in tags if t.key.startswith(PROTECTED_TAG_PREFIXES)})
    if protected:
        raise SpoolRefused(f"tags {protected} are the platform's; a job may not set them")
    return _Line(run_id, metrics, params, tags)


def _read_offset(descriptor: int) -> int:
    os.lseek(descriptor, 0, os.SEEK_SET)
    text = os.read(descriptor, 64).decode().strip()
    return int(text) if text.isdigit() else 0


def _write_offset(descriptor: int, offset: int) -> None:
    os.lseek(descriptor, 0, os.SEEK_SET)
    data = f"{offset:020d}\n".encode()  # fixed width: a crash mid-write cannot leave a shorter, wrong number
    os.write(descriptor, data)


class SpoolDrainer:
    """Writes spool lines into the MLflow store ``store`` (an ``AbstractStore``); metrics in bulk where the
    store allows it (:class:`.buffered_store.SqlMetricWriter`)."""

    def __init__(self, store: Any) -> None:
        from .buffered_store import SqlMetricWriter

        self.store = store
        self.metric_writer = SqlMetricWriter.for_store(store)

    def drain(self, spool: Path, offset_file: Path, run_allowed: Callable[[str], str | None]) -> DrainResult:
        """Apply what was appended since the last drain. ``run_allowed(run_id)`` says why a run may not be
        written (None when it may). One drain at a time per spool, across processes (a lock on the offset)."""
        result = DrainResult()
        with exclusive_file_lock(offset_file) as offset_descriptor:
            offset = _read_offset(offset_descriptor)
            try:
                descriptor = os.open(spool, os.O_RDONLY | os.O_NOFOLLOW)
            except FileNotFoundError:
                return result
            try:
                while True:
                    size = os.fstat(descriptor).st_size
                    if size < offset:
                        offset = 0  # the kernel truncated its own spool: what is there now is new
                    if size == offset:
                        break
                    os.lseek(descriptor, offset, os.SEEK_SET)
                    block = os.read(descriptor, READ_BYTES)
                    end = block.rfind(b"\n")
                    if end < 0:
                        if len(block) >= MAX_LINE_BYTES:
                            result.errors.append(f"a spool line longer than {MAX_LINE_BYTES} bytes was skipped")
                            offset += self._skip_line(descriptor, offset)
                            _write_offset(offset_descriptor, offset)
                            continue
                        result.pending_bytes = len(block)
                        break
                    self._apply(block[:end].split(b"\n"), run_allowed, result)
                    faults.point("spool.written")  # stored, offset not yet moved: the next drain replays it
                    offset += end + 1
                    _write_offset(offset_descriptor, offset)
            finally:
                os.close(descriptor)
        return result

    @staticmethod
    def _skip_line(descriptor: int, offset: int) -> int:
        skipped = 0
        while True:
            os.lseek(descriptor, offset + skipped, os.SEEK_SET)
            block = os.read(descriptor, READ_BYTES)
            if not block:
                return skipped
            end = block.find(b"\n")
            if end >= 0:
                return skipped + end + 1
            skipped += len(block)

    def _apply(self, raw_lines: list[bytes], run_allowed: Callable[[str], str | None], result: DrainResult) -> None:
        lines: list[_Line] = []
        for raw in raw_lines:
            if not raw.strip():
                continue
            try:
                line = _decode(raw)
                why = run_allowed(line.run_id)
                if why is not None:
                    raise SpoolRefused(why)
            except SpoolRefused as refused:
                result.errors.append(f"a tracking write was refused: {refused}")
                continue
            lines.append(line)
        for run_id, group in itertools.groupby(lines, key=lambda line: line.run_id):
            batch = list(group)
            metrics = [m for line in batch for m in line.metrics]
            params = {p.key: p for line in batch for p in line.params}
            tags = {t.key: t for line in batch for t in line.tags}
            result.stored += self._write(run_id, metrics, list(params.values()), list(tags.values()), result)

    def _write(self, run_id: str, metrics: list[Any], params: list[Any], tags: list[Any], result: DrainResult) -> int:
        from mlflow.utils.validation import MAX_METRICS_PER_BATCH, MAX_PARAMS_TAGS_PER_BATCH

        stored = 0
        try:
            if metrics and self.metric_writer is not None:
                for start in range(0, len(metrics), self.metric_writer.rows_per_transaction):
                    chunk = metrics[start:start + self.metric_writer.rows_per_transaction]
                    self.metric_writer.write(run_id, chunk)
                    stored += len(chunk)
            elif metrics:
                for start in range(0, len(metrics), MAX_METRICS_PER_BATCH):
                    chunk = metrics[start:start + MAX_METRICS_PER_BATCH]
                    self.store.log_batch(run_id, metrics=chunk, params=[], tags=[])
                    stored += len(chunk)
        except Exception as error:  # noqa: BLE001 - reported to the kernel; the rest still applies
            result.errors.append(f"metrics of run {run_id} were refused: {type(error).__name__}: {error}")
        for kind, items in (("params", params), ("tags", tags)):
            for start in range(0, len(items), MAX_PARAMS_TAGS_PER_BATCH):
                chunk = items[start:start + MAX_PARAMS_TAGS_PER_BATCH]
                try:
                    self.store.log_batch(run_id, metrics=[], params=chunk if kind == "params" else [],
                                         tags=chunk if kind == "tags" else [])
                    stored += len(chunk)
                except Exception as error:  # noqa: BLE001 - one item at a time, to keep the good ones
                    for item in chunk:
                        try:
                            self.store.log_batch(run_id, metrics=[], params=[item] if kind == "params" else [],
                                                 tags=[item] if kind == "tags" else [])
                            stored += 1
                        except Exception as item_error:  # noqa: BLE001 - reported
                            result.errors.append(f"{kind[:-1]} {item.key!r} of run {run_id} was refused: "
                                                 f"{type(item_error).__name__}: {item_error}")
                    del error
        return stored
