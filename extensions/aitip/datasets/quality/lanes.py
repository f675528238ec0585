"""The pieces of work the profile runs in two lanes, each on its own DuckDB cursor: a numeric column's
details (value counts, a stream into a reused numpy array, or DuckDB's quantile query past the budget),
a string column's GROUP BY, the duplicate rows' hashes, and the label's class balance."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..tabular import DatasetFormatError
from .columns import _Column
from .models import MAX_CLASSES_LISTED, ClassBalance, ClassCount, _finite_or_none
from .numeric import (
    HISTOGRAM_BINS,
    IQR_FACTOR,
    QUANTILES,
    STREAM_BATCH_ROWS,
    _details_from_counts,
    _details_from_values,
    _histogram_plan,
    _z_limit,
)

TOP_K = 10
# Numeric columns with at most this many distinct values (HyperLogLog's estimate) are profiled from
# their value counts.
LOW_CARDINALITY = 10_000

_INT64_RANGE = (-(2**63), 2**63 - 1)
_ARROW_TYPES = {"int64": "int64", "double": "float64", "uint64": "uint64"}


class _ArrayPool:
    """At most ``slots`` arrays of ``length`` 8-byte values, each reused from one task to the next: a
    copy into a fresh array's pages costs many times the copy into pages already touched, and would be
    paid once per column otherwise."""

    def __init__(self, slots: int, length: int) -> None:
        self._length = length
        self._free: queue.SimpleQueue[Any] = queue.SimpleQueue()
        for _ in range(slots):
            self._free.put(None)  # allocated on first use

    @contextlib.contextmanager
    def array(self, dtype: str) -> Iterator[Any]:
        import numpy as np

        buffer = self._free.get()
        try:
            if buffer is None:
                buffer = np.empty(self._length, dtype=np.uint64)
            yield buffer.view(dtype)
        finally:
            self._free.put(buffer)


def _run_in_lanes(connection: Any, work: list[tuple[Any, Any]], lanes: int) -> list[tuple[Any, Any]]:
    """Runs ``(key, task(cursor))`` pieces of work on ``lanes`` threads, each with its own cursor, in list
    order; returns ``(key, result)`` pairs. The first error stops the lanes taking more and is raised."""
    pending = list(reversed(work))
    taking = threading.Lock()
    results: list[tuple[Any, Any]] = []
    failed: list[BaseException] = []

    def lane() -> None:
        cursor = connection.cursor()
        try:
            while True:
                with taking:
                    if failed or not pending:
                        return
                    key, task = pending.pop()
                try:
                    result = task(cursor)
                except BaseException as error:  # noqa: BLE001 - handed to the caller, raised there
                    with taking:
                        failed.append(error)
                    return
                with taking:
                    results.append((key, result))
        finally:
            cursor.close()

    with ThreadPoolExecutor(max_workers=lanes) as pool:
        for future in [pool.submit(lane) for _ in range(lanes)]:
            future.result()
    if failed:
        raise failed[0]
    return results


def _exact_distinct(cursor: Any, column: _Column) -> int:
    return int(cursor.execute(
        f"SELECT count(*) FROM (SELECT DISTINCT {column.ident} FROM source WHERE {column.present})").fetchone()[0])


def _numeric_details(cursor: Any, column: _Column, stats: dict[Any, Any], row_count: int, exact_quantiles: bool,
                     sql_exact_quantiles: bool, exact_distinct: bool, arrays: _ArrayPool) -> dict[str, Any]:
    """Quantiles, outliers and the histogram of one numeric column.

    A column with few distinct values is answered from its value counts, exactly and in one cheap
    GROUP BY. Any other is streamed into numpy when it fits (``_details_from_values``, into one of
    ``arrays``);
    past the budget, or for integers beyond int64, it takes DuckDB's quantile query (T-Digest past the
    budget) and a GROUP BY over histogram bins.
    """
    name = column.name
    if stats.get((name, "min")) is None:
        return {"quantiles": dict.fromkeys(QUANTILES)}
    low, high = float(stats[(name, "min")]), float(stats[(name, "max")])
    edges, index_sql, bin_of = _histogram_plan(column, low, high)
    if (stats.get((name, "distinct")) or 0) <= LOW_CARDINALITY:
        counts = cursor.execute(
            f"SELECT {column.value}, count(*) FROM source WHERE {column.present} GROUP BY ALL ORDER BY 1 "
            f"LIMIT {2 * LOW_CARDINALITY + 1}").fetchall()
        if len(counts) <= 2 * LOW_CARDINALITY:
            return _details_from_counts(counts, edges, bin_of)
    if exact_quantiles and _sortable(column, stats):
        with arrays.array("int64" if column.kind == "int" else "float64") as out:
            values = _column_values(cursor, column, out)
            per_integer = column.kind == "int" and low != high and high - low + 1 <= HISTOGRAM_BINS
            return _details_from_values(values, stats[(name, "min")], stats[(name, "max")], edges, per_integer,
                                        exact_distinct)
    exact = sql_exact_quantiles
    quantiles, mean, std = _quantiles(cursor, column, exact)
    z_limit = _z_limit(std)
    detail: dict[str, Any] = {"quantiles": quantiles, "edges": edges, "sketched": not exact, "mean": mean, "std": std}
    if exact_distinct:
        detail["distinct"] = _exact_distinct(cursor, column)
    q1, q3 = quantiles["p25"], quantiles["p75"]
    value = column.value
    iqr_sql = z_sql = "NULL"
    if q1 is not None and q3 is not None:
        lower, upper = q1 - IQR_FACTOR * (q3 - q1), q3 + IQR_FACTOR * (q3 - q1)
        detail["fences"] = (lower, upper)
        iqr_sql = f"count_if({value} < {lower!r} OR {value} > {upper!r})"
    if z_limit is not None:
        z_sql = f"count_if(abs({value} - {float(mean)!r}) > {z_limit!r})"
    finite = f"isfinite({column.ident})" if column.non_finite else f"{column.ident} IS NOT NULL"
    rows = cursor.execute(f"SELECT {index_sql} AS bin, count(*), {iqr_sql}, {z_sql} FROM source "
                          f"WHERE {finite} GROUP BY ALL").fetchall()
    histogram = [0] * (len(edges) - 1)
    for bin_index, count, _, _ in rows:
        histogram[int(bin_index)] += int(count)
    detail.update(histogram=histogram, iqr_outliers=sum(int(row[2] or 0) for row in rows),
                  z_outliers=sum(int(row[3] or 0) for row in rows))
    return detail


def _sortable(column: _Column, stats: dict[Any, Any]) -> bool:
    """Whether numpy holds the column's values exactly: floats as float64, integers within int64."""
    if column.kind == "float":
        return True
    low, high = stats[(column.name, "min")], stats[(column.name, "max")]
    return isinstance(low, int) and isinstance(high, int) and _INT64_RANGE[0] <= low <= high <= _INT64_RANGE[1]


def _column_values(cursor: Any, column: _Column, out: Any) -> Any:
    """The column's non-missing values (infinities included), streamed from DuckDB in Arrow batches into
    ``out`` (float64, or int64 for integers; ``count(*)`` long), in scan order; the filled part.

    A scan cannot yield more rows than ``count(*)`` found (checked)."""
    select = f"CAST({column.ident} AS BIGINT)" if column.kind == "int" else f"CAST({column.ident} AS DOUBLE)"
    return _stream_into(cursor, f"SELECT {select} FROM source WHERE {column.present}", out)


def _stream_into(cursor: Any, query: str, out: Any) -> Any:
    """Fills ``out`` with the query's single column, batch by batch; returns the filled part.

    Streams on a cursor of its own (a DB-API result still open on ``cursor`` would block it). An Arrow
    stream reports DuckDB's errors as OSError (or an ArrowException), which would hide whether the file
    is at fault; the failed scan is then run again as an aggregate, which raises DuckDB's own exception
    class for the caller to sort (a reader error becomes a DatasetFormatError).
    """
    import numpy as np
    import pyarrow as pa

    stream = cursor.cursor()
    filled = 0
    try:
        reader = stream.sql(query).to_arrow_reader(STREAM_BATCH_ROWS)
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                break
            except (OSError, pa.ArrowException):
                retry = cursor.cursor()
                try:
                    retry.execute(f"SELECT max(value) FROM ({query}) AS streamed(value)").fetchall()
                finally:
                    retry.close()
                raise
            array = batch.column(0)
            if array.null_count or _ARROW_TYPES.get(str(array.type)) != out.dtype.name:
                raise RuntimeError(f"expected {out.dtype} values without NULL, got {array.type} "
                                   f"with {array.null_count} NULL")
            # The values buffer as it is (Array.to_numpy would import pandas first, a slow import).
            chunk = np.frombuffer(array.buffers()[1], dtype=out.dtype, count=len(array),
                                  offset=array.offset * out.dtype.itemsize)
            if filled + len(chunk) > len(out):
                raise DatasetFormatError("the file yielded more rows than its row count", detail={})
            out[filled:filled + len(chunk)] = chunk
            filled += len(chunk)
    finally:
        stream.close()
    return out[:filled]


def _quantiles(cursor: Any, column: _Column, exact: bool) -> tuple[dict[str, float | None], Any, Any]:
    """Quantiles, mean and standard deviation over the finite values, in one query.

    Exact quantiles hold the column in memory (DuckDB cannot spill them), so one column at a time."""
    function = "quantile_cont" if exact else "approx_quantile"
    probabilities = "[" + ", ".join(repr(p) for p in QUANTILES.values()) + "]"
    value, only = f"CAST({column.value} AS DOUBLE)", column.finite_filter
    values, mean, std = cursor.execute(
        f"SELECT {function}({value}, {probabilities}){only}, avg({value}){only}, stddev_samp({value}){only} "
        "FROM source").fetchone()
    if values is None:
        return dict.fromkeys(QUANTILES), mean, std
    return ({key: _finite_or_none(float(value)) for key, value in zip(QUANTILES, values, strict=True)},
            mean, std)


def _string_values(cursor: Any, column: _Column) -> dict[Any, Any]:
    """Exact distinct count and top values from one GROUP BY (DuckDB spills it past the memory limit).

    The groups are materialized once and counted by a scalar subquery, which costs less than a window
    ``count(*) OVER ()`` over every group (measured on many distinct strings)."""
    rows = cursor.execute(
        f"WITH groups AS MATERIALIZED (SELECT {column.ident} AS value, count(*) AS n FROM source "
        f"WHERE {column.ident} IS NOT NULL GROUP BY ALL) "
        f"SELECT value, n, (SELECT count(*) FROM groups) FROM groups ORDER BY n DESC, value LIMIT {TOP_K}").fetchall()
    return {(column.name, "distinct"): int(rows[0][2]) if rows else 0,
            (column.name, "top"): {value: int(n) for value, n, _ in rows}}


def _duplicate_rows(cursor: Any, columns: list[_Column], row_count: int, arrays: _ArrayPool | None) -> int:
    """Rows minus distinct row hashes; NaN hashed as NULL so the two missing forms compare equal.

    DuckDB computes each row's 64-bit ``hash``; while they fit (``arrays`` given) they are streamed into
    one of its arrays and sorted, and a row is a duplicate when its hash equals the one before it in that order.
    Beyond, DuckDB's DISTINCT over the same hashes counts them (spilling past the memory limit).
    """
    hashed = ", ".join(f"CASE WHEN isnan({column.ident}) THEN NULL ELSE {column.ident} END" if column.non_finite
                       else column.ident for column in columns)
    if arrays is None:
        row = cursor.execute(f"SELECT (SELECT count(*) FROM source) - count(*) FROM "
                             f"(SELECT DISTINCT hash({hashed}) FROM source)").fetchone()
        return int(row[0])
    import numpy as np

    with arrays.array("uint64") as out:
        hashes = _stream_into(cursor, f"SELECT hash({hashed}) FROM source", out)
        hashes.sort()
        return row_count - len(hashes) + int(np.count_nonzero(hashes[1:] == hashes[:-1]))


def _class_balance(connection: Any, column: _Column) -> ClassBalance:
    rows = connection.execute(
        f"WITH classes AS (SELECT {column.ident} AS value, count(*) AS n FROM source "
        f"WHERE {column.present} GROUP BY ALL) "
        "SELECT value, n, (SELECT count(*) FROM classes), (SELECT sum(n) FROM classes), (SELECT min(n) FROM classes) "
        f"FROM classes ORDER BY n DESC, value LIMIT {MAX_CLASSES_LISTED}").fetchall()
    if not rows:
        return ClassBalance(column=column.name, class_count=0, total=0, classes=[], min_class_fraction=None,
                            max_class_fraction=None)
    class_count, total, smallest = int(rows[0][2]), int(rows[0][3]), int(rows[0][4])
    return ClassBalance(
        column=column.name, class_count=class_count, total=total,
        classes=[ClassCount(value=_json_value(value), count=int(n), fraction=n / total) for value, n, *_ in rows],
        min_class_fraction=smallest / total, max_class_fraction=int(rows[0][1]) / total,
    )


def _json_value(value: Any) -> Any:
    if isinstance(value, str | bool | int | float) or value is None:
        return _finite_or_none(value)
    return str(value)
