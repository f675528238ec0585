"""Quality reports of tabular files, and the definitions every report follows.

Tabular files (Parquet, CSV, JSONL) are profiled by DuckDB and numpy inside a memory budget
(``memory_limit_mb``), never as Python objects per row and never the whole table in memory. DuckDB
scans the file for counts, min/max, HyperLogLog sketches, type checks and the string GROUP BYs
(spilling to a private temp directory past its limit). What needs a column's values in order goes to
numpy: each numeric column that is not answered from its value counts is streamed out of DuckDB in
Arrow batches into a numpy array, where its quantiles come from fine bins (a counting pass, then only
the few bins holding the wanted ranks are collected and sorted: no sort of the column), and its outlier
and histogram counts, mean and standard deviation from vectorized passes; the 64-bit row hashes are
streamed and sorted to count duplicate rows. Two lanes take these pieces of work side by side.

Memory: numpy holds one such array per lane, 8 bytes per row (one lane's only, when two would not fit
half of ``memory_limit_mb``), reused from column to column; DuckDB's ``memory_limit`` is set to the
budget minus those arrays (10M rows at the default 512 MB: numpy 160 MB, DuckDB 352 MB). Past half the
budget a column takes T-Digest quantiles and SQL GROUP BYs instead, and duplicates DuckDB's DISTINCT
over the same hashes, which spills.

The engine was picked by measurement. DuckDB over Polars: FIELD-NOTES "Tracking and data", and on
benchmarks/quality_report.py's file the same first-pass aggregates ran in less time and memory under
DuckDB than under Polars streaming. Numpy over DuckDB-only queries: profiled step by step, streaming the
high-cardinality numeric columns and the row hashes into numpy and sorting them beat DuckDB's exact
quantile and bin GROUP BY queries and its row-hash DISTINCT, and the first scan skips avg/stddev (numpy
or the value counts compute them) because they cost it as much as everything else. Fine bins instead of
a full sort, two lanes and reused arrays answer the registration benchmark's file, whose columns are all
high-cardinality (so none is profiled from its value counts). The figures, against a plain pandas
implementation of the same checks: the README ("Dataset quality report", "Dataset registration") and
benchmarks/results/quality_report.json.

Definitions (the tests check each against an independent pandas computation):

- missing: SQL NULL, and NaN in float columns (pandas' ``isna``); ``nan_count`` is the NaN part.
  Parquet null counts come from the file's footer.
- numeric statistics (min/max/mean/std, quantiles, outliers, histogram) use the finite values only;
  ``inf_count`` counts the infinite ones. ``std`` is the sample standard deviation (ddof=1),
  quantiles interpolate linearly (pandas' default) and are exact while a column's values (8 bytes
  each) fit half the memory limit (T-Digest beyond, see ``quantile_method``).
- distinct: over non-missing values. Exact for strings, booleans and numeric columns with at most
  LOW_CARDINALITY values (they are profiled from their value counts); otherwise HyperLogLog
  (``approx_count_distinct``: about 3% standard error, so 5-10% off now and then), or exact with
  ``exact_distinct=True`` (counted in the sorted values, or one hash table per column past the
  budget). ``distinct_exact`` says which.
- top values (strings, booleans): exact counts, largest first, ties by value.
- outliers: IQR, outside ``[p25 - 1.5*IQR, p75 + 1.5*IQR]``; z-score, ``|x - mean| > 3*std``.
  Fractions are of the column's finite values.
- histogram: 20 equal-width bins from min to max (np.histogram's: bin i holds
  ``edges[i] <= x < edges[i + 1]``, the maximum in the last bin), one per value for integer
  columns spanning at most 20 values.
- duplicates: rows equal to an earlier row in every column (NULL equals NULL, NaN equals NULL),
  counted as rows minus distinct 64-bit hashes of the whole row (DuckDB's ``hash``). A false
  duplicate needs a hash collision: about n^2 / 2^65, 3e-6 expected at 10M rows.
- type violations: non-missing values that do not convert losslessly to the declared type (see
  ``_violation_sql``).

Nothing non-finite reaches the report: every NaN or infinity becomes ``None``. Corrupt input raises
DatasetFormatError; corruption inside compressed page data is caught only where it breaks the
compression (Parquet writers rarely store page checksums). DuckDB and Pillow are native code:
``check_quality_isolated`` runs the check in a child process for callers that must survive any file.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import time
from datetime import date, datetime
from pathlib import Path
from typing import Any

from ...errors import Phrase
from ...i18n import N_
from ..tabular import DatasetFormatError
from .columns import _Column, _first_pass, _non_finite_pass
from .lanes import (
    _ArrayPool,
    _class_balance,
    _duplicate_rows,
    _exact_distinct,
    _numeric_details,
    _run_in_lanes,
    _string_values,
)
from .models import (
    ColumnReport,
    Duplicates,
    EngineInfo,
    Histogram,
    NumericStats,
    QualityReport,
    QualityRules,
    TabularFormat,
    ValueCount,
    _finite_or_none,
    _fraction,
)
from .numeric import QUANTILES

# Exact quantiles hold a column's values in numpy (8 bytes each) while they fit half the memory limit;
# bigger columns use T-Digest sketches instead. The rare integer column numpy cannot hold (values beyond
# int64) takes DuckDB's exact quantile, which holds about 3x that inside DuckDB's limit and cannot spill.
EXACT_QUANTILE_BYTES_PER_ROW = 8
DUCKDB_QUANTILE_FACTOR = 3
# Duplicate rows: the row hashes are sorted in numpy (8 bytes each) while they fit half the memory limit;
# beyond, DuckDB's DISTINCT (which spills) counts them.
ROW_HASH_BYTES_PER_ROW = 8
# Two such arrays at once (one per lane) only while DuckDB keeps at least this much beside them: its two
# lanes stream Arrow batches and run GROUP BYs at the same time.
TWO_ARRAYS_MIN_DUCKDB_MB = 64

_DUPLICATES = object()  # the row-hash count's key among the lanes' results (columns are keyed by name)

_READER_ERROR_NAMES = ("InvalidInputException", "IOException", "ConversionException", "InternalException")


def _is_reader_error(error: BaseException) -> bool:
    """Whether DuckDB's error is about the file, not about an expression of ours or the memory limit.

    Reader failures come as the classes above, or as the bare ``duckdb.Error`` (a Parquet page header
    that does not decode); conversion errors count only when a CSV/JSON reader raised them.
    """
    import duckdb

    if isinstance(error, duckdb.ConversionException):
        text = str(error)
        return "CSV Error" in text or "JSON" in text
    if isinstance(error, duckdb.BinderException):  # read_json(records = true) met a line that is no object
        return "expected records" in str(error)
    return type(error) is duckdb.Error or isinstance(
        error, tuple(getattr(duckdb, name) for name in _READER_ERROR_NAMES))


_FORMAT_HINTS = {
    "parquet": N_("a complete, uncorrupted Parquet file"),
    "csv": N_("UTF-8, comma-separated, a header row, and every row with the header's number of fields"),
    "jsonl": N_("one JSON object per line, UTF-8"),
}


def _format_error(fmt: str, path: Path, error: BaseException) -> DatasetFormatError:
    """DuckDB's own words, first lines only, without the query echo or the server-side path."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    kept = [line for line in lines
            if not line.startswith(("LINE ", "^", "*", "Try setting")) and not line.lower().startswith("possible")]
    detail = " | ".join(kept[:4]).replace(str(path), path.name)[:500]
    return DatasetFormatError("not a valid {fmt} file (expected {format_hints}): {detail_text}",
                              detail={"format": fmt, "engine_message": detail},
                              fmt=fmt, format_hints=Phrase(_FORMAT_HINTS[fmt]), detail_text=detail)


def check_csv_header(path: Path) -> None:
    """A header cell without a name (a trailing comma on every line) or a name given twice: refused, as the
    reader would invent or change a name (``column2``, ``a_1``) that a notebook reading the file never sees."""
    import csv

    try:
        with path.open(encoding="utf-8", newline="") as handle:
            header = next(csv.reader(handle), [])
    except (UnicodeDecodeError, csv.Error):
        return  # the reader says what is wrong with the file itself
    for position, name in enumerate(header, start=1):
        if not name.strip():
            raise DatasetFormatError("column {position} of the CSV header has no name (a trailing comma on each "
                                     "line?): name it, or remove the column", detail={"format": "csv",
                                                                                      "column": position},
                                     position=position)
    named = [name.strip() for name in header]
    twice = next((name for index, name in enumerate(named) if name in named[:index]), None)
    if twice is not None:
        raise DatasetFormatError("the CSV header names the column {name!r} twice: give each column its own name",
                                 detail={"format": "csv", "column": twice}, name=twice)


def _reader_sql(fmt: str, path: str, full_type_scan: bool) -> str:
    literal = "'" + path.replace("'", "''") + "'"
    sample = ", sample_size = -1" if full_type_scan else ""
    if fmt == "csv":
        return (f"read_csv({literal}, header = true, delim = ',', skip = 0, strict_mode = true, "
                f"null_padding = false, ignore_errors = false, encoding = 'utf-8'{sample})")
    if fmt == "jsonl":
        return f"read_json({literal}, format = 'newline_delimited', records = true, ignore_errors = false{sample})"
    return f"read_parquet({literal})"


def _open_source(connection: Any, fmt: str, path: Path) -> dict[str, int]:
    """Makes ``source`` name the data: a view over Parquet; a table loaded once from CSV or JSONL.

    Text formats are parsed once into an on-disk temp table (not once per scan). Their types are
    sniffed from a sample first; a value the sample's type cannot hold triggers one full-file re-sniff.
    Returns the null counts a Parquet footer records for every row group of a flat column (counting
    them would mean a scan; a wrong footer makes them wrong, it cannot make them crash anything).
    """
    import duckdb

    if fmt == "parquet":
        connection.execute(f"CREATE VIEW source AS SELECT * FROM {_reader_sql(fmt, str(path), False)}")
        literal = "'" + str(path).replace("'", "''") + "'"
        rows = connection.execute(
            "SELECT path_in_schema, sum(stats_null_count), count(*) = count(stats_null_count) "
            f"FROM parquet_metadata({literal}) GROUP BY ALL").fetchall()
        return {name: int(nulls) for name, nulls, complete in rows if complete}
    try:
        connection.execute(f"CREATE TABLE source AS SELECT * FROM {_reader_sql(fmt, str(path), False)}")
    except duckdb.Error as error:
        if "could not convert" not in str(error).lower():
            raise
        connection.execute("DROP TABLE IF EXISTS source")
        connection.execute(f"CREATE TABLE source AS SELECT * FROM {_reader_sql(fmt, str(path), True)}")
    return {}


def compute_quality_report(path: str | os.PathLike[str], format: TabularFormat, rules: QualityRules | None = None, *,
                           memory_limit_mb: int = 512, threads: int | None = None,
                           exact_distinct: bool = False) -> QualityReport:
    """Profiles a Parquet, CSV or JSONL file in bounded memory; ``rules`` adds type and class checks.

    ``rules.declared_schema`` adds type-violation counts and ``rules.label_column`` class balance.
    ``exact_distinct`` counts numeric and temporal distinct values exactly (strings and booleans
    always are). Raises DatasetFormatError for files that are corrupt, truncated, ragged or not UTF-8.
    """
    import duckdb

    started = time.perf_counter()
    rules = rules or QualityRules()
    if format not in ("parquet", "csv", "jsonl"):
        raise DatasetFormatError("quality reports read parquet, csv or jsonl, not {format!r}", format=format)
    source_path = Path(path)
    if not source_path.is_file():
        raise FileNotFoundError(f"no file at {source_path}")
    if source_path.stat().st_size == 0:
        raise DatasetFormatError("the {format} file is empty", format=format)
    if format == "csv":
        check_csv_header(source_path)
    threads = threads or min(4, os.cpu_count() or 1)
    workdir = Path(tempfile.mkdtemp(prefix="aitip-quality-"))
    database = ":memory:" if format == "parquet" else str(workdir / "quality.duckdb")
    connection = duckdb.connect(database, config={
        "memory_limit": f"{memory_limit_mb}MB", "threads": threads, "temp_directory": str(workdir / "spill"),
        "preserve_insertion_order": False,
        # DuckDB trusts a Parquet footer's min/max statistics to size perfect-hash aggregates; a file whose
        # statistics lie (corrupt or crafted) then crashes the process (segfault, reproduced in the tests).
        "disabled_optimizers": "statistics_propagation",
    })
    try:
        footer_nulls = _open_source(connection, format, source_path)
        engine = EngineInfo(name="duckdb", version=duckdb.__version__, memory_limit_mb=memory_limit_mb,
                            threads=threads)
        return _profile(connection, format, rules, engine, exact_distinct, started, footer_nulls)
    except duckdb.Error as error:
        if not _is_reader_error(error):
            raise
        raise _format_error(format, source_path, error) from None
    finally:
        connection.close()
        shutil.rmtree(workdir, ignore_errors=True)


def _profile(connection: Any, fmt: str, rules: QualityRules, engine: EngineInfo, exact_distinct: bool,
             started: float, footer_nulls: dict[str, int]) -> QualityReport:
    described = connection.execute("DESCRIBE source").fetchall()
    columns = [_Column(str(row[0]), str(row[1])) for row in described]
    if not columns:
        raise DatasetFormatError("the {fmt} file has no columns", fmt=fmt)
    by_name = {column.name: column for column in columns}
    row_count = int(connection.execute("SELECT count(*) FROM source").fetchone()[0])

    known_nulls = {name: nulls for name, nulls in footer_nulls.items()
                   if name in by_name and by_name[name].kind != "other"}
    stats = _first_pass(columns, rules, known_nulls).run(connection)
    for name, nulls in known_nulls.items():
        stats[(name, "non_null")] = row_count - min(max(nulls, 0), row_count)
    for column in columns:
        if column.nan_able:
            low, high = stats[(column.name, "min")], stats[(column.name, "max")]
            column.non_finite = any(value is not None and not math.isfinite(value) for value in (low, high))
    stats.update(_non_finite_pass(columns).run(connection))
    # Two lanes of queries at once, each on its own cursor, taking the next piece of work from one list:
    # the row hashes, the numeric columns (streamed into numpy where they fit; numpy's passes run without
    # the GIL), then DuckDB's GROUP BYs for strings and the label. Memory:
    # numpy holds one array per lane (``numpy_slots``; one lane's at a time when two do not fit half the
    # budget beside TWO_ARRAYS_MIN_DUCKDB_MB for DuckDB), 8 bytes per row, and only while that fits half the budget; DuckDB gets the rest of the budget as its limit
    # (spilling past it), so the two together stay within memory_limit_mb.
    budget = engine.memory_limit_mb * 1_000_000
    exact_quantiles = row_count * EXACT_QUANTILE_BYTES_PER_ROW <= budget // 2
    sql_exact_quantiles = exact_quantiles and (
        row_count * EXACT_QUANTILE_BYTES_PER_ROW * DUCKDB_QUANTILE_FACTOR <= budget // 2)
    sorted_hashes = row_count * ROW_HASH_BYTES_PER_ROW <= budget // 2
    array_bytes = max(row_count * EXACT_QUANTILE_BYTES_PER_ROW if exact_quantiles else 0,
                      row_count * ROW_HASH_BYTES_PER_ROW if sorted_hashes else 0)
    numpy_slots = 2 if (2 * array_bytes <= budget // 2
                        and budget - 2 * array_bytes >= TWO_ARRAYS_MIN_DUCKDB_MB * 1_000_000) else 1
    if array_bytes:
        connection.execute(f"SET memory_limit = '{max(1, (budget - numpy_slots * array_bytes) // 1_000_000)}MB'")
    arrays = _ArrayPool(numpy_slots, row_count)
    label = by_name.get(rules.label_column) if rules.label_column else None

    work: list[tuple[Any, Any]] = []
    if row_count and sorted_hashes:  # the longest piece first, beside the columns
        work.append((_DUPLICATES, lambda cursor: _duplicate_rows(cursor, columns, row_count, arrays)))
    work += [(column.name, lambda cursor, column=column: _numeric_details(
        cursor, column, stats, row_count, exact_quantiles, sql_exact_quantiles, exact_distinct, arrays))
        for column in columns if column.numeric]
    for column in columns:
        if column.kind == "string":
            work.append((None, lambda cursor, column=column: _string_values(cursor, column)))
        elif exact_distinct and column.kind in ("date", "timestamp"):
            work.append((None, lambda cursor, column=column: {(column.name, "distinct"): _exact_distinct(cursor, column)}))
    if label is not None:
        work.append((None, lambda cursor: {"balance": _class_balance(cursor, label)}))
    results = _run_in_lanes(connection, work, lanes=2)
    details: dict[str, dict[str, Any]] = {key: value for key, value in results if isinstance(key, str)}
    found: dict[Any, Any] = {"balance": None}
    duplicate_count = None
    for key, value in results:
        if key is None:
            found.update(value)
        elif key is _DUPLICATES:
            duplicate_count = value
    if duplicate_count is None:
        # DuckDB's DISTINCT over the row hashes, the largest hash table, once both lanes are done.
        duplicate_count = _duplicate_rows(connection, columns, row_count, None) if row_count else 0
    stats.update(found)
    for name, detail in details.items():
        if detail.get("distinct") is not None:
            stats[(name, "distinct")] = detail["distinct"]
    reports = [_column_report(column, row_count, stats, details.get(column.name),
                              rules.declared_schema.get(column.name), exact_distinct) for column in columns]
    sketched = not exact_quantiles or any(detail.get("sketched") for detail in details.values())
    return QualityReport(
        format=fmt, row_count=row_count, column_count=len(columns), columns=reports,
        duplicates=Duplicates(count=duplicate_count, fraction=_fraction(duplicate_count, row_count)),
        class_balance=found["balance"], distinct_method="exact" if exact_distinct else "hyperloglog",
        quantile_method="tdigest" if sketched else "exact", engine=engine,
        elapsed_seconds=round(time.perf_counter() - started, 3),
    )


def _temporal_text(value: Any) -> str | None:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return None if value is None else str(value)


def _column_report(column: _Column, row_count: int, stats: dict[Any, Any], detail: dict[str, Any] | None,
                   declared: str | None, exact_distinct: bool) -> ColumnReport:
    name = column.name
    non_null = int(stats[(name, "non_null")])
    nan_count = int(stats.get((name, "nan")) or 0)
    inf_count = int(stats.get((name, "inf")) or 0)
    null_count = row_count - non_null + nan_count
    distinct = stats.get((name, "distinct"))
    distinct_exact = exact_distinct or column.kind in ("string", "bool")
    by_kind: dict[str, Any] = {}
    if column.numeric:
        distinct_exact = distinct_exact or (detail or {}).get("distinct") is not None
        by_kind["numeric"] = _numeric_stats(non_null - nan_count - inf_count, stats, name, detail or {})
    elif column.kind in ("date", "timestamp"):
        by_kind["min_value"] = _temporal_text(stats.get((name, "min")))
        by_kind["max_value"] = _temporal_text(stats.get((name, "max")))
    elif column.kind == "bool":
        true_count = int(stats[(name, "true")])
        counts = {True: true_count, False: non_null - true_count}
        by_kind["top_values"] = [ValueCount(value=value, count=count) for value, count in
                                 sorted(counts.items(), key=lambda item: (-item[1], str(item[0]))) if count]
        distinct = sum(1 for count in counts.values() if count)
    elif column.kind == "string":
        by_kind["top_values"] = [ValueCount(value=value, count=count)
                                 for value, count in (stats.get((name, "top")) or {}).items()]
    violations = None
    if declared is not None:
        violations = int(stats.get((name, "violations")) or 0)
    return ColumnReport(
        name=name, type=column.type, kind=column.kind, null_count=null_count,
        null_fraction=_fraction(null_count, row_count), nan_count=nan_count, inf_count=inf_count,
        distinct_count=None if distinct is None else int(distinct), distinct_exact=distinct_exact,
        declared_type=declared, type_violation_count=violations,
        type_violation_fraction=_fraction(violations, row_count - null_count) if violations is not None else None,
        **by_kind,
    )


def _numeric_stats(finite: int, stats: dict[Any, Any], name: str, detail: dict[str, Any]) -> NumericStats:
    iqr_outliers = int(detail.get("iqr_outliers") or 0)
    z_outliers = int(detail.get("z_outliers") or 0)
    lower, upper = detail.get("fences", (None, None))
    edges, counts = detail.get("edges"), detail.get("histogram")
    histogram = Histogram(edges=edges, counts=counts) if edges is not None and counts is not None else None

    def number(value: Any) -> Any:
        return None if value is None else _finite_or_none(value if isinstance(value, int) else float(value))

    return NumericStats(
        count=finite, min=number(stats.get((name, "min"))), max=number(stats.get((name, "max"))),
        mean=number(detail.get("mean")), std=number(detail.get("std")),
        quantiles=detail.get("quantiles") or dict.fromkeys(QUANTILES), iqr_lower_fence=lower,
        iqr_upper_fence=upper, iqr_outlier_count=iqr_outliers, iqr_outlier_fraction=_fraction(iqr_outliers, finite),
        zscore_outlier_count=z_outliers, zscore_outlier_fraction=_fraction(z_outliers, finite),
        histogram=histogram,
    )
