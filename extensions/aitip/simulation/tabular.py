"""The tabular conditions of a template run against a model with ``predict``, on a pandas frame of features.

Numeric features are perturbed in units of each feature's standard deviation (on the rows tested);
categorical features are the non-numeric ones and integer ones with at most ten distinct values. ``drift``
scores the model on another version of the dataset and measures each feature's drift from it: the
population stability index (PSI, ten quantile bins of the reference) and the two-sample Kolmogorov-Smirnov
statistic (numeric features)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import InvalidInput
from .conditions import REGISTRY
from .image import environment
from .templates import Template

Progress = Callable[[str, "float | None", int, int], None]
CATEGORICAL_MAX_DISTINCT = 10
PSI_BINS = 10
PSI_FLOOR = 1e-4  # a bin empty on one side would make PSI infinite
DRIFTED_PSI = 0.2  # the usual "significant shift" line


def feature_kinds(frame: Any) -> tuple[list[str], list[str]]:
    """(numeric, categorical) column names."""
    from pandas.api import types

    numeric, categorical = [], []
    for column in frame.columns:
        values = frame[column]
        if not types.is_numeric_dtype(values) or types.is_bool_dtype(values):
            categorical.append(column)
            continue
        present = values.dropna()
        whole = bool(np.all(np.equal(np.mod(present.to_numpy(dtype=float), 1), 0))) if len(present) else True
        (categorical if whole and present.nunique() <= CATEGORICAL_MAX_DISTINCT else numeric).append(column)
    return numeric, categorical


def _spread(frame: Any, numeric: Sequence[str]) -> np.ndarray:
    std = frame[list(numeric)].astype(float).std(ddof=0).to_numpy() if numeric else np.zeros(0)
    return np.where(np.isfinite(std), std, 0.0)


def feature_noise(frame: Any, sigma: float, numeric: Sequence[str], rng: np.random.Generator) -> Any:
    out = frame.copy()
    if numeric:
        values = frame[list(numeric)].astype(float).to_numpy()
        out[list(numeric)] = values + rng.normal(0.0, 1.0, values.shape) * (sigma * _spread(frame, numeric))
    return out


def feature_shift(frame: Any, magnitude: float, numeric: Sequence[str]) -> Any:
    out = frame.copy()
    if numeric:
        out[list(numeric)] = frame[list(numeric)].astype(float).to_numpy() + magnitude * _spread(frame, numeric)
    return out


def missing_values(frame: Any, fraction: float, fill: str, rng: np.random.Generator) -> Any:
    """A ``fraction`` of all feature cells removed, then filled with the column's mean (a categorical's most
    common value), zero (numeric columns), or left missing (``nan``)."""
    from pandas.api import types

    out = frame.copy()
    holes = rng.random(frame.shape) < fraction
    for position, column in enumerate(frame.columns):
        rows = holes[:, position]
        if not rows.any():
            continue
        values = frame[column]
        numeric = types.is_numeric_dtype(values) and not types.is_bool_dtype(values)
        if fill == "nan":
            replacement: Any = np.nan if numeric else None
        elif numeric and fill == "mean":
            replacement = float(values.mean())
        elif numeric:
            replacement = 0.0
        else:
            replacement = values.mode(dropna=True).iloc[0] if values.notna().any() else None
        if numeric:
            out[column] = out[column].astype(float)
        out.loc[out.index[rows], column] = replacement
    return out


def category_swap(frame: Any, fraction: float, categorical: Sequence[str], rng: np.random.Generator) -> Any:
    """In each categorical column, a ``fraction`` of the cells given another of the column's categories."""
    out = frame.copy()
    for column in categorical:
        values = frame[column].to_numpy()
        categories, codes = np.unique(values.astype(str), return_inverse=True)
        if len(categories) < 2:
            continue
        picked = rng.random(len(values)) < fraction
        shifted = (codes[picked] + rng.integers(1, len(categories), picked.sum())) % len(categories)
        first_of = {code: values[np.flatnonzero(codes == code)[0]] for code in range(len(categories))}
        column_values = values.copy()
        column_values[picked] = [first_of[code] for code in shifted]
        out[column] = column_values
    return out


def psi(reference: np.ndarray, current: np.ndarray, categorical: bool) -> float:
    """Population stability index of ``current`` against ``reference``."""
    if categorical:
        categories = np.unique(np.concatenate([reference.astype(str), current.astype(str)]))
        expected = np.array([(reference.astype(str) == category).mean() for category in categories])
        actual = np.array([(current.astype(str) == category).mean() for category in categories])
    else:
        edges = np.unique(np.quantile(reference, np.linspace(0, 1, PSI_BINS + 1)[1:-1]))
        expected = np.bincount(np.searchsorted(edges, reference, side="right"), minlength=len(edges) + 1)
        actual = np.bincount(np.searchsorted(edges, current, side="right"), minlength=len(edges) + 1)
        expected, actual = expected / max(1, len(reference)), actual / max(1, len(current))
    expected, actual = np.maximum(expected, PSI_FLOOR), np.maximum(actual, PSI_FLOOR)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def drift_table(reference: Any, current: Any) -> list[dict[str, Any]]:
    """PSI and KS statistic per feature the two frames share (KS for numeric features only)."""
    from scipy.stats import ks_2samp

    numeric, categorical = feature_kinds(current)
    table = []
    for column in current.columns:
        if column not in reference.columns:
            continue
        is_categorical = column in categorical
        before, after = reference[column].dropna().to_numpy(), current[column].dropna().to_numpy()
        if not len(before) or not len(after):
            table.append({"feature": str(column), "psi": None, "ks": None})
            continue
        if not is_categorical:
            before, after = before.astype(float), after.astype(float)
        ks = None if is_categorical else float(ks_2samp(before, after).statistic)
        table.append({"feature": str(column), "psi": psi(before, after, is_categorical), "ks": ks})
    return table


def _inputs(model: Any, frame: Any) -> Any:
    """A DataFrame for a model fitted on named columns, else the plain array it was fitted on."""
    return frame if hasattr(model, "feature_names_in_") else frame.to_numpy()


def correct(predicted: Any, truth: Any) -> np.ndarray:
    predicted, truth = np.asarray(predicted).ravel(), np.asarray(truth).ravel()
    if predicted.dtype.kind in "iuf" and truth.dtype.kind in "iuf":
        return predicted == truth
    return predicted.astype(str) == truth.astype(str)


def _accuracy(model: Any, frame: Any, truth: Any) -> float:
    return float(np.mean(correct(model.predict(_inputs(model, frame)), truth)))


def simulate_tabular(template: Template, model: Any, frame: Any, y: Sequence[Any], *,
                     references: Mapping[int, tuple[Any, Sequence[Any]]] | None = None,
                     progress: Progress | None = None) -> dict[str, Any]:
    """Every condition of a tabular template on ``frame`` (features only) with true labels ``y``: the result to
    publish. ``references`` holds, per reference version a ``drift`` value names, its (features, labels). A
    condition that fails is recorded in ``errors`` and the others still run."""
    if template.kind != "tabular":
        raise InvalidInput("a {kind} template is not run on a table", code="invalid_template",
                           kind=template.kind)
    numeric, categorical = feature_kinds(frame)
    truth = np.asarray(y)
    total = 1 + sum(len(entry.values) for entry in template.conditions)
    clean = _accuracy(model, frame, truth)
    if progress:
        progress("clean", None, 1, total)
    rows: list[dict[str, Any]] = []
    errors: list[str] = []
    drift: list[dict[str, Any]] = []
    for entry in template.conditions:
        parameter = REGISTRY[entry.condition].parameter
        rng = np.random.default_rng(template.input.seed)
        for value in entry.values:
            began = time.perf_counter()
            details: dict[str, Any] = {}
            try:
                if entry.condition == "drift":
                    if not references or int(value) not in references:
                        raise ValueError(f"version {int(value)} of the dataset was not given (reference_dataset)")
                    reference, reference_y = references[int(value)]
                    metric, samples = _accuracy(model, reference[list(frame.columns)], reference_y), len(reference)
                    table = drift_table(reference[list(frame.columns)], frame)
                    drift = drift or table
                    scored = [row for row in table if row["psi"] is not None]
                    details = {"drifted_features": sum(row["psi"] > DRIFTED_PSI for row in scored),
                               "max_psi": max((row["psi"] for row in scored), default=None),
                               "max_ks": max((row["ks"] for row in table if row["ks"] is not None), default=None)}
                else:
                    if entry.condition == "feature_noise":
                        changed = feature_noise(frame, value, numeric, rng)
                    elif entry.condition == "feature_shift":
                        changed = feature_shift(frame, value, numeric)
                    elif entry.condition == "missing_values":
                        changed = missing_values(frame, value, entry.options.get("fill", "mean"), rng)
                    elif entry.condition == "category_swap":
                        changed = category_swap(frame, value, categorical, rng)
                        details = {"categorical_features": len(categorical)}
                    else:
                        raise ValueError(f"{entry.condition} is not a tabular condition")
                    metric, samples = _accuracy(model, changed, truth), len(frame)
            except Exception as error:  # noqa: BLE001 - one condition's failure is reported, the others still run
                errors.append(f"{entry.condition} {value:g}: {type(error).__name__}: {error}")
                continue
            rows.append({"condition": entry.condition, "parameter": parameter, "value": value, "metric": metric,
                         "seconds": round(time.perf_counter() - began, 6), "samples": samples, "details": details})
            if progress:
                progress(entry.condition, value, 1 + len(rows) + len(errors), total)
    return {"kind": "tabular", "metric": template.metric, "rows": len(frame), "clean": clean, "conditions": rows,
            "examples": [], "probes": [], "drift": drift, "environment": environment(["pandas"]), "errors": errors}
