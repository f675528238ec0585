"""Profiling: the result's shape, its time bound, the batches the model sees, memory that a call really
allocates, model size, and GPU figures only where NVML sees a GPU."""

from __future__ import annotations

import concurrent.futures
import json
import multiprocessing
import pickle
import time

import numpy as np
import pytest

from aitip.evaluation.profiling import batch_of, profile


class RecordingModel:
    """A small real computation that records the batch sizes it was given."""

    def __init__(self) -> None:
        self.sizes: list[int] = []
        self.weights = np.random.default_rng(0).normal(size=(8, 3))

    def predict(self, batch):
        self.sizes.append(len(batch))
        return np.asarray(batch, dtype=float) @ self.weights


def test_shape_percentiles_and_the_batches_the_model_sees():
    model = RecordingModel()
    sample = np.random.default_rng(1).normal(size=(10, 8))  # fewer rows than the largest batch: cycled
    result = profile(model.predict, sample, batch_sizes=(1, 32), repeats=7, time_budget_s=5, model=model)
    assert [batch["batch_size"] for batch in result["batches"]] == [1, 32]
    for batch in result["batches"]:
        latency = batch["latency_ms"]
        assert batch["calls"] == 7
        assert 0 < latency["min"] <= latency["p50"] <= latency["p95"] <= latency["p99"] <= latency["max"]
        assert batch["throughput_rows_per_s"] == pytest.approx(
            batch["batch_size"] / (latency["mean"] / 1000), rel=1e-9)
    # Per batch size: one warm-up and the timed calls; then one traced call at the largest batch.
    assert model.sizes == [1] * 8 + [32] * 8 + [32]
    assert result["model_size"] == {"bytes": len(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)),
                                    "source": "pickle", "reason": None}
    json.dumps(result, allow_nan=False)


def test_the_time_budget_bounds_the_repeats():
    def slow(batch):
        time.sleep(0.01)

    result = profile(slow, [[0.0]] * 4, repeats=1000, time_budget_s=0.2)
    assert result["wall_s"] < 0.6
    assert all(1 <= batch["calls"] < 30 for batch in result["batches"])
    assert result["memory"]["tracemalloc_reason"] == "skipped: the time budget is spent"


def test_a_model_slower_than_the_budget_is_still_measured_once_per_batch_size():
    def slower(batch):
        time.sleep(0.05)

    result = profile(slower, [[0.0]], repeats=10, time_budget_s=0.01)
    assert [batch["calls"] for batch in result["batches"]] == [1, 1]
    assert result["batches"][0]["latency_ms"]["p50"] >= 50


def allocating(batch):
    block = np.ones((len(batch), 6_000_000 // len(batch) + 1))  # about 48 MB whatever the batch
    return float(block.sum())


def profiled_memory_in_a_fresh_process() -> dict:
    return profile(allocating, np.zeros((4, 2)), batch_sizes=(2,), repeats=2, time_budget_s=10)["memory"]


def test_memory_a_call_allocates_shows_in_the_peaks():
    """In a fresh process, as an evaluation's kernel is: a test worker grown by earlier tests keeps freed memory
    resident, and a call may reuse it without raising the process's RSS at all."""
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as fresh:
        memory = fresh.submit(profiled_memory_in_a_fresh_process).result(timeout=120)
    assert memory["tracemalloc_peak_bytes"] >= 45_000_000
    assert memory["peak_rss_bytes"] - memory["rss_before_bytes"] >= 40_000_000
    assert memory["peak_rss_source"] == "VmHWM, reset before the calls"


def test_batches_keep_the_sample_type():
    pandas = pytest.importorskip("pandas")
    frame = pandas.DataFrame({"x": [1, 2, 3]})
    assert batch_of(frame, 5)["x"].tolist() == [1, 2, 3, 1, 2]
    assert batch_of([[1], [2]], 3) == [[1], [2], [1]]
    assert batch_of(np.arange(4), 2).tolist() == [0, 1]
    with pytest.raises(ValueError, match="no rows"):
        batch_of([], 1)


def test_model_size_from_a_path_and_an_unpicklable_model(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "weights.bin").write_bytes(b"x" * 1000)
    (tmp_path / "model" / "sub").mkdir()
    (tmp_path / "model" / "sub" / "config.json").write_bytes(b"{}")
    result = profile(lambda batch: None, [0], batch_sizes=(1,), repeats=1, model_path=tmp_path / "model")
    assert result["model_size"] == {"bytes": 1002, "source": "path", "reason": None}
    size = profile(lambda batch: None, [0], batch_sizes=(1,), repeats=1, model=lambda x: x)["model_size"]
    assert size["bytes"] is None and "cannot be pickled" in size["reason"]


def test_gpu_figures_only_when_nvml_sees_a_gpu():
    result = profile(lambda batch: None, [0], batch_sizes=(1,), repeats=1)
    try:
        import pynvml

        pynvml.nvmlInit()
        count = pynvml.nvmlDeviceGetCount()
        pynvml.nvmlShutdown()
    except Exception:  # noqa: BLE001 - no library, no driver: no GPU
        count = 0
    if count:
        devices = result["gpu"]["devices"]
        assert devices and all(device["memory_total_bytes"] > 0 for device in devices)
        assert result["gpu_reason"] is None
    else:
        assert result["gpu"] is None
        assert result["gpu_reason"]


def test_default_profile_of_the_digits_classifier_takes_well_under_a_second():
    import warnings

    from sklearn.datasets import load_digits
    from sklearn.neural_network import MLPClassifier

    features, labels = load_digits(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = MLPClassifier(hidden_layer_sizes=(64,), max_iter=20, random_state=0).fit(features, labels)
    result = profile(model.predict_proba, features[:360], model=model)
    assert result["wall_s"] < 1.0
    assert [batch["batch_size"] for batch in result["batches"]] == [1, 32]
    assert result["model_size"]["bytes"] > 10_000


@pytest.mark.parametrize("arguments", [{"batch_sizes": ()}, {"batch_sizes": (0,)}, {"batch_sizes": (True,)},
                                       {"repeats": 0}, {"time_budget_s": 0}])
def test_bad_arguments_are_refused(arguments):
    with pytest.raises(ValueError):
        profile(lambda batch: None, [0], **arguments)
