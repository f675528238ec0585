"""The verdict of a simulation: its published result judged against the template's thresholds, and against the
previous model version's result under the same template (regression). The platform judges; the notebook only
measures. Reasons are plain English sentences a person can act on."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .results import PublishedResult
from .templates import CLEAN, Template, Threshold, higher_is_better, same_value, validate

# Float noise allowed when a drop is compared with the tolerance (0.1 - 0.08 is 0.020000000000000004).
DROP_SLACK = 1e-9


def _template(template: Template | Mapping[str, Any]) -> Template:
    return template if isinstance(template, Template) else validate(template)


def _result(result: PublishedResult | Mapping[str, Any]) -> PublishedResult:
    return result if isinstance(result, PublishedResult) else PublishedResult.model_validate(dict(result))


def _measured(threshold: Threshold, result: PublishedResult, higher: bool) -> tuple[float | None, str]:
    """The value a threshold is about, and how it was found (or why there is none)."""
    if threshold.condition == CLEAN:
        if result.clean is None:
            return None, "the result has no clean metric"
        return result.clean, "on the clean data"
    rows = [row for row in result.conditions if row.condition == threshold.condition]
    if not rows:
        return None, f"the result has no {threshold.condition} condition"
    if threshold.parameter is not None:
        matching = [row for row in rows if same_value(row.value, threshold.value)]
        if not matching:
            return None, f"the result has no {threshold.condition} at {threshold.parameter}={threshold.value:g}"
        return matching[0].metric, f"at {threshold.parameter}={threshold.value:g}"
    worst = min(rows, key=lambda row: row.metric) if higher else max(rows, key=lambda row: row.metric)
    if len(rows) == 1 or worst.value is None:
        return worst.metric, ""
    return worst.metric, f"the worst of {len(rows)} values, at {worst.parameter or 'value'}={worst.value:g}"


def _check(threshold: Threshold, result: PublishedResult, higher: bool) -> dict[str, Any]:
    value, how = _measured(threshold, result, higher)
    where = "clean data" if threshold.condition == CLEAN else threshold.condition
    if value is None:
        return {"threshold": threshold.text, "value": None, "passed": False,
                "reason": f"{threshold.text}: failed, {how}"}
    passed = math.isfinite(value) and threshold.holds(value)
    detail = f" ({how})" if how and threshold.condition != CLEAN else ""
    outcome = "passed" if passed else "failed"
    reason = (f"{threshold.text}: {outcome}, {threshold.metric} under {where} is {value:.4g}{detail}, "
              f"which must be {threshold.op} {threshold.number:g}")
    return {"threshold": threshold.text, "value": value, "passed": passed, "reason": reason}


def _rows(result: PublishedResult) -> list[tuple[str, str | None, float | None, float]]:
    rows = [(CLEAN, None, None, result.clean)] if result.clean is not None else []
    return rows + [(row.condition, row.parameter, row.value, row.metric) for row in result.conditions]


def _regressions(result: PublishedResult, previous: PublishedResult, tolerance: float,
                 higher: bool) -> list[dict[str, Any]]:
    """Each condition and value both results hold, the drop of the metric from the previous to this one."""
    found = []
    earlier = _rows(previous)
    for condition, parameter, value, current in _rows(result):
        match = next((row for row in earlier if row[0] == condition and same_value(row[2], value)), None)
        if match is None:
            continue
        before = match[3]
        drop = before - current if higher else current - before
        found.append({"condition": condition, "parameter": parameter, "value": value, "previous": before,
                      "current": current, "drop": drop, "tolerance": tolerance,
                      "passed": math.isfinite(drop) and drop <= tolerance + DROP_SLACK})
    return found


def _regression_reason(row: Mapping[str, Any], metric: str) -> str:
    where = row["condition"] if row["value"] is None else f"{row['condition']} {row['parameter'] or 'value'}=" \
        f"{row['value']:g}"
    return (f"{metric} under {where} fell from {row['previous']:.4g} to {row['current']:.4g} against the previous "
            f"version (a drop of {row['drop']:.4g}, more than the tolerance {row['tolerance']:g})")


def judge(template: Template | Mapping[str, Any], result: PublishedResult | Mapping[str, Any],
          previous: PublishedResult | Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``{"passed", "checks", "regressions", "reasons"}``: every threshold checked (without a value, the worst
    over the condition's grid: the lowest accuracy, the highest attack success rate), and with ``previous``
    each condition and value's drop against the tolerance. ``reasons`` says what failed, empty on a pass."""
    template = _template(template)
    result = _result(result)
    higher = higher_is_better(template.metric)
    checks = [_check(threshold, result, higher) for threshold in template.parsed_thresholds()]
    regressions = [] if previous is None else _regressions(result, _result(previous),
                                                           template.regression.tolerance, higher)
    reasons = [check["reason"] for check in checks if not check["passed"]]
    reasons += [_regression_reason(row, template.metric) for row in regressions if not row["passed"]]
    if result.metric != template.metric:
        reasons.append(f"the result measures {result.metric!r}, but the template {template.metric!r}")
    return {"passed": not reasons, "checks": checks, "regressions": regressions, "reasons": reasons}
