"""Each metric of aitip.evaluation.metrics against scikit-learn on fixed inputs: binary and multiclass, with and
without probabilities, ties among the scores, classes that never occur; regression; and the result's shape
(plain JSON values only)."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from sklearn import metrics as sk
from sklearn.calibration import calibration_curve
from sklearn.preprocessing import label_binarize

from aitip.errors import InvalidInput
from aitip.evaluation.metrics import classification, regression

CLASSES = np.array(["bird", "cat", "dog", "fish"])


def _plain_json(value: object) -> None:
    """Only dict, list, str, int, float, bool and None, all the way down, and finite."""
    if isinstance(value, dict):
        assert all(isinstance(key, str) for key in value)
        for item in value.values():
            _plain_json(item)
    elif isinstance(value, list):
        for item in value:
            _plain_json(item)
    else:
        assert value is None or type(value) in (str, int, float, bool), (type(value), value)
    json.dumps(value, allow_nan=False)


def _multiclass(rows: int = 400, seed: int = 3, decimals: int | None = None):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, len(CLASSES), rows)
    logits = rng.normal(size=(rows, len(CLASSES))) + 1.5 * np.eye(len(CLASSES))[truth]
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    if decimals is not None:  # coarse scores: many ties
        proba = np.round(proba, decimals)
        proba /= proba.sum(axis=1, keepdims=True)
    return CLASSES[truth], CLASSES[proba.argmax(axis=1)], proba


def _binary(rows: int = 300, seed: int = 5):
    rng = np.random.default_rng(seed)
    truth = rng.random(rows) < 0.3
    positive = np.clip(0.35 * truth + rng.random(rows) * 0.65, 0, 1).round(2)
    labels = np.array(["negative", "positive"])
    return labels[truth.astype(int)], labels[(positive > 0.5).astype(int)], positive


def test_multiclass_agrees_with_scikit_learn():
    y_true, y_pred, proba = _multiclass()
    result = classification(y_true, y_pred, proba)
    metrics = result["metrics"]
    assert result["task"] == "classification"
    expected = {
        "example_count": len(y_true),
        "accuracy_score": sk.accuracy_score(y_true, y_pred),
        "log_loss": sk.log_loss(y_true, proba, labels=CLASSES),
        "roc_auc": sk.roc_auc_score(y_true, proba, multi_class="ovr", average="weighted"),
        "roc_auc_macro": sk.roc_auc_score(y_true, proba, multi_class="ovr", average="macro"),
        "roc_auc_weighted": sk.roc_auc_score(y_true, proba, multi_class="ovr", average="weighted"),
        "precision_recall_auc_macro": sk.average_precision_score(label_binarize(y_true, classes=CLASSES), proba,
                                                                 average="macro"),
        "precision_recall_auc_weighted": sk.average_precision_score(label_binarize(y_true, classes=CLASSES), proba,
                                                                    average="weighted"),
    }
    for name, function in (("precision_score", sk.precision_score), ("recall_score", sk.recall_score),
                           ("f1_score", sk.f1_score)):
        expected[name] = function(y_true, y_pred, average="weighted")  # MLflow's multiclass average
        for average in ("macro", "weighted"):
            expected[f"{name}_{average}"] = function(y_true, y_pred, average=average)
    assert set(expected) <= set(metrics)
    for name, value in expected.items():
        assert metrics[name] == pytest.approx(value, rel=1e-12, abs=1e-12), name
    assert "precision_recall_auc" not in metrics  # MLflow reports it for two classes only
    assert result["plots"]["confusion_matrix"] == {
        "labels": CLASSES.tolist(), "matrix": sk.confusion_matrix(y_true, y_pred, labels=CLASSES).tolist()}
    precision, recall, f1, support = sk.precision_recall_fscore_support(y_true, y_pred, labels=CLASSES)
    per_class_auc = sk.roc_auc_score(label_binarize(y_true, classes=CLASSES), proba, average=None)
    for row, *values in zip(result["tables"]["per_class"], CLASSES, precision, recall, f1, support, per_class_auc):
        assert [row["class"], row["support"]] == [values[0], values[4]]
        assert [row["precision"], row["recall"], row["f1"], row["roc_auc"]] == pytest.approx(
            [values[1], values[2], values[3], values[5]], rel=1e-12)
    _plain_json(result)


def test_binary_takes_the_last_sorted_label_as_positive_as_mlflow_does():
    y_true, y_pred, positive = _binary()
    result = classification(y_true, y_pred, positive)
    metrics = result["metrics"]
    tn, fp, fn, tp = sk.confusion_matrix(y_true, y_pred).ravel()
    assert [metrics[n] for n in ("true_negatives", "false_positives", "false_negatives", "true_positives")] == \
        [tn, fp, fn, tp]
    expected = {
        "accuracy_score": sk.accuracy_score(y_true, y_pred),
        "precision_score": sk.precision_score(y_true, y_pred, pos_label="positive"),
        "recall_score": sk.recall_score(y_true, y_pred, pos_label="positive"),
        "f1_score": sk.f1_score(y_true, y_pred, pos_label="positive"),
        "f1_score_macro": sk.f1_score(y_true, y_pred, average="macro"),
        "f1_score_weighted": sk.f1_score(y_true, y_pred, average="weighted"),
        "log_loss": sk.log_loss(y_true, positive),
        "roc_auc": sk.roc_auc_score(y_true == "positive", positive),
        "precision_recall_auc": sk.average_precision_score(y_true == "positive", positive),
        "precision_recall_auc_macro": np.mean([sk.average_precision_score(y_true == "positive", positive),
                                               sk.average_precision_score(y_true == "negative", 1 - positive)]),
    }
    for name, value in expected.items():
        assert metrics[name] == pytest.approx(value, rel=1e-12), name
    # The positive column alone and both columns give the same result.
    assert classification(y_true, y_pred, np.column_stack([1 - positive, positive])) == result
    # Labels in another order (proba columns follow them): the positive class is still the last sorted one.
    reordered = classification(y_true, y_pred, np.column_stack([positive, 1 - positive]),
                               labels=["positive", "negative"])
    assert reordered["metrics"] == result["metrics"]
    assert classification(y_true, y_pred, positive, labels=["positive", "negative"])["metrics"] == result["metrics"]
    prob_true, prob_pred = calibration_curve(y_true == "positive", positive, n_bins=10)
    calibration = result["plots"]["calibration"]
    assert calibration["kind"] == "positive_class"
    assert calibration["observed"] == pytest.approx(prob_true, rel=1e-5)
    assert calibration["predicted"] == pytest.approx(prob_pred, rel=1e-5)
    assert sum(calibration["count"]) == len(y_true) and len(calibration["bins"]) == len(prob_true)
    _plain_json(result)


@pytest.mark.parametrize("decimals", [None, 1])
def test_curves_agree_with_scikit_learn_curves_ties_included(decimals):
    y_true, y_pred, proba = _multiclass(rows=300, decimals=decimals)
    result = classification(y_true, y_pred, proba, curve_points=10**6)
    for index, label in enumerate(CLASSES):
        fpr, tpr, _ = sk.roc_curve(y_true == label, proba[:, index])
        roc = result["plots"]["roc"][index]
        assert roc["label"] == label
        assert roc["fpr"] == pytest.approx(fpr, rel=1e-5) and roc["tpr"] == pytest.approx(tpr, rel=1e-5)
        assert roc["auc"] == pytest.approx(sk.roc_auc_score(y_true == label, proba[:, index]), rel=1e-12)
        precision, recall, _ = sk.precision_recall_curve(y_true == label, proba[:, index])
        pr = result["plots"]["pr"][index]
        assert pr["recall"] == pytest.approx(recall[::-1], rel=1e-5)
        assert pr["precision"] == pytest.approx(precision[::-1], rel=1e-5)
        assert pr["auc"] == pytest.approx(sk.average_precision_score(y_true == label, proba[:, index]), rel=1e-12)


def test_long_curves_are_thinned_but_their_areas_are_exact():
    y_true, y_pred, proba = _multiclass(rows=5000, seed=11)
    result = classification(y_true, y_pred, proba, curve_points=200)
    for index, roc in enumerate(result["plots"]["roc"]):
        assert 2 < len(roc["fpr"]) <= 200 and len(roc["fpr"]) == len(roc["tpr"])
        assert (roc["fpr"][0], roc["tpr"][0], roc["fpr"][-1], roc["tpr"][-1]) == (0, 0, 1, 1)
        assert np.all(np.diff(roc["fpr"]) >= 0) and np.all(np.diff(roc["tpr"]) >= 0)
        assert roc["auc"] == pytest.approx(sk.roc_auc_score(y_true == CLASSES[index], proba[:, index]), rel=1e-12)
    for pr in result["plots"]["pr"]:
        assert 2 < len(pr["recall"]) <= 200 and (pr["recall"][0], pr["precision"][0], pr["recall"][-1]) == (0, 1, 1)
    assert len(json.dumps(result)) < 60_000


def test_multiclass_calibration_is_top_label_confidence_against_accuracy():
    y_true, y_pred, proba = _multiclass()
    calibration = classification(y_true, y_pred, proba)["plots"]["calibration"]
    confidence = proba.max(axis=1)
    correct = CLASSES[proba.argmax(axis=1)] == y_true
    prob_true, prob_pred = calibration_curve(correct, confidence, n_bins=10)
    assert calibration["kind"] == "top_label"
    assert calibration["observed"] == pytest.approx(prob_true, rel=1e-5)
    assert calibration["predicted"] == pytest.approx(prob_pred, rel=1e-5)
    counts = np.array(calibration["count"])
    error = np.sum(counts * np.abs(prob_true - prob_pred)) / len(y_true)
    assert classification(y_true, y_pred, proba)["metrics"]["expected_calibration_error"] == pytest.approx(error)


def test_without_probabilities_there_are_no_probability_metrics_or_curves():
    y_true, y_pred, _ = _multiclass()
    result = classification(y_true, y_pred)
    assert not {"log_loss", "roc_auc", "expected_calibration_error"} & set(result["metrics"])
    assert set(result["plots"]) == {"confusion_matrix"}
    assert result["metrics"]["f1_score"] == pytest.approx(sk.f1_score(y_true, y_pred, average="weighted"))


def test_a_declared_class_that_never_occurs():
    """It has a row and a column of zeros and no curve; averages run over the classes seen, as scikit-learn's."""
    y_true, y_pred, proba = _multiclass()
    labels = [*CLASSES, "zebra"]
    padded = np.column_stack([proba * 0.9, np.full(len(proba), 0.1)])
    result = classification(y_true, y_pred, padded, labels=labels)
    assert result["plots"]["confusion_matrix"]["labels"] == labels
    assert result["plots"]["confusion_matrix"]["matrix"][-1] == [0] * 5
    assert [curve["label"] for curve in result["plots"]["roc"]] == CLASSES.tolist()
    assert result["tables"]["per_class"][-1]["roc_auc"] is None
    metrics = result["metrics"]
    assert metrics["f1_score_macro"] == pytest.approx(sk.f1_score(y_true, y_pred, average="macro"))
    assert metrics["log_loss"] == pytest.approx(sk.log_loss(y_true, padded, labels=labels))
    assert metrics["roc_auc_macro"] == pytest.approx(sk.roc_auc_score(y_true, proba, multi_class="ovr",
                                                                      average="macro"))


def test_integer_labels_stay_integers():
    result = classification([0, 1, 2, 2], [0, 2, 2, 1])
    assert result["plots"]["confusion_matrix"]["labels"] == [0, 1, 2]
    assert [row["class"] for row in result["tables"]["per_class"]] == [0, 1, 2]
    _plain_json(result)


@pytest.mark.parametrize(("call", "message"), [
    (lambda: classification([0, 1, 1], [0, 1]), "differ in length"),
    (lambda: classification([], []), "no rows"),
    (lambda: classification([1, 1], [1, 1]), "at least two classes"),
    (lambda: classification([0, 1], [0, 2], labels=[0, 1]), "not among the labels"),
    (lambda: classification([0, 1, 2], [0, 1, 2], [[0.5, 0.5]] * 3), "one column per class"),
    (lambda: classification([0, 1], [0, 1], [[0.5, 1.5], [0.2, 0.8]]), "between 0 and 1"),
    (lambda: regression([1.0, float("nan")], [1.0, 2.0]), "NaN"),
    (lambda: regression([[1, 2], [3, 4]], [1, 2]), "one value per row"),
])
def test_bad_input_is_refused_with_a_reason(call, message):
    with pytest.raises(InvalidInput, match=message):
        call()


def test_regression_agrees_with_scikit_learn():
    rng = np.random.default_rng(2)
    y_true = np.r_[0.0, rng.normal(10, 4, 999)]  # one zero target: MAPE divides by machine epsilon there
    y_pred = y_true + rng.normal(0, 1.5, 1000)
    result = regression(y_true, y_pred)
    metrics = result["metrics"]
    expected = {
        "example_count": 1000, "mean_absolute_error": sk.mean_absolute_error(y_true, y_pred),
        "mean_squared_error": sk.mean_squared_error(y_true, y_pred),
        "root_mean_squared_error": sk.root_mean_squared_error(y_true, y_pred),
        "r2_score": sk.r2_score(y_true, y_pred), "max_error": sk.max_error(y_true, y_pred),
        "mean_absolute_percentage_error": sk.mean_absolute_percentage_error(y_true, y_pred),
        "sum_on_target": y_true.sum(), "mean_on_target": y_true.mean(),
    }
    assert set(metrics) == set(expected)
    for name, value in expected.items():
        assert metrics[name] == pytest.approx(value, rel=1e-12), name
    residuals = result["plots"]["residuals"]
    residual = y_true - y_pred
    assert residuals["summary"]["p50"] == pytest.approx(np.median(residual), rel=1e-5)
    assert residuals["summary"]["max"] == pytest.approx(residual.max(), rel=1e-5)
    assert sum(residuals["histogram"]["counts"]) == 1000
    assert len(residuals["histogram"]["edges"]) == len(residuals["histogram"]["counts"]) + 1
    sample = residuals["sample"]
    assert len(sample["true"]) == len(sample["predicted"]) == 500
    assert regression(y_true, y_pred)["plots"]["residuals"]["sample"] == sample  # deterministic
    pairs = np.isclose(np.array(sample["true"])[:, None], y_true[None, :], rtol=1e-5, atol=1e-9) & \
        np.isclose(np.array(sample["predicted"])[:, None], y_pred[None, :], rtol=1e-5, atol=1e-9)
    assert pairs.any(axis=1).all()  # every point is a real (true, predicted) row
    _plain_json(result)


def test_regression_edge_cases_follow_scikit_learn():
    constant = np.full(5, 3.0)
    assert regression(constant, constant)["metrics"]["r2_score"] == sk.r2_score(constant, constant) == 1.0
    assert regression(constant, constant + 1)["metrics"]["r2_score"] == sk.r2_score(constant, constant + 1) == 0.0
    assert "r2_score" not in regression([1.0], [2.0])["metrics"]  # undefined for one row


def test_classification_costs_less_than_the_plain_scikit_learn_calls():
    """The issue's budget is 3x the plain calls (accuracy, precision, recall, F1, log loss, ROC AUC, confusion
    matrix) for the same metrics plus every curve; best of several runs each, so a busy machine cannot flip it."""
    y_true, y_pred, proba = _multiclass(rows=360)
    integer_truth, integer_pred = np.searchsorted(CLASSES, y_true), np.searchsorted(CLASSES, y_pred)

    def plain():
        sk.accuracy_score(integer_truth, integer_pred)
        for function in (sk.precision_score, sk.recall_score, sk.f1_score):
            function(integer_truth, integer_pred, average="weighted")
        sk.log_loss(integer_truth, proba)
        sk.roc_auc_score(integer_truth, proba, multi_class="ovr", average="weighted")
        sk.confusion_matrix(integer_truth, integer_pred)

    def best(function):
        times = []
        for _ in range(15):
            started = time.perf_counter()
            function()
            times.append(time.perf_counter() - started)
        return min(times)

    assert best(lambda: classification(integer_truth, integer_pred, proba)) < 3 * best(plain)
