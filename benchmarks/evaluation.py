"""Evaluating the digits classifier, side by side in one run: plain scikit-learn metric calls, AITIP's
evaluation library, and ``mlflow.models.evaluate``.

The model: scikit-learn's ``load_digits`` (1,797 images of 8x8 pixels, 10 classes), 80/20 split (360 test
rows), an ``MLPClassifier`` (64 hidden units). A weaker MLP (fewer iterations) stands for the baseline
version; its metrics are computed once, before the clocks start, as the platform would read them from the
catalog. Measured, each after one discarded warm-up call:

  (a) sklearn: ``accuracy_score``, ``precision_score``/``recall_score``/``f1_score`` (weighted, MLflow's
      multiclass average), ``log_loss``, ``roc_auc_score`` (one-vs-rest, weighted) and ``confusion_matrix`` on
      the model's predictions and probabilities, computed beforehand: the issue's "plain scikit-learn metrics";
  (b) aitip: ``aitip.evaluation.metrics.classification`` on the same predictions (the same metrics plus macro
      and weighted variants, the per-class table, confusion matrix, ROC and PR curves per class, calibration)
      and ``aitip.evaluation.gates.verdict`` against the baseline under four thresholds;
  (b') aitip + predict: (b) plus the model's ``predict`` and ``predict_proba`` calls, the same work
      ``mlflow.models.evaluate`` does on a model URI;
  (c) mlflow: ``mlflow.models.evaluate(model_uri, data, targets=..., model_type="classifier")`` on the model
      logged once to a throw-away sqlite tracking store, inside a run, then
      ``mlflow.validate_evaluation_results`` with the same thresholds against the baseline's metrics.

Reported: p50/p95 milliseconds per call, the ratios aitip/sklearn (goal <= 3) and mlflow/aitip (goal >= 30,
with (b') as aitip, so both sides predict), the wall time of ``aitip.evaluation.profiling.profile`` with its
defaults on the same model, and whether every metric name both AITIP and MLflow report has the same value.

    .venv/bin/python benchmarks/evaluation.py            # full: 300 calls of (a), (b), (b'); 10 of (c)
    .venv/bin/python benchmarks/evaluation.py --quick    # 30 and 3, for a smoke run (written nowhere)

Results go to benchmarks/results/evaluation.json (full runs only, unless ``--output``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "extensions"))

THRESHOLDS = {
    "accuracy_score": {"threshold": 0.9, "min_absolute_change": 0.001, "greater_is_better": True},
    "f1_score": {"threshold": 0.9, "greater_is_better": True},
    "log_loss": {"threshold": 0.5, "greater_is_better": False},
    "roc_auc": {"threshold": 0.95, "min_relative_change": 0.0001, "greater_is_better": True},
}

# MLflow 3.x saves scikit-learn models with skops, which loads only the types it is told to trust.
TRUSTED_TYPES = ["sklearn.neural_network._stochastic_optimizers.AdamOptimizer"]


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile, as the other benchmarks report it."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def timed(function: Callable[[], Any], repeat: int) -> dict[str, Any]:
    function()  # warm-up: imports, caches
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        seconds.append(time.perf_counter() - started)
    milliseconds = [s * 1000 for s in seconds]
    return {"calls": repeat, "p50_ms": statistics.median(milliseconds), "p95_ms": percentile(milliseconds, 0.95),
            "min_ms": min(milliseconds), "max_ms": max(milliseconds)}


def digits_models() -> dict[str, Any]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier

    features, labels = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(features, labels, test_size=0.2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the baseline stops before converging, on purpose
        model = MLPClassifier(hidden_layer_sizes=(64,), max_iter=300, random_state=0).fit(x_train, y_train)
        baseline = MLPClassifier(hidden_layer_sizes=(64,), max_iter=15, random_state=0).fit(x_train, y_train)
    return {"model": model, "baseline": baseline, "x_test": x_test, "y_test": y_test}


def sklearn_metrics(y_true: Any, y_pred: Any, proba: Any) -> dict[str, Any]:
    from sklearn import metrics

    return {
        "accuracy_score": metrics.accuracy_score(y_true, y_pred),
        "precision_score": metrics.precision_score(y_true, y_pred, average="weighted"),
        "recall_score": metrics.recall_score(y_true, y_pred, average="weighted"),
        "f1_score": metrics.f1_score(y_true, y_pred, average="weighted"),
        "log_loss": metrics.log_loss(y_true, proba),
        "roc_auc": metrics.roc_auc_score(y_true, proba, multi_class="ovr", average="weighted"),
        "confusion_matrix": metrics.confusion_matrix(y_true, y_pred),
    }


def mlflow_side(setup: dict[str, Any], baseline_metrics: dict[str, float], scratch: Path) -> dict[str, Any]:
    """Logs the model once to a sqlite store under ``scratch``; returns the evaluate-and-validate call."""
    import mlflow
    import pandas as pd
    from mlflow.models import MetricThreshold
    from mlflow.models.evaluation import EvaluationResult
    from mlflow.models.evaluation.validation import ModelValidationFailedException

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    mlflow.set_tracking_uri(f"sqlite:///{scratch / 'mlflow.db'}")
    mlflow.set_experiment(experiment_id=mlflow.create_experiment("evaluation-bench",
                                                                 (scratch / "artifacts").as_uri()))
    data = pd.DataFrame(setup["x_test"], columns=[f"pixel_{i}" for i in range(setup["x_test"].shape[1])])
    data["label"] = setup["y_test"]
    with warnings.catch_warnings(), mlflow.start_run():
        warnings.simplefilter("ignore")  # the schema hints about integer pixel columns
        info = mlflow.sklearn.log_model(setup["model"], name="model", skops_trusted_types=TRUSTED_TYPES,
                                        input_example=data.drop(columns="label").head(2))
    thresholds = {name: MetricThreshold(**rule) for name, rule in THRESHOLDS.items()}
    baseline = EvaluationResult(metrics=baseline_metrics, artifacts={})
    outcome: dict[str, Any] = {}

    def evaluate() -> None:
        with warnings.catch_warnings(), mlflow.start_run():
            warnings.simplefilter("ignore")
            result = mlflow.models.evaluate(info.model_uri, data, targets="label", model_type="classifier",
                                            evaluators=["default"])
            try:
                mlflow.validate_evaluation_results(thresholds, result, baseline)
                outcome["passed"] = True
            except ModelValidationFailedException:
                outcome["passed"] = False
            outcome["metrics"] = result.metrics

    return {"call": evaluate, "outcome": outcome}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="30 calls of (a), (b), (b') and 3 of (c)")
    parser.add_argument("--repeat", type=int, help="Calls of (a), (b) and (b') (default 300)")
    parser.add_argument("--mlflow-repeat", type=int, help="Calls of mlflow.models.evaluate (default 10)")
    parser.add_argument("--output", help="Where the JSON goes (default: benchmarks/results/evaluation.json for "
                                         "full runs, nowhere for --quick)")
    args = parser.parse_args()
    repeat = args.repeat or (30 if args.quick else 300)
    mlflow_repeat = args.mlflow_repeat or (3 if args.quick else 10)

    import mlflow
    import numpy
    import sklearn

    from aitip.evaluation.gates import MetricThreshold, verdict
    from aitip.evaluation.metrics import classification
    from aitip.evaluation.profiling import profile

    print("training the digits classifiers ...", flush=True)
    setup = digits_models()
    model, x_test, y_test = setup["model"], setup["x_test"], setup["y_test"]
    y_pred, proba = model.predict(x_test), model.predict_proba(x_test)
    baseline = setup["baseline"]
    baseline_metrics = classification(y_test, baseline.predict(x_test), baseline.predict_proba(x_test))["metrics"]
    thresholds = {name: MetricThreshold.model_validate(rule) for name, rule in THRESHOLDS.items()}

    def aitip() -> dict[str, Any]:
        result = classification(y_test, y_pred, proba)
        result["verdict"] = verdict(result["metrics"], thresholds, baseline_metrics).model_dump()
        return result

    def aitip_with_predict() -> dict[str, Any]:
        result = classification(y_test, model.predict(x_test), model.predict_proba(x_test))
        result["verdict"] = verdict(result["metrics"], thresholds, baseline_metrics).model_dump()
        return result

    load_before = os.getloadavg()[0]
    rows: dict[str, dict[str, Any]] = {}
    print(f"(a) sklearn x{repeat}, (b) aitip x{repeat}, (b') aitip + predict x{repeat} ...", flush=True)
    rows["sklearn"] = timed(lambda: sklearn_metrics(y_test, y_pred, proba), repeat)
    rows["aitip"] = timed(aitip, repeat)
    rows["aitip_with_predict"] = timed(aitip_with_predict, repeat)
    profiles = [profile(model.predict_proba, x_test, model=model) for _ in range(10)]
    with tempfile.TemporaryDirectory(prefix="aitip-bench-evaluation-") as scratch:
        side = mlflow_side(setup, baseline_metrics, Path(scratch))
        print(f"(c) mlflow.models.evaluate x{mlflow_repeat} ...", flush=True)
        rows["mlflow"] = timed(side["call"], mlflow_repeat)
        mlflow_outcome = side["outcome"]
    load_after = os.getloadavg()[0]

    ours = aitip()
    overlap = sorted(set(ours["metrics"]) & set(mlflow_outcome["metrics"]))
    differences = {name: abs(ours["metrics"][name] - mlflow_outcome["metrics"][name]) for name in overlap}
    expected = sklearn_metrics(y_test, y_pred, proba)
    agreement = {
        "mlflow_names_compared": overlap,
        "mlflow_max_abs_difference": max(differences.values()),
        "sklearn_max_abs_difference": max(abs(ours["metrics"][name] - value) for name, value in expected.items()
                                          if name != "confusion_matrix"),
        "confusion_matrix_equal": ours["plots"]["confusion_matrix"]["matrix"] == expected["confusion_matrix"].tolist(),
        "verdict_aitip": ours["verdict"]["passed"], "verdict_mlflow": mlflow_outcome["passed"],
    }
    ratios = {
        "aitip_over_sklearn_p50": rows["aitip"]["p50_ms"] / rows["sklearn"]["p50_ms"],
        "aitip_over_sklearn_p95": rows["aitip"]["p95_ms"] / rows["sklearn"]["p95_ms"],
        "mlflow_over_aitip_with_predict_p50": rows["mlflow"]["p50_ms"] / rows["aitip_with_predict"]["p50_ms"],
        "mlflow_over_aitip_p50": rows["mlflow"]["p50_ms"] / rows["aitip"]["p50_ms"],
        "mlflow_over_sklearn_p50": rows["mlflow"]["p50_ms"] / rows["sklearn"]["p50_ms"],
    }
    profile_wall_ms = [p["wall_s"] * 1000 for p in profiles]
    report_bytes = len(json.dumps(ours))

    print(f"\ndigits: {len(y_test)} test rows, 10 classes; accuracy {ours['metrics']['accuracy_score']:.4f} "
          f"(baseline {baseline_metrics['accuracy_score']:.4f}); {os.cpu_count()} CPUs, "
          f"load {load_before:.2f} -> {load_after:.2f}")
    header = f"{'implementation':<22}{'calls':>7}{'p50 ms':>10}{'p95 ms':>10}{'min ms':>10}"
    print(header)
    print("-" * len(header))
    for name, row in rows.items():
        print(f"{name:<22}{row['calls']:>7}{row['p50_ms']:>10.2f}{row['p95_ms']:>10.2f}{row['min_ms']:>10.2f}")
    print(f"aitip / sklearn: {ratios['aitip_over_sklearn_p50']:.2f}x at p50, {ratios['aitip_over_sklearn_p95']:.2f}x "
          f"at p95 (goal <= 3)")
    print(f"mlflow / (aitip + predict): {ratios['mlflow_over_aitip_with_predict_p50']:.0f}x at p50 (goal >= 30); "
          f"mlflow / aitip: {ratios['mlflow_over_aitip_p50']:.0f}x; mlflow / sklearn: "
          f"{ratios['mlflow_over_sklearn_p50']:.0f}x")
    print(f"aitip profile() with its defaults: p50 {statistics.median(profile_wall_ms):.1f} ms wall; "
          f"aitip result with curves: {report_bytes:,} bytes of JSON")
    print(f"agreement: {len(overlap)} metric names shared with MLflow, largest difference "
          f"{agreement['mlflow_max_abs_difference']:.3g}; with sklearn {agreement['sklearn_max_abs_difference']:.3g}; "
          f"confusion matrix equal: {agreement['confusion_matrix_equal']}; verdict aitip "
          f"{agreement['verdict_aitip']}, mlflow {agreement['verdict_mlflow']}")

    output = Path(args.output) if args.output else (
        None if args.quick else ROOT / "benchmarks" / "results" / "evaluation.json")
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps({
            "benchmark": "evaluation", "dataset": "sklearn load_digits, 20% test split (random_state=0)",
            "test_rows": len(y_test), "classes": 10, "model": "MLPClassifier(hidden_layer_sizes=(64,))",
            "thresholds": THRESHOLDS, "cpus": os.cpu_count(), "repeat": repeat, "mlflow_repeat": mlflow_repeat,
            "versions": {"python": sys.version.split()[0], "numpy": numpy.__version__,
                         "scikit-learn": sklearn.__version__, "mlflow": mlflow.__version__},
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "load_before": round(load_before, 2),
            "load_after": round(load_after, 2), "results": rows, "ratios": ratios,
            "profile_default_wall_ms": {"p50": statistics.median(profile_wall_ms), "max": max(profile_wall_ms)},
            "aitip_result_json_bytes": report_bytes, "agreement": agreement,
            "goal": {"aitip_over_sklearn": "<= 3", "mlflow_over_aitip": ">= 30"},
        }, indent=2) + "\n")
        print(f"results -> {output.relative_to(ROOT) if output.is_relative_to(ROOT) else output}")


if __name__ == "__main__":
    main()
