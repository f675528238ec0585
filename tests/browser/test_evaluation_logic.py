"""The Evaluation page's logic without a browser: evaluations as table rows, deltas against the baseline, the
trend of a metric across versions, the verdict's sentences in both languages, who may evaluate, and the charts'
states. The evaluations are two real digits classifiers judged by the platform's own metrics and gates, in the
API's shape (``EvaluationDetail``)."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from typing import Any

import pytest

from aitip.evaluation import gates, metrics
from aitip.evaluation.models import EvaluationDetail
from panel_apps import evaluation_charts, evaluation_views as views
from panel_apps.language import use_language

THRESHOLDS = {"accuracy_score": {"threshold": 0.8, "greater_is_better": True},
              "f1_score": {"min_absolute_change": 0.0001, "greater_is_better": True}}


@lru_cache(maxsize=None)
def trained_results() -> tuple[dict[str, Any], dict[str, Any]]:
    """The platform's classification result of a weak (5 iterations) and a strong (200) logistic regression on
    the digits test split."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    import warnings

    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(digits.data / 16, digits.target, test_size=0.25,
                                                        random_state=0, stratify=digits.target)
    results = []
    for iterations in (200, 5):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the weak model does not converge, on purpose
            model = LogisticRegression(max_iter=iterations).fit(x_train, y_train)
        results.append(metrics.classification(y_test, model.predict(x_test), model.predict_proba(x_test),
                                              labels=list(model.classes_)))
    return results[0], results[1]


def evaluation(identity: int, version: int, candidate: dict[str, Any], baseline: dict[str, Any] | None,
               baseline_version: int | None, *, state: str | None = None, model: str = "digits") -> dict[str, Any]:
    """An evaluation as ``evaluations.get`` answers it, judged by the platform's gates."""
    judged = gates.verdict(candidate["metrics"], {name: gates.MetricThreshold(**rule) for name, rule in
                                                  THRESHOLDS.items()},
                           baseline["metrics"] if baseline else None, missing_baseline="skip")
    moment = dt.datetime(2026, 12, 5, 3, identity, tzinfo=dt.timezone.utc)
    detail = EvaluationDetail(
        id=identity, project="vision", model=model, model_version=version, model_run_id="a" * 32,
        baseline_version=baseline_version, dataset="digits", dataset_version=1, dataset_md5="0" * 32,
        job_id=10 + identity, notebook_sha256="f" * 64, state=state or ("passed" if judged.passed else "failed"),
        trigger=f"job:{identity}", settings={"dataset": "digits", "task": "classification", "thresholds": THRESHOLDS,
                                             "label_column": "label"},
        metrics=candidate["metrics"], baseline_metrics=baseline["metrics"] if baseline else None,
        verdict=judged.model_dump(mode="json"), error=None, reason="", warnings=[], has_report=True,
        created_by="ann", created_at=moment, finished_at=moment,
        result={"candidate": candidate, "baseline": baseline,
                "profile": {"batches": [{"batch_size": 1, "calls": 20, "latency_ms": {"p50": 0.2, "p95": 0.3,
                                                                                      "p99": 0.4, "mean": 0.2},
                                         "throughput_rows_per_s": 5000.0}]},
                "data": {"rows": 450, "total_rows": 1797, "split": "test"}})
    return detail.model_dump(mode="json")


def two_versions() -> list[dict[str, Any]]:
    """Version 1 (the strong model) passed; version 2 (the weak one) judged against it, newest first."""
    strong, weak = trained_results()
    first = evaluation(1, 1, strong, None, None)
    second = evaluation(2, 2, weak, strong, 1)
    return [second, first]


def test_each_evaluation_is_a_row_with_its_headline_metric_and_change_against_the_baseline() -> None:
    second, first = two_versions()
    assert (first["state"], second["state"]) == ("passed", "failed"), second["verdict"]
    frame = views.evaluations_frame([second, first])
    assert list(frame.columns) == views.TABLE_COLUMNS
    assert frame["id"].tolist() == [2, 1]
    assert frame["model"].tolist() == ["digits v2", "digits v1"] and frame["dataset"][0] == "digits v1"
    assert "data-state='failed'" in frame["state"][0] and "✗" in frame["state"][0]
    assert frame["headline"][0].startswith("accuracy_score 0.")
    assert frame["baseline"].tolist() == ["v1", ""] and frame["change"][1] == ""
    delta = second["metrics"]["accuracy_score"] - first["metrics"]["accuracy_score"]
    assert delta < 0 and frame["change"][0].startswith(f"{delta:+.4g} (")
    assert frame["trigger"][0] == "started by training job 2"


def test_the_comparison_puts_the_gated_metrics_first_and_judges_each_difference() -> None:
    second, _first = two_versions()
    rows = views.comparison_rows(second).set_index("metric")
    assert list(rows.index[:2]) == ["accuracy_score", "f1_score"] and rows.loc["f1_score", "gated"]
    assert rows.loc["accuracy_score", "tone"] == "worse"
    assert rows.loc["log_loss", "greater_is_better"] is False and rows.loc["log_loss", "tone"] == "worse", \
        "a higher loss is worse"
    assert rows.loc["example_count", "tone"] == "neutral" and rows.loc["example_count", "delta"] == 0
    base = second["baseline_metrics"]["f1_score"]
    assert rows.loc["f1_score", "relative"] == pytest.approx(100 * (second["metrics"]["f1_score"] - base) / base)
    assert views.change(1.0, 0.0, True) == {"delta": 1.0, "relative": None, "tone": "better"}
    assert views.change(None, 0.5, True) is None


def test_the_trend_takes_each_versions_newest_judged_evaluation() -> None:
    second, first = two_versions()
    strong, _weak = trained_results()
    again = evaluation(3, 1, strong, None, None)  # version 1 evaluated again, later
    running = {**evaluation(4, 3, strong, None, None), "state": "running", "verdict": None}
    other = evaluation(5, 1, strong, None, None, model="other")
    listed = [other, running, again, second, first]
    trend = views.trend_frame(listed, "digits", "accuracy_score")
    assert trend["version"].tolist() == [1, 2] and trend["evaluation"].tolist() == [3, 2]
    assert trend["state"].tolist() == ["passed", "failed"]
    assert views.trend_frame(listed, "digits", "no_such_metric").empty
    names = views.trend_metrics(views.model_evaluations(listed, "digits"))
    assert names[:2] == ["accuracy_score", "f1_score"] and "example_count" not in names
    assert views.default_evaluation(listed, None) == 5, "the newest judged one"
    assert views.default_evaluation(listed, "2") == 2 and views.default_evaluation(listed, "99") == 5
    assert views.default_evaluation([], None) is None


def test_the_verdict_reads_in_english_and_chinese() -> None:
    from aitip.evaluation import reports

    second, _first = two_versions()
    english = views.verdict_html(reports.context(second, "en"))
    assert "Failed: a check did not hold." in english
    assert "f1_score is" in english and "above the baseline" in english
    assert "data-outcome='failed' data-metric='f1_score'" in english
    with use_language("zh_CN"):
        chinese = views.verdict_html(reports.context(second, "zh_CN"))
    assert "未通过" in chinese and "Failed" not in chinese and "f1_score 为" in chinese
    facts = views.facts_html(reports.context(second, "en"))
    assert "0" * 32 in facts and "f" * 64 in facts and "a" * 32 in facts, "dataset MD5, notebook SHA, model run"
    with use_language("zh_CN"):
        table = views.metrics_table_html(views.comparison_rows(second), 1)
        assert "基线 v1" in table and "accuracy_score" in table
        assert "尚无" in views.empty_state("vision", "digits") and "aitip evaluation-policies set" in \
            views.empty_state("vision", "digits")
    assert "No evaluations of digits in vision yet." in views.empty_state("vision", "digits")


@pytest.mark.parametrize(("role", "admin", "refused"), [
    ("viewer", False, "Evaluating a model in vision needs the developer role; you are viewer."),
    ("developer", False, None), ("maintainer", False, None), (None, True, None),
    (None, False, "you are not a member"),
])
def test_only_developers_and_above_may_evaluate(role: str | None, admin: bool, refused: str | None) -> None:
    me = {"name": "x", "admin": admin, "projects": [{"project": "vision", "role": role}] if role else []}
    refusal = views.evaluate_refusal(me, "vision")
    assert refusal is None if refused is None else refused in refusal
    assert views.may_manage_policy(me, "vision") is (admin or role == "maintainer")


def test_the_charts_say_what_they_show_or_why_they_are_empty() -> None:
    second, first = two_versions()
    plots = second["result"]["candidate"]["plots"]
    confusion = evaluation_charts.confusion_figure(plots)
    assert "classes-10" in confusion.css_classes
    assert sum(confusion.renderers[0].data_source.data["count"]) == 450
    assert "curves-10" in evaluation_charts.curves_figure(plots, "roc").css_classes
    assert "curves-10" in evaluation_charts.curves_figure(plots, "pr").css_classes
    assert "empty" in evaluation_charts.curves_figure({}, "roc").css_classes
    rows = views.comparison_rows(second)
    compared = evaluation_charts.comparison_figure(rows, 1)
    assert "empty" not in compared.css_classes
    shown = compared.renderers[0].data_source.data
    assert "example_count" not in " ".join(shown["metric"]) and all(value < 0 for value in shown["relative"][-2:])
    assert "empty" in evaluation_charts.comparison_figure(views.comparison_rows(first), None).css_classes
    # One change far beyond the others does not flatten them: it is cut at the axis's edge, its label says how far.
    assert evaluation_charts.axis_extent([436.0, 243.0, 8.7, 8.4, 1.0]) == 8.7
    assert evaluation_charts.axis_extent([3.0, 2.0]) == 3.0 and evaluation_charts.axis_extent([]) == 1.0
    extent = compared.x_range.end / 2.2
    assert max(abs(value) for value in shown["drawn"]) <= extent + 1e-9
    assert all(label.endswith("▸") for label, value in zip(shown["text"], shown["relative"]) if abs(value) > extent)
    trend = evaluation_charts.trend_figure(views.trend_frame([second, first], "digits", "accuracy_score"),
                                           "accuracy_score", "digits")
    assert "points-2" in trend.css_classes
    low, high = trend.y_range.start, trend.y_range.end
    assert low > 0.5 and high < 1.01, "the axis spans the values, not 0 to 1"


def test_the_policy_says_each_threshold_whole_in_the_pages_language() -> None:
    """A threshold and a change over the baseline on one metric are both said, in the CLI's words, translated."""
    policy = {"automatic": True, "updated_by": "may", "settings": {"dataset": "digits", "thresholds": {
        "f1_score": {"threshold": 0.97, "min_absolute_change": 0.01},
        "log_loss": {"greater_is_better": False, "min_relative_change": 0.05}}}}
    english = views.policy_html(policy, "digits-mlp", "vision", may_manage=True)
    assert "f1_score ≥ 0.97, 0.01 better than the baseline, log_loss 5 % better than the baseline" in english
    with use_language("zh_CN"):
        chinese = views.policy_html(policy, "digits-mlp", "vision", may_manage=True)
    assert "f1_score ≥ 0.97, 比基线好 0.01, log_loss 比基线好 5 %" in chinese, chinese
