"""Dataset quality reports and the data-quality gate.

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

The engine was picked by measurement. DuckDB over Polars: FIELD-NOTES "Tracking and data" (DuckDB
6.6 s / 1.6 GB against Polars streaming 9.3 s / 2.9 GB), and on this benchmark's 10M x 10 file, back to
back, the same first-pass aggregates took 11.7 s / 0.6 GB under DuckDB and 27.6 s / 1.3 GB under
Polars streaming. Sorting in numpy over DuckDB-only queries: profiled step by step on the same file
(2 CPUs, serially), DuckDB's exact quantile and bin GROUP BY queries took 2.6 s for the four
high-cardinality numeric columns against 0.8 s to stream and sort them; the row-hash DISTINCT 2.0 s
against 0.7 s to stream and sort the hashes; dropping avg/stddev from the first scan (numpy or the
value counts compute them) took it from 0.6 s to 0.3 s. On benchmarks/quality_report.py the whole
report went from 7.5 s / 577 MB to 3.2 s / 631 MB peak RSS, against pandas' 46.7 s / 3.7 GB (14.5x the
rows per second in 0.17x the memory; 10.4x when other work on the machine held a load of about 2.5).
On the registration benchmark's 13.4M x 10 float64 file (every column high-cardinality), sorting each
column took 15.9 s; fine bins instead of the sort, two lanes and reused arrays took it to 3.7 s.

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

import bisect
import contextlib
import itertools
import json
import math
import os
import queue
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from .tabular import DatasetFormatError, quote

__all__ = [
    "ClassBalance", "ColumnReport", "DatasetFormatError", "GateResult", "ImageFolderReport", "OutlierRule",
    "QualityReport", "QualityRules", "RuleResult", "check_quality", "check_quality_isolated", "compute_quality_report",
    "evaluate_gate", "image_folder_report",
]

ColumnType = Literal["int", "float", "string", "bool", "date", "timestamp"]
TabularFormat = Literal["parquet", "csv", "jsonl"]

QUANTILES = {"p1": 0.01, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p99": 0.99}
HISTOGRAM_BINS = 20
TOP_K = 10
MAX_CLASSES_LISTED = 1000
# Numeric columns with at most this many distinct values (HyperLogLog's estimate) are profiled from
# their value counts.
LOW_CARDINALITY = 10_000
ZSCORE_THRESHOLD = 3.0
IQR_FACTOR = 1.5
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
# Rows per Arrow batch when DuckDB streams a column or the row hashes into numpy.
STREAM_BATCH_ROWS = 1 << 20
# Order statistics of a column in numpy: its values are counted into this many fine bins, and the few bins
# that hold the quantiles and histogram edges are collected and sorted (sorting all of them instead when
# those bins hold more than MAX_COLLECTED values and a sixteenth of the column).
FINE_BINS = 1 << 16
MAX_COLLECTED = 1 << 20
BOOL_WORDS = ("true", "false", "t", "f", "yes", "no", "y", "n", "1", "0")
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp"})
MAX_UNREADABLE_LISTED = 100

_INT_TYPES = frozenset({"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT",
                        "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT"})


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


Number = Annotated[int | float | None, BeforeValidator(_finite_or_none)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ----- rules -----

class OutlierRule(_Model):
    """At most ``max_fraction`` of a numeric column's finite values may be outliers by ``method``."""

    method: Literal["iqr", "zscore"] = "iqr"
    max_fraction: Fraction


def _column_name(name: str) -> str:
    if not name or not name.strip():
        raise ValueError("column names must not be empty")
    return name


class QualityRules(_Model):
    """A dataset's data-quality gate: every threshold set here must hold for a version to register.

    Rules naming a column the data does not have fail when evaluated (they are never skipped).
    """

    min_rows: int | None = Field(None, ge=0, description="Fewest rows (images for an image folder)")
    required_columns: list[str] = Field(default_factory=list, description="Columns that must exist")
    max_null_fraction: Fraction | None = Field(None, description="Largest missing fraction in any column")
    max_null_fraction_by_column: dict[str, Fraction] = Field(
        default_factory=dict, description="Per-column missing-fraction limits; override max_null_fraction")
    max_duplicate_fraction: Fraction | None = Field(None, description="Largest fraction of duplicate rows")
    max_outlier_fraction: dict[str, OutlierRule] = Field(
        default_factory=dict, description="Per numeric column: outlier method and largest outlier fraction")
    declared_schema: dict[str, ColumnType] = Field(
        default_factory=dict, description="Expected type per column; values that do not convert are violations")
    max_type_violation_fraction: Fraction = Field(
        0.0, description="Largest fraction of a declared column's non-missing values that may violate its type")
    label_column: str | None = Field(None, description="The class label column, for class balance")
    min_class_fraction: Fraction | None = Field(
        None, description="Smallest share any class may have (of labelled rows, or of readable images)")
    max_unreadable_fraction: Fraction | None = Field(
        None, description="Image folders only: largest fraction of image files that cannot be read")

    @field_validator("required_columns")
    @classmethod
    def _required_columns_valid(cls, names: list[str]) -> list[str]:
        for name in names:
            _column_name(name)
        repeated = sorted(name for name, count in Counter(names).items() if count > 1)
        if repeated:
            raise ValueError(f"columns listed more than once: {', '.join(repeated)}")
        return names

    @field_validator("max_null_fraction_by_column", "max_outlier_fraction", "declared_schema")
    @classmethod
    def _keys_are_column_names(cls, mapping: dict[str, Any]) -> dict[str, Any]:
        for name in mapping:
            _column_name(name)
        return mapping

    @field_validator("label_column")
    @classmethod
    def _label_column_valid(cls, name: str | None) -> str | None:
        return None if name is None else _column_name(name)


# ----- reports -----

class Histogram(_Model):
    """Equal-width bins over the finite values; ``edges`` has one more entry than ``counts``."""

    edges: list[Number]
    counts: list[int]


class NumericStats(_Model):
    count: int = Field(description="Finite values the statistics are over")
    min: Number
    max: Number
    mean: Number
    std: Number
    quantiles: dict[str, Number] = Field(description="p1, p25, p50, p75, p99")
    iqr_lower_fence: Number
    iqr_upper_fence: Number
    iqr_outlier_count: int
    iqr_outlier_fraction: Number
    zscore_outlier_count: int
    zscore_outlier_fraction: Number
    histogram: Histogram | None


class ValueCount(_Model):
    value: str | bool | int | float | None
    count: int


class ColumnReport(_Model):
    name: str
    type: str = Field(description="The engine's type, e.g. BIGINT, DOUBLE, VARCHAR")
    kind: Literal["int", "float", "string", "bool", "date", "timestamp", "other"]
    null_count: int = Field(description="Missing values: NULL, and NaN in float columns")
    null_fraction: Number
    nan_count: int
    inf_count: int
    distinct_count: int | None
    distinct_exact: bool
    declared_type: ColumnType | None = None
    type_violation_count: int | None = None
    type_violation_fraction: Number = None
    numeric: NumericStats | None = None
    min_value: str | None = Field(None, description="Dates and timestamps: earliest, ISO 8601")
    max_value: str | None = Field(None, description="Dates and timestamps: latest, ISO 8601")
    top_values: list[ValueCount] | None = Field(None, description="Strings and booleans: most frequent values")


class ClassCount(_Model):
    value: str | bool | int | float | None
    count: int
    fraction: Number


class ClassBalance(_Model):
    column: str | None = Field(description="The label column; None for an image folder's class folders")
    class_count: int
    total: int = Field(description="Labelled rows (or readable images) the fractions are of")
    classes: list[ClassCount] = Field(description=f"Largest first, at most {MAX_CLASSES_LISTED}")
    min_class_fraction: Number
    max_class_fraction: Number


class Duplicates(_Model):
    count: int = Field(description="Rows equal to an earlier row")
    fraction: Number
    method: str = "64-bit row hash"


class EngineInfo(_Model):
    name: str
    version: str
    memory_limit_mb: int
    threads: int


class QualityReport(_Model):
    kind: Literal["table"] = "table"
    format: TabularFormat
    row_count: int
    column_count: int
    columns: list[ColumnReport]
    duplicates: Duplicates
    class_balance: ClassBalance | None
    distinct_method: Literal["hyperloglog", "exact"]
    quantile_method: Literal["exact", "tdigest"]
    engine: EngineInfo
    elapsed_seconds: float

    def column(self, name: str) -> ColumnReport | None:
        return next((column for column in self.columns if column.name == name), None)


class SizeStats(_Model):
    min: int | None
    max: int | None
    median: Number


class UnreadableFile(_Model):
    path: str = Field(description="Relative to the folder root")
    reason: str


class ImageFolderReport(_Model):
    kind: Literal["image_folder"] = "image_folder"
    image_count: int = Field(description="Readable images in class folders")
    file_count: int = Field(description="Files with an image suffix in class folders, readable or not")
    class_count: int
    class_balance: ClassBalance
    width: SizeStats
    height: SizeStats
    formats: dict[str, int]
    unreadable_count: int
    unreadable_fraction: Number
    unreadable: list[UnreadableFile] = Field(description=f"The first {MAX_UNREADABLE_LISTED}")
    ignored_files: int = Field(description="Files skipped: no image suffix, hidden, or outside class folders")
    elapsed_seconds: float

    @property
    def row_count(self) -> int:
        return self.image_count


# ----- tabular computation -----

class _Column:
    """What the SQL builders need to know about one column."""

    def __init__(self, name: str, sql_type: str) -> None:
        self.name = name
        self.type = sql_type
        self.kind = _kind(sql_type)
        self.ident = quote(name)
        self.nan_able = sql_type in ("FLOAT", "DOUBLE")
        self.numeric = self.kind in ("int", "float")
        # Numbers as DOUBLE where the engine type would round (FLOAT) or cannot hold NaN (DECIMAL).
        self.value = f"CAST({self.ident} AS DOUBLE)" if self.kind == "float" and sql_type != "DOUBLE" else self.ident
        self.present = f"NOT isnan({self.ident})" if self.nan_able else f"{self.ident} IS NOT NULL"
        # Set after the first pass. Filtering costs more than the aggregates it guards, so only columns
        # that hold NaN or infinity (DuckDB sorts NaN above +inf, so max or min shows them) pay for it.
        self.non_finite = False

    @property
    def finite_filter(self) -> str:
        return f" FILTER (WHERE isfinite({self.ident}))" if self.non_finite else ""


def _kind(sql_type: str) -> str:
    upper = sql_type.upper()
    if upper in _INT_TYPES:
        return "int"
    if upper in ("FLOAT", "DOUBLE") or upper.startswith("DECIMAL"):
        return "float"
    if upper == "BOOLEAN":
        return "bool"
    if upper == "VARCHAR":
        return "string"
    if upper == "DATE":
        return "date"
    if upper.startswith("TIMESTAMP"):
        return "timestamp"
    return "other"


class _Aggregates:
    """Aggregate expressions answered by one scan, read back by key."""

    def __init__(self, source: str = "source") -> None:
        self.source = source
        self.keys: list[Any] = []
        self.expressions: list[str] = []

    def add(self, key: Any, expression: str) -> None:
        self.keys.append(key)
        self.expressions.append(expression)

    def run(self, connection: Any) -> dict[Any, Any]:
        if not self.expressions:
            return {}
        row = connection.execute(f"SELECT {', '.join(self.expressions)} FROM {self.source}").fetchone()
        return dict(zip(self.keys, row, strict=True))


def _violation_sql(column: _Column, declared: str) -> str | None:
    """Counts non-missing values that do not convert losslessly to ``declared``; None when none can fail.

    Strings: int is an optional sign and digits (surrounding blanks allowed) within BIGINT; float is
    what DuckDB's DOUBLE cast reads; bool is one of BOOL_WORDS (any case, blanks around allowed); date
    and timestamp are what DuckDB's casts read (ISO 8601), a date with no time of day other than
    midnight. Numbers: int needs a finite, whole value; bool needs 0 or 1; numbers are never dates.
    Timestamps are dates only at midnight. Anything converts to string.
    """
    ident, kind = column.ident, column.kind
    if declared == "string" or declared == kind:
        return None
    if kind == "string":
        tests = {
            "int": f"NOT coalesce(regexp_full_match({ident}, '\\s*[+-]?[0-9]+\\s*') "
                   f"AND TRY_CAST({ident} AS BIGINT) IS NOT NULL, false)",
            "float": f"TRY_CAST({ident} AS DOUBLE) IS NULL",
            "bool": f"lower(trim({ident})) NOT IN ({', '.join(repr(word) for word in BOOL_WORDS)})",
            "date": f"TRY_CAST({ident} AS DATE) IS NULL OR coalesce(TRY_CAST({ident} AS TIMESTAMP) "
                    f"<> CAST(TRY_CAST({ident} AS DATE) AS TIMESTAMP), false)",
            "timestamp": f"TRY_CAST({ident} AS TIMESTAMP) IS NULL",
        }
        return f"count_if({ident} IS NOT NULL AND {tests[declared]})"
    value = column.value
    if kind == "float":
        tests = {
            "int": f"NOT (isfinite({value}) AND {value} = trunc({value}) AND abs({value}) < 9.2e18)",
            "bool": f"{value} NOT IN (0, 1)",
        }
        return f"count_if({column.present} AND {tests.get(declared, 'true')})"
    if kind in ("int", "bool") and declared in ("int", "float", "bool"):
        return f"count_if({ident} NOT IN (0, 1))" if declared == "bool" else None
    if kind == "date" and declared == "timestamp":
        return None
    if kind == "timestamp" and declared == "date":
        return f"count_if({ident} <> CAST(CAST({ident} AS DATE) AS TIMESTAMP))"
    return f"count({ident})"


def _temporal_text(value: Any) -> str | None:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return None if value is None else str(value)


def _fraction(part: int | None, whole: int) -> float | None:
    if part is None or whole <= 0:
        return None
    return part / whole


def _histogram_plan(column: _Column, low: float, high: float) -> tuple[list[float], str, Any]:
    """Bin edges, and each finite value's bin as SQL and as a Python function (the same comparisons).

    Equal-width bins like np.histogram's: bin ``i`` holds ``edges[i] <= x < edges[i + 1]``, the
    maximum in the last bin, so a value's bin is the number of inner edges at or below it (np.histogram
    computes an estimate and corrects it against the same edges). Integer columns spanning at most
    HISTOGRAM_BINS values get one bin per value.
    """
    if low == high:
        return [low, high], "0", lambda value: 0
    if column.kind == "int" and high - low + 1 <= HISTOGRAM_BINS:
        bins, start = int(high - low) + 1, int(low)
        return ([low - 0.5 + i for i in range(bins + 1)], f"CAST({column.value} - {start} AS BIGINT)",
                lambda value: int(value) - start)
    width = (high - low) / HISTOGRAM_BINS
    edges = [low + i * width for i in range(HISTOGRAM_BINS)] + [high]
    inner = edges[1:-1]
    value = f"CAST({column.value} AS DOUBLE)"
    return (edges, " + ".join(f"CAST({value} >= {edge!r} AS BIGINT)" for edge in inner),
            lambda number: bisect.bisect_right(inner, float(number)))


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
    return type(error) is duckdb.Error or isinstance(
        error, tuple(getattr(duckdb, name) for name in _READER_ERROR_NAMES))


_FORMAT_HINTS = {
    "parquet": "a complete, uncorrupted Parquet file",
    "csv": "UTF-8, comma-separated, a header row, and every row with the header's number of fields",
    "jsonl": "one JSON object per line, UTF-8",
}


def _format_error(fmt: str, path: Path, error: BaseException) -> DatasetFormatError:
    """DuckDB's own words, first lines only, without the query echo or the server-side path."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    kept = [line for line in lines
            if not line.startswith(("LINE ", "^", "*")) and not line.lower().startswith("possible")]
    detail = " | ".join(kept[:4]).replace(str(path), path.name)[:500]
    return DatasetFormatError(f"not a valid {fmt} file (expected {_FORMAT_HINTS[fmt]}): {detail}",
                              detail={"format": fmt, "engine_message": detail})


def _reader_sql(fmt: str, path: str, full_type_scan: bool) -> str:
    literal = "'" + path.replace("'", "''") + "'"
    sample = ", sample_size = -1" if full_type_scan else ""
    if fmt == "csv":
        return (f"read_csv({literal}, header = true, delim = ',', strict_mode = true, null_padding = false, "
                f"ignore_errors = false, encoding = 'utf-8'{sample})")
    if fmt == "jsonl":
        return f"read_json({literal}, format = 'newline_delimited', ignore_errors = false{sample})"
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
        raise DatasetFormatError(f"quality reports read parquet, csv or jsonl, not {format!r}")
    source_path = Path(path)
    if not source_path.is_file():
        raise FileNotFoundError(f"no file at {source_path}")
    if source_path.stat().st_size == 0:
        raise DatasetFormatError(f"the {format} file is empty")
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
        raise DatasetFormatError(f"the {fmt} file has no columns")
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


class _ArrayPool:
    """At most ``slots`` arrays of ``length`` 8-byte values, each reused from one task to the next: the
    copy into a fresh array's pages costs 15x the copy into pages already touched (0.3 s against 0.02 s
    for 13M values here), once per column otherwise."""

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


_DUPLICATES = object()  # the row-hash count's key among the lanes' results (columns are keyed by name)


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


def _first_pass(columns: list[_Column], rules: QualityRules, known_nulls: dict[str, int]) -> _Aggregates:
    """Counts, min/max, sketches and type violations for every column in one scan, unfiltered.

    Mean and standard deviation come later, from the values each numeric path reads anyway (value
    counts, the streamed values, or the quantile query): in this scan they cost as much as all the rest."""
    scan = _Aggregates()
    for column in columns:
        name, ident = column.name, column.ident
        if name not in known_nulls:
            scan.add((name, "non_null"), f"count({ident})")
        if column.kind in ("int", "float", "date", "timestamp"):
            scan.add((name, "distinct"), f"approx_count_distinct({ident})")
        if column.numeric:
            scan.add((name, "min"), f"min({column.value})")
            scan.add((name, "max"), f"max({column.value})")
        elif column.kind == "bool":
            scan.add((name, "true"), f"count_if({ident})")
        elif column.kind in ("date", "timestamp"):
            scan.add((name, "min"), f"min({ident})")
            scan.add((name, "max"), f"max({ident})")
        declared = rules.declared_schema.get(name)
        if declared is not None:
            violation = _violation_sql(column, declared)
            if violation is not None:
                scan.add((name, "violations"), violation)
    return scan


def _non_finite_pass(columns: list[_Column]) -> _Aggregates:
    """Counts NaN and infinity, and recomputes the first pass's distinct count (without NaN) and min/max
    (finite values only), for the columns that hold NaN or infinity."""
    flagged = [column for column in columns if column.non_finite]
    projections = ", ".join(f"{column.ident}, CASE WHEN isfinite({column.ident}) THEN {column.value} END "
                            f"AS {quote('finite ' + column.name)}" for column in flagged)
    scan = _Aggregates(f"(SELECT {projections} FROM source)" if flagged else "source")
    for column in flagged:
        name, ident, finite = column.name, column.ident, quote("finite " + column.name)
        scan.add((name, "nan"), f"count_if(isnan({ident}))")
        scan.add((name, "inf"), f"count_if(isinf({ident}))")
        scan.add((name, "distinct"), f"approx_count_distinct({ident}) FILTER (WHERE NOT isnan({ident}))")
        scan.add((name, "min"), f"min({finite})")
        scan.add((name, "max"), f"max({finite})")
    return scan


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


def _z_limit(std: float | None) -> float | None:
    return ZSCORE_THRESHOLD * std if std is not None and math.isfinite(std) and std > 0 else None


_INT64_RANGE = (-(2**63), 2**63 - 1)


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


_ARROW_TYPES = {"int64": "int64", "double": "float64", "uint64": "uint64"}


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
            # The values buffer as it is (Array.to_numpy would import pandas first, ~0.25 s).
            chunk = np.frombuffer(array.buffers()[1], dtype=out.dtype, count=len(array),
                                  offset=array.offset * out.dtype.itemsize)
            if filled + len(chunk) > len(out):
                raise DatasetFormatError("the file yielded more rows than its row count", detail={})
            out[filled:filled + len(chunk)] = chunk
            filled += len(chunk)
    finally:
        stream.close()
    return out[:filled]


def _details_from_values(values: Any, minimum: Any, maximum: Any, edges: list[float], per_integer: bool,
                         exact_distinct: bool) -> dict[str, Any]:
    """The SQL path's statistics from the column's non-missing values (any order; ``minimum``/``maximum``
    the smallest and largest finite ones).

    Order statistics without sorting: every value gets a fine bin, ``floor((x - low) * scale)`` clipped to
    the FINE_BINS bins (the infinities land in the end bins). That is a monotone function of ``x``, so each
    bin holds one run of the sorted order, and the bins' counts say which bin holds a given rank and how
    many values come before it; one more pass collects the values of just those bins, sorted, and the
    order statistic is read there. A count of ``x < bound`` is the same: every value in a bin before
    ``bound``'s is below it, every one after is not, and those in its bin are compared. When the bins
    wanted hold too many values (a very skewed column), ``np.partition`` selects instead.

    Every count compares values exactly as the definitions state (as a float, or as an integer for
    one-bin-per-integer histograms): IQR outliers are ``x < lower`` plus ``x > upper``; z-score outliers
    ``x - mean < -limit`` plus ``x - mean > limit``; bin ``i`` holds ``edges[i] <= x < edges[i + 1]``,
    the last bin its right edge too (np.histogram's rule). Mean and standard deviation are exactly rounded
    sums (``math.fsum``) of numpy's pairwise block sums. ``exact_distinct`` also sorts, and counts the
    changes between neighbours.
    """
    import numpy as np

    size = len(values)
    floating = values.dtype.kind == "f"
    if floating:
        negative, positive = int(np.count_nonzero(values == -math.inf)), int(np.count_nonzero(values == math.inf))
    else:
        negative = positive = 0
    total = size - negative - positive
    detail: dict[str, Any] = {}
    if exact_distinct:
        values.sort()
        detail["distinct"] = int(np.count_nonzero(values[1:] != values[:-1])) + 1 if size else 0
    if not total:
        return {**detail, "quantiles": dict.fromkeys(QUANTILES)}

    def finite_blocks() -> Iterator[Any]:
        for begin in range(0, size, STREAM_BATCH_ROWS):
            block = values[begin:begin + STREAM_BATCH_ROWS]
            yield block[np.isfinite(block)] if negative or positive else block

    mean = math.fsum(float(block.sum(dtype=np.float64)) for block in finite_blocks()) / total
    squares = []
    for block in finite_blocks():
        deviations = block - mean  # float64 for int64 values too
        np.square(deviations, out=deviations)
        squares.append(float(deviations.sum()))
    std = math.sqrt(math.fsum(squares) / (total - 1)) if total > 1 else None
    z_limit = _z_limit(std)

    ranks = {key: (total - 1) * probability for key, probability in QUANTILES.items()}
    positions = {negative, negative + total - 1}  # in the order of all values, -inf first
    for position in ranks.values():
        below = math.floor(position)
        positions.update(negative + rank for rank in (below, below + 1) if rank < total)
    bins = len(edges) - 1
    if per_integer:  # one bin per integer: bin i holds the i-th integer from the minimum, compared as integers
        bounds: list[Any] = [int(minimum) + i for i in range(1, bins)]
    else:
        bounds = list(edges[1:-1])
    order = _OrderStatistics(values, float(minimum), float(maximum), sorted(positions), bounds, exact_distinct)
    at = order.value_at
    quantiles: dict[str, float | None] = {}
    for key, position in ranks.items():
        below = math.floor(position)
        low_value = float(at(negative + below))
        high_value = float(at(negative + below + 1)) if below + 1 < total else low_value
        quantiles[key] = _finite_or_none(low_value + (high_value - low_value) * (position - below))
    detail.update(quantiles=quantiles, edges=edges, mean=mean, std=std)
    q1, q3 = quantiles["p25"], quantiles["p75"]
    if q1 is not None and q3 is not None:
        lower, upper = q1 - IQR_FACTOR * (q3 - q1), q3 + IQR_FACTOR * (q3 - q1)
        detail["fences"] = (lower, upper)
        detail["iqr_outliers"] = sum(int(np.count_nonzero(block < lower)) + int(np.count_nonzero(block > upper))
                                     for block in finite_blocks())
    if z_limit is not None:
        outliers = 0
        for block in finite_blocks():
            deviations = block - mean
            outliers += int(np.count_nonzero(deviations < -z_limit)) + int(np.count_nonzero(deviations > z_limit))
        detail["z_outliers"] = outliers
    cuts = [0, *(order.count_below(bound) - negative for bound in bounds), total]
    detail["histogram"] = [cuts[i + 1] - cuts[i] for i in range(bins)]
    return detail


class _OrderStatistics:
    """Values at given positions of the sorted order, and counts of values below given bounds, without
    sorting ``values`` (see ``_details_from_values``): one pass counts the fine bins, a second collects the
    bins that hold the positions and bounds given here, each then sorted on its own. ``presorted`` values
    are read directly."""

    def __init__(self, values: Any, low: float, high: float, positions: list[int], bounds: list[Any],
                 presorted: bool) -> None:
        self.values = values
        self.presorted = presorted
        if presorted:
            return
        import numpy as np

        self.bins = FINE_BINS if high > low else 1
        self.low, self.scale = low, (self.bins / (high - low) if high > low else 0.0)
        if not math.isfinite(self.scale):
            self.bins, self.scale = 1, 0.0
        counts = np.zeros(self.bins, dtype=np.int64)
        for begin in range(0, len(values), STREAM_BATCH_ROWS):
            counts += np.bincount(self._bin(values[begin:begin + STREAM_BATCH_ROWS]), minlength=self.bins)
        self.ends = np.cumsum(counts)  # values in bins 0..b
        self.starts = self.ends - counts
        self.collected: dict[int, Any] = {}
        self._collect(sorted({int(np.searchsorted(self.ends, position, side="right")) for position in positions}
                             | {self._bin_of(bound) for bound in bounds}))

    def _bin(self, block: Any) -> Any:
        import numpy as np

        scaled = (block - self.low) * self.scale if self.scale else np.zeros(len(block))
        np.clip(scaled, 0, self.bins - 1, out=scaled)
        return scaled.astype(np.intp)

    def _bin_of(self, bound: Any) -> int:
        import numpy as np

        return int(self._bin(np.array([bound], dtype=self.values.dtype))[0])

    def _collect(self, wanted: list[int]) -> None:
        """The values of the ``wanted`` bins, each sorted; past MAX_COLLECTED values, all of them sorted."""
        import numpy as np

        if int(sum(self.ends[b] - self.starts[b] for b in wanted)) > max(MAX_COLLECTED, len(self.values) // 16):
            self.values.sort()
            self.presorted = True
            return
        chosen = np.zeros(self.bins, dtype=bool)
        chosen[wanted] = True
        parts, part_bins = [], []
        for begin in range(0, len(self.values), STREAM_BATCH_ROWS):
            block = self.values[begin:begin + STREAM_BATCH_ROWS]
            indices = self._bin(block)
            keep = chosen[indices]
            parts.append(block[keep])
            part_bins.append(indices[keep])
        found, found_bins = np.concatenate(parts), np.concatenate(part_bins)
        for b in wanted:
            self.collected[b] = np.sort(found[found_bins == b])

    def value_at(self, position: int) -> Any:
        """The value at ``position`` of the sorted order (one of the positions given at construction)."""
        if self.presorted:
            return self.values[position]
        import numpy as np

        b = int(np.searchsorted(self.ends, position, side="right"))
        return self.collected[b][position - int(self.starts[b])]

    def count_below(self, bound: Any) -> int:
        """How many values are ``< bound`` (one of the bounds given at construction)."""
        import numpy as np

        if self.presorted:
            return int(np.searchsorted(self.values, bound, side="left"))
        b = self._bin_of(bound)
        return int(self.starts[b]) + int(np.searchsorted(self.collected[b], bound, side="left"))


def _details_from_counts(counts: list[tuple[Any, int]], edges: list[float], bin_of: Any) -> dict[str, Any]:
    """The same statistics as the SQL path, from (value, count) pairs sorted by value (inf included).

    Mean and standard deviation are sums over the counts: exact for integers, ``math.fsum`` of
    ``value * count`` (each product rounded once) for floats."""
    finite = [(value, int(count)) for value, count in counts if math.isfinite(value)]
    total = sum(count for _, count in finite)
    mean, std = _moments_from_counts(finite, total)
    z_limit = _z_limit(std)
    cumulative = list(itertools.accumulate(count for _, count in finite))

    def at_rank(rank: int) -> Any:
        return finite[bisect.bisect_right(cumulative, rank)][0]

    quantiles: dict[str, float | None] = {}
    for key, probability in QUANTILES.items():
        position = (total - 1) * probability
        below = math.floor(position)
        low_value = at_rank(below)
        high_value = at_rank(below + 1) if below + 1 < total else low_value
        quantiles[key] = _finite_or_none(float(low_value + (high_value - low_value) * (position - below)))
    detail: dict[str, Any] = {"quantiles": quantiles, "edges": edges, "distinct": len(counts), "mean": mean,
                              "std": std}
    q1, q3 = quantiles["p25"], quantiles["p75"]
    if q1 is not None and q3 is not None:
        lower, upper = q1 - IQR_FACTOR * (q3 - q1), q3 + IQR_FACTOR * (q3 - q1)
        detail["fences"] = (lower, upper)
        detail["iqr_outliers"] = sum(count for value, count in finite if value < lower or value > upper)
    if z_limit is not None:
        detail["z_outliers"] = sum(count for value, count in finite if abs(value - mean) > z_limit)
    histogram = [0] * (len(edges) - 1)
    for value, count in finite:
        histogram[bin_of(value)] += count
    detail["histogram"] = histogram
    return detail


def _moments_from_counts(finite: list[tuple[Any, int]], total: int) -> tuple[float | None, float | None]:
    if not total:
        return None, None
    if all(isinstance(value, int) for value, _ in finite):
        mean = sum(value * count for value, count in finite) / total  # exact integer sum, rounded once
    else:
        mean = math.fsum(float(value) * count for value, count in finite) / total
    if total < 2:
        return mean, None
    squares = math.fsum((float(value) - mean) ** 2 * count for value, count in finite)
    return mean, math.sqrt(squares / (total - 1))


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
    ``count(*) OVER ()`` over every group (0.7 s against 0.9 s for 2M distinct strings in 10M rows)."""
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


# ----- image folders -----

def image_folder_report(root: str | os.PathLike[str], *, full_decode: bool = False) -> ImageFolderReport:
    """Profiles a folder of class sub-folders (``root/<class>/**/<image>``) with Pillow.

    Each image's header is read and verified (Pillow's ``verify``: structure and PNG checksums, no
    pixel decoding); ``full_decode=True`` also decodes the pixels, which catches truncated JPEG data
    at many times the cost.
    """
    from PIL import Image

    started = time.perf_counter()
    root_path = Path(root)
    if not root_path.is_dir():
        raise DatasetFormatError(f"an image dataset must be a folder of class folders; {root_path.name!r} "
                                 "is not a folder")
    class_dirs = sorted(child for child in root_path.iterdir() if child.is_dir() and not child.name.startswith("."))
    ignored = sum(1 for child in root_path.iterdir() if child.is_file())
    counts: dict[str, int] = {}
    widths: list[int] = []
    heights: list[int] = []
    formats: Counter[str] = Counter()
    unreadable: list[UnreadableFile] = []
    unreadable_count = 0
    file_count = 0
    for class_dir in class_dirs:
        counts[class_dir.name] = 0
        for file in sorted(class_dir.rglob("*")):
            if not file.is_file():
                continue
            relative = file.relative_to(root_path)
            if any(part.startswith(".") for part in relative.parts) or file.suffix.lower() not in IMAGE_SUFFIXES:
                ignored += 1
                continue
            file_count += 1
            try:
                with Image.open(file) as image:
                    width, height = image.size
                    image_format = image.format or file.suffix.lstrip(".").upper()
                    image.verify()
                if full_decode:
                    with Image.open(file) as image:
                        image.load()
            except Exception as error:  # noqa: BLE001 - any failure to read makes the file unreadable
                unreadable_count += 1
                if len(unreadable) < MAX_UNREADABLE_LISTED:
                    unreadable.append(UnreadableFile(path=relative.as_posix(),
                                                     reason=f"{type(error).__name__}: {error}"[:300]))
                continue
            counts[class_dir.name] += 1
            widths.append(width)
            heights.append(height)
            formats[image_format] += 1
    total = sum(counts.values())
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    balance = ClassBalance(
        column=None, class_count=len(counts), total=total,
        classes=[ClassCount(value=name, count=n, fraction=_fraction(n, total))
                 for name, n in ordered[:MAX_CLASSES_LISTED]],
        min_class_fraction=_fraction(min(counts.values()), total) if counts else None,
        max_class_fraction=_fraction(max(counts.values()), total) if counts else None,
    )
    return ImageFolderReport(
        image_count=total, file_count=file_count, class_count=len(counts), class_balance=balance,
        width=_size_stats(widths), height=_size_stats(heights), formats=dict(sorted(formats.items())),
        unreadable_count=unreadable_count, unreadable_fraction=_fraction(unreadable_count, file_count),
        unreadable=unreadable, ignored_files=ignored, elapsed_seconds=round(time.perf_counter() - started, 3),
    )


def _size_stats(values: list[int]) -> SizeStats:
    if not values:
        return SizeStats(min=None, max=None, median=None)
    return SizeStats(min=min(values), max=max(values), median=float(statistics.median(values)))


# ----- the gate -----

class RuleResult(_Model):
    rule: str
    column: str | None = None
    passed: bool
    observed: Number = None
    threshold: Number = None
    message: str


class GateResult(_Model):
    passed: bool
    results: list[RuleResult]

    @property
    def failures(self) -> list[RuleResult]:
        return [result for result in self.results if not result.passed]


def _result(rule: str, passed: bool, message: str, *, column: str | None = None, observed: Any = None,
            threshold: Any = None) -> RuleResult:
    return RuleResult(rule=rule, column=column, passed=passed, observed=observed, threshold=threshold,
                      message=message)


def _at_most(rule: str, what: str, observed: float | None, threshold: float, *,
             column: str | None = None) -> RuleResult:
    subject = f"{what} of column {column!r}" if column else what
    if observed is None:
        return _result(rule, False, f"{subject} could not be measured (no values)", column=column,
                       threshold=threshold)
    passed = observed <= threshold
    relation = "<=" if passed else ">"
    verdict = "ok" if passed else "too high"
    return _result(rule, passed, f"{subject} is {observed:.4g} {relation} {threshold:.4g} ({verdict})",
                   column=column, observed=observed, threshold=threshold)


def _missing_column(rule: str, column: str, available: list[str]) -> RuleResult:
    shown = ", ".join(available[:20]) + (" ..." if len(available) > 20 else "")
    return _result(rule, False, f"{rule}: column {column!r} is not in the dataset (columns: {shown})", column=column)


def _not_applicable(rule: str, kind: str) -> RuleResult:
    where = "image folders" if kind == "table" else "tables"
    return _result(rule, False, f"{rule} applies to {where} only; remove it from this dataset's rules")


def evaluate_gate(report: QualityReport | ImageFolderReport, rules: QualityRules) -> GateResult:
    """Checks every rule that is set; a rule that cannot be evaluated fails with the reason."""
    if isinstance(report, ImageFolderReport):
        results = _image_results(report, rules)
    else:
        results = _table_results(report, rules)
    return GateResult(passed=all(result.passed for result in results), results=results)


def _row_and_class_results(rows: int, balance: ClassBalance | None, rules: QualityRules,
                           unit: str) -> list[RuleResult]:
    results = []
    if rules.min_rows is not None:
        passed = rows >= rules.min_rows
        results.append(_result("min_rows", passed, f"{rows} {unit} {'>=' if passed else '<'} {rules.min_rows} "
                               f"({'ok' if passed else 'too few'})", observed=rows, threshold=rules.min_rows))
    if rules.min_class_fraction is not None and balance is not None:
        observed = balance.min_class_fraction
        if observed is None:
            results.append(_result("min_class_fraction", False, "no classes found", column=balance.column,
                                   threshold=rules.min_class_fraction))
        else:
            smallest = balance.classes[-1].value if balance.class_count <= MAX_CLASSES_LISTED else "?"
            passed = observed >= rules.min_class_fraction
            results.append(_result(
                "min_class_fraction", passed,
                f"smallest class {smallest!r} has {observed:.4g} of the {unit} "
                f"{'>=' if passed else '<'} {rules.min_class_fraction:.4g} ({'ok' if passed else 'too rare'})",
                column=balance.column, observed=observed, threshold=rules.min_class_fraction))
    return results


def _image_results(report: ImageFolderReport, rules: QualityRules) -> list[RuleResult]:
    results = _row_and_class_results(report.image_count, report.class_balance, rules, "images")
    if rules.max_unreadable_fraction is not None:
        results.append(_at_most("max_unreadable_fraction", "unreadable image fraction",
                                report.unreadable_fraction or 0.0, rules.max_unreadable_fraction))
    tabular_only = {
        "required_columns": rules.required_columns, "max_null_fraction": rules.max_null_fraction,
        "max_null_fraction_by_column": rules.max_null_fraction_by_column,
        "max_duplicate_fraction": rules.max_duplicate_fraction, "max_outlier_fraction": rules.max_outlier_fraction,
        "declared_schema": rules.declared_schema, "label_column": rules.label_column,
    }
    results += [_not_applicable(rule, "image_folder") for rule, value in tabular_only.items()
                if value not in (None, [], {})]
    return results


def _table_results(report: QualityReport, rules: QualityRules) -> list[RuleResult]:
    names = [column.name for column in report.columns]
    results: list[RuleResult] = []
    label, balance = rules.label_column, None
    if label is not None and report.column(label) is None:
        results.append(_missing_column("label_column", label, names))
    elif label is not None and (report.class_balance is None or report.class_balance.column != label):
        results.append(_result("label_column", False, f"class balance of {label!r} was not computed: "
                               "pass the rules to compute_quality_report", column=label))
    elif label is not None:
        balance = report.class_balance
        results.append(_result("label_column", True, f"label column {label!r} has {balance.class_count} classes",
                               column=label, observed=balance.class_count))
    elif rules.min_class_fraction is not None:
        results.append(_result("min_class_fraction", False, "min_class_fraction needs label_column for a table",
                               threshold=rules.min_class_fraction))
    results += _row_and_class_results(report.row_count, balance, rules, "rows")
    for name in rules.required_columns:
        present = report.column(name) is not None
        results.append(_result("required_columns", True, f"column {name!r} is present", column=name)
                       if present else _missing_column("required_columns", name, names))
    if rules.max_null_fraction is not None:
        governed = [column for column in report.columns if column.name not in rules.max_null_fraction_by_column]
        worst = max(governed, key=lambda column: column.null_fraction or 0.0, default=None)
        observed = (worst.null_fraction or 0.0) if worst else 0.0
        result = _at_most("max_null_fraction", "largest missing fraction", observed, rules.max_null_fraction)
        offenders = [column.name for column in governed if (column.null_fraction or 0.0) > rules.max_null_fraction]
        if offenders:
            result.message += f"; over the limit: {', '.join(offenders[:20])}"
        elif worst is not None:
            result.message += f" (worst column: {worst.name!r})"
        results.append(result)
    for name, threshold in rules.max_null_fraction_by_column.items():
        column = report.column(name)
        results.append(_missing_column("max_null_fraction_by_column", name, names) if column is None else
                       _at_most("max_null_fraction_by_column", "missing fraction", column.null_fraction or 0.0,
                                threshold, column=name))
    if rules.max_duplicate_fraction is not None:
        results.append(_at_most("max_duplicate_fraction", "duplicate row fraction", report.duplicates.fraction or 0.0,
                                rules.max_duplicate_fraction))
    for name, outlier_rule in rules.max_outlier_fraction.items():
        column = report.column(name)
        if column is None:
            results.append(_missing_column("max_outlier_fraction", name, names))
        elif column.numeric is None:
            results.append(_result("max_outlier_fraction", False,
                                   f"column {name!r} is {column.kind}, not numeric: outliers are not defined",
                                   column=name, threshold=outlier_rule.max_fraction))
        else:
            observed = (column.numeric.iqr_outlier_fraction if outlier_rule.method == "iqr"
                        else column.numeric.zscore_outlier_fraction)
            results.append(_at_most("max_outlier_fraction", f"{outlier_rule.method} outlier fraction", observed,
                                    outlier_rule.max_fraction, column=name))
    for name, declared in rules.declared_schema.items():
        column = report.column(name)
        if column is None:
            results.append(_missing_column("declared_schema", name, names))
        elif column.declared_type != declared or column.type_violation_count is None:
            results.append(_result("declared_schema", False, f"type violations of {name!r} were not computed: "
                                   "pass the rules to compute_quality_report", column=name))
        else:
            result = _at_most("declared_schema", f"fraction of values not {declared}",
                              column.type_violation_fraction or 0.0, rules.max_type_violation_fraction, column=name)
            result.message += f"; {column.type_violation_count} violation(s), stored as {column.type}"
            results.append(result)
    if rules.max_unreadable_fraction is not None:
        results.append(_not_applicable("max_unreadable_fraction", "table"))
    return results


def check_quality(path: str | os.PathLike[str], fmt: str, rules: QualityRules | dict[str, Any] | None = None,
                  **options: Any) -> tuple[QualityReport | ImageFolderReport, GateResult]:
    """The registry's entry point: the report for a staged file (or unpacked image folder) and its gate.

    ``rules`` as a dict is validated here (pydantic ValidationError on bad rules).
    """
    rules = rules if isinstance(rules, QualityRules) else QualityRules.model_validate(rules or {})
    if fmt == "images":
        report: QualityReport | ImageFolderReport = image_folder_report(path, **options)
    else:
        report = compute_quality_report(path, fmt, rules, **options)  # type: ignore[arg-type]
    return report, evaluate_gate(report, rules)


def check_quality_isolated(path: str | os.PathLike[str], fmt: str,
                           rules: QualityRules | dict[str, Any] | None = None, *, timeout_s: float = 1800,
                           _worker: Any = None, **options: Any) -> tuple[QualityReport | ImageFolderReport, GateResult]:
    """``check_quality`` in a fresh child process, for callers that must survive any file.

    DuckDB and Pillow are native code fed untrusted bytes: a file that crashes them (see the
    ``disabled_optimizers`` note) takes down the child only, and is reported as a DatasetFormatError.
    A child still working after ``timeout_s`` is killed (TimeoutError). Forked from a fork server that has the readers imported (``_checker_context``).
    """
    rules = rules if isinstance(rules, QualityRules) else QualityRules.model_validate(rules or {})
    context = _checker_context()
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_worker or _isolated_check, daemon=True,
                              args=(sender, str(path), fmt, rules.model_dump_json(), options))
    process.start()
    sender.close()
    try:
        if not receiver.poll(timeout_s):
            raise TimeoutError(f"the quality check of {Path(path).name!r} took longer than {timeout_s:g} s")
        outcome = receiver.recv()
    except EOFError:
        process.join(10)
        raise DatasetFormatError(f"reading the {fmt} file crashed the reader (exit code {process.exitcode}); "
                                 "the file is corrupt or crafted", detail={"format": fmt}) from None
    finally:
        receiver.close()
        if process.is_alive():
            process.kill()
        process.join(10)
    status, first, second = outcome
    if status == "format_error":
        raise DatasetFormatError(first, detail=second)
    if status != "ok":
        raise RuntimeError(f"the quality check failed in its child process: {first}")
    model = ImageFolderReport if json.loads(first)["kind"] == "image_folder" else QualityReport
    return model.model_validate_json(first), GateResult.model_validate_json(second)


# Imported once by the checks' fork server, so a check's child starts in tens of ms.
CHECKER_PRELOAD = ["aitip.datasets.quality", "duckdb", "numpy", "pyarrow", "pyarrow.parquet", "pyarrow.csv", "PIL.Image"]


def _checker_context() -> Any:
    """Children forked from multiprocessing's fork server, which imported DuckDB, PyArrow and Pillow once:
    each check still runs in a fresh process, started in ~50 ms instead of ~0.3 s (a spawned interpreter,
    and more in the platform service, whose main module a spawned child imports again).

    A fork server must hold no threads: Arrow's jemalloc starts a background thread at import unless
    told not to, so the variable is set before the server starts (it only concerns Arrow's allocator)."""
    import multiprocessing
    from multiprocessing import forkserver

    context = multiprocessing.get_context("forkserver")
    main = getattr(getattr(sys.modules.get("__main__"), "__spec__", None), "name", None)
    # A child re-runs its parent's main module by name; preloaded, that costs only the module's own body.
    preload = CHECKER_PRELOAD + ([main] if main and not main.endswith("__main__") else [])
    with _CHECKER_LOCK:
        os.environ.setdefault("JE_ARROW_MALLOC_CONF", "background_thread:false")
        context.set_forkserver_preload(preload)
        forkserver.ensure_running()
    return context


_CHECKER_LOCK = threading.Lock()


def _isolated_check(sender: Any, path: str, fmt: str, rules_json: str, options: dict[str, Any]) -> None:
    try:
        report, gate = check_quality(path, fmt, QualityRules.model_validate_json(rules_json), **options)
        sender.send(("ok", report.model_dump_json(), gate.model_dump_json()))
    except DatasetFormatError as error:
        sender.send(("format_error", error.message, error.detail))
    except BaseException as error:  # noqa: BLE001 - everything else is reported to the parent as it is
        sender.send(("error", f"{type(error).__name__}: {error}", None))
    finally:
        sender.close()
