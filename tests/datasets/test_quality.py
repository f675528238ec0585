"""The quality report against independent pandas/numpy computations of each definition, the gate, corrupt
input, and image folders. Files are small and written fresh with pyarrow/pandas/Pillow."""

from __future__ import annotations

import datetime as dt
import json
import math
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from aitip.datasets.quality import lanes, numeric, tabular
from aitip.datasets.quality import (
    DatasetFormatError,
    QualityRules,
    check_quality,
    check_quality_isolated,
    compute_quality_report,
    evaluate_gate,
    image_folder_report,
)

QUANTILES = {"p1": 0.01, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p99": 0.99}
BASE_ROWS = 2000
DUPLICATES = 25
CATEGORY_COUNTS = [5 + 27 * i for i in range(12)]  # spaced so that 25 duplicates cannot create ties
LABEL_COUNTS = {"cat": 1100, "dog": 600, "bird": 300}
INT_TEXT = re.compile(r"^\s*[+-]?[0-9]+\s*$")
BOOL_WORDS = {"true", "false", "t", "f", "yes", "no", "y", "n", "1", "0"}
DECLARED = {"id": "int", "text_int": "int", "text_bool": "bool", "text_date": "date", "score": "int",
            "small": "bool", "ts": "date", "day": "timestamp", "income": "float", "category": "string"}


def build_table(seed: int = 3) -> pa.Table:
    rng = np.random.default_rng(seed)
    n = BASE_ROWS
    income = rng.lognormal(10, 1, n)
    income[::97] *= 60
    score = rng.normal(0, 1, n)
    score[rng.choice(n, 8, replace=False)] = np.nan
    score[[11, 12]] = [np.inf, -np.inf]
    score[[13, 14]] = [9.0, -8.5]
    category = np.repeat([f"c{i:02d}" for i in range(len(CATEGORY_COUNTS))], CATEGORY_COUNTS).astype(object)
    category = np.concatenate([category, np.full(n - len(category), None, dtype=object)])
    rng.shuffle(category)
    label = np.repeat(list(LABEL_COUNTS), list(LABEL_COUNTS.values())).astype(object)
    rng.shuffle(label)
    text_int = rng.integers(-500, 500, n).astype(str).astype(object)
    text_int[rng.choice(n, 40, replace=False)] = rng.choice(["abc", " 7 ", "1.5", "-3", "+4", "1e3", "x1"], 40)
    text_bool = rng.choice(["yes", "no", "TRUE", "0", "maybe", " f ", "nope"], n).astype(object)
    text_date = np.array([f"2024-{m:02d}-{d:02d}" for m, d in zip(rng.integers(1, 13, n), rng.integers(1, 29, n),
                                                                  strict=True)], dtype=object)
    text_date[rng.choice(n, 30, replace=False)] = rng.choice(["not a date", "2024-02-30", "2024-13-01"], 30)
    start = dt.datetime(2024, 1, 1)
    seconds = rng.integers(0, 86_400 * 90, n)
    at_midnight = rng.random(n) < 0.2
    seconds[at_midnight] = seconds[at_midnight] // 86_400 * 86_400
    table = pa.table({
        "id": pa.array(np.arange(n, dtype=np.int64)),
        "small": pa.array(rng.integers(0, 10, n), mask=rng.random(n) < 0.05),
        "wide": pa.array(rng.integers(-50_000, 50_000, n)),
        "income": pa.array(income, mask=rng.random(n) < 0.03),
        "score": pa.array(score),
        "ratio": pa.array(rng.random(n).astype(np.float32)),
        "category": pa.array(category, type=pa.string()),
        "flag": pa.array(rng.random(n) < 0.6, mask=rng.random(n) < 0.02),
        "label": pa.array(label, type=pa.string()),
        "day": pa.array([dt.date(2024, 1, 1) + dt.timedelta(days=int(d)) for d in rng.integers(0, 365, n)]),
        "ts": pa.array([start + dt.timedelta(seconds=int(s)) for s in seconds], type=pa.timestamp("us")),
        "text_int": pa.array(text_int, type=pa.string(), mask=rng.random(n) < 0.02),
        "text_bool": pa.array(text_bool, type=pa.string()),
        "text_date": pa.array(text_date, type=pa.string()),
    })
    copies = rng.choice(n, DUPLICATES, replace=False)
    return pa.concat_tables([table, table.take(pa.array(copies))])


def write(table: pa.Table, directory, fmt: str):
    path = directory / f"data.{fmt}"
    if fmt == "parquet":
        pq.write_table(table, path)
    elif fmt == "csv":
        table.to_pandas().to_csv(path, index=False)
    else:
        table.to_pandas().to_json(path, orient="records", lines=True, date_format="iso")
    return path


def reference_frame(path, fmt: str) -> pd.DataFrame:
    """The file as pandas reads it, independently of DuckDB."""
    if fmt == "parquet":
        return pd.read_parquet(path)
    if fmt == "csv":
        return pd.read_csv(path, float_precision="round_trip")
    return pd.read_json(path, lines=True, convert_dates=False, precise_float=True)


@pytest.fixture(scope="module")
def table() -> pa.Table:
    return build_table()


# (format, profiling path): "counts" profiles these small numeric columns from their value counts;
# "sorted" forces the path of large columns that fit the memory budget (values streamed into numpy and
# sorted, row hashes sorted), with exact distinct counts; "duckdb" forces the path past the budget
# (DuckDB's quantile and bin GROUP BY, the row-hash DISTINCT), with exact quantiles and distinct counts.
PATH_MODES = ("counts", "sorted", "duckdb")
SETUPS = [(fmt, mode) for fmt in ("parquet", "csv", "jsonl") for mode in PATH_MODES]


def forced_path(patch: pytest.MonkeyPatch, mode: str) -> None:
    assert mode in PATH_MODES
    if mode != "counts":
        patch.setattr(lanes, "LOW_CARDINALITY", 0)
    if mode == "duckdb":
        patch.setattr(lanes, "_sortable", lambda column, stats: False)
        patch.setattr(tabular, "ROW_HASH_BYTES_PER_ROW", 10**12)
        patch.setattr(lanes, "_stream_into", None)  # any numpy stream would fail loudly


@pytest.fixture(scope="module", params=SETUPS, ids=[f"{fmt}-{mode}" for fmt, mode in SETUPS])
def profiled(request, table, tmp_path_factory):
    fmt, mode = request.param
    path = write(table, tmp_path_factory.mktemp(f"{fmt}-{mode}"), fmt)
    rules = QualityRules(declared_schema=DECLARED, label_column="label")
    with pytest.MonkeyPatch.context() as patch:
        forced_path(patch, mode)
        report = compute_quality_report(path, fmt, rules, threads=2, memory_limit_mb=256,
                                        exact_distinct=mode != "counts")
    return fmt, mode, report, reference_frame(path, fmt)


def numeric_values(series: pd.Series) -> np.ndarray:
    return pd.to_numeric(series, errors="raise").to_numpy(dtype="float64", na_value=np.nan)


def finite_values(series: pd.Series) -> np.ndarray:
    values = numeric_values(series)
    return values[np.isfinite(values)]


def is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


NUMERIC_COLUMNS = ["id", "small", "wide", "income", "score", "ratio"]
ALL_COLUMNS = NUMERIC_COLUMNS + ["category", "flag", "label", "day", "ts", "text_int", "text_bool", "text_date"]


# ----- every statistic against pandas -----

def test_shape_row_count_and_duplicates(profiled) -> None:
    fmt, _, report, frame = profiled
    assert report.row_count == len(frame) == BASE_ROWS + DUPLICATES
    assert report.column_count == len(frame.columns)
    assert [column.name for column in report.columns] == list(frame.columns)
    assert report.duplicates.count == int(frame.duplicated().sum()) == DUPLICATES
    assert report.duplicates.fraction == pytest.approx(DUPLICATES / len(frame))
    json.dumps(report.model_dump(), allow_nan=False)


@pytest.mark.parametrize("name", ALL_COLUMNS)
def test_missing_and_distinct_counts(profiled, name) -> None:
    fmt, mode, report, frame = profiled
    column = report.column(name)
    series = frame[name]
    assert column.null_count == int(series.isna().sum())
    assert column.null_fraction == pytest.approx(series.isna().mean())
    expected_distinct = int(series.dropna().nunique())
    if column.distinct_exact:
        assert column.distinct_count == expected_distinct
    else:
        assert column.distinct_count == pytest.approx(expected_distinct, rel=0.15)  # HLL: ~3% standard error
    assert column.distinct_exact or column.kind in ("date", "timestamp")


def _numeric_expectations(series: pd.Series, kind: str) -> dict[str, object]:
    values = numeric_values(series)
    finite = values[np.isfinite(values)]
    q = np.quantile(finite, list(QUANTILES.values()))
    lower, upper = q[1] - 1.5 * (q[3] - q[1]), q[3] + 1.5 * (q[3] - q[1])
    mean, std = finite.mean(), finite.std(ddof=1)
    low, high = finite.min(), finite.max()
    if kind == "int" and high - low + 1 <= 20:
        histogram, edges = np.histogram(finite, bins=np.arange(low - 0.5, high + 1.5, 1.0))
    else:
        histogram, edges = np.histogram(finite, bins=20, range=(low, high))
    return {
        "count": finite.size, "min": low, "max": high, "mean": mean, "std": std,
        **{f"quantile {key}": value for key, value in zip(QUANTILES, q, strict=True)},
        "iqr_lower_fence": lower, "iqr_upper_fence": upper,
        "iqr_outlier_count": int(((finite < lower) | (finite > upper)).sum()),
        "zscore_outlier_count": int((np.abs(finite - mean) > 3 * std).sum()),
        "histogram counts": histogram.tolist(), "histogram edges": edges.tolist(),
        "inf_count": int(np.isinf(values).sum()),
    }


NUMERIC_STATISTICS = ["count", "min", "max", "mean", "std", *(f"quantile {key}" for key in QUANTILES),
                      "iqr_lower_fence", "iqr_upper_fence", "iqr_outlier_count", "zscore_outlier_count",
                      "histogram counts", "histogram edges", "inf_count"]


def _observed(column, statistic: str) -> object:
    numeric = column.numeric
    if statistic.startswith("quantile "):
        return numeric.quantiles[statistic.split()[1]]
    if statistic == "histogram counts":
        return numeric.histogram.counts
    if statistic == "histogram edges":
        return numeric.histogram.edges
    if statistic == "inf_count":
        return column.inf_count
    return getattr(numeric, statistic)


@pytest.mark.parametrize("statistic", NUMERIC_STATISTICS)
@pytest.mark.parametrize("name", NUMERIC_COLUMNS)
def test_numeric_statistics(profiled, name, statistic) -> None:
    fmt, mode, report, frame = profiled
    column = report.column(name)
    if fmt == "jsonl" and name == "score" and statistic == "inf_count":
        pytest.skip("pandas writes infinity to JSON as null")
    assert column.numeric is not None, f"{name} is {column.kind} ({column.type})"
    expected = _numeric_expectations(frame[name], column.kind)[statistic]
    observed = _observed(column, statistic)
    if isinstance(expected, list):
        assert observed == pytest.approx(expected, rel=1e-9, abs=1e-9)
    elif isinstance(expected, int):
        assert observed == expected
    else:
        assert observed == pytest.approx(float(expected), rel=1e-9, abs=1e-12)


def test_fractions_are_of_finite_values(profiled) -> None:
    _, _, report, frame = profiled
    income = report.column("income").numeric
    assert income.iqr_outlier_fraction == pytest.approx(income.iqr_outlier_count / income.count)
    assert income.zscore_outlier_fraction == pytest.approx(income.zscore_outlier_count / income.count)
    assert income.iqr_outlier_count > 0 and income.zscore_outlier_count > 0


def test_nan_and_infinity_are_counted_apart_in_parquet(profiled, table) -> None:
    fmt, _, report, _ = profiled
    if fmt != "parquet":
        pytest.skip("NaN and NULL are only told apart in Parquet")
    score = report.column("score")
    assert score.nan_count == int(pc.sum(pc.is_nan(table["score"])).as_py()) == 8
    assert score.inf_count == 2
    assert score.null_count == score.nan_count
    assert score.numeric.count == len(table) - 10
    assert report.column("income").nan_count == 0


@pytest.mark.parametrize("name", ["category", "flag", "label", "text_bool"])
def test_top_values(profiled, name) -> None:
    _, _, report, frame = profiled
    counts = frame[name].value_counts()
    expected = sorted(((value, int(count)) for value, count in counts.items()),
                      key=lambda item: (-item[1], str(item[0])))[:lanes.TOP_K]
    assert [(item.value, item.count) for item in report.column(name).top_values] == expected


def test_class_balance(profiled) -> None:
    _, _, report, frame = profiled
    counts = frame["label"].value_counts()
    balance = report.class_balance
    assert balance.column == "label" and balance.class_count == 3 and balance.total == len(frame)
    assert [(item.value, item.count) for item in balance.classes] == [(v, int(c)) for v, c in counts.items()]
    assert balance.min_class_fraction == pytest.approx(counts.min() / len(frame))
    assert balance.max_class_fraction == pytest.approx(counts.max() / len(frame))


def _expected_violations(series: pd.Series, declared: str) -> int:
    present = series.dropna()
    text = isinstance(present.iloc[0], str)
    if declared == "int" and text:
        return int((~present.map(lambda value: bool(INT_TEXT.match(value)))).sum())
    if declared == "int":
        values = present.to_numpy(dtype="float64")
        return int((~(np.isfinite(values) & (values == np.trunc(values)))).sum())
    if declared == "bool" and text:
        return int((~present.str.strip().str.lower().isin(BOOL_WORDS)).sum())
    if declared == "bool":
        return int((~present.isin([0, 1, True, False])).sum())
    if declared == "date" and pd.api.types.is_datetime64_any_dtype(present):
        return int((present != present.dt.normalize()).sum())
    if declared == "date" and text and len(present.iloc[0]) > 10:
        stamps = pd.to_datetime(present)
        return int((stamps != stamps.dt.normalize()).sum())
    if declared == "date" and text:
        return int(pd.to_datetime(present, format="%Y-%m-%d", errors="coerce").isna().sum())
    return 0


@pytest.mark.parametrize("name", sorted(DECLARED))
def test_type_violations(profiled, name) -> None:
    fmt, _, report, frame = profiled
    column = report.column(name)
    declared = DECLARED[name]
    expected = _expected_violations(frame[name], declared)
    assert column.declared_type == declared
    assert column.type_violation_count == expected, f"{name} stored as {column.type}"
    assert column.type_violation_fraction == pytest.approx(expected / (len(frame) - column.null_count))
    if name in ("text_int", "text_bool", "text_date", "score", "small"):
        assert expected > 0


def test_temporal_columns(profiled) -> None:
    fmt, _, report, frame = profiled
    if fmt == "jsonl":
        pytest.skip("JSON has no date type; the columns are strings there")
    day, ts = report.column("day"), report.column("ts")
    assert (day.kind, ts.kind) == ("date", "timestamp")
    days = pd.to_datetime(frame["day"])
    stamps = pd.to_datetime(frame["ts"])
    assert day.min_value == days.min().date().isoformat() and day.max_value == days.max().date().isoformat()
    assert ts.min_value == stamps.min().isoformat() and ts.max_value == stamps.max().isoformat()


# ----- the numeric paths against the definitions, over data shapes -----

SHAPE_ROWS = 3000


def _edge_values(rng, n: int) -> np.ndarray:
    """Values lying exactly on the 20 histogram edges between their own min and max (and between them)."""
    low, high = 0.1, 0.1 + 0.7
    width = (high - low) / 20
    edges = np.array([low + i * width for i in range(20)] + [high])
    return np.concatenate([edges, rng.choice(edges, n - len(edges)), ])


def _with_specials(rng, n: int) -> pa.Array:
    values = rng.normal(10, 3, n)
    values[rng.choice(n, 30, replace=False)] = np.nan
    values[rng.choice(n, 15, replace=False)] = np.inf
    values[rng.choice(n, 15, replace=False)] = -np.inf
    return pa.array(values, mask=rng.random(n) < 0.02)


def _on_the_fences(rng, n: int) -> np.ndarray:
    """p25 = 25 and p75 = 75 whatever the extremes, so the IQR fences are -50 and 150 exactly; values
    on them are not outliers, values just past them are."""
    values = np.concatenate([np.full(1000, 25.0), np.full(1000, 75.0), np.full(500, 50.0), np.full(3, -50.0),
                             np.full(3, 150.0), np.full(2, -50.000001), np.full(2, 150.000001)])
    return rng.permutation(values)


def _on_the_z_limit(rng, n: int) -> np.ndarray:
    """Mean 0 and sample standard deviation 1 exactly (18k + 1 values: k each of +-3, the rest 0), so
    +-3 lie on the z-score limit and are not outliers."""
    k = 100
    return rng.permutation(np.concatenate([np.full(k, 3.0), np.full(k, -3.0), np.zeros(16 * k + 1)]))


SHAPES = {
    "normal": lambda rng, n: pa.array(rng.normal(5, 2, n)),
    "fence-values": lambda rng, n: pa.array(_on_the_fences(rng, n)),
    "z-limit-values": lambda rng, n: pa.array(_on_the_z_limit(rng, n)),
    "nan-inf-null": _with_specials,
    "all-null": lambda rng, n: pa.array([None] * n, type=pa.float64()),
    "all-nan": lambda rng, n: pa.array(np.full(n, np.nan)),
    "only-infinite": lambda rng, n: pa.array(rng.choice([np.inf, -np.inf, np.nan], n)),
    "one-value": lambda rng, n: pa.array(np.full(n, 3.5), mask=np.arange(n) != 7),
    "two-values": lambda rng, n: pa.array(np.where(np.arange(n) % 2, 1.25, -4.0), mask=np.arange(n) > 1),
    "constant": lambda rng, n: pa.array(np.full(n, 2.5)),
    "ties": lambda rng, n: pa.array(rng.choice([1.0, 2.0, 2.0, 2.0, 3.0, 50.0], n)),
    "edge-values": lambda rng, n: pa.array(_edge_values(rng, n)),
    "int-span-20": lambda rng, n: pa.array(rng.integers(-7, 13, n), mask=rng.random(n) < 0.05),
    "int-span-21": lambda rng, n: pa.array(rng.integers(0, 21, n)),
    "wide-ints": lambda rng, n: pa.array(rng.integers(-10**6, 10**6, n), mask=rng.random(n) < 0.03),
    "big-ints": lambda rng, n: pa.array(rng.integers(2**62, 2**62 + 2**40, n)),
    "float32": lambda rng, n: pa.array(rng.normal(size=n).astype(np.float32), mask=rng.random(n) < 0.01),
    "negative-zero": lambda rng, n: pa.array(rng.choice([0.0, -0.0, 1.0, -1.5], n)),
    "heavy-tails": lambda rng, n: pa.array(rng.lognormal(0, 2, n) * np.where(rng.random(n) < 0.01, 1e4, 1.0)),
}
# Shapes the text formats cannot carry as numbers: a column with no values is not numeric there, DuckDB's
# CSV sniffer reads a column of only "inf" and "-inf" as (infinite) dates, and JSON writes NaN and
# infinity as null.
TEXT_UNFIT = {"csv": {"all-null", "all-nan", "only-infinite"}, "jsonl": {"all-null", "all-nan", "only-infinite"}}
SHAPE_CASES = [(shape, fmt) for shape in SHAPES for fmt in ("parquet", "csv", "jsonl")
               if shape not in TEXT_UNFIT.get(fmt, ())]


# Shapes built to put values exactly on a boundary, which copied rows would move.
EXACT_SHAPES = {"fence-values", "z-limit-values"}
# DuckDB's streaming variance (past the budget) rounds this standard deviation an ulp off 1, to either
# side depending on the threads' order, so whether +-3 count as z-score outliers there is chance.
ULP_OFF_IN_DUCKDB = "z-limit-values"


def shape_table(shape: str) -> pa.Table:
    """The shape as column x, beside a key; 2% of the rows repeated (but in EXACT_SHAPES, whose ties
    repeat rows anyway), and (NaN, NULL) twins for duplicates."""
    rng = np.random.default_rng(sorted(SHAPES).index(shape))
    x = SHAPES[shape](rng, SHAPE_ROWS)
    rows = len(x)
    table = pa.table({"x": x, "k": pa.array(rng.integers(0, 3, rows))})
    copies = table.take(pa.array(rng.choice(rows, 0 if shape in EXACT_SHAPES else rows // 50, replace=False)))
    missing = [np.nan, None] if pa.types.is_floating(x.type) else [None, None]
    twins = pa.table({"x": pa.array(missing, type=x.type), "k": pa.array([7, 7])}).cast(table.schema)
    return pa.concat_tables([table, copies, twins])


_SHAPE_REPORTS: dict = {}


def shape_report(shape: str, fmt: str, mode: str, tmp_path_factory):
    key = (shape, fmt, mode)
    if key not in _SHAPE_REPORTS:
        path = write(shape_table(shape), tmp_path_factory.mktemp(f"{shape}-{fmt}-{mode}"), fmt)
        with pytest.MonkeyPatch.context() as patch:
            forced_path(patch, mode)
            report = compute_quality_report(path, fmt, threads=2, memory_limit_mb=256,
                                            exact_distinct=mode != "counts")
        _SHAPE_REPORTS[key] = report, reference_frame(path, fmt)
    return _SHAPE_REPORTS[key]


def defined_statistics(series: pd.Series, kind: str) -> dict[str, object]:
    """Each statistic as the module docstring defines it, with numpy (degenerate columns included)."""
    values = numeric_values(series)
    finite = values[np.isfinite(values)]
    expected: dict[str, object] = {"count": finite.size, "inf_count": int(np.isinf(values).sum()),
                                   "distinct": int(pd.Series(values[~np.isnan(values)]).nunique())}
    if not finite.size:
        return expected | {"min": None, "max": None, "mean": None, "std": None, "histogram": None,
                           **{f"quantile {key}": None for key in QUANTILES}}
    q = np.quantile(finite, list(QUANTILES.values()))
    lower, upper = q[1] - 1.5 * (q[3] - q[1]), q[3] + 1.5 * (q[3] - q[1])
    mean = finite.mean()
    std = finite.std(ddof=1) if finite.size > 1 else None
    low, high = finite.min(), finite.max()
    if low == high:
        counts, edges = [finite.size], [low, high]
    elif kind == "int" and high - low + 1 <= 20:
        counts, edges = np.histogram(finite, bins=np.arange(low - 0.5, high + 1.5, 1.0))
    else:
        counts, edges = np.histogram(finite, bins=20, range=(low, high))
    return expected | {
        "min": low, "max": high, "mean": mean, "std": std,
        **{f"quantile {key}": value for key, value in zip(QUANTILES, q, strict=True)},
        "iqr_lower_fence": lower, "iqr_upper_fence": upper,
        "iqr_outlier_count": int(((finite < lower) | (finite > upper)).sum()),
        "zscore_outlier_count": int((np.abs(finite - mean) > 3 * std).sum()) if std else 0,
        "histogram": (list(map(int, counts)), list(map(float, edges))),
    }


def observed_statistics(column) -> dict[str, object]:
    numeric = column.numeric
    observed: dict[str, object] = {"count": numeric.count, "inf_count": column.inf_count,
                                   "distinct": column.distinct_count, "min": numeric.min, "max": numeric.max,
                                   "mean": numeric.mean, "std": numeric.std,
                                   **{f"quantile {key}": value for key, value in numeric.quantiles.items()}}
    if numeric.histogram is None:
        return observed | {"histogram": None}
    return observed | {
        "iqr_lower_fence": numeric.iqr_lower_fence, "iqr_upper_fence": numeric.iqr_upper_fence,
        "iqr_outlier_count": numeric.iqr_outlier_count, "zscore_outlier_count": numeric.zscore_outlier_count,
        "histogram": (numeric.histogram.counts, numeric.histogram.edges),
    }


@pytest.mark.parametrize("mode", PATH_MODES)
@pytest.mark.parametrize(("shape", "fmt"), SHAPE_CASES, ids=[f"{shape}-{fmt}" for shape, fmt in SHAPE_CASES])
def test_numeric_paths_keep_the_definitions(shape, fmt, mode, tmp_path_factory) -> None:
    if shape == ULP_OFF_IN_DUCKDB and mode == "duckdb":
        pytest.skip("DuckDB's variance is an ulp off here, on the z-score limit")
    report, frame = shape_report(shape, fmt, mode, tmp_path_factory)
    column = report.column("x")
    assert column.numeric is not None, f"x is {column.kind} ({column.type})"
    assert report.quantile_method == "exact"
    assert column.null_count == int(frame["x"].isna().sum())
    if fmt == "parquet":
        assert column.nan_count == int(pc.sum(pc.is_nan(shape_table(shape)["x"].drop_null())).as_py() or 0)
    assert report.duplicates.count == int(frame.duplicated().sum())
    expected = defined_statistics(frame["x"], column.kind)
    observed = observed_statistics(column)
    if not column.distinct_exact:
        assert observed["distinct"] == pytest.approx(expected["distinct"], rel=0.15)  # HyperLogLog
        del expected["distinct"], observed["distinct"]
    assert set(observed) == set(expected)
    for statistic, value in expected.items():
        seen = observed[statistic]
        if value is None or isinstance(value, int):
            assert seen == value, statistic
        elif statistic == "histogram":
            assert seen[0] == value[0], "histogram counts"
            assert seen[1] == pytest.approx(value[1], rel=1e-12, abs=1e-12), "histogram edges"
        else:
            assert seen == pytest.approx(float(value), rel=1e-9, abs=1e-12), statistic


@pytest.mark.parametrize(("shape", "fmt"), SHAPE_CASES, ids=[f"{shape}-{fmt}" for shape, fmt in SHAPE_CASES])
def test_sorted_path_agrees_with_the_duckdb_path(shape, fmt, tmp_path_factory) -> None:
    """The numpy path (in budget) and DuckDB's (past it) give the same report, up to float rounding."""
    if shape == ULP_OFF_IN_DUCKDB:
        pytest.skip("DuckDB's variance is an ulp off here, on the z-score limit")
    fast, _ = shape_report(shape, fmt, "sorted", tmp_path_factory)
    slow, _ = shape_report(shape, fmt, "duckdb", tmp_path_factory)
    assert fast.duplicates == slow.duplicates
    assert_same(fast.column("x").model_dump(), slow.column("x").model_dump())


def assert_same(seen, expected, where: str = "x") -> None:
    """Equal, floats up to 1e-9 relative (DuckDB's streaming variance, on 4.6e18 +- 3e11, is 5e-10 off
    numpy's two-pass one); integers (counts) exactly."""
    if isinstance(expected, dict):
        assert isinstance(seen, dict) and seen.keys() == expected.keys(), where
        for key, value in expected.items():
            assert_same(seen[key], value, f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(seen, list) and len(seen) == len(expected), where
        for index, (one, other) in enumerate(zip(seen, expected, strict=True)):
            assert_same(one, other, f"{where}[{index}]")
    elif isinstance(expected, float):
        assert seen == pytest.approx(expected, rel=1e-9, abs=1e-12), where
    else:
        assert seen == expected and type(seen) is type(expected), where


def test_zero_row_parquet_on_every_path(tmp_path) -> None:
    path = tmp_path / "empty.parquet"
    pq.write_table(pa.table({"x": pa.array([], type=pa.float64()), "n": pa.array([], type=pa.int64()),
                             "s": pa.array([], type=pa.string())}), path)
    for mode in PATH_MODES:
        with pytest.MonkeyPatch.context() as patch:
            forced_path(patch, mode)
            report = compute_quality_report(path, "parquet", exact_distinct=mode != "counts")
        assert report.row_count == 0 and report.duplicates.count == 0 and report.duplicates.fraction is None
        for name in ("x", "n"):
            numeric = report.column(name).numeric
            assert numeric.count == 0 and numeric.min is None and numeric.histogram is None
            assert numeric.quantiles == dict.fromkeys(QUANTILES)
        json.dumps(report.model_dump(), allow_nan=False)


# ----- memory: what numpy holds, and the fallback past the budget -----

def _spy_streams(monkeypatch) -> list[tuple[int, str]]:
    """Records (bytes reserved in numpy, DuckDB's memory limit then) for every stream into numpy."""
    calls: list[tuple[int, str]] = []
    stream = lanes._stream_into

    def spy(cursor, query, out):
        limit = cursor.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
        calls.append((out.nbytes, limit))
        return stream(cursor, query, out)

    monkeypatch.setattr(lanes, "_stream_into", spy)
    return calls


def _mib(setting: str) -> float:
    number, unit = setting.split()
    return float(number) * {"KiB": 1 / 1024, "MiB": 1, "GiB": 1024}[unit]


def test_numpy_holds_one_column_within_half_the_budget(tmp_path, monkeypatch) -> None:
    rows = 300_000
    rng = np.random.default_rng(11)
    path = tmp_path / "wide.parquet"
    pq.write_table(pa.table({"x": rng.normal(size=rows), "i": rng.integers(0, 10**9, rows),
                             "s": rng.integers(0, 50, rows).astype(str)}), path)
    calls = _spy_streams(monkeypatch)
    report = compute_quality_report(path, "parquet", memory_limit_mb=16)
    assert report.quantile_method == "exact"
    assert len(calls) == 3  # x, i, then the row hashes; one array at a time
    budget_mib = 16 * 1e6 / 2**20
    for reserved, limit in calls:
        assert reserved == rows * 8 <= 16e6 / 2
        assert _mib(limit) * 2**20 + reserved <= 16e6  # DuckDB's limit leaves numpy's share free
        assert _mib(limit) < budget_mib


def test_past_the_budget_nothing_is_held_in_numpy(tmp_path, monkeypatch) -> None:
    rows = 300_000
    rng = np.random.default_rng(12)
    values = rng.normal(size=rows)
    path = tmp_path / "wide.parquet"
    table = pa.table({"x": values, "i": rng.integers(0, 10**9, rows), "s": rng.integers(0, 10**6, rows).astype(str)})
    pq.write_table(pa.concat_tables([table, table.slice(0, 1000)]), path)
    # As if each value took 10 kB: 3 GB of values and row hashes, past half of the 64 MB budget.
    monkeypatch.setattr(tabular, "EXACT_QUANTILE_BYTES_PER_ROW", 10_000)
    monkeypatch.setattr(tabular, "ROW_HASH_BYTES_PER_ROW", 10_000)
    calls = _spy_streams(monkeypatch)
    report = compute_quality_report(path, "parquet", memory_limit_mb=64)
    assert calls == []
    assert report.quantile_method == "tdigest" and report.duplicates.count == 1000
    assert report.column("s").distinct_count == len(set(table["s"].to_pylist()))
    for key, probability in QUANTILES.items():
        assert report.column("x").numeric.quantiles[key] == pytest.approx(np.quantile(values, probability), rel=0.05,
                                                                          abs=0.01)


def test_sorted_path_is_the_default_for_large_columns(tmp_path, monkeypatch) -> None:
    values = np.random.default_rng(13).normal(size=50_000)
    path = tmp_path / "x.parquet"
    pq.write_table(pa.table({"x": values}), path)
    calls = _spy_streams(monkeypatch)
    report = compute_quality_report(path, "parquet")
    assert len(calls) == 2  # the column, the row hashes
    assert report.column("x").numeric.quantiles["p99"] == pytest.approx(np.quantile(values, 0.99), rel=1e-12)


def test_integers_beyond_int64_take_duckdbs_exact_quantiles(tmp_path, monkeypatch) -> None:
    values = np.random.default_rng(14).integers(2**63, 2**64 - 1, 30_000, dtype=np.uint64, endpoint=True)
    path = tmp_path / "u.parquet"
    pq.write_table(pa.table({"u": pa.array(values)}), path)
    calls = _spy_streams(monkeypatch)
    report = compute_quality_report(path, "parquet")
    column = report.column("u")
    assert column.type == "UBIGINT" and report.quantile_method == "exact"
    assert len(calls) == 1  # only the row hashes
    as_float = values.astype(np.float64)
    for key, probability in QUANTILES.items():
        assert column.numeric.quantiles[key] == pytest.approx(np.quantile(as_float, probability), rel=1e-12)
    assert sum(column.numeric.histogram.counts) == len(values)


def test_stream_errors_keep_duckdbs_exception_class() -> None:
    """An Arrow stream reports DuckDB's errors as OSError; the stream re-raises DuckDB's own class."""
    import duckdb

    connection = duckdb.connect()
    connection.execute("CREATE TABLE source AS SELECT CASE WHEN range < 300000 THEN range::VARCHAR ELSE 'x' END "
                       "AS s FROM range(310000)")
    with pytest.raises(duckdb.ConversionException):
        lanes._stream_into(connection, "SELECT CAST(s AS BIGINT) FROM source", np.empty(310_000, np.int64))
    with pytest.raises(DatasetFormatError, match="more rows"):
        lanes._stream_into(connection, "SELECT CAST(s AS BIGINT) FROM source WHERE s <> 'x'",
                           np.empty(1000, np.int64))
    filled = lanes._stream_into(connection, "SELECT CAST(s AS BIGINT) FROM source WHERE s <> 'x'",
                                np.empty(310_000, np.int64))
    assert len(filled) == 300_000 and int(filled.sum()) == 299_999 * 300_000 // 2
    connection.close()


# ----- engine choices -----

def test_hyperloglog_distinct_is_close_and_exact_on_request(tmp_path) -> None:
    values = np.random.default_rng(5).permutation(40_000).astype(np.float64)
    path = tmp_path / "wide.parquet"
    pq.write_table(pa.table({"x": values, "k": pa.array(values.astype(np.int64) % 7)}), path)
    approximate = compute_quality_report(path, "parquet")
    assert approximate.distinct_method == "hyperloglog"
    assert not approximate.column("x").distinct_exact
    assert approximate.column("x").distinct_count == pytest.approx(40_000, rel=0.15)  # ~3% standard error
    assert approximate.column("k").distinct_exact and approximate.column("k").distinct_count == 7
    exact = compute_quality_report(path, "parquet", exact_distinct=True)
    assert exact.column("x").distinct_exact and exact.column("x").distinct_count == 40_000
    assert exact.column("x").numeric.quantiles["p50"] == pytest.approx(np.quantile(values, 0.5))


def test_quantiles_fall_back_to_tdigest_past_the_memory_budget(tmp_path, monkeypatch) -> None:
    values = np.random.default_rng(6).normal(100, 10, 50_000)
    path = tmp_path / "big.parquet"
    pq.write_table(pa.table({"x": values}), path)
    monkeypatch.setattr(tabular, "EXACT_QUANTILE_BYTES_PER_ROW", 10**9)
    report = compute_quality_report(path, "parquet")
    assert report.quantile_method == "tdigest"
    for key, probability in QUANTILES.items():
        assert report.column("x").numeric.quantiles[key] == pytest.approx(np.quantile(values, probability), rel=0.01)


def test_csv_type_sniffed_from_a_sample_is_widened_by_a_full_scan(tmp_path) -> None:
    path = tmp_path / "late.csv"
    path.write_text("a,b\n" + "".join(f"{i},{i}\n" for i in range(30_000)) + "oops,5\n")
    report = compute_quality_report(path, "csv", QualityRules(declared_schema={"a": "int"}))
    assert report.row_count == 30_001
    column = report.column("a")
    assert column.type == "VARCHAR" and column.null_count == 0 and column.type_violation_count == 1


# ----- NaN and infinity never reach the output -----

def test_degenerate_columns_give_nulls_not_nan(tmp_path) -> None:
    path = tmp_path / "odd.parquet"
    pq.write_table(pa.table({
        "all_nan": pa.array([math.nan] * 4),
        "all_null": pa.array([None] * 4, type=pa.float64()),
        "infinite": pa.array([math.inf, -math.inf, math.inf, math.nan]),
        "constant": pa.array([2.5] * 4),
        "strings": pa.array([None] * 4, type=pa.string()),
        "nan_or_null": pa.array([math.nan, 1.0, None, 2.0]),
    }), path)
    report = compute_quality_report(path, "parquet", QualityRules(max_duplicate_fraction=1.0))
    text = json.dumps(report.model_dump(), allow_nan=False)
    assert "NaN" not in text and "Infinity" not in text
    all_nan, all_null, infinite = report.column("all_nan"), report.column("all_null"), report.column("infinite")
    assert (all_nan.null_count, all_nan.nan_count, all_nan.numeric.count) == (4, 4, 0)
    assert all_nan.numeric.mean is None and all_nan.numeric.quantiles["p50"] is None
    assert all_null.null_count == 4 and all_null.numeric.min is None and all_null.distinct_count == 0
    assert (infinite.inf_count, infinite.nan_count, infinite.numeric.count) == (3, 1, 0)
    assert infinite.numeric.max is None and infinite.distinct_count == 2
    constant = report.column("constant").numeric
    assert (constant.std, constant.zscore_outlier_count, constant.iqr_outlier_count) == (0.0, 0, 0)
    assert constant.histogram.counts == [4]
    assert report.column("strings").top_values == [] and report.column("strings").distinct_count == 0
    assert report.duplicates.count == 1  # rows 0 and 2 differ only in NaN against NULL, both missing
    assert evaluate_gate(report, QualityRules(max_duplicate_fraction=1.0)).passed


def test_header_only_csv_has_zero_rows(tmp_path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("a,b\n")
    report = compute_quality_report(path, "csv")
    assert report.row_count == 0 and report.duplicates.count == 0 and report.duplicates.fraction is None
    json.dumps(report.model_dump(), allow_nan=False)
    gate = evaluate_gate(report, QualityRules(min_rows=1))
    assert not gate.passed and "0 rows < 1" in gate.failures[0].message


# ----- corrupt input -----

def _valid_parquet(tmp_path):
    path = tmp_path / "good.parquet"
    rng = np.random.default_rng(9)
    pq.write_table(pa.table({"x": rng.normal(size=50_000), "s": rng.integers(0, 10**9, 50_000).astype(str)}),
                   path, compression="snappy")
    return path


def _truncated(tmp_path, source):
    data = source.read_bytes()
    path = tmp_path / "truncated.parquet"
    path.write_bytes(data[: len(data) // 2])
    return path


def _footer_only_garbage(tmp_path, source):
    path = tmp_path / "garbage.parquet"
    path.write_bytes(b"PAR1" + b"\x00garbage" * 64)
    return path


def _corrupt_page(tmp_path, source):
    data = bytearray(source.read_bytes())
    offset = pq.ParquetFile(source).metadata.row_group(0).column(0).data_page_offset
    for index in range(offset + 40, offset + 4000):
        data[index] ^= 0x5A
    path = tmp_path / "corrupt.parquet"
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("damage", [_truncated, _footer_only_garbage, _corrupt_page],
                         ids=["truncated", "garbage", "corrupt-page"])
def test_damaged_parquet_is_a_format_error(tmp_path, damage) -> None:
    path = damage(tmp_path, _valid_parquet(tmp_path))
    with pytest.raises(DatasetFormatError) as caught:
        compute_quality_report(path, "parquet")
    assert caught.value.status == 422
    assert caught.value.message.startswith("not a valid parquet file")
    assert str(tmp_path) not in caught.value.message


def test_corruption_met_first_by_a_numpy_stream_is_a_format_error(tmp_path, monkeypatch) -> None:
    """A damaged string page read by nothing but the row-hash stream (the GROUP BY that would read it
    first is skipped): the stream's OSError becomes DuckDB's IOException, then a DatasetFormatError."""
    source = _valid_parquet(tmp_path)
    data = bytearray(source.read_bytes())
    offset = pq.ParquetFile(source).metadata.row_group(0).column(1).data_page_offset
    for index in range(offset + 40, offset + 4000):
        data[index] ^= 0x5A
    path = tmp_path / "corrupt-strings.parquet"
    path.write_bytes(bytes(data))
    monkeypatch.setattr(tabular, "_string_values",
                        lambda cursor, column: {(column.name, "distinct"): 0, (column.name, "top"): {}})
    streamed: list[str] = []
    stream = lanes._stream_into

    def spy(cursor, query, out):
        streamed.append(query)
        return stream(cursor, query, out)

    monkeypatch.setattr(lanes, "_stream_into", spy)
    with pytest.raises(DatasetFormatError) as caught:
        compute_quality_report(path, "parquet")
    assert caught.value.message.startswith("not a valid parquet file")
    # Only the row-hash stream reads the string column (the numeric columns' streams run beside it).
    assert [query for query in streamed if "hash(" in query or '"s"' in query][0].startswith("SELECT hash(")


CSV_DAMAGE = {
    "invalid-utf8": b"a,b\n1,caf\xe9\n2,ok\n",
    "ragged-long-row": b"a,b,c\n1,2,3\n4,5,6,7\n8,9,10\n",
    "ragged-short-row": b"a,b,c\n1,2,3\n4,5\n8,9,10\n",
    "ragged-row-past-the-sniff-sample": ("a,b,c\n" + "1,2,3\n" * 30_000 + "4,5\n" + "6,7,8\n").encode(),
    "invalid-utf8-past-the-sniff-sample": ("a,b\n" + "1,x\n" * 30_000).encode() + b"2,\xff\xfe\n",
    # DuckDB's sniffer took the header for a preamble before ``skip = 0``: columns 1,2,3 and no rows were kept.
    "one-ragged-row": b"a,b\n1,2,3\n",
}


@pytest.mark.parametrize("name", list(CSV_DAMAGE))
def test_damaged_csv_is_a_format_error(tmp_path, name) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(CSV_DAMAGE[name])
    with pytest.raises(DatasetFormatError, match="not a valid csv file"):
        compute_quality_report(path, "csv")


# Header cells the reader would name for itself (``column2``) or rename (``a_1``), so the registered columns would
# not be the ones a notebook reading the file sees.
CSV_HEADERS = {
    "trailing-comma": (b"a,b,\n1,2,\n3,4,\n", "column 3 of the CSV header has no name (a trailing comma on each "
                                             "line?): name it, or remove the column"),
    "blank-name": (b"a, ,c\n1,2,3\n", "column 2 of the CSV header has no name"),
    "a-name-twice": (b"a,b,a\n1,2,3\n", "the CSV header names the column 'a' twice"),
}


@pytest.mark.parametrize("name", list(CSV_HEADERS))
def test_a_csv_header_without_a_name_or_with_one_twice_is_refused(tmp_path, name) -> None:
    content, message = CSV_HEADERS[name]
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(DatasetFormatError, match=re.escape(message)) as refused:
        compute_quality_report(path, "csv")
    assert refused.value.phrase.in_language("zh_CN") != str(refused.value)
    quoted = tmp_path / "quoted.csv"
    quoted.write_bytes(b'"a,b",b\n1,2\n')  # a comma inside a quoted name is no empty cell
    assert [column.name for column in compute_quality_report(quoted, "csv").columns] == ["a,b", "b"]


@pytest.mark.parametrize("content", [b'{"a": 1}\n{"a": 2\n{"a": 3}\n', b'{"a": "caf\xe9"}\n', b'[{"a": 1}]\n',
                                     b'{"a": 1}\n5\n'],
                         ids=["malformed", "invalid-utf8", "an-array", "a-line-no-object"])
def test_damaged_jsonl_is_a_format_error(tmp_path, content) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content)
    with pytest.raises(DatasetFormatError, match="not a valid jsonl file"):
        compute_quality_report(path, "jsonl")


def test_empty_file_and_unknown_format(tmp_path) -> None:
    path = tmp_path / "empty.parquet"
    path.write_bytes(b"")
    with pytest.raises(DatasetFormatError, match="empty"):
        compute_quality_report(path, "parquet")
    with pytest.raises(DatasetFormatError, match="not 'xlsx'"):
        compute_quality_report(path, "xlsx")  # type: ignore[arg-type]


# ----- the gate -----

@pytest.fixture(scope="module")
def gate_report(table, tmp_path_factory):
    path = write(table, tmp_path_factory.mktemp("gate"), "parquet")
    return compute_quality_report(path, "parquet", QualityRules(declared_schema=DECLARED, label_column="label"))


GATE_CASES = [
    ({}, True, []),
    ({"min_rows": 100}, True, []),
    ({"min_rows": 10**6}, False, ["min_rows"]),
    ({"required_columns": ["id", "label"]}, True, []),
    ({"required_columns": ["id", "nope"]}, False, ["required_columns"]),
    ({"max_null_fraction": 0.5}, True, []),
    ({"max_null_fraction": 0.01}, False, ["max_null_fraction"]),
    ({"max_null_fraction": 0.01, "max_null_fraction_by_column": {"category": 0.1, "small": 0.1, "income": 0.1,
                                                                 "score": 0.1, "flag": 0.1, "text_int": 0.1}},
     True, []),
    ({"max_null_fraction_by_column": {"category": 0.05}}, False, ["max_null_fraction_by_column"]),
    ({"max_null_fraction_by_column": {"ghost": 0.5}}, False, ["max_null_fraction_by_column"]),
    ({"max_duplicate_fraction": 0.05}, True, []),
    ({"max_duplicate_fraction": 0.001}, False, ["max_duplicate_fraction"]),
    ({"max_outlier_fraction": {"income": {"method": "iqr", "max_fraction": 0.5}}}, True, []),
    ({"max_outlier_fraction": {"income": {"method": "iqr", "max_fraction": 0.0}}}, False, ["max_outlier_fraction"]),
    ({"max_outlier_fraction": {"income": {"method": "zscore", "max_fraction": 0.0}}}, False,
     ["max_outlier_fraction"]),
    ({"max_outlier_fraction": {"category": {"max_fraction": 0.5}}}, False, ["max_outlier_fraction"]),
    ({"max_outlier_fraction": {"ghost": {"max_fraction": 0.5}}}, False, ["max_outlier_fraction"]),
    ({"declared_schema": {"id": "int", "category": "string"}}, True, []),
    ({"declared_schema": {"text_int": "int"}}, False, ["declared_schema"]),
    ({"declared_schema": {"text_int": "int"}, "max_type_violation_fraction": 0.5}, True, []),
    ({"declared_schema": {"ghost": "int"}}, False, ["declared_schema"]),
    ({"declared_schema": {"id": "date"}}, False, ["declared_schema"]),
    ({"label_column": "label"}, True, []),
    ({"label_column": "label", "min_class_fraction": 0.1}, True, []),
    ({"label_column": "label", "min_class_fraction": 0.2}, False, ["min_class_fraction"]),
    ({"label_column": "ghost", "min_class_fraction": 0.1}, False, ["label_column"]),
    ({"min_class_fraction": 0.1}, False, ["min_class_fraction"]),
    ({"max_unreadable_fraction": 0.1}, False, ["max_unreadable_fraction"]),
]


@pytest.mark.parametrize(("rules", "passed", "failing"), GATE_CASES, ids=[json.dumps(c[0]) for c in GATE_CASES])
def test_gate_rules(gate_report, rules, passed, failing) -> None:
    result = evaluate_gate(gate_report, QualityRules.model_validate(rules))
    assert result.passed is passed
    assert [failure.rule for failure in result.failures] == failing
    for item in result.results:
        assert item.message
    json.dumps(result.model_dump(), allow_nan=False)


def test_gate_messages_say_what_and_where(gate_report) -> None:
    rules = QualityRules(max_null_fraction_by_column={"ghost": 0.1}, max_duplicate_fraction=0.001,
                         label_column="label", min_class_fraction=0.2)
    failures = {failure.rule: failure for failure in evaluate_gate(gate_report, rules).failures}
    assert "'ghost' is not in the dataset" in failures["max_null_fraction_by_column"].message
    duplicate = failures["max_duplicate_fraction"]
    assert duplicate.observed == pytest.approx(DUPLICATES / (BASE_ROWS + DUPLICATES))
    assert duplicate.threshold == 0.001 and "too high" in duplicate.message
    assert "'bird'" in failures["min_class_fraction"].message


def test_rules_not_passed_to_the_report_fail_instead_of_passing(tmp_path, table) -> None:
    path = write(table, tmp_path, "parquet")
    report = compute_quality_report(path, "parquet")
    failures = evaluate_gate(report, QualityRules(declared_schema={"id": "int"}, label_column="label")).failures
    assert {failure.rule for failure in failures} == {"declared_schema", "label_column"}
    assert all("pass the rules to compute_quality_report" in failure.message for failure in failures)


@pytest.mark.parametrize(("rules", "message"), [
    ({"max_null_fraction": 1.5}, "less than or equal to 1"),
    ({"min_rows": -1}, "greater than or equal to 0"),
    ({"max_nulls": 0.1}, "Extra inputs are not permitted"),
    ({"declared_schema": {"a": "integer"}}, "'int', 'float', 'string', 'bool', 'date' or 'timestamp'"),
    ({"required_columns": ["a", "a"]}, "listed more than once: a"),
    ({"required_columns": [" "]}, "must not be empty"),
    ({"max_outlier_fraction": {"a": {"method": "mad", "max_fraction": 0.1}}}, "'iqr' or 'zscore'"),
    ({"label_column": ""}, "must not be empty"),
])
def test_rules_validation_messages(rules, message) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        QualityRules.model_validate(rules)


# ----- image folders -----

@pytest.fixture
def image_folder(tmp_path):
    from PIL import Image

    root = tmp_path / "images"
    sizes = {"cats": [(10, 20), (12, 20), (14, 22)], "dogs": [(30, 40)], "birds": []}
    for name, dimensions in sizes.items():
        (root / name).mkdir(parents=True)
        for index, size in enumerate(dimensions):
            Image.new("RGB", size, (index * 40, 100, 150)).save(root / name / f"{index}.png")
    Image.new("RGB", (16, 8), (1, 2, 3)).save(root / "dogs" / "nested.jpeg", quality=80)
    (root / "cats" / "deeper").mkdir()
    Image.new("L", (50, 60)).save(root / "cats" / "deeper" / "gray.jpg")
    png = (root / "cats" / "0.png").read_bytes()
    (root / "cats" / "truncated.png").write_bytes(png[: len(png) - 20])
    (root / "dogs" / "not-an-image.png").write_bytes(b"hello, I am text")
    (root / "dogs" / "notes.txt").write_text("ignored")
    (root / "dogs" / ".DS_Store.png").write_bytes(b"hidden")
    (root / "README.md").write_text("ignored, not in a class folder")
    return root


def test_image_folder_report(image_folder) -> None:
    report = image_folder_report(image_folder)
    assert report.image_count == 6 and report.file_count == 8
    assert report.class_count == 3
    assert [(item.value, item.count) for item in report.class_balance.classes] == [("cats", 4), ("dogs", 2),
                                                                                    ("birds", 0)]
    assert report.class_balance.min_class_fraction == 0.0
    assert (report.width.min, report.width.max, report.width.median) == (10, 50, 15.0)
    assert (report.height.min, report.height.max, report.height.median) == (8, 60, 21.0)
    assert report.formats == {"JPEG": 2, "PNG": 4}
    assert report.unreadable_count == 2 and report.unreadable_fraction == pytest.approx(2 / 8)
    assert sorted(item.path for item in report.unreadable) == ["cats/truncated.png", "dogs/not-an-image.png"]
    assert report.ignored_files == 3
    json.dumps(report.model_dump(), allow_nan=False)


def test_image_folder_gate(image_folder) -> None:
    report = image_folder_report(image_folder)
    rules = QualityRules(min_rows=5, min_class_fraction=0.1, max_unreadable_fraction=0.5,
                         max_duplicate_fraction=0.1)
    result = evaluate_gate(report, rules)
    outcome = {item.rule: item.passed for item in result.results}
    assert outcome == {"min_rows": True, "min_class_fraction": False, "max_unreadable_fraction": True,
                       "max_duplicate_fraction": False}
    assert "'birds'" in result.failures[0].message
    assert "applies to tables only" in result.failures[1].message


def test_image_folder_that_is_not_a_folder(tmp_path) -> None:
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(DatasetFormatError, match="not a folder"):
        image_folder_report(tmp_path / "file.png")


def test_a_folder_without_an_image_in_a_class_folder_is_refused(tmp_path) -> None:
    (tmp_path / "t.csv").write_text("a,b\n1,2\n")
    (tmp_path / "cat").mkdir()
    (tmp_path / "cat" / "notes.txt").write_text("no image here")
    with pytest.raises(DatasetFormatError, match=r"has none \(2 other files\)"):
        image_folder_report(tmp_path)


def test_check_quality_dispatches_on_format(image_folder, table, tmp_path) -> None:
    report, gate = check_quality(image_folder, "images", {"min_rows": 1})
    assert report.kind == "image_folder" and gate.passed
    path = write(table, tmp_path, "csv")
    report, gate = check_quality(path, "csv", {"label_column": "label", "min_class_fraction": 0.2})
    assert report.kind == "table" and not gate.passed
    assert [failure.rule for failure in gate.failures] == ["min_class_fraction"]
    with pytest.raises(ValidationError):
        check_quality(path, "csv", {"min_rows": "many"})


# ----- isolation from reader crashes -----

def crashing_worker(sender, *args) -> None:
    """Stands in for a native reader that segfaults on a crafted file."""
    import ctypes

    ctypes.string_at(0)


def sleeping_worker(sender, *args) -> None:
    import time

    time.sleep(60)


def test_isolated_check_matches_in_process(table, tmp_path) -> None:
    path = write(table, tmp_path, "parquet")
    rules = {"label_column": "label", "min_class_fraction": 0.2, "declared_schema": {"text_int": "int"}}
    report, gate = check_quality_isolated(path, "parquet", rules)
    local_report, local_gate = check_quality(path, "parquet", rules)
    assert report.model_dump(exclude={"elapsed_seconds"}) == local_report.model_dump(exclude={"elapsed_seconds"})
    assert gate == local_gate and not gate.passed


def test_isolated_check_reports_format_errors_and_crashes(tmp_path) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(CSV_DAMAGE["invalid-utf8"])
    with pytest.raises(DatasetFormatError, match="not a valid csv file") as raised:
        check_quality_isolated(path, "csv")
    # Carried from the child as its template and values: the caller reads it in their language, hints and all.
    said = raised.value.message_in("zh_CN")
    assert said.startswith("不是有效的 csv 文件（应为 UTF-8") and "header" not in said, said
    with pytest.raises(DatasetFormatError, match="crashed the reader"):
        check_quality_isolated(path, "csv", _worker=crashing_worker)
    with pytest.raises(TimeoutError):
        check_quality_isolated(path, "csv", timeout_s=3, _worker=sleeping_worker)


def test_parquet_whose_statistics_lie_does_not_crash(tmp_path) -> None:
    """Garbage in a dictionary page (values far outside the footer's min/max) used to segfault DuckDB."""
    source = _valid_parquet(tmp_path)
    column = pq.ParquetFile(source).metadata.row_group(0).column(0)
    data = bytearray(source.read_bytes())
    for index in range(column.dictionary_page_offset + 40, column.dictionary_page_offset + 4000):
        data[index] ^= 0x5A
    path = tmp_path / "lying.parquet"
    path.write_bytes(bytes(data))
    report, _ = check_quality_isolated(path, "parquet")
    assert report.column("x").numeric.max > column.statistics.max
    assert sum(report.column("x").numeric.histogram.counts) == report.column("x").numeric.count


def _order_cases() -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(5)
    heavy = rng.standard_cauchy(50_000)
    with_infinities = np.concatenate([rng.normal(size=20_000), [np.inf] * 7, [-np.inf] * 3])
    ties = rng.integers(-5, 5, 30_000).astype(np.float64)
    big_integers = (2**62 + rng.integers(0, 1000, 10_000)).astype(np.int64)
    return [("normal", rng.normal(size=40_000)), ("cauchy", heavy), ("infinities", with_infinities),
            ("ties", ties), ("big integers", big_integers), ("one value", np.array([3.5])),
            ("constant", np.full(1000, 2.0))]


@pytest.mark.parametrize("fine_bins, max_collected", [(1 << 16, 1 << 20), (8, 4), (1, 1)],
                         ids=["default", "coarse bins, sort fallback", "one bin"])
@pytest.mark.parametrize("name, values", _order_cases(), ids=[case[0] for case in _order_cases()])
def test_order_statistics_match_a_full_sort(name: str, values: np.ndarray, fine_bins: int, max_collected: int,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Values at positions and counts below bounds, from fine bins (or the sort fallback), equal np.sort's."""
    monkeypatch.setattr(numeric, "FINE_BINS", fine_bins)
    monkeypatch.setattr(numeric, "MAX_COLLECTED", max_collected)
    monkeypatch.setattr(numeric, "STREAM_BATCH_ROWS", 4096)  # several blocks per pass
    ordered = np.sort(values)
    finite = ordered[np.isfinite(ordered)] if ordered.dtype.kind == "f" else ordered
    positions = sorted({0, len(values) - 1, len(values) // 3, len(values) // 2, (len(values) * 99) // 100})
    rng = np.random.default_rng(9)
    bounds = [finite[0], finite[-1], *rng.choice(finite, 5), finite[len(finite) // 2] + 1]
    if ordered.dtype.kind == "f":
        bounds += [float(np.nextafter(finite[0], np.inf)), (float(finite[0]) + float(finite[-1])) / 2]
    order = numeric._OrderStatistics(values.copy(), float(finite[0]), float(finite[-1]), positions, bounds, False)
    assert [order.value_at(p) for p in positions] == [ordered[p] for p in positions]
    assert [order.count_below(b) for b in bounds] == [int(np.searchsorted(ordered, b, side="left")) for b in bounds]
