"""The Experiments page's data logic, without widgets: run names, the columns a viewer may pick and the
ones shown by default, the runs and groups tables, the best runs, and metric curves as x/y series (step
or time axis, EMA smoothing as W&B draws it, log scale). Pure functions of the API's JSON, so they are
tested without a browser."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from itertools import zip_longest
from pathlib import PurePosixPath
from typing import Any

import pandas as pd

from panel_apps.components import column_widths, format_time, text_width
from panel_apps.components import table_language as components_table_language
from panel_apps.language import _, ngettext

IDENTITY_COLUMNS = ("status", "user", "job", "started")
NO_GROUP = ""
OBJECTIVE_WORDS = ("accuracy", "auc", "f1", "precision", "recall", "loss", "error", "score")
LOWER_IS_BETTER_WORDS = ("loss", "error", "err", "mse", "mae", "rmse", "perplexity", "latency", "seconds", "time")
X_AXES = ("step", "relative", "wall")
WIDTH_SAMPLE = 200  # rows read to size a column, as components.column_widths does
SORT_ARROW_WIDTH = 20  # pixels a header's sort arrow takes beside its title
# Names the platform gave runs before they were named after their notebook: job-12, job-12-attempt-2.
_OLD_JOB_NAME = re.compile(r"^job-(\d+)(?:-attempt-(\d+))?$")


def rounded(value: Any) -> Any:
    """Floats to 4 significant digits for display; the table still sorts them as numbers."""
    return float(f"{value:.4g}") if isinstance(value, float) and math.isfinite(value) else value


def run_title(run: Mapping[str, Any]) -> str:
    """``<notebook> · job N`` as the platform names new runs; older runs (``job-N``, or unnamed) get
    that name from their job and notebook tags; runs logged outside jobs keep MLflow's name."""
    name = run.get("run_name") or ""
    tags = run.get("tags") or {}
    old = _OLD_JOB_NAME.match(name)
    job = run.get("job_id") or tags.get("aitip.job_id") or (old.group(1) if old else None)
    notebook = tags.get("mlflow.source.name")
    if name and not old:
        return str(name)
    if job is not None:  # as aitip.jobs.tracking.run_name writes it (names stay in English, as data)
        stem = PurePosixPath(notebook).stem if notebook else "notebook"
        attempt = (old.group(2) if old else None) or tags.get("aitip.attempt")
        return f"{stem} · job {job}" + (f" · attempt {attempt}" if attempt and str(attempt) != "1" else "")
    return name or str(run["run_id"])[:8]


def unique_names(runs: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Run titles for legends and columns; duplicates get their run id's start appended."""
    titles = {run["run_id"]: run_title(run) for run in runs}
    seen = Counter(titles.values())
    return {run_id: title if seen[title] == 1 else f"{title} {run_id[:6]}" for run_id, title in titles.items()}


def metric_keys(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    """Metric names: the ones most runs logged first, and among those the ones that look like an
    objective (accuracy, loss, ...) first, so the chart opens on something worth seeing."""
    counts = Counter(name for run in runs for name in run.get("metrics") or {})

    def rank(item: tuple[str, int]) -> tuple[int, int, str]:
        name, count = item
        return (-count, 0 if any(word in name.lower() for word in OBJECTIVE_WORDS) else 1, name)

    return [name for name, _count in sorted(counts.items(), key=rank)]


def lower_is_better(metric: str | None) -> bool:
    return bool(metric) and any(word in str(metric).lower() for word in LOWER_IS_BETTER_WORDS)


def best_runs(runs: Sequence[Mapping[str, Any]], metric: str | None, count: int) -> list[str]:
    """Run ids of the ``count`` best runs by ``metric`` (lowest for a loss-like name), the newest
    runs when none logged it."""
    scored = [run for run in runs if metric and isinstance((run.get("metrics") or {}).get(metric), (int, float))]
    if not scored:
        return [run["run_id"] for run in runs[:count]]
    descending = not lower_is_better(metric)
    scored.sort(key=lambda run: run["metrics"][metric], reverse=descending)
    return [run["run_id"] for run in scored[:count]]


# ----- columns -----

def column_options(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every column a viewer may show: identity columns, then metrics, parameters and tags by name."""
    def names(kind: str) -> list[str]:
        return sorted({name for run in runs for name in run.get(kind) or {}})

    return [*IDENTITY_COLUMNS, *(f"metric.{n}" for n in names("metrics")), *(f"param.{n}" for n in names("params")),
            *(f"tag.{n}" for n in names("tags") if n != "mlflow.runName")]


def default_columns(runs: Sequence[Mapping[str, Any]], most_metrics: int = 8, most_params: int = 8,
                    width: int | None = None) -> list[str]:
    """What W&B shows first: the identity columns, the metrics most runs have (half of them or more) and the
    parameters whose values differ between runs (all parameters when only one run is listed). With ``width``
    (pixels), only as many as fit beside the identity columns, taken in turn (the first metric, the first
    parameter, the second metric, ...; one of each at least); the column picker offers the rest."""
    metric_counts = Counter(name for run in runs for name in run.get("metrics") or {})
    common = [name for name in metric_keys(runs) if metric_counts[name] * 2 >= len(runs)][:most_metrics]
    values: dict[str, set[str]] = {}
    for run in runs:
        for name in {*values, *(run.get("params") or {})}:
            values.setdefault(name, set()).add(str((run.get("params") or {}).get(name)))
    differing = sorted(name for name, seen in values.items() if len(seen) > 1 or len(runs) == 1)[:most_params]
    metrics, params = [f"metric.{n}" for n in common], [f"param.{n}" for n in differing]
    if width is not None:
        turns = [column for pair in zip_longest(metrics, params) for column in pair if column]
        room = width - sum(column_width(runs, column) for column in ("run", *IDENTITY_COLUMNS))
        kept: set[str] = set()
        for column in turns:
            room -= column_width(runs, column)
            if room < 0 and not ((column in metrics and not kept & set(metrics))
                                 or (column in params and not kept & set(params))):
                break
            kept.add(column)
        metrics, params = [c for c in metrics if c in kept], [c for c in params if c in kept]
    return [*IDENTITY_COLUMNS, *metrics, *params]


def column_width(runs: Sequence[Mapping[str, Any]], column: str) -> int:
    """The width :func:`table_widths` gives ``column`` for these runs, without building the table."""
    values = [run_title(run) if column == "run" else column_value(run, column) for run in runs[:WIDTH_SAMPLE]]
    return text_width(column, values) + SORT_ARROW_WIDTH


def column_value(run: Mapping[str, Any], column: str) -> Any:
    """A run's value in one column (``metric.acc``, ``param.lr``, ``tag.team``, or an identity column)."""
    kind, _dot, name = column.partition(".")
    if kind == "metric":
        return rounded((run.get("metrics") or {}).get(name))
    if kind == "param":
        return (run.get("params") or {}).get(name, "")
    if kind == "tag":
        return (run.get("tags") or {}).get(name, "")
    if column == "job":
        job = run.get("job_id")
        return "" if job is None else str(job)
    if column == "started":
        return format_time(run.get("start_time"))
    return run.get(column) or ""


def runs_frame(runs: Sequence[Mapping[str, Any]], columns: Iterable[str]) -> pd.DataFrame:
    """One row per run, in the order given (row i is ``runs[i]``: the table's selection maps back by
    position): the run's name, then the chosen columns."""
    chosen = ["run", *(column for column in dict.fromkeys(columns) if column != "run")]
    rows = [{"run": run_title(run), **{column: column_value(run, column) for column in chosen[1:]}} for run in runs]
    return pd.DataFrame(rows, columns=chosen)


def header_filters(frame: pd.DataFrame) -> dict[str, dict[str, str]]:
    """A filter under each header: numbers keep the rows at or above the value typed, text matches
    part of the cell."""
    filters = {}
    for column in frame.columns:
        if pd.api.types.is_numeric_dtype(frame[column]):
            filters[str(column)] = {"type": "number", "func": ">=", "placeholder": "≥"}
        else:
            filters[str(column)] = {"type": "input", "func": "like", "placeholder": _("filter")}
    return filters


def comparison_frames(runs: list[dict[str, Any]], names: dict[str, str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ticked runs side by side: parameters (the differing ones first) and latest metrics."""
    params = sorted({name for run in runs for name in run.get("params") or {}})
    differing = [name for name in params if len({(run.get("params") or {}).get(name) for run in runs}) > 1]
    rows = []
    for name in differing + [name for name in params if name not in differing]:
        row = {"parameter": name, "differs": _("yes") if name in differing else ""}
        row.update({names[run["run_id"]]: (run.get("params") or {}).get(name, "") for run in runs})
        rows.append(row)
    diff = pd.DataFrame(rows, columns=["parameter", "differs", *[names[run["run_id"]] for run in runs]])
    metrics = sorted({name for run in runs for name in run.get("metrics") or {}})
    latest = pd.DataFrame([{"metric": key, **{names[run["run_id"]]: rounded((run.get("metrics") or {}).get(key))
                                              for run in runs}} for key in metrics],
                          columns=["metric", *[names[run["run_id"]] for run in runs]])
    return diff, latest


# ----- groups -----

def group_options(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    """Parameters and tags worth grouping by: at least two distinct values among the runs."""
    options = []
    for column in column_options(runs):
        if column.startswith(("param.", "tag.")) and len({str(column_value(run, column)) for run in runs}) > 1:
            options.append(column)
    return options


def group_of(run: Mapping[str, Any], by: str) -> str:
    value = column_value(run, by)
    return str(value) if value not in ("", None) else _("(not set)")


def group_label(run: Mapping[str, Any], by: str) -> str:
    """A legend's name for a run's group: ``epochs=3``."""
    return f"{by.partition('.')[2] or by}={group_of(run, by)}"


def groups_frame(runs: Sequence[Mapping[str, Any]], by: str, metrics: Sequence[str]) -> pd.DataFrame:
    """One row per group: its value, how many runs, and the mean of each metric column shown."""
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    for run in runs:
        grouped.setdefault(group_of(run, by), []).append(run)
    rows = []
    for value, members in grouped.items():
        row: dict[str, Any] = {"group": value, "runs": len(members)}
        for column in metrics:
            present = [v for v in (column_value(run, column) for run in members) if isinstance(v, (int, float))]
            row[column] = rounded(sum(present) / len(present)) if present else None
        rows.append(row)
    return pd.DataFrame(rows, columns=["group", "runs", *metrics])


def table_language() -> dict[str, Any]:
    """Tabulator's own words (pagination, the run count of a group's header) in the page's language."""
    run, runs = (ngettext("{count} run", "{count} runs", count).replace("{count}", "").strip() for count in (1, 2))
    configuration = components_table_language()
    configuration["langs"]["aitip"]["groups"] = {"item": run, "items": runs}
    return configuration


def table_widths(frame: pd.DataFrame) -> dict[str, int]:
    """Widths from the content, with room for the header's sort arrow."""
    return {column: width + SORT_ARROW_WIDTH for column, width in column_widths(frame).items()}


# ----- curves -----

def ema(values: Sequence[float], weight: float) -> list[float]:
    """Exponential moving average, debiased as W&B and TensorBoard draw it (the first points are not
    pulled towards zero); ``weight`` 0 leaves the values as they are."""
    if weight <= 0:
        return list(values)
    smoothed, last, count = [], 0.0, 0
    for value in values:
        count += 1
        last = last * weight + (1 - weight) * value
        smoothed.append(last / (1 - weight ** count))
    return smoothed


def curve_series(points: Sequence[Mapping[str, Any]], x_axis: str, smoothing: float, log_y: bool) -> dict[str, list[Any]]:
    """One run's curve as ``x``, ``y`` (smoothed) and ``raw``: steps, seconds since the run's first point,
    or wall-clock times (epoch ms). Points without a value, and for a log axis values ≤ 0, are left out."""
    kept = [p for p in points if isinstance(p.get("value"), (int, float)) and math.isfinite(p["value"])
            and (not log_y or p["value"] > 0)]
    if x_axis == "relative" and kept:
        first = min(p["timestamp"] for p in kept)
        xs: list[Any] = [(p["timestamp"] - first) / 1000 for p in kept]
    elif x_axis == "wall":
        xs = [p["timestamp"] for p in kept]
    else:
        xs = [p["step"] for p in kept]
    raw = [p["value"] for p in kept]
    if log_y and smoothing > 0:
        smoothed = [10 ** v for v in ema([math.log10(v) for v in raw], smoothing)]
    else:
        smoothed = ema(raw, smoothing)
    return {"x": xs, "y": smoothed, "raw": raw}


def history_length(curves: Mapping[str, Sequence[Any]]) -> int:
    return max((len(points) for points in curves.values()), default=0)


def split_list(text: str | None) -> list[str]:
    """A comma-separated list from the page's address (``compare=a,b``), empty items dropped."""
    return [item for item in (text or "").split(",") if item]


def number(text: str | None, default: float, low: float, high: float) -> float:
    """A number from the address, kept within bounds; the default when it is not one."""
    try:
        value = float(text) if text not in (None, "") else default
    except ValueError:
        return default
    return min(high, max(low, value)) if math.isfinite(value) else default
