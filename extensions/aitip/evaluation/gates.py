"""Gates: a candidate's metrics judged against thresholds in MLflow's ``MetricThreshold`` form, and against a
baseline's metrics, with the same comparisons as ``mlflow.validate_evaluation_results`` (MLflow 3.x):

- ``threshold``: candidate >= threshold (greater is better) or <= threshold;
- ``min_absolute_change``: candidate >= baseline + change, or <= baseline - change (the bound computed in
  floating point, as MLflow does);
- ``min_relative_change``: (candidate - baseline) / |baseline| >= change, or (baseline - candidate) /
  |baseline| >= change; a baseline of 0 falls back to candidate >= 1e-10 (or <= -1e-10);
- a metric the candidate lacks fails, and its other checks are not made;
- a change check without a baseline value fails (MLflow fails it when no baseline is given at all).
  ``missing_baseline="skip"`` passes such checks instead, marked skipped, for a model's first version.

Where MLflow raises instead of judging (a baseline result without the metric raises KeyError in MLflow
3.x) or lets a NaN pass a change check, the verdict fails the check with a reason. Every check gives a
:class:`Reason`, passed or not, so a report can show them all; the English sentence is made by
:func:`describe`, apart, so that it can be translated."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal

from pydantic import Field, model_validator

from ..schema import RequestModel, ResponseModel

# MLflow's fallback step when the baseline is 0 and a relative change is asked for.
ZERO_BASELINE_STEP = 1e-10

CheckKind = Literal["threshold", "absolute_change", "relative_change", "missing_metric"]


class MetricThreshold(RequestModel):
    """What one metric must reach to pass: ``mlflow.models.MetricThreshold``'s fields and constraints."""

    threshold: float | None = Field(
        None, description="The value the metric must reach: at least this when greater is better, at most "
                          "this otherwise.")
    min_absolute_change: float | None = Field(
        None, gt=0, description="How much better than the baseline's value the metric must be, in the metric's "
                                "own units (a positive number).")
    min_relative_change: float | None = Field(
        None, ge=0, le=1, description="How much better than the baseline's value the metric must be, as a "
                                      "fraction of the baseline's magnitude (0 to 1; 0.05 is 5 %).")
    greater_is_better: bool = Field(description="Whether a higher value of the metric is better.")

    @model_validator(mode="after")
    def _some_check(self) -> MetricThreshold:
        if self.threshold is None and self.min_absolute_change is None and self.min_relative_change is None:
            raise ValueError("give at least one of threshold, min_absolute_change and min_relative_change")
        return self


class Reason(ResponseModel):
    """One check of one metric: what was compared with what, and whether it passed."""

    metric: str = Field(description="The metric's name.")
    kind: CheckKind = Field(description="Which check: the threshold, the absolute or relative change against "
                                        "the baseline, or the metric missing from the candidate's results.")
    candidate: float | None = Field(description="The candidate's value; null when it lacks the metric.")
    baseline: float | None = Field(description="The baseline's value; null for a threshold check or when the "
                                               "baseline lacks the metric.")
    bound: float | None = Field(description="The value the candidate had to reach (at least it when greater "
                                            "is better, at most it otherwise); null when it cannot be known.")
    required: float | None = Field(None, description="The threshold, or the required absolute or relative change.")
    greater_is_better: bool = Field(description="Whether a higher value of the metric is better.")
    passed: bool = Field(description="Whether the check passed.")
    skipped: bool = Field(False, description="True when a change check passed only because there was no "
                                             "baseline to compare with.")
    message: str = Field(description="The check in one English sentence.")


class Verdict(ResponseModel):
    """The gate's outcome: passed when every check passed."""

    passed: bool = Field(description="Whether every check passed.")
    reasons: list[Reason] = Field(description="Every check made, in the order of the thresholds.")


def _number(value: float) -> str:
    return f"{value:.6g}"


def describe(reason: Reason) -> str:
    """The check in one English sentence (kept apart from the checking so that it can be translated)."""
    better, verb = (">=", "at least") if reason.greater_is_better else ("<=", "at most")
    outcome = "passed" if reason.passed else "failed"
    if reason.kind == "missing_metric":
        return f"{reason.metric}: failed, the candidate's results have no such metric."
    candidate = _number(reason.candidate) if reason.candidate is not None else "?"
    if reason.kind == "threshold":
        return (f"{reason.metric}: {outcome}, {candidate} must be {verb} the threshold "
                f"{_number(reason.required)}.")
    change = (f"{_number(reason.required)}" if reason.kind == "absolute_change"
              else f"{_number(100 * reason.required)} %")
    direction = "above" if reason.greater_is_better else "below"
    if reason.baseline is None:
        if reason.skipped:
            return f"{reason.metric}: skipped, there is no baseline to be {change} {direction}."
        return f"{reason.metric}: failed, there is no baseline value to be {change} {direction}."
    if not math.isfinite(reason.candidate) or not math.isfinite(reason.baseline):
        return f"{reason.metric}: failed, {candidate} cannot be compared with the baseline's {reason.baseline}."
    return (f"{reason.metric}: {outcome}, {candidate} must be {change} {direction} the baseline's "
            f"{_number(reason.baseline)} ({better} {_number(reason.bound)}).")


def _reason(**fields: object) -> Reason:
    reason = Reason(message="", **fields)
    reason.message = describe(reason)
    return reason


def _at_least(value: float, bound: float, greater_is_better: bool) -> bool:
    return value >= bound if greater_is_better else value <= bound


def _change_checks(name: str, value: float, rule: MetricThreshold, baseline: float | None,
                   skip: bool) -> list[Reason]:
    gib = rule.greater_is_better
    checks: list[Reason] = []
    for kind, required in (("absolute_change", rule.min_absolute_change),
                           ("relative_change", rule.min_relative_change)):
        if required is None:
            continue
        common = dict(metric=name, kind=kind, candidate=value, baseline=baseline, required=required,
                      greater_is_better=gib)
        if baseline is None:
            checks.append(_reason(**common, bound=None, passed=skip, skipped=skip))
            continue
        if not (math.isfinite(value) and math.isfinite(baseline)):
            checks.append(_reason(**common, bound=None, passed=False))
            continue
        if kind == "absolute_change":
            bound = baseline + required if gib else baseline - required
            passed = _at_least(value, bound, gib)
        elif baseline == 0:
            bound = ZERO_BASELINE_STEP if gib else -ZERO_BASELINE_STEP
            passed = _at_least(value, bound, gib)
        else:
            # MLflow's own arithmetic (a relative change compared with the required one), so that values at
            # the bound are judged as MLflow judges them.
            change = (value - baseline if gib else baseline - value) / abs(baseline)
            passed = change >= required
            bound = baseline + required * abs(baseline) if gib else baseline - required * abs(baseline)
        checks.append(_reason(**common, bound=bound, passed=passed))
    return checks


def verdict(candidate_metrics: Mapping[str, float], thresholds: Mapping[str, MetricThreshold],
            baseline_metrics: Mapping[str, float] | None = None, *,
            missing_baseline: Literal["fail", "skip"] = "fail") -> Verdict:
    """Judges ``candidate_metrics`` by ``thresholds`` (metric name -> MetricThreshold), comparing with
    ``baseline_metrics`` where a threshold asks for a change. Never raises for a missing metric: it fails."""
    reasons: list[Reason] = []
    baseline_metrics = baseline_metrics or {}
    for name, rule in thresholds.items():
        gib = rule.greater_is_better
        if name not in candidate_metrics or candidate_metrics[name] is None:
            reasons.append(_reason(metric=name, kind="missing_metric", candidate=None, baseline=None, bound=None,
                                   greater_is_better=gib, passed=False))
            continue
        value = float(candidate_metrics[name])
        if rule.threshold is not None:
            reasons.append(_reason(metric=name, kind="threshold", candidate=value, baseline=None,
                                   bound=rule.threshold, required=rule.threshold, greater_is_better=gib,
                                   passed=_at_least(value, rule.threshold, gib)))
        baseline = baseline_metrics.get(name)
        reasons.extend(_change_checks(name, value, rule, None if baseline is None else float(baseline),
                                      missing_baseline == "skip"))
    return Verdict(passed=all(reason.passed for reason in reasons), reasons=reasons)
