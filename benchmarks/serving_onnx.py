"""Serving predictions, side by side in one run: the estimator's own ``predict`` (what the python backend
calls) against the ``onnx`` backend (``aitip.serving.onnx_backend.load_onnx``: the same MLflow model converted
by skl2onnx, run by onnxruntime with one intra-op and one inter-op thread, as a serving replica runs it).

The models: scikit-learn's ``load_digits`` (1,797 images of 8x8 pixels, 10 classes), 80/20 split (360 test
rows), each saved with ``mlflow.sklearn.save_model`` and a float64 tensor signature:

  logistic  ``LogisticRegression(max_iter=500)``
  mlp       ``Pipeline(StandardScaler, MLPClassifier(hidden_layer_sizes=(64,)))``

Measured for each model, each after one discarded warm-up call: a single row (each test row in turn) and
batches of 64 rows. Reported: p50/p95 microseconds per call and per row, rows/s, and the ratio
sklearn / onnxruntime (above 1: ONNX is faster); whether the labels agree on every test row; the one-off
conversion time and the cached file's size; the first call (which makes the session).

    .venv/bin/python benchmarks/serving_onnx.py            # full: 2,000 calls per row size and model
    .venv/bin/python benchmarks/serving_onnx.py --quick    # 200, for a smoke run (written nowhere)

Results go to benchmarks/results/serving_onnx.json (full runs only, unless ``--output``).
"""

from __future__ import annotations

import argparse
import json
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

BATCH = 64
# MLflow 3.x saves scikit-learn models with skops, which loads only the types it is told to trust.
TRUSTED_TYPES = ["sklearn.neural_network._stochastic_optimizers.AdamOptimizer"]


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile, as the other benchmarks report it."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def timed(function: Callable[[Any], Any], inputs: list[Any], repeat: int, rows: int) -> dict[str, Any]:
    """``repeat`` calls cycling through ``inputs``; per call and per row."""
    function(inputs[0])  # warm-up
    seconds = []
    for index in range(repeat):
        data = inputs[index % len(inputs)]
        started = time.perf_counter()
        function(data)
        seconds.append(time.perf_counter() - started)
    micro = [s * 1e6 for s in seconds]
    p50 = statistics.median(micro)
    return {"calls": repeat, "rows_per_call": rows, "p50_us": p50, "p95_us": percentile(micro, 0.95),
            "min_us": min(micro), "p50_us_per_row": p50 / rows, "rows_per_s": rows * repeat / sum(seconds)}


def digits_models(scratch: Path) -> dict[str, Any]:
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features, labels = load_digits(return_X_y=True)
    x_train, x_test, y_train, _ = train_test_split(features, labels, test_size=0.2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimators = {
            "logistic": LogisticRegression(max_iter=500).fit(x_train, y_train),
            "mlp": make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(64,), max_iter=300,
                                                                 random_state=0)).fit(x_train, y_train),
        }
        dirs = {}
        for name, estimator in estimators.items():
            dirs[name] = scratch / name / "model"
            mlflow.sklearn.save_model(estimator, str(dirs[name]), pip_requirements=["scikit-learn"],
                                      signature=infer_signature(x_train, estimator.predict(x_train)),
                                      skops_trusted_types=TRUSTED_TYPES if name == "mlp" else None)
    return {"estimators": estimators, "dirs": dirs, "x_test": x_test}


def loader_arguments(model_dir: Path) -> tuple[dict, Any]:
    """The MLmodel and a signature shaped as the serving loader hands them over."""
    from types import SimpleNamespace

    import yaml

    mlmodel = yaml.safe_load((model_dir / "MLmodel").read_text())
    spec = json.loads(mlmodel["signature"]["inputs"])[0]["tensor-spec"]
    return mlmodel, SimpleNamespace(tensor=SimpleNamespace(dtype=spec["dtype"], shape=tuple(spec["shape"])),
                                    columns=())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 calls per row size and model")
    parser.add_argument("--repeat", type=int, help="Calls per row size and model (default 2,000)")
    parser.add_argument("--output", help="Where the JSON goes (default: benchmarks/results/serving_onnx.json for "
                                         "full runs, nowhere for --quick)")
    args = parser.parse_args()
    repeat = args.repeat or (200 if args.quick else 2000)

    import mlflow
    import numpy
    import onnxruntime
    import sklearn
    import skl2onnx

    from aitip.serving.onnx_backend import load_onnx

    load_before = os.getloadavg()[0]
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="aitip-bench-serving-onnx-") as scratch:
        print("training and saving the digits models ...", flush=True)
        setup = digits_models(Path(scratch))
        x_test = setup["x_test"]
        singles = [x_test[i:i + 1] for i in range(len(x_test))]
        batches = [x_test[i:i + BATCH] for i in range(0, len(x_test) - BATCH + 1, BATCH)]
        for name, estimator in setup["estimators"].items():
            model_dir = setup["dirs"][name]
            mlmodel, signature = loader_arguments(model_dir)
            started = time.perf_counter()
            predict = load_onnx(model_dir, mlmodel, signature)
            convert_ms = (time.perf_counter() - started) * 1000
            started = time.perf_counter()
            load_onnx(model_dir, mlmodel, signature)
            cached_load_ms = (time.perf_counter() - started) * 1000
            started = time.perf_counter()
            predict(singles[0])
            first_call_ms = (time.perf_counter() - started) * 1000
            agree = int((predict(x_test) == estimator.predict(x_test)).sum())
            print(f"{name}: {repeat} calls each of 1 row and {BATCH} rows, sklearn and onnxruntime ...", flush=True)
            rows = {
                "sklearn_1": timed(estimator.predict, singles, repeat, 1),
                "onnx_1": timed(predict, singles, repeat, 1),
                f"sklearn_{BATCH}": timed(estimator.predict, batches, repeat, BATCH),
                f"onnx_{BATCH}": timed(predict, batches, repeat, BATCH),
            }
            results[name] = {
                "rows": rows,
                "ratios": {"sklearn_over_onnx_p50_1": rows["sklearn_1"]["p50_us"] / rows["onnx_1"]["p50_us"],
                           f"sklearn_over_onnx_p50_{BATCH}": (rows[f"sklearn_{BATCH}"]["p50_us"]
                                                             / rows[f"onnx_{BATCH}"]["p50_us"])},
                "labels_agree": agree, "test_rows": len(x_test),
                "convert_ms": convert_ms, "cached_load_ms": cached_load_ms, "first_call_ms": first_call_ms,
                "onnx_bytes": predict.path.stat().st_size,
            }
    load_after = os.getloadavg()[0]

    print(f"\ndigits: {len(x_test)} test rows, 10 classes; {os.cpu_count()} CPUs, load {load_before:.2f} -> "
          f"{load_after:.2f}; onnxruntime with 1 intra-op and 1 inter-op thread")
    header = (f"{'model':<10}{'rows':>6}{'sklearn p50 us':>16}{'onnx p50 us':>13}{'sklearn/onnx':>14}"
              f"{'sklearn rows/s':>16}{'onnx rows/s':>13}")
    print(header)
    print("-" * len(header))
    for name, result in results.items():
        for size in (1, BATCH):
            ours, theirs = result["rows"][f"onnx_{size}"], result["rows"][f"sklearn_{size}"]
            print(f"{name:<10}{size:>6}{theirs['p50_us']:>16.1f}{ours['p50_us']:>13.1f}"
                  f"{theirs['p50_us'] / ours['p50_us']:>13.1f}x{theirs['rows_per_s']:>16,.0f}"
                  f"{ours['rows_per_s']:>13,.0f}")
    for name, result in results.items():
        print(f"{name}: labels agree on {result['labels_agree']}/{result['test_rows']} rows; conversion "
              f"{result['convert_ms']:.0f} ms ({result['onnx_bytes']:,} bytes), load from the cache "
              f"{result['cached_load_ms']:.1f} ms, first call (makes the session) {result['first_call_ms']:.1f} ms")

    output = Path(args.output) if args.output else (
        None if args.quick else ROOT / "benchmarks" / "results" / "serving_onnx.json")
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps({
            "benchmark": "serving_onnx", "dataset": "sklearn load_digits, 20% test split (random_state=0)",
            "test_rows": len(x_test), "batch": BATCH,
            "models": {"logistic": "LogisticRegression(max_iter=500)",
                       "mlp": "Pipeline(StandardScaler, MLPClassifier(hidden_layer_sizes=(64,)))"},
            "onnxruntime_threads": {"intra_op": 1, "inter_op": 1}, "cpus": os.cpu_count(), "repeat": repeat,
            "versions": {"python": sys.version.split()[0], "numpy": numpy.__version__,
                         "scikit-learn": sklearn.__version__, "mlflow": mlflow.__version__,
                         "skl2onnx": skl2onnx.__version__, "onnxruntime": onnxruntime.__version__},
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "load_before": round(load_before, 2),
            "load_after": round(load_after, 2), "results": results,
        }, indent=2) + "\n")
        print(f"results -> {output.relative_to(ROOT) if output.is_relative_to(ROOT) else output}")


if __name__ == "__main__":
    main()
