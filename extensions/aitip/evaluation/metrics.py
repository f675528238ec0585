"""Evaluation metrics by task, computed with numpy from one confusion matrix and one sort of the scores, so
that an evaluation's metrics, curves and verdict cost about what a few plain scikit-learn calls do. Runs in
job kernels: imports nothing heavier than numpy.

Names follow ``mlflow.models.evaluate``'s default evaluator (MLflow 3.x) where both compute a metric, so a
gate written for MLflow reads the same here: for two classes ``precision_score``/``recall_score``/``f1_score``
are the positive class's (the last of the sorted labels) and ``precision_recall_auc`` is its average
precision; for more classes they are ``weighted`` averages and ``roc_auc`` is one-vs-rest weighted. The
``_macro`` and ``_weighted`` names are added for every task size.

Every result is ``{"task", "metrics", "tables", "plots"}`` of plain JSON values. Metrics keep full precision
(a gate compares them exactly); curves, histograms and samples are rounded to 6 significant digits and thinned
so that a report stays small."""

from __future__ import annotations

import math
import numbers
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import InvalidInput

CURVE_POINTS = 200
CALIBRATION_BINS = 10
RESIDUAL_BINS = 30
SAMPLE_POINTS = 500
METRIC_NAME_MAX_LENGTH = 250
# What MLflow accepts in a metric name (mlflow.utils.validation): letters, digits, _ - . / : and spaces.
METRIC_NAME_PATTERN = re.compile(r"^[\w\-./: ]+$")


Sized = Sequence[Any] | np.ndarray


# ----- shared helpers -----

def _significant(values: Any, digits: int = 6) -> list[float]:
    """Plain floats rounded to ``digits`` significant digits: what a plot needs, a fraction of the bytes."""
    array = np.asarray(values, dtype=float)
    scale = np.ones_like(array)
    nonzero = np.isfinite(array) & (array != 0)
    scale[nonzero] = 10.0 ** (digits - 1 - np.floor(np.log10(np.abs(array[nonzero]))))
    return (np.round(array * scale) / scale).tolist()


def _plain(value: Any) -> Any:
    """A label as a JSON value (numpy scalars become Python ones)."""
    return value.item() if isinstance(value, np.generic) else value


def _column(values: Any, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise InvalidInput("{name} must be one value per row, not an array of shape {shape}",
                           detail={"argument": name}, name=name, shape=array.shape)
    return array


def _numbers(values: Any, name: str) -> np.ndarray:
    array = _column(values, name)
    try:
        array = array.astype(float)
    except (TypeError, ValueError):
        raise InvalidInput("{name} must hold numbers", detail={"argument": name}, name=name) from None
    if not np.isfinite(array).all():
        raise InvalidInput("{name} holds NaN or infinite values (row {argmin})",
                           detail={"argument": name}, name=name, argmin=int(np.argmin(np.isfinite(array))))
    return array


def _same_length(**arrays: Sized) -> int:
    lengths = {name: len(array) for name, array in arrays.items()}
    if len(set(lengths.values())) != 1:
        raise InvalidInput("the inputs differ in length: {lengths}", detail=lengths,
                           lengths=", ".join(f"{n}={v}" for n, v in lengths.items()))
    count = next(iter(lengths.values()))
    if count == 0:
        raise InvalidInput("there are no rows to evaluate")
    return count


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0 where the denominator is 0 (scikit-learn's ``zero_division`` default)."""
    return np.divide(numerator, denominator, out=np.zeros(len(numerator)), where=denominator > 0)


def _result(task: str, metrics: dict[str, Any], tables: dict[str, Any] | None = None,
            plots: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"task": task, "metrics": {name: float(value) for name, value in metrics.items()},
            "tables": tables or {}, "plots": plots or {}}


# ----- binary curves from one sort -----

def _curve_points(sorted_scores: np.ndarray, cumulative_hits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """True and false positives at each distinct threshold, highest first (scikit-learn's ``_binary_clf_curve``)."""
    last = np.r_[np.flatnonzero(np.diff(sorted_scores)), len(sorted_scores) - 1]
    true_positives = cumulative_hits[last].astype(float)
    return true_positives, last + 1 - true_positives


def _thin(count: int, limit: int) -> np.ndarray:
    """At most ``limit`` evenly spaced indices of ``count`` points, both ends kept."""
    return np.arange(count) if count <= limit else np.unique(np.linspace(0, count - 1, limit).round().astype(int))


def _roc(true_positives: np.ndarray, false_positives: np.ndarray, limit: int) -> tuple[list, list, float]:
    positives, negatives = true_positives[-1], false_positives[-1]
    tpr, fpr = np.r_[0, true_positives] / positives, np.r_[0, false_positives] / negatives
    auc = float(np.trapezoid(tpr, fpr))
    # Collinear points add nothing to the picture (scikit-learn's drop_intermediate); then thin to `limit`.
    if len(true_positives) > 2:
        keep = np.r_[True, np.logical_or(np.diff(false_positives, 2), np.diff(true_positives, 2)), True]
        tpr, fpr = np.r_[0, true_positives[keep]] / positives, np.r_[0, false_positives[keep]] / negatives
    index = _thin(len(fpr), limit)
    return _significant(fpr[index]), _significant(tpr[index]), auc


def _precision_recall(true_positives: np.ndarray, false_positives: np.ndarray,
                      limit: int) -> tuple[list, list, float]:
    """The PR curve from recall 0 (precision 1) to the lowest threshold, and the average precision
    (``average_precision_score``, which MLflow reports as ``precision_recall_auc``)."""
    precision = true_positives / (true_positives + false_positives)
    recall = true_positives / true_positives[-1]
    average_precision = float(np.sum(np.diff(np.r_[0, recall]) * precision))
    recall, precision = np.r_[0, recall], np.r_[1, precision]
    index = _thin(len(recall), limit)
    return _significant(recall[index]), _significant(precision[index]), average_precision


def binary_auc(relevant: np.ndarray, scores: np.ndarray) -> float | None:
    """ROC AUC of ``scores`` for the boolean ``relevant``; None when only one kind of row is present."""
    order = np.argsort(-scores, kind="stable")
    true_positives, false_positives = _curve_points(scores[order], np.cumsum(relevant[order]))
    if true_positives[-1] == 0 or false_positives[-1] == 0:
        return None
    return float(np.trapezoid(np.r_[0, true_positives] / true_positives[-1],
                              np.r_[0, false_positives] / false_positives[-1]))


# ----- classification -----

def _encode(y_true: Any, y_pred: Any, labels: Sequence[Any] | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(the classes, y_true and y_pred as indices into them). Without ``labels``: the sorted classes seen."""
    truth, predicted = _column(y_true, "y_true"), _column(y_pred, "y_pred")
    count = _same_length(y_true=truth, y_pred=predicted)
    if labels is None:
        classes, codes = np.unique(np.concatenate([truth, predicted]), return_inverse=True)
        return classes, codes[:count], codes[count:]
    classes = np.asarray(labels)
    if classes.ndim != 1 or len(np.unique(classes)) != len(classes):
        raise InvalidInput("labels must be a list of distinct classes", detail={"argument": "labels"})
    order = np.argsort(classes, kind="stable")
    ordered = classes[order]

    def codes(values: np.ndarray, name: str) -> np.ndarray:
        position = np.clip(np.searchsorted(ordered, values), 0, len(ordered) - 1)
        unknown = ordered[position] != values
        if unknown.any():
            raise InvalidInput("{name} holds {plain!r}, which is not among the labels",
                               detail={"argument": name}, name=name, plain=_plain(values[unknown][0]))
        return order[position]

    return classes, codes(truth, "y_true"), codes(predicted, "y_pred")


def _probabilities(y_proba: Any, count: int, classes: int, positive: int) -> np.ndarray:
    proba = np.asarray(y_proba, dtype=float)
    if proba.ndim == 1 and classes == 2:  # the positive class's column alone
        proba = np.column_stack([1 - proba, proba] if positive == 1 else [proba, 1 - proba])
    if proba.shape != (count, classes):
        raise InvalidInput("y_proba must have one row per example and one column per class ({count} x {classes}, "
                           "in the order of labels), not {shape}; pass labels when a class never occurs",
                           detail={"argument": "y_proba"}, count=count, classes=classes, shape=proba.shape)
    if not np.isfinite(proba).all() or proba.min() < 0 or proba.max() > 1:
        raise InvalidInput("y_proba must hold probabilities between 0 and 1", detail={"argument": "y_proba"})
    return proba


def _averages(name: str, per_class: np.ndarray, weights: np.ndarray, present: np.ndarray) -> dict[str, float]:
    """The macro (over ``present`` classes) and support-weighted averages of a per-class metric."""
    return {f"{name}_macro": float(per_class[present].mean()),
            f"{name}_weighted": float((per_class * weights).sum() / weights.sum()) if weights.sum() else 0.0}


def _calibration(confidence: np.ndarray, outcome: np.ndarray, bins: int, kind: str) -> dict[str, Any]:
    """Reliability bins as ``sklearn.calibration.calibration_curve(strategy="uniform")`` makes them (empty bins
    left out), plus the expected calibration error."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.searchsorted(edges[1:-1], confidence)
    count = np.bincount(index, minlength=bins)
    observed = np.bincount(index, weights=outcome, minlength=bins)
    predicted = np.bincount(index, weights=confidence, minlength=bins)
    filled = count > 0
    observed, predicted = observed[filled] / count[filled], predicted[filled] / count[filled]
    error = float(np.sum(count[filled] * np.abs(observed - predicted)) / len(confidence))
    bounds = zip(edges[:-1][filled].tolist(), edges[1:][filled].tolist())
    return {"kind": kind, "bins": [[low, high] for low, high in bounds],
            "observed": _significant(observed), "predicted": _significant(predicted),
            "count": count[filled].tolist(), "expected_calibration_error": error}


def classification(y_true: Any, y_pred: Any, y_proba: Any = None, labels: Sequence[Any] | None = None, *,
                   curve_points: int = CURVE_POINTS, calibration_bins: int = CALIBRATION_BINS) -> dict[str, Any]:
    """Metrics, per-class table, confusion matrix and, given probabilities, one-vs-rest ROC and PR curves and
    reliability bins, for two or more classes.

    ``y_proba`` has one column per class in the order of ``labels`` (default: the sorted classes seen in
    ``y_true`` and ``y_pred``, the order of scikit-learn's ``classes_``); for two classes it may be the positive
    class's column alone. Averages run over the classes seen in ``y_true`` or ``y_pred``, as scikit-learn's
    do; a class without positives or negatives among the rows has no AUC and is left out of the AUC averages."""
    classes, truth, predicted = _encode(y_true, y_pred, labels)
    count, size = len(truth), len(classes)
    if size < 2:
        raise InvalidInput("classification needs at least two classes; pass labels to name them all",
                           detail={"argument": "labels"})
    matrix = np.bincount(truth * size + predicted, minlength=size * size).reshape(size, size)
    hits = np.diag(matrix).astype(float)
    support, predicted_count = matrix.sum(axis=1), matrix.sum(axis=0)
    precision, recall = _ratio(hits, predicted_count), _ratio(hits, support)
    f1 = _ratio(2 * hits, support + predicted_count)
    present = (support + predicted_count) > 0
    binary = size == 2
    # MLflow's positive class: the last of the sorted labels, whatever order ``labels`` gives them in.
    positive = int(np.argsort(classes, kind="stable")[-1])
    negative = 1 - positive
    metrics: dict[str, Any] = {"example_count": count, "accuracy_score": hits.sum() / count}
    if binary:
        metrics.update(true_negatives=matrix[negative, negative], false_positives=matrix[negative, positive],
                       false_negatives=matrix[positive, negative], true_positives=matrix[positive, positive])
    for name, per_class in (("precision_score", precision), ("recall_score", recall), ("f1_score", f1)):
        averages = _averages(name, per_class, support, present)
        metrics[name] = per_class[positive] if binary else averages[f"{name}_weighted"]
        metrics.update(averages)
    rows = [{"class": _plain(label), "precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for label, p, r, f, s in zip(classes, precision, recall, f1, support)]
    plots: dict[str, Any] = {"confusion_matrix": {"labels": [_plain(label) for label in classes],
                                                  "matrix": matrix.tolist()}}
    if y_proba is not None:
        proba = _probabilities(y_proba, count, size, positive)
        eps = np.finfo(float).eps
        metrics["log_loss"] = -np.log(np.clip(proba[np.arange(count), truth], eps, 1 - eps)).mean()
        order = np.argsort(-proba, axis=0, kind="stable")  # one sort for every class's curves
        sorted_scores = np.take_along_axis(proba, order, axis=0)
        cumulative_hits = np.cumsum(truth[order] == np.arange(size), axis=0)
        roc_auc, average_precision = np.full(size, np.nan), np.full(size, np.nan)
        plots["roc"], plots["pr"] = [], []
        for index, label in enumerate(classes):
            true_positives, false_positives = _curve_points(sorted_scores[:, index], cumulative_hits[:, index])
            if true_positives[-1] == 0 or false_positives[-1] == 0:
                continue
            fpr, tpr, area = _roc(true_positives, false_positives, curve_points)
            roc_auc[index] = area
            pr_recall, pr_precision, pr_auc = _precision_recall(true_positives, false_positives, curve_points)
            average_precision[index] = pr_auc
            plots["roc"].append({"label": str(_plain(label)), "fpr": fpr, "tpr": tpr, "auc": area})
            plots["pr"].append({"label": str(_plain(label)), "recall": pr_recall, "precision": pr_precision,
                                "auc": pr_auc})
        defined = ~np.isnan(roc_auc)
        if defined.any():
            areas = {}
            for name, per_class in (("roc_auc", roc_auc), ("precision_recall_auc", average_precision)):
                areas.update(_averages(name, np.where(defined, per_class, 0.0), np.where(defined, support, 0), defined))
            if binary:
                metrics.update(roc_auc=roc_auc[positive], precision_recall_auc=average_precision[positive])
            else:
                metrics["roc_auc"] = areas["roc_auc_weighted"]
            metrics.update(areas)
        for row, auc, ap in zip(rows, roc_auc, average_precision):
            row.update(roc_auc=None if np.isnan(auc) else float(auc),
                       precision_recall_auc=None if np.isnan(ap) else float(ap))
        if binary:
            calibration = _calibration(proba[:, positive], truth == positive, calibration_bins, "positive_class")
        else:
            top = proba.argmax(axis=1)
            calibration = _calibration(proba[np.arange(count), top], top == truth, calibration_bins, "top_label")
        metrics["expected_calibration_error"] = calibration.pop("expected_calibration_error")
        plots["calibration"] = calibration
    return _result("classification", metrics, {"per_class": rows}, plots)


# ----- regression -----

def regression(y_true: Any, y_pred: Any, *, histogram_bins: int = RESIDUAL_BINS,
               sample_points: int = SAMPLE_POINTS) -> dict[str, Any]:
    """MLflow's regressor metrics, a summary and histogram of the residuals (true - predicted), and a
    deterministic sample of (true, predicted) pairs to plot. ``r2_score`` needs two rows or more."""
    truth, predicted = _numbers(y_true, "y_true"), _numbers(y_pred, "y_pred")
    count = _same_length(y_true=truth, y_pred=predicted)
    residual = truth - predicted
    absolute = np.abs(residual)
    squared = float(np.mean(residual ** 2))
    total = float(truth.sum())
    metrics: dict[str, Any] = {
        "example_count": count, "mean_absolute_error": absolute.mean(), "mean_squared_error": squared,
        "root_mean_squared_error": math.sqrt(squared), "sum_on_target": total, "mean_on_target": total / count,
        "max_error": absolute.max(),
        "mean_absolute_percentage_error": np.mean(absolute / np.maximum(np.abs(truth), np.finfo(float).eps)),
    }
    if count > 1:
        spread = float(np.sum((truth - truth.mean()) ** 2))
        unexplained = float(np.sum(residual ** 2))
        # scikit-learn's force_finite: a constant target scores 1 when predicted exactly, else 0.
        metrics["r2_score"] = (1.0 if unexplained == 0 else 0.0) if spread == 0 else 1 - unexplained / spread
    quantiles = np.percentile(residual, [5, 25, 50, 75, 95])
    counts, edges = np.histogram(residual, bins=histogram_bins)
    sample = np.arange(count) if count <= sample_points else \
        np.sort(np.random.default_rng(0).choice(count, sample_points, replace=False))
    summary = dict(zip(("mean", "std", "min", "p5", "p25", "p50", "p75", "p95", "max"), _significant(
        [residual.mean(), residual.std(), residual.min(), *quantiles, residual.max()])))
    return _result("regression", metrics, plots={"residuals": {
        "summary": summary, "histogram": {"edges": _significant(edges), "counts": counts.tolist()},
        "sample": {"true": _significant(truth[sample]), "predicted": _significant(predicted[sample])}}})


# ----- text generation -----

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_TOKEN = re.compile(f"[{_CJK}]|[^\\W_{_CJK}]+")


def tokenize(text: str, *, lowercase: bool = False) -> list[str]:
    """Words of letters and digits; each Chinese, Japanese or Korean character is a word of its own, so that
    BLEU and ROUGE mean something for text without spaces."""
    return _TOKEN.findall(text.lower() if lowercase else text)


def _ngrams(tokens: list[str], n: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def corpus_bleu(references: list[list[list[str]]], hypotheses: list[list[str]],
                max_order: int = 4) -> dict[str, Any]:
    """Corpus BLEU (Papineni et al. 2002): clipped n-gram precisions summed over the corpus, their geometric
    mean, times the brevity penalty against the closest reference length. 0 when an order has no match."""
    matches, totals = [0] * max_order, [0] * max_order
    hypothesis_length = reference_length = 0
    for candidates, hypothesis in zip(references, hypotheses):
        hypothesis_length += len(hypothesis)
        reference_length += min((abs(len(ref) - len(hypothesis)), len(ref)) for ref in candidates)[1]
        for n in range(1, max_order + 1):
            counts = _ngrams(hypothesis, n)
            if not counts:
                continue
            most: Counter[tuple[str, ...]] = Counter()
            for reference in candidates:
                most |= _ngrams(reference, n)
            matches[n - 1] += sum(min(c, most[gram]) for gram, c in counts.items())
            totals[n - 1] += len(hypothesis) - n + 1
    precisions = [m / t if t else 0.0 for m, t in zip(matches, totals)]
    penalty = 0.0 if hypothesis_length == 0 else \
        1.0 if hypothesis_length > reference_length else math.exp(1 - reference_length / hypothesis_length)
    score = 0.0 if min(matches) == 0 else penalty * math.exp(sum(map(math.log, precisions)) / max_order)
    return {"bleu": score, "brevity_penalty": penalty, "precisions": precisions, "matches": matches,
            "totals": totals, "hypothesis_length": hypothesis_length, "reference_length": reference_length}


def lcs_length(first: Sequence[str], second: Sequence[str]) -> int:
    """Length of the longest common subsequence, bit-parallel (Hyyrö 2004): one big-integer step per token of
    ``second``, so long texts cost O(len(first) * len(second) / 64)."""
    if not first or not second:
        return 0
    masks: dict[str, int] = {}
    for position, token in enumerate(first):
        masks[token] = masks.get(token, 0) | (1 << position)
    full = (1 << len(first)) - 1
    row = full
    for token in second:
        matched = row & masks.get(token, 0)
        row = ((row + matched) | (row - matched)) & full
    return len(first) - bin(row).count("1")


def rouge_l(reference: list[str], prediction: list[str]) -> float:
    """ROUGE-L F1 (β = 1, as the ``rouge_score`` package computes it): 2·LCS / (len(reference) + len(prediction))."""
    common = lcs_length(reference, prediction)
    return 2 * common / (len(reference) + len(prediction)) if common else 0.0


def text_generation(references: Sequence[str | Sequence[str]], predictions: Sequence[str]) -> dict[str, Any]:
    """Exact match (raw strings, as MLflow's ``exact_match``), corpus BLEU-4 (case-sensitive) and the mean
    ROUGE-L F1 (lower-cased, the best reference of each row). A reference may be a string or a list of them."""
    _same_length(references=references, predictions=predictions)
    reference_sets = [[reference] if isinstance(reference, str) else list(reference) for reference in references]
    for row, (candidates, prediction) in enumerate(zip(reference_sets, predictions)):
        if not candidates or not all(isinstance(text, str) for text in [*candidates, prediction]):
            raise InvalidInput("row {row}: references and predictions must be strings", detail={"row": row}, row=row)
    exact = sum(prediction in candidates for candidates, prediction in zip(reference_sets, predictions))
    bleu = corpus_bleu([[tokenize(text) for text in candidates] for candidates in reference_sets],
                       [tokenize(prediction) for prediction in predictions])
    rouge = [max(rouge_l(tokenize(text, lowercase=True), tokenize(prediction, lowercase=True)) for text in candidates)
             for candidates, prediction in zip(reference_sets, predictions)]
    count = len(predictions)
    metrics = {"example_count": count, "exact_match": exact / count, "bleu": bleu["bleu"],
               "bleu_brevity_penalty": bleu["brevity_penalty"], "rougeL": sum(rouge) / count}
    orders = [{"n": n, "matches": m, "total": t, "precision": p}
              for n, (m, t, p) in enumerate(zip(bleu["matches"], bleu["totals"], bleu["precisions"]), start=1)]
    counts, edges = np.histogram(rouge, bins=10, range=(0.0, 1.0))
    return _result("text_generation", metrics, {"bleu_orders": orders},
                   {"rougeL_histogram": {"edges": _significant(edges), "counts": counts.tolist()}})


# ----- ranking -----

def _dcg(gains: np.ndarray, scores: np.ndarray, discount_sum: np.ndarray) -> float:
    """DCG with tied scores sharing their positions' discounts (``sklearn.metrics.ndcg_score``'s default)."""
    _, group, size = np.unique(-scores, return_inverse=True, return_counts=True)
    mean_gain = np.bincount(group, weights=gains) / size
    ends = np.cumsum(size) - 1
    return float(np.sum(mean_gain * np.diff(np.r_[0.0, discount_sum[ends]])))


def ranking(y_true_relevance: Any, scores: Any, groups: Any = None, k: int = 10) -> dict[str, Any]:
    """NDCG@k (linear gains, as scikit-learn's ``ndcg_score``), recall@k and precision@k averaged over the
    groups (queries; all rows are one query without ``groups``), and the ROC AUC of the scores for
    relevance > 0 over all rows. A query without relevant rows scores 0, as in scikit-learn and MLflow."""
    relevance, score = _numbers(y_true_relevance, "y_true_relevance"), _numbers(scores, "scores")
    count = _same_length(y_true_relevance=relevance, scores=score)
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise InvalidInput("k must be a positive integer, not {k!r}", detail={"argument": "k"}, k=k)
    if relevance.min() < 0:
        raise InvalidInput("y_true_relevance must not be negative", detail={"argument": "y_true_relevance"})
    codes = np.zeros(count, dtype=int) if groups is None else \
        np.unique(_column(groups, "groups"), return_inverse=True)[1]
    _same_length(y_true_relevance=relevance, groups=codes)
    order = np.lexsort((-score, codes))
    starts = np.r_[0, np.flatnonzero(np.diff(codes[order])) + 1]
    ends = np.r_[starts[1:], count]
    longest = int((ends - starts).max())
    discount = 1 / np.log2(np.arange(longest) + 2)
    discount[k:] = 0
    discount_sum = np.cumsum(discount)
    ndcg, recall, precision = [], [], []
    for start, end in zip(starts, ends):
        gains, ranked = relevance[order[start:end]], score[order[start:end]]
        ideal = float(np.sum(np.sort(gains)[::-1][:k] * discount[:min(k, len(gains))]))
        ndcg.append(_dcg(gains, ranked, discount_sum) / ideal if ideal else 0.0)
        relevant, found = int(np.count_nonzero(gains)), int(np.count_nonzero(gains[:k]))
        recall.append(found / relevant if relevant else 0.0)
        precision.append(found / min(k, len(gains)))
    metrics: dict[str, Any] = {"example_count": count, "query_count": len(starts), f"ndcg_at_{k}": np.mean(ndcg),
                               f"recall_at_{k}": np.mean(recall), f"precision_at_{k}": np.mean(precision)}
    auc = binary_auc(relevance > 0, score)
    if auc is not None:
        metrics["roc_auc"] = auc
    return _result("ranking", metrics)


# ----- custom metrics -----

def check_metric(name: Any, value: Any) -> tuple[str, float]:
    """(name, value) when both can be stored and logged to MLflow; else InvalidInput naming the metric."""
    if not isinstance(name, str) or not name:
        raise InvalidInput("a metric name must be a non-empty string, not {name!r}", detail={"metric": repr(name)},
                           name=name)
    if len(name) > METRIC_NAME_MAX_LENGTH:
        raise InvalidInput("metric name {name!r}... is {length} characters long; at most {limit}",
                           detail={"metric": name}, name=name[:40], length=len(name), limit=METRIC_NAME_MAX_LENGTH)
    if not METRIC_NAME_PATTERN.match(name) or "/../" in f"/{name}/":
        raise InvalidInput("metric name {name!r} may hold only letters, digits, spaces and _ - . / :",
                           detail={"metric": name}, name=name)
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise InvalidInput("metric {name!r} must be a number, not {type} {value!r}",
                           detail={"metric": name}, name=name, type=type(value).__name__, value=value)
    if not math.isfinite(value):
        raise InvalidInput("metric {name!r} is {value}, not a finite number", detail={"metric": name},
                           name=name, value=value)
    return name, float(value)


def custom(function: Callable[..., Mapping[str, Any]], /, **inputs: Any) -> dict[str, Any]:
    """Calls ``function(**inputs)``, which returns {metric name: number}, and checks what it returned. An
    exception raised inside the function propagates unchanged, so the job fails on that cell with its
    traceback."""
    values = function(**inputs)
    if not isinstance(values, Mapping):
        raise InvalidInput("custom metric function {function!r} returned {type}, not a dict of metric name to number",
                           function=getattr(function, '__name__', function), type=type(values).__name__)
    return _result("custom", dict(check_metric(name, value) for name, value in values.items()))
