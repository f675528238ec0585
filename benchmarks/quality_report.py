"""The dataset quality report against a plain pandas implementation of the same checks.

One run, side by side, each implementation in a fresh subprocess on the same Parquet file
(10M rows x 10 columns by default: ids, ints and floats with nulls, NaN, infinities and outliers,
low/medium/high-cardinality strings, booleans, an imbalanced label; 1% duplicate rows):

  (a) pandas: ``read_parquet`` then per column missing counts, ``nunique``, min/max/mean/std, quantiles,
      IQR and z-score outliers, histograms, ``value_counts`` top-k, type checks, ``duplicated()``,
      and the label's class counts;
  (b) ``aitip.datasets.quality.compute_quality_report`` (DuckDB scans and GROUP BYs; large numeric
      columns and the row hashes streamed into numpy and sorted; HyperLogLog distinct counts for
      numeric columns, exact for strings);
  (c) the same with ``exact_distinct=True``, so (a) and (c) count distinct values the same way.

Reported per implementation: the check's own time (``compute_s``: from reading the file to having
every number, imports and interpreter start-up excluded; ``process_s`` includes them), rows/second
from ``compute_s``, CPU seconds, and peak RSS (``ru_maxrss`` of the worker process itself, which
holds DuckDB's threads too), with ratios to pandas (goal: >= 10x rows/s in <= 0.25x memory). The
1-minute load average before and after each run shows whether the machine was busy. Finally the
main numbers of every implementation are compared with pandas' (row count, missing counts,
duplicate rows, quantiles, outlier counts, top values, class counts) and the agreement printed.

    .venv/bin/python benchmarks/quality_report.py                   # full size, 10M rows
    .venv/bin/python benchmarks/quality_report.py --rows 200000     # smoke run
    .venv/bin/python benchmarks/quality_report.py --data /big/disk/quality.parquet --repeat 2

The generated file is cached (``/tmp/aitip-bench/quality-<rows>.parquet`` unless ``--data``).
Results go to benchmarks/results/quality_report.json (full-size runs only, unless ``--output``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "extensions"))

FULL_ROWS = 10_000_000
GENERATOR_VERSION = 1
QUANTILES = {"p1": 0.01, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p99": 0.99}
LABEL_COLUMN = "label"
DECLARED_SCHEMA = {"age": "int", "income": "float", "category": "string", "active": "bool"}
CATEGORIES = [f"category_{i:02d}" for i in range(12)]
CITIES = [f"city_{i:04d}" for i in range(2000)]
LABELS = ["cat", "dog", "bird", "fish"]


# ----- the data -----

def _chunk(rng: Any, start: int, n: int) -> Any:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    def with_nulls(values: Any, fraction: float) -> Any:
        return pa.array(values, mask=rng.random(n) < fraction)

    def strings(index: Any, dictionary: list[str], null_fraction: float = 0.0) -> Any:
        indices = pa.array(index, mask=rng.random(n) < null_fraction if null_fraction else None)
        return pa.DictionaryArray.from_arrays(indices, pa.array(dictionary)).cast(pa.string())

    income = rng.lognormal(10, 1, n)
    income[rng.random(n) < 0.001] *= 100
    score = rng.normal(0, 1, n)
    score[rng.random(n) < 0.0005] = np.nan
    score[rng.random(n) < 0.0001] = np.inf
    table = pa.table({
        "id": pa.array(np.arange(start, start + n, dtype=np.int64)),
        "age": with_nulls(rng.integers(18, 91, n), 0.02),
        "income": with_nulls(income, 0.01),
        "score": pa.array(score),
        "latency_ms": with_nulls(rng.exponential(20, n).astype(np.float32), 0.005),
        "category": strings(rng.integers(0, len(CATEGORIES), n), CATEGORIES, 0.01),
        "city": strings(np.minimum(rng.zipf(1.3, n) - 1, len(CITIES) - 1), CITIES),
        "user": pc.binary_join_element_wise("user_", pa.array(rng.integers(0, 2_000_000, n)).cast(pa.string()), ""),
        "active": with_nulls(rng.random(n) < 0.7, 0.01),
        "label": strings(rng.choice(len(LABELS), n, p=[0.6, 0.25, 0.1, 0.05]), LABELS),
    })
    # 1% of the rows become copies of other rows of the same chunk (ids included): exact duplicates.
    order = np.arange(n)
    order[rng.choice(n, n // 100, replace=False)] = rng.choice(n, n // 100, replace=False)
    return table.take(pa.array(order))


def generate(path: Path, rows: int, seed: int = 7, chunk_rows: int = 1_000_000) -> None:
    """Writes the file chunk by chunk (bounded memory), atomically."""
    import numpy as np
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    writer = None
    for start in range(0, rows, chunk_rows):
        table = _chunk(rng, start, min(chunk_rows, rows - start))
        if writer is None:
            writer = pq.ParquetWriter(partial, table.schema)
        writer.write_table(table, row_group_size=chunk_rows)
    assert writer is not None
    writer.close()
    partial.replace(path)


# ----- the implementations (run inside worker processes) -----

def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item"):
        return _clean(value.item())
    return value


def pandas_checks(path: str) -> dict[str, Any]:
    """The same checks, written the way a pandas user would."""
    import numpy as np
    import pandas as pd

    frame = pd.read_parquet(path)
    rows = len(frame)
    columns: dict[str, Any] = {}
    for name in frame.columns:
        series = frame[name]
        missing = int(series.isna().sum())
        entry: dict[str, Any] = {"null_count": missing, "distinct_count": int(series.nunique())}
        if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
            values = series.to_numpy(dtype="float64", na_value=np.nan)
            finite = values[np.isfinite(values)]
            entry["inf_count"] = int(np.isinf(values).sum())
            if finite.size:
                q = np.quantile(finite, list(QUANTILES.values()))
                low, high = q[1] - 1.5 * (q[3] - q[1]), q[3] + 1.5 * (q[3] - q[1])
                mean, std = finite.mean(), finite.std(ddof=1)
                entry.update(
                    min=float(finite.min()), max=float(finite.max()), mean=float(mean), std=float(std),
                    quantiles=dict(zip(QUANTILES, map(float, q), strict=True)),
                    iqr_outlier_count=int(((finite < low) | (finite > high)).sum()),
                    zscore_outlier_count=int((np.abs(finite - mean) > 3 * std).sum()) if std > 0 else 0,
                    histogram=np.histogram(finite, bins=20)[0].tolist(),
                )
        else:
            counts = series.value_counts()
            entry["top_values"] = {str(value): int(count) for value, count in counts.head(10).items()}
        columns[name] = entry
    for name, declared in DECLARED_SCHEMA.items():
        series = frame[name].dropna()
        if declared == "int":
            values = series.to_numpy(dtype="float64")
            violations = int((~(np.isfinite(values) & (values == np.trunc(values)))).sum())
        elif declared == "bool":
            violations = int((~series.isin([True, False])).sum())
        elif declared == "float":
            violations = int(pd.to_numeric(series, errors="coerce").isna().sum())
        else:
            violations = 0
        columns[name]["type_violation_count"] = violations
    duplicates = int(frame.duplicated().sum())
    classes = frame[LABEL_COLUMN].value_counts()
    return {"row_count": rows, "duplicate_count": duplicates, "columns": columns,
            "classes": {str(value): int(count) for value, count in classes.items()}}


def aitip_checks(path: str, *, exact_distinct: bool, threads: int, memory_limit_mb: int) -> dict[str, Any]:
    from aitip.datasets.quality import QualityRules, compute_quality_report

    rules = QualityRules(declared_schema=DECLARED_SCHEMA, label_column=LABEL_COLUMN)
    report = compute_quality_report(path, "parquet", rules, threads=threads, memory_limit_mb=memory_limit_mb,
                                    exact_distinct=exact_distinct)
    json.dumps(report.model_dump(), allow_nan=False)
    columns: dict[str, Any] = {}
    for column in report.columns:
        entry: dict[str, Any] = {"null_count": column.null_count, "distinct_count": column.distinct_count}
        if column.declared_type is not None:
            entry["type_violation_count"] = column.type_violation_count
        if column.numeric is not None:
            numeric = column.numeric
            entry.update(inf_count=column.inf_count, min=numeric.min, max=numeric.max, mean=numeric.mean,
                         std=numeric.std, quantiles=numeric.quantiles, iqr_outlier_count=numeric.iqr_outlier_count,
                         zscore_outlier_count=numeric.zscore_outlier_count,
                         histogram=numeric.histogram.counts if numeric.histogram else None)
        if column.top_values is not None:
            entry["top_values"] = {str(item.value): item.count for item in column.top_values}
        columns[column.name] = entry
    balance = report.class_balance
    return {"row_count": report.row_count, "duplicate_count": report.duplicates.count, "columns": columns,
            "classes": {str(item.value): item.count for item in balance.classes} if balance else {}}


def worker(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    # Each side's engine is imported before the clock starts; numpy is part of both.
    import numpy  # noqa: F401

    if args.worker == "pandas":
        import pandas  # noqa: F401

        clock = time.perf_counter()
        numbers = pandas_checks(args.data)
    else:
        import duckdb  # noqa: F401
        import pyarrow  # noqa: F401
        import aitip.datasets.quality  # noqa: F401

        clock = time.perf_counter()
        numbers = aitip_checks(args.data, exact_distinct=args.worker == "aitip-exact", threads=args.threads,
                               memory_limit_mb=args.memory_limit_mb)
    finished = time.perf_counter()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    Path(args.out).write_text(json.dumps({
        "compute_s": finished - clock, "imports_s": clock - started, "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": usage.ru_maxrss / 1024, "numbers": numbers,
    }, default=_clean))


# ----- the driver -----

def run_worker(kind: str, data: Path, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "result.json"
        command = [sys.executable, __file__, "--worker", kind, "--data", str(data), "--out", str(out),
                   "--threads", str(args.threads), "--memory-limit-mb", str(args.memory_limit_mb)]
        load_before = os.getloadavg()[0]
        started = time.perf_counter()
        subprocess.run(command, check=True)
        process_s = time.perf_counter() - started
        result = json.loads(out.read_text())
    result.update(process_s=process_s, load_before=load_before, load_after=os.getloadavg()[0])
    return result


def _close(a: Any, b: Any, relative: float) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(float(a), float(b), rel_tol=relative, abs_tol=1e-9)


def compare(reference: dict[str, Any], candidate: dict[str, Any], exact_distinct: bool) -> dict[str, bool]:
    """Which main numbers agree with pandas'."""
    checks: dict[str, bool] = {
        "row_count": reference["row_count"] == candidate["row_count"],
        "duplicate_count": reference["duplicate_count"] == candidate["duplicate_count"],
        "class_counts": reference["classes"] == candidate["classes"],
    }
    ref_columns, columns = reference["columns"], candidate["columns"]
    checks["null_counts"] = all(ref_columns[n]["null_count"] == columns[n]["null_count"] for n in ref_columns)
    checks["type_violations"] = all(ref_columns[n].get("type_violation_count") == columns[n].get("type_violation_count")
                                    for n in DECLARED_SCHEMA)
    distinct_tolerance = 1e-12 if exact_distinct else 0.10
    checks["distinct_counts" + ("" if exact_distinct else " (within 10%, HyperLogLog)")] = all(
        _close(ref_columns[n]["distinct_count"], columns[n]["distinct_count"], distinct_tolerance) for n in ref_columns)
    numeric = [n for n, entry in ref_columns.items() if "quantiles" in entry]
    checks["min/max/mean/std"] = all(_close(ref_columns[n][s], columns[n][s], 1e-9)
                                     for n in numeric for s in ("min", "max", "mean", "std"))
    checks["quantiles"] = all(_close(ref_columns[n]["quantiles"][q], columns[n]["quantiles"][q], 1e-9)
                              for n in numeric for q in QUANTILES)
    checks["outlier_counts"] = all(ref_columns[n][s] == columns[n][s] for n in numeric
                                   for s in ("iqr_outlier_count", "zscore_outlier_count", "inf_count"))
    checks["histograms"] = all(ref_columns[n]["histogram"] == columns[n]["histogram"] for n in numeric
                               if len(columns[n]["histogram"] or []) == 20)
    # "user" has ties among its most frequent values, which each side may order differently.
    checks["top_values"] = all(
        sorted(ref_columns[n]["top_values"].values()) == sorted(columns[n]["top_values"].values())
        if n == "user" else ref_columns[n]["top_values"] == columns[n]["top_values"]
        for n in ref_columns if "top_values" in ref_columns[n])
    return checks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=FULL_ROWS)
    parser.add_argument("--data", help="Parquet file to use (generated there when missing)")
    parser.add_argument("--threads", type=int, default=min(4, os.cpu_count() or 1))
    parser.add_argument("--memory-limit-mb", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=1, help="Runs per implementation; the median is kept")
    parser.add_argument("--skip-exact", action="store_true", help="Leave out (c), aitip with exact distinct counts")
    parser.add_argument("--output", help="Where the JSON goes (default: benchmarks/results/quality_report.json "
                                         "for full-size runs, nowhere for smaller ones)")
    parser.add_argument("--worker", choices=["pandas", "aitip", "aitip-exact"], help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return

    data = Path(args.data) if args.data else Path(f"/tmp/aitip-bench/quality-{args.rows}-v{GENERATOR_VERSION}.parquet")
    if not data.exists():
        print(f"generating {args.rows:,} rows -> {data}", flush=True)
        started = time.perf_counter()
        generate(data, args.rows)
        print(f"  generated in {time.perf_counter() - started:.1f} s", flush=True)
    import pyarrow.parquet as pq

    metadata = pq.ParquetFile(data).metadata
    rows, column_count = metadata.num_rows, metadata.num_columns
    kinds = ["pandas", "aitip"] + ([] if args.skip_exact else ["aitip-exact"])
    runs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in kinds}
    for round_number in range(args.repeat):
        for kind in kinds:
            print(f"run {round_number + 1}/{args.repeat}: {kind} ...", flush=True)
            runs[kind].append(run_worker(kind, data, args))

    def summary(kind: str) -> dict[str, Any]:
        results = runs[kind]
        compute = statistics.median(r["compute_s"] for r in results)
        return {
            "implementation": kind, "compute_s": compute, "rows_per_s": rows / compute,
            "process_s": statistics.median(r["process_s"] for r in results),
            "cpu_s": statistics.median(r["cpu_s"] for r in results),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in results),
            "load_before": [round(r["load_before"], 2) for r in results],
            "load_after": [round(r["load_after"], 2) for r in results],
        }

    table = [summary(kind) for kind in kinds]
    base = table[0]
    for entry in table:
        entry["rows_per_s_vs_pandas"] = entry["rows_per_s"] / base["rows_per_s"]
        entry["memory_vs_pandas"] = entry["peak_rss_mb"] / base["peak_rss_mb"]
    reference = runs["pandas"][0]["numbers"]
    agreement = {kind: compare(reference, runs[kind][0]["numbers"], kind == "aitip-exact") for kind in kinds[1:]}

    print(f"\n{rows:,} rows x {column_count} columns, {data.stat().st_size / 1e6:.0f} MB Parquet; "
          f"threads={args.threads}, memory_limit={args.memory_limit_mb} MB, {os.cpu_count()} CPUs")
    header = (f"{'implementation':<14}{'compute s':>10}{'rows/s':>13}{'process s':>10}{'CPU s':>8}{'peak MB':>9}"
              f"{'x rows/s':>9}{'x memory':>9}  load before/after")
    print(header)
    print("-" * len(header))
    for entry in table:
        loads = ", ".join(f"{b}/{a}" for b, a in zip(entry["load_before"], entry["load_after"], strict=True))
        print(f"{entry['implementation']:<14}{entry['compute_s']:>10.2f}{entry['rows_per_s']:>13,.0f}"
              f"{entry['process_s']:>10.2f}{entry['cpu_s']:>8.1f}{entry['peak_rss_mb']:>9.0f}"
              f"{entry['rows_per_s_vs_pandas']:>9.2f}{entry['memory_vs_pandas']:>9.2f}  {loads}")
    print("goal: >= 10x pandas' rows/s in <= 0.25x its peak memory")
    for kind, checks in agreement.items():
        failed = [name for name, ok in checks.items() if not ok]
        print(f"{kind} agrees with pandas on: {', '.join(n for n, ok in checks.items() if ok)}"
              + (f"; DISAGREES on: {', '.join(failed)}" if failed else ""))
    headline = reference["row_count"], reference["duplicate_count"]
    print(f"pandas: {headline[0]:,} rows, {headline[1]:,} duplicate rows, missing per column "
          + ", ".join(f"{n}={c['null_count']:,}" for n, c in reference["columns"].items()))

    output = Path(args.output) if args.output else (
        ROOT / "benchmarks" / "results" / "quality_report.json" if args.rows == FULL_ROWS and not args.data else None)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps({
            "benchmark": "quality_report", "rows": rows, "columns": column_count,
            "file_mb": round(data.stat().st_size / 1e6, 1), "threads": args.threads,
            "memory_limit_mb": args.memory_limit_mb, "cpus": os.cpu_count(), "repeat": args.repeat,
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "results": table, "agreement": agreement,
            "goal": {"rows_per_s_vs_pandas": ">= 10", "memory_vs_pandas": "<= 0.25"},
        }, indent=2, default=_clean) + "\n")
        print(f"results -> {output.relative_to(ROOT) if output.is_relative_to(ROOT) else output}")


if __name__ == "__main__":
    main()
