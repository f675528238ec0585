"""Masking outside the data itself: the values a quality report, an annotation item or its key carry.

Previews, downloads and job inputs mask sensitive columns inside the DuckDB query (``tabular``): a
"hash" column becomes ``substr(sha256(salt || CAST(value AS VARCHAR)), 1, 16)``, a "redact" column
``'[redacted]'``. Everything else the platform answers that carries a sensitive column's values is masked
here, the same way, for callers below maintainer:

- ``mask_value``: one value, as the SQL expression masks it (text as DuckDB casts it: booleans
  ``true``/``false``, numbers and dates as their usual text), so a hashed item key equals the hash the
  same value has in the preview.
- ``mask_quality_report``: a stored quality report. Statistics that carry values are masked where a
  value can be (top values and class labels hashed, dates hashed) and left out where it cannot (numeric
  min/max, mean, standard deviation, quantiles, IQR fences and histogram edges: a hash of a mean is
  nonsense and the number itself is the leak); for "redact" everything value-carrying is left out.
  Counts and fractions (nulls, distinct values, outliers, duplicates, class counts) stay.
"""

from __future__ import annotations

import copy
import hashlib
from typing import Any

REDACTED = "[redacted]"
MASK_METHODS = ("hash", "redact")

# NumericStats fields that carry the column's values (or numbers computed from them).
_NUMERIC_VALUES = ("min", "max", "mean", "std", "iqr_lower_fence", "iqr_upper_fence")


def _as_text(value: Any) -> str:
    """``CAST(value AS VARCHAR)`` for the JSON values reports and items hold."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def mask_value(value: Any, method: str, salt: str) -> Any:
    """A value as previews show it below maintainer: None stays None."""
    if value is None:
        return None
    if method == "hash":
        return hashlib.sha256((salt + _as_text(value)).encode("utf-8", "surrogatepass")).hexdigest()[:16]
    if method == "redact":
        return REDACTED
    raise ValueError(f"unknown masking method {method!r}")


def mask_row(content: dict[str, Any], masks: dict[str, str], salt: str) -> dict[str, Any]:
    """An item's row (column -> value) with its sensitive columns masked."""
    return {column: mask_value(value, masks[column], salt) if column in masks else value
            for column, value in content.items()}


def _mask_column(column: dict[str, Any], method: str, salt: str) -> None:
    if column.get("top_values") is not None:
        column["top_values"] = (None if method == "redact" else
                                [{**entry, "value": mask_value(entry.get("value"), method, salt)}
                                 for entry in column["top_values"]])
    for key in ("min_value", "max_value"):
        if column.get(key) is not None:
            column[key] = None if method == "redact" else mask_value(column[key], method, salt)
    numeric = column.get("numeric")
    if numeric is not None:
        for key in _NUMERIC_VALUES:
            if key in numeric:
                numeric[key] = None
        if "quantiles" in numeric:
            numeric["quantiles"] = dict.fromkeys(numeric["quantiles"] or {})
        if "histogram" in numeric:
            numeric["histogram"] = None
    column["masked"] = method


def mask_quality_report(report: dict[str, Any], masks: dict[str, str], salt: str) -> tuple[dict[str, Any], list[str]]:
    """A copy of ``report`` with the value-carrying statistics of ``masks``' columns masked; and which
    columns of the report were masked."""
    if not masks or not report:
        return report, []
    masked_report = copy.deepcopy(report)
    masked: list[str] = []
    for column in masked_report.get("columns") or []:
        method = masks.get(column.get("name"))
        if method is not None:
            _mask_column(column, method, salt)
            masked.append(column["name"])
    balance = masked_report.get("class_balance")
    if balance is not None and balance.get("column") in masks:
        method = masks[balance["column"]]
        balance["classes"] = ([] if method == "redact" else
                              [{**entry, "value": mask_value(entry.get("value"), method, salt)}
                               for entry in balance.get("classes") or []])
        balance["masked"] = method
        if balance["column"] not in masked:
            masked.append(balance["column"])
    return masked_report, masked
