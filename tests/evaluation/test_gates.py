"""Gates: MetricThreshold's constraints; every check at, just below and just above its bound, for greater and
lower is better; missing metrics and baselines; and agreement with ``mlflow.validate_evaluation_results`` on a
table of cases."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from aitip.evaluation.gates import MetricThreshold, verdict


def _rule(**fields):
    return MetricThreshold.model_validate(fields)


@pytest.mark.parametrize("fields", [
    {"greater_is_better": True},  # no check at all
    {"threshold": 0.5},  # greater_is_better is required
    {"threshold": 0.5, "greater_is_better": "yes"},
    {"threshold": "0.5", "greater_is_better": True},
    {"threshold": math.nan, "greater_is_better": True},
    {"threshold": math.inf, "greater_is_better": True},
    {"min_absolute_change": 0, "greater_is_better": True},
    {"min_absolute_change": -0.1, "greater_is_better": True},
    {"min_relative_change": 1.5, "greater_is_better": True},
    {"min_relative_change": -0.1, "greater_is_better": True},
    {"threshold": 0.5, "greater_is_better": True, "min_change": 0.1},
])
def test_metric_threshold_refuses_what_mlflow_refuses(fields):
    with pytest.raises(ValidationError):
        _rule(**fields)


def test_metric_threshold_fields_are_described_for_every_face():
    schema = MetricThreshold.model_json_schema()
    assert schema["required"] == ["greater_is_better"]
    assert all(field.get("description") for field in schema["properties"].values())
    assert _rule(threshold=1, greater_is_better=False).threshold == 1.0


# (greater is better, check, its fields, baseline, the bound a candidate must reach). The numbers are exact in
# binary floating point, so "at the bound" means exactly at it.
BOUNDS = [
    (True, "threshold", {"threshold": 0.75}, None, 0.75),
    (False, "threshold", {"threshold": 0.25}, None, 0.25),
    (True, "absolute_change", {"min_absolute_change": 0.25}, 0.5, 0.75),
    (False, "absolute_change", {"min_absolute_change": 0.25}, 0.5, 0.25),
    (True, "relative_change", {"min_relative_change": 0.5}, 0.5, 0.75),
    (False, "relative_change", {"min_relative_change": 0.5}, 0.5, 0.25),
    (True, "relative_change", {"min_relative_change": 0.5}, -2.0, -1.0),  # magnitude of a negative baseline
    (False, "relative_change", {"min_relative_change": 0.5}, -2.0, -3.0),
]


@pytest.mark.parametrize(("greater", "kind", "fields", "baseline", "bound"), BOUNDS)
@pytest.mark.parametrize("where", ["below", "at", "above"])
def test_each_check_at_just_below_and_just_above_its_bound(greater, kind, fields, baseline, bound, where):
    value = {"below": math.nextafter(bound, -math.inf), "at": bound, "above": math.nextafter(bound, math.inf)}[where]
    rule = _rule(greater_is_better=greater, **fields)
    result = verdict({"m": value}, {"m": rule}, None if baseline is None else {"m": baseline})
    [reason] = result.reasons
    should_pass = where == "at" or (where == "above") == greater
    assert (reason.kind, reason.passed, result.passed) == (kind, should_pass, should_pass)
    assert (reason.candidate, reason.baseline, reason.bound) == (value, baseline, bound)
    assert reason.message.startswith(f"m: {'passed' if should_pass else 'failed'}")


def test_a_zero_baseline_asks_for_any_improvement_as_mlflow_does():
    rule = _rule(min_relative_change=0.1, greater_is_better=True)
    assert not verdict({"m": 0.0}, {"m": rule}, {"m": 0.0}).passed
    assert verdict({"m": 1e-10}, {"m": rule}, {"m": 0.0}).passed
    assert not verdict({"m": 0.99e-10}, {"m": rule}, {"m": 0.0}).passed


def test_a_metric_the_candidate_lacks_fails_with_a_reason():
    rules = {"accuracy_score": _rule(threshold=0.9, min_absolute_change=0.01, greater_is_better=True),
             "log_loss": _rule(threshold=0.5, greater_is_better=False)}
    result = verdict({"log_loss": 0.3}, rules, {"accuracy_score": 0.8})
    assert not result.passed
    missing, loss = result.reasons
    assert (missing.metric, missing.kind, missing.passed, missing.candidate) == ("accuracy_score", "missing_metric",
                                                                                  False, None)
    assert "no such metric" in missing.message
    assert (loss.kind, loss.passed) == ("threshold", True)


def test_without_a_baseline_change_checks_fail_unless_asked_to_skip_them():
    rules = {"f1_score": _rule(threshold=0.5, min_absolute_change=0.01, min_relative_change=0.05,
                               greater_is_better=True)}
    strict = verdict({"f1_score": 0.9}, rules)
    assert not strict.passed
    assert [(r.kind, r.passed, r.skipped) for r in strict.reasons] == [
        ("threshold", True, False), ("absolute_change", False, False), ("relative_change", False, False)]
    assert "no baseline value" in strict.reasons[1].message
    first_version = verdict({"f1_score": 0.9}, rules, missing_baseline="skip")
    assert first_version.passed
    assert [(r.passed, r.skipped) for r in first_version.reasons[1:]] == [(True, True), (True, True)]
    assert verdict({"f1_score": 0.4}, rules, missing_baseline="skip").passed is False  # the threshold still holds
    # A baseline that lacks the metric fails the same way (MLflow 3.x raises KeyError there).
    assert not verdict({"f1_score": 0.9}, rules, {"other": 1.0}).passed


def test_sentences_name_the_values():
    rules = {"rmse": _rule(threshold=2.0, min_relative_change=0.1, greater_is_better=False)}
    threshold, relative = verdict({"rmse": 1.5}, rules, {"rmse": 1.6}).reasons
    assert threshold.message == "rmse: passed, 1.5 must be at most the threshold 2."
    assert relative.message == "rmse: failed, 1.5 must be 10 % below the baseline's 1.6 (<= 1.44)."


# (candidate, baseline or None, thresholds as MetricThreshold keyword arguments). Each is judged by MLflow and
# by verdict(); they must agree on passing and on which checks failed.
MLFLOW_CASES = [
    ({"a": 0.9}, None, {"a": dict(threshold=0.9, greater_is_better=True)}),
    ({"a": 0.89}, None, {"a": dict(threshold=0.9, greater_is_better=True)}),
    ({"a": 0.1}, None, {"a": dict(threshold=0.1, greater_is_better=False)}),
    ({"a": 0.11}, None, {"a": dict(threshold=0.1, greater_is_better=False)}),
    ({"a": 0.9}, {"a": 0.8}, {"a": dict(min_absolute_change=0.1, greater_is_better=True)}),  # 0.8 + 0.1 > 0.9
    ({"a": 0.9000000000000001}, {"a": 0.8}, {"a": dict(min_absolute_change=0.1, greater_is_better=True)}),
    ({"a": 0.7}, {"a": 0.8}, {"a": dict(min_absolute_change=0.1, greater_is_better=False)}),
    ({"a": 0.69}, {"a": 0.8}, {"a": dict(min_absolute_change=0.1, greater_is_better=False)}),
    ({"a": 0.88}, {"a": 0.8}, {"a": dict(min_relative_change=0.1, greater_is_better=True)}),
    ({"a": 0.881}, {"a": 0.8}, {"a": dict(min_relative_change=0.1, greater_is_better=True)}),
    ({"a": 0.72}, {"a": 0.8}, {"a": dict(min_relative_change=0.1, greater_is_better=False)}),
    ({"a": 0.7}, {"a": 0.8}, {"a": dict(min_relative_change=0.1, greater_is_better=False)}),
    ({"a": -0.45}, {"a": -0.5}, {"a": dict(min_relative_change=0.1, greater_is_better=True)}),
    ({"a": -0.46}, {"a": -0.5}, {"a": dict(min_relative_change=0.1, greater_is_better=True)}),
    ({"a": 0.0}, {"a": 0.0}, {"a": dict(min_relative_change=0.2, greater_is_better=True)}),
    ({"a": 0.1}, {"a": 0.0}, {"a": dict(min_relative_change=0.2, greater_is_better=True)}),
    ({"a": -0.1}, {"a": 0.0}, {"a": dict(min_relative_change=0.2, greater_is_better=False)}),
    ({"a": 0.95, "b": 0.2}, {"a": 0.9, "b": 0.3},
     {"a": dict(threshold=0.9, min_absolute_change=0.01, min_relative_change=0.1, greater_is_better=True),
      "b": dict(threshold=0.25, min_absolute_change=0.05, greater_is_better=False)}),
    ({"a": 0.85}, {"a": 0.9}, {"a": dict(threshold=0.9, min_absolute_change=0.01, min_relative_change=0.1,
                                        greater_is_better=True)}),
    ({"b": 0.2}, {"a": 0.9}, {"a": dict(threshold=0.5, greater_is_better=True)}),  # the candidate lacks it
    ({"a": 0.95}, None, {"a": dict(threshold=0.9, min_absolute_change=0.01, greater_is_better=True)}),
]

MLFLOW_MESSAGES = {"threshold": "value threshold check failed", "absolute_change": "minimum absolute change",
                   "relative_change": "minimum relative change", "missing_metric": "missing from the evaluation "
                                                                                   "result of the candidate"}


@pytest.mark.parametrize(("candidate", "baseline", "thresholds"), MLFLOW_CASES)
def test_verdict_agrees_with_mlflow_validate_evaluation_results(candidate, baseline, thresholds):
    import mlflow
    from mlflow.models import MetricThreshold as MlflowThreshold
    from mlflow.models.evaluation import EvaluationResult
    from mlflow.models.evaluation.validation import ModelValidationFailedException

    try:
        mlflow.validate_evaluation_results(
            {name: MlflowThreshold(**fields) for name, fields in thresholds.items()},
            EvaluationResult(metrics=candidate, artifacts={}),
            None if baseline is None else EvaluationResult(metrics=baseline, artifacts={}))
        mlflow_failures = ""
    except ModelValidationFailedException as failure:
        mlflow_failures = failure.message
    ours = verdict(candidate, {name: _rule(**fields) for name, fields in thresholds.items()}, baseline)
    assert ours.passed == (mlflow_failures == "")
    for reason in ours.reasons:
        if reason.kind in ("absolute_change", "relative_change") and reason.baseline is None:
            expected = f"metric {reason.metric} was missing from the evaluation result of the baseline"
        else:
            expected = f"{reason.metric} {MLFLOW_MESSAGES[reason.kind]}"
            if reason.kind == "missing_metric":
                expected = f"metric {reason.metric} was {MLFLOW_MESSAGES[reason.kind]}"
        assert (expected in mlflow_failures) == (not reason.passed), (reason, mlflow_failures)
