"""The evaluation report, HTML and PDF, in both languages: rendered from a real digits classifier's evaluation
(metrics and curves computed with scikit-learn, latency timed), read back from the PDF with pypdf, and checked
for what a reader must find there, for an evaluation in error, and for hostile strings."""

from __future__ import annotations

from html import unescape
import io
import re
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from aitip.evaluation import reports
from aitip.i18n import translator

LANGUAGES = ("en", "zh_CN")
TITLES = {"en": "Evaluation report", "zh_CN": "评估报告"}


def classification_result(y_true: np.ndarray, proba: np.ndarray, classes: np.ndarray) -> dict[str, Any]:
    """One model's result in the platform's shape (aitip.evaluation.metrics.classification), from scikit-learn."""
    from sklearn import metrics
    from sklearn.calibration import calibration_curve

    predicted = classes[proba.argmax(axis=1)]
    precision, recall, f1, support = metrics.precision_recall_fscore_support(y_true, predicted, labels=classes,
                                                                             zero_division=0)
    roc, pr, roc_auc, average_precision = [], [], [], []
    for index, label in enumerate(classes):
        relevant = y_true == label
        fpr, tpr, _ = metrics.roc_curve(relevant, proba[:, index])
        pr_precision, pr_recall, _ = metrics.precision_recall_curve(relevant, proba[:, index])
        roc_auc.append(metrics.roc_auc_score(relevant, proba[:, index]))
        average_precision.append(metrics.average_precision_score(relevant, proba[:, index]))
        roc.append({"label": str(label), "fpr": fpr.tolist(), "tpr": tpr.tolist(), "auc": roc_auc[-1]})
        pr.append({"label": str(label), "recall": pr_recall[::-1].tolist(), "precision": pr_precision[::-1].tolist(),
                   "auc": average_precision[-1]})
    confidence = proba.max(axis=1)
    observed, mean_predicted = calibration_curve(predicted == y_true, confidence, n_bins=10)
    result_metrics = {
        "example_count": len(y_true), "accuracy_score": metrics.accuracy_score(y_true, predicted),
        "f1_score": metrics.f1_score(y_true, predicted, average="weighted"),
        "f1_score_macro": metrics.f1_score(y_true, predicted, average="macro"),
        "precision_score": metrics.precision_score(y_true, predicted, average="weighted"),
        "recall_score": metrics.recall_score(y_true, predicted, average="weighted"),
        "log_loss": metrics.log_loss(y_true, proba, labels=classes),
        "roc_auc": metrics.roc_auc_score(y_true, proba, multi_class="ovr", average="weighted"),
    }
    return {
        "task": "classification", "metrics": {name: float(value) for name, value in result_metrics.items()},
        "tables": {"per_class": [
            {"class": int(label), "precision": float(p), "recall": float(r), "f1": float(f), "support": int(s),
             "roc_auc": float(auc), "precision_recall_auc": float(ap)}
            for label, p, r, f, s, auc, ap in zip(classes, precision, recall, f1, support, roc_auc, average_precision)]},
        "plots": {"confusion_matrix": {"labels": classes.tolist(),
                                       "matrix": metrics.confusion_matrix(y_true, predicted, labels=classes).tolist()},
                  "roc": roc, "pr": pr,
                  "calibration": {"kind": "top_label", "observed": observed.tolist(),
                                  "predicted": mean_predicted.tolist(), "bins": [], "count": []}},
    }


def timed_profile(predict: Any, rows: np.ndarray) -> dict[str, Any]:
    """Latency of ``predict`` at batch sizes 1 and 32, as the platform's profiler reports it."""
    batches = []
    for size in (1, 32):
        batch = rows[np.arange(size) % len(rows)]
        seconds = []
        for _ in range(20):
            started = time.perf_counter()
            predict(batch)
            seconds.append(time.perf_counter() - started)
        milliseconds = np.array(seconds) * 1000
        p50, p95, p99 = np.percentile(milliseconds, [50, 95, 99])
        batches.append({"batch_size": size, "calls": len(seconds), "throughput_rows_per_s": size * len(seconds) / sum(seconds),
                        "latency_ms": {"p50": p50, "p95": p95, "p99": p99, "mean": milliseconds.mean()}})
    return {"batches": batches, "memory": {"peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024},
            "model_size": {"bytes": 81_234, "source": "pickle", "reason": None}, "gpu": None,
            "gpu_reason": "no NVIDIA driver or GPU", "wall_s": 0.2}


def digits_evaluation_answer() -> dict[str, Any]:
    """A passed evaluation of a logistic regression on digits against a decision-tree baseline, as the platform
    answers it (benchmarks/evaluation_report.py renders it too)."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.tree import DecisionTreeClassifier

    features, labels = load_digits(return_X_y=True)
    train_x, test_x, train_y, test_y = train_test_split(features, labels, test_size=0.25, random_state=0)
    candidate = LogisticRegression(max_iter=2000).fit(train_x, train_y)
    baseline = DecisionTreeClassifier(max_depth=8, random_state=0).fit(train_x, train_y)
    classes = candidate.classes_
    candidate_result = classification_result(test_y, candidate.predict_proba(test_x), classes)
    baseline_result = classification_result(test_y, baseline.predict_proba(test_x), classes)
    accuracy, base_accuracy = candidate_result["metrics"]["accuracy_score"], baseline_result["metrics"]["accuracy_score"]
    return {
        "id": 3, "project": "alpha", "model": "digits-logreg", "model_version": 2, "model_run_id": "9f" * 16,
        "baseline_version": 1, "dataset": "digits", "dataset_version": 1, "dataset_md5": "3c5d2b0e9a7f41d6b8e2a1c0f9d8e7b6",
        "job_id": 7, "notebook_sha256": "ab12" * 16, "state": "passed", "trigger": "job:5",
        "settings": {"task": "classification", "label_column": "label", "baseline": "previous", "thresholds": {
            "accuracy_score": {"threshold": 0.8, "min_absolute_change": 0.01, "min_relative_change": None,
                               "greater_is_better": True}}},
        "metrics": candidate_result["metrics"], "baseline_metrics": baseline_result["metrics"],
        "verdict": {"passed": True, "reasons": [
            {"metric": "accuracy_score", "kind": "threshold", "candidate": accuracy, "baseline": None, "bound": 0.8,
             "required": 0.8, "greater_is_better": True, "passed": accuracy >= 0.8, "skipped": False, "message": ""},
            {"metric": "accuracy_score", "kind": "absolute_change", "candidate": accuracy, "baseline": base_accuracy,
             "bound": base_accuracy + 0.01, "required": 0.01, "greater_is_better": True,
             "passed": accuracy >= base_accuracy + 0.01, "skipped": False, "message": ""}]},
        "error": None, "reason": "", "warnings": ["3 rows of the test split also appear in the training data"],
        "has_report": False, "created_by": "carol", "created_at": "2026-12-05T03:00:00+00:00",
        "finished_at": "2026-12-05T03:00:41+00:00",
        "result": {"candidate": candidate_result, "baseline": baseline_result,
                   "profile": timed_profile(candidate.predict, test_x),
                   "data": {"rows": len(test_y), "total_rows": len(labels), "split": "test"}},
    }


@pytest.fixture(scope="module")
def digits_evaluation() -> dict[str, Any]:
    return digits_evaluation_answer()


def pdf_pages(pdf: bytes) -> tuple[int, str]:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(pdf))
    return len(reader.pages), "\n".join(page.extract_text() for page in reader.pages)


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_html_report_shows_what_was_judged_and_how_it_did(digits_evaluation: dict[str, Any], language: str) -> None:
    html = reports.render_html(digits_evaluation, language)
    _ = translator(language)
    accuracy = digits_evaluation["metrics"]["accuracy_score"]
    assert f'<html lang="{language.replace("_", "-")}">' in html
    assert TITLES[language] in html and _("Passed") in html
    for exact in ("digits-logreg", "9f" * 16, "3c5d2b0e9a7f41d6b8e2a1c0f9d8e7b6", "ab12" * 16,
                  "3 rows of the test split also appear in the training data"):
        assert exact in html
    assert reports.number(accuracy) in html and f"{100 * accuracy:.1f}" in html
    assert reports.number(digits_evaluation["baseline_metrics"]["accuracy_score"]) in html
    for words in ("Confusion matrix", "Per class", "ROC curve", "Precision–recall curve", "Calibration", "Profile",
                  "Accuracy", "Latency p50 at batch {size}", "True class", "Predicted class"):
        assert _(words).split("{")[0] in html
    assert _("started by training job {job}").format(job=5) in html
    matrix = digits_evaluation["result"]["candidate"]["plots"]["confusion_matrix"]["matrix"]
    cells = re.findall(r'<td style="background: rgba[^"]*">(\d+)</td>', html)
    assert [int(cell) for cell in cells] == [count for row in matrix for count in row]
    assert html.count("<polyline") >= 21  # ten ROC curves, ten PR curves, the calibration line
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    # the gated metric beat the baseline: its difference is green
    assert re.search(r'<td class="num better">\+[0-9.e-]+</td>', html)


def test_chinese_and_english_say_the_verdict_in_their_own_words(digits_evaluation: dict[str, Any]) -> None:
    english, chinese = (unescape(reports.render_html(digits_evaluation, language)) for language in LANGUAGES)
    assert "it must be at least 0.8." in english and "须不低于 0.8。" in chinese
    assert "must be 0.01 above the baseline's" in english and "须比基线的" in chinese
    assert "混淆矩阵" in chinese and "混淆矩阵" not in english
    assert "第 " in chinese and "页，共 " in chinese  # the footer's page counter, in CSS
    assert 'counter(page) " of " counter(pages)' in english.replace("\\20 ", " ")


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_pdf_prints_every_section_on_a4_and_carries_the_text(digits_evaluation: dict[str, Any],
                                                                  language: str) -> None:
    pdf = reports.render_pdf(digits_evaluation, language)
    assert pdf.startswith(b"%PDF-")
    pages, text = pdf_pages(pdf)
    assert 3 <= pages <= 8
    compact = re.sub(r"\s+", "", text)
    assert TITLES[language].replace(" ", "") in compact
    assert "digits-logreg" in compact and reports.number(digits_evaluation["metrics"]["accuracy_score"]) in compact
    assert translator(language)("Confusion matrix").replace(" ", "") in compact
    from pypdf import PdfReader

    width, height = PdfReader(io.BytesIO(pdf)).pages[0].mediabox.upper_right
    assert (round(float(width)), round(float(height))) == (595, 842)  # A4 in points


def failed_cell_evaluation() -> dict[str, Any]:
    return {
        "id": 9, "project": "alpha", "model": "digits-logreg", "model_version": 3, "model_run_id": None,
        "baseline_version": None, "dataset": "digits", "dataset_version": 1, "dataset_md5": "0" * 32, "job_id": 11,
        "notebook_sha256": "c" * 64, "state": "error", "trigger": "manual", "settings": {"task": "classification"},
        "metrics": None, "baseline_metrics": None, "verdict": None, "result": None, "reason": "", "warnings": [],
        "error": {"code": "cell_failed", "message": "the custom metric raised", "failed_cell": {
            "index": 4, "source": "scores = my_metric(y_true, y_pred)\nprint(scores['f1'])",
            "ename": "ZeroDivisionError", "evalue": "division by zero",
            "traceback": "\x1b[0;31m---------------------------------------------------------------------------\x1b[0m\n"
                         "\x1b[0;31mZeroDivisionError\x1b[0m Traceback (most recent call last)\n"
                         "Cell \x1b[0;32mIn[4], line 1\x1b[0m\n----> 1 scores = my_metric(y_true, y_pred)\n"
                         "File <my_metrics>:3, in my_metric(a, b)\n\x1b[0;31mZeroDivisionError\x1b[0m: division by zero"}},
        "has_report": False, "created_by": "carol", "created_at": "2026-12-05T04:00:00+00:00",
        "finished_at": "2026-12-05T04:00:09+00:00",
    }


@pytest.mark.parametrize("language", LANGUAGES)
def test_an_evaluation_in_error_shows_its_failed_cell_and_no_verdict(language: str) -> None:
    evaluation = failed_cell_evaluation()
    html = reports.render_html(evaluation, language)
    _ = translator(language)
    assert _("Error") in html and _("No verdict was made: the evaluation did not run to its end.") in html
    assert "scores = my_metric(y_true, y_pred)" in html and "ZeroDivisionError: division by zero" in html
    assert "File &lt;my_metrics&gt;:3, in my_metric(a, b)" in html  # the traceback, escaped
    assert "\x1b" not in html and "[0;31m" not in html  # terminal colours stripped
    assert 'class="verdict"' not in html and _("Confusion matrix") not in html
    pages, text = pdf_pages(reports.render_pdf(evaluation, language))
    assert pages == 1 and "ZeroDivisionError" in text


def test_hostile_strings_are_escaped_everywhere(digits_evaluation: dict[str, Any]) -> None:
    evaluation = {**digits_evaluation, "model": "<script>alert(1)</script>", "warnings": ["</style><b>bold</b>"],
                  "created_by": '"><img src=x onerror=alert(2)>'}
    result = {**evaluation["result"], "candidate": {**evaluation["result"]["candidate"]}}
    plots = {**result["candidate"]["plots"]}
    plots["confusion_matrix"] = {**plots["confusion_matrix"],
                                 "labels": ["<svg onload=alert(3)>", *plots["confusion_matrix"]["labels"][1:]]}
    plots["roc"] = [{**plots["roc"][0], "label": "<i>x</i>"}, *plots["roc"][1:]]
    result["candidate"]["plots"] = plots
    evaluation["result"] = result
    evaluation["verdict"] = {"passed": False, "reasons": [{**evaluation["verdict"]["reasons"][0],
                                                           "metric": "<b>acc</b>", "passed": False}]}
    for language in LANGUAGES:
        html = reports.render_html(evaluation, language)
        for raw in ("<script>alert", "<b>bold</b>", "<img src=x", "<svg onload", "<i>x</i>", "<b>acc</b>"):
            assert raw not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;svg onload=alert(3)&gt;" in html
        assert "&lt;i&gt;x&lt;/i&gt;" in html and html.count("</style>") == 1
    _, text = pdf_pages(reports.render_pdf(evaluation, "en"))
    assert "<script>alert(1)</script>" in text  # printed as text, not run


def test_a_css_string_cannot_end_itself_or_the_style_element() -> None:
    literal = reports._css_string('a"b\\c</style>d')
    assert literal.startswith('"') and literal.endswith('"') and '"' not in literal[1:-1]
    assert "</style" not in literal and "\\" in literal


def test_write_reports_replaces_both_files_atomically(digits_evaluation: dict[str, Any], tmp_path: Path) -> None:
    directory = tmp_path / "evaluations" / "3"
    html_path, pdf_path = reports.write_reports(digits_evaluation, directory, "zh_CN")
    assert (html_path.name, pdf_path.name) == ("report.zh_CN.html", "report.zh_CN.pdf")
    assert "评估报告" in html_path.read_text(encoding="utf-8") and pdf_path.read_bytes().startswith(b"%PDF-")
    again = reports.write_reports({**digits_evaluation, "state": "failed"}, directory, "zh-Hans")
    assert again == (html_path, pdf_path)
    assert "未通过" in html_path.read_text(encoding="utf-8")
    assert sorted(path.name for path in directory.iterdir()) == ["report.zh_CN.html", "report.zh_CN.pdf"]
    assert html_path.stat().st_mode & 0o777 == 0o644


def test_a_regression_report_draws_its_residuals() -> None:
    rng = np.random.default_rng(0)
    truth = rng.normal(10, 3, 200)
    predicted = truth + rng.normal(0, 1, 200)
    residual = truth - predicted
    counts, edges = np.histogram(residual, bins=30)
    evaluation = {
        "id": 5, "model": "prices", "model_version": 1, "dataset": "houses", "dataset_version": 2, "state": "passed",
        "settings": {"task": "regression"}, "metrics": {"root_mean_squared_error": float(np.sqrt(np.mean(residual ** 2))),
                                                        "r2_score": 0.9},
        "result": {"candidate": {"task": "regression", "metrics": {}, "tables": {}, "plots": {"residuals": {
            "summary": {"mean": float(residual.mean()), "p50": float(np.median(residual))},
            "histogram": {"edges": edges.tolist(), "counts": counts.tolist()},
            "sample": {"true": truth.tolist(), "predicted": predicted.tolist()}}}}},
    }
    html = reports.render_html(evaluation, "en")
    assert html.count('fill-opacity="0.75"') == 30  # one bar per histogram bin
    assert html.count("<circle") == 200  # one dot per sampled row
    assert "Root mean squared error" in html and "Confusion matrix" not in html
    pages, text = pdf_pages(reports.render_pdf(evaluation, "zh_CN"))
    assert pages >= 2 and "残差" in text


@pytest.mark.parametrize("state", ["queued", "running"])
def test_an_unfinished_evaluation_renders_what_is_known(state: str) -> None:
    html = reports.render_html({"id": 1, "state": state, "model": "m", "model_version": 1}, "zh_CN")
    assert "此评估尚未结束" in html and 'class="verdict"' not in html
    assert translator("zh_CN")(state.capitalize()) in html


@pytest.mark.parametrize("reason, english, chinese", [
    ({"kind": "threshold", "candidate": 0.79, "required": 0.8, "greater_is_better": True},
     "acc is 0.79; it must be at least 0.8.", "acc 为 0.79；须不低于 0.8。"),
    ({"kind": "threshold", "candidate": 0.3, "required": 0.25, "greater_is_better": False},
     "acc is 0.3; it must be at most 0.25.", "acc 为 0.3；须不高于 0.25。"),
    ({"kind": "relative_change", "candidate": 0.9, "baseline": 0.8, "bound": 0.84, "required": 0.05,
      "greater_is_better": True},
     "acc is 0.9; it must be 5.00 % above the baseline's 0.8 (at least 0.84).",
     "acc 为 0.9；须比基线的 0.8 高出 5.00%（至少 0.84）。"),
    ({"kind": "absolute_change", "candidate": 0.9, "baseline": None, "required": 0.01, "skipped": True,
      "greater_is_better": True},
     "acc: there is no baseline to compare with; the check is skipped.", "acc：没有可比较的基线，已跳过此检查。"),
    ({"kind": "missing_metric", "greater_is_better": True},
     "acc: the candidate's results have no such metric.", "acc：候选模型的结果中没有此指标。"),
    ({"kind": "a_kind_from_the_future", "message": "acc: judged some new way."}, "acc: judged some new way.",
     "acc: judged some new way."),
])
def test_each_verdict_reason_reads_in_both_languages(reason: dict[str, Any], english: str, chinese: str) -> None:
    reason = {"metric": "acc", **reason}
    assert reports.reason_sentence(reason, translator("en")) == english
    assert reports.reason_sentence(reason, translator("zh_CN")) == chinese
