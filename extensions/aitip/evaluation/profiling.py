"""Profiling a model's predictions in the evaluation's own process: latency percentiles and throughput per
batch size, peak memory, model size, and GPU memory and utilization through NVML when a GPU is visible.

Bounded in time: each batch size gets one warm-up call and then timed calls until ``repeats`` or its share of
``time_budget_s`` is reached (at least one timed call, so a model slower than the budget still gets measured)."""

from __future__ import annotations

import os
import pickle
import resource
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_BATCH_SIZES = (1, 32)
DEFAULT_REPEATS = 50
DEFAULT_TIME_BUDGET_S = 0.5


def batch_of(sample: Any, size: int) -> Any:
    """The first ``size`` rows of ``sample``, cycling through it when it has fewer rows: a pandas frame stays
    a frame, an array an array, a list a list."""
    rows = len(sample)
    if rows == 0:
        raise ValueError("the sample to profile with has no rows")
    index = np.arange(size) % rows
    if hasattr(sample, "iloc"):
        return sample.iloc[index]
    if isinstance(sample, np.ndarray):
        return sample[index]
    return [sample[i] for i in index]


def _status_bytes(field: str) -> int | None:
    """A ``VmRSS``/``VmHWM`` figure of this process from /proc (Linux), in bytes."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    """Resets this process's RSS high-water mark (Linux ``clear_refs`` 5), so the peak read afterwards is the
    peak of the calls that follow, not of the kernel's whole life. False where that cannot be done."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _peak_rss() -> tuple[int, str]:
    peak = _status_bytes("VmHWM")
    if peak is not None:
        return peak, "VmHWM"
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is in bytes on macOS, KiB elsewhere
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale, "ru_maxrss"


def model_size(model: Any = None, path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Bytes of the model's files (a file, or every file under a folder) or else of the pickled object."""
    if path is not None:
        root = Path(path)
        files = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]
        return {"bytes": sum(p.stat().st_size for p in files), "source": "path", "reason": None}
    if model is None:
        return {"bytes": None, "source": None, "reason": "neither a model nor a path was given"}
    try:
        return {"bytes": len(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)), "source": "pickle",
                "reason": None}
    except Exception as error:  # noqa: BLE001 - an unpicklable model has no size here, and says why
        return {"bytes": None, "source": None, "reason": f"the model cannot be pickled: {error}"}


def _visible_gpu_indices(count: int) -> tuple[list[int] | None, str | None]:
    """The NVML indices the process may use: CUDA_VISIBLE_DEVICES (indices or UUID prefixes) when set."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return list(range(count)), None
    entries = [entry.strip() for entry in visible.split(",") if entry.strip()]
    if not entries or entries[0] == "-1":
        return None, f"no GPU visible: CUDA_VISIBLE_DEVICES={visible!r}"
    import pynvml

    indices = []
    for entry in entries:
        if entry.isdigit():
            if int(entry) < count:
                indices.append(int(entry))
            continue
        for index in range(count):
            uuid = pynvml.nvmlDeviceGetUUID(pynvml.nvmlDeviceGetHandleByIndex(index))
            if isinstance(uuid, bytes):
                uuid = uuid.decode()
            if uuid.startswith(entry) or uuid.startswith(f"GPU-{entry}"):
                indices.append(index)
    return (indices, None) if indices else (None, f"no GPU matches CUDA_VISIBLE_DEVICES={visible!r}")


class GpuProbe:
    """NVML opened once for a profile: memory in use (the device's and this process's) and utilization,
    sampled after each batch size's calls and kept at their maximum."""

    def __init__(self) -> None:
        self.devices: list[dict[str, Any]] = []
        self.reason: str | None = None
        self._handles: list[Any] = []
        try:
            import pynvml
        except ImportError:
            self.reason = "pynvml (the nvidia-ml-py package) is not installed"
            return
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as error:
            self.reason = f"no NVIDIA driver or GPU: NVML cannot start ({error})"
            return
        self._pynvml = pynvml
        try:
            indices, self.reason = _visible_gpu_indices(pynvml.nvmlDeviceGetCount())
            if indices is not None and not indices:
                self.reason = "NVML sees no GPU"
            for index in indices or []:
                handle = pynvml.nvmlDeviceGetHandleByIndex(index)
                name = pynvml.nvmlDeviceGetName(handle)
                self._handles.append(handle)
                self.devices.append({
                    "index": index, "name": name.decode() if isinstance(name, bytes) else name,
                    "memory_total_bytes": int(pynvml.nvmlDeviceGetMemoryInfo(handle).total),
                    "memory_used_bytes": 0, "process_memory_bytes": None, "utilization_percent": 0})
        except pynvml.NVMLError as error:
            self.reason, self.devices = f"NVML could not read the GPUs: {error}", []
        if not self.devices:
            self.close()

    def sample(self) -> None:
        pynvml = getattr(self, "_pynvml", None)
        if pynvml is None:
            return
        pid = os.getpid()
        for device, handle in zip(self.devices, self._handles):
            try:
                device["memory_used_bytes"] = max(device["memory_used_bytes"],
                                                  int(pynvml.nvmlDeviceGetMemoryInfo(handle).used))
                device["utilization_percent"] = max(device["utilization_percent"],
                                                    int(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu))
                mine = [p.usedGpuMemory for p in pynvml.nvmlDeviceGetComputeRunningProcesses(handle)
                        if p.pid == pid and p.usedGpuMemory is not None]
                if mine:
                    device["process_memory_bytes"] = max(device["process_memory_bytes"] or 0, int(sum(mine)))
            except pynvml.NVMLError as error:
                device["error"] = str(error)

    def close(self) -> None:
        pynvml = getattr(self, "_pynvml", None)
        if pynvml is not None:
            self._pynvml = None
            try:
                pynvml.nvmlShutdown()
            except pynvml.NVMLError:
                pass

    def result(self) -> dict[str, Any] | None:
        return {"devices": self.devices, "sampled": "after each batch size's calls, maximum kept"} \
            if self.devices else None


def _latency(seconds: list[float], batch_size: int) -> dict[str, Any]:
    milliseconds = np.asarray(seconds) * 1000
    p50, p95, p99 = np.percentile(milliseconds, [50, 95, 99])
    return {"batch_size": batch_size, "calls": len(seconds),
            "latency_ms": {"p50": float(p50), "p95": float(p95), "p99": float(p99),
                           "mean": float(milliseconds.mean()), "min": float(milliseconds.min()),
                           "max": float(milliseconds.max())},
            "throughput_rows_per_s": float(batch_size * len(seconds) / sum(seconds)) if sum(seconds) else None}


def profile(predict: Callable[[Any], Any], sample: Any, batch_sizes: Sequence[int] = DEFAULT_BATCH_SIZES,
            repeats: int = DEFAULT_REPEATS, time_budget_s: float = DEFAULT_TIME_BUDGET_S, *,
            model: Any = None, model_path: str | os.PathLike[str] | None = None,
            trace_allocations: bool = True) -> dict[str, Any]:
    """Times ``predict(batch)`` at each batch size (rows taken from ``sample``, cycled when it has fewer) and
    reports latency p50/p95/p99 in ms, rows/s, the process's peak RSS during the calls, the peak of Python
    and numpy allocations in one call at the largest batch (tracemalloc; skipped when the budget is spent),
    the model's size (``model_path``'s files, or ``model`` pickled), and GPU figures (``gpu`` is None, and
    ``gpu_reason`` says why, when no GPU is visible)."""
    if not batch_sizes or any(isinstance(b, bool) or not isinstance(b, int) or b < 1 for b in batch_sizes):
        raise ValueError(f"batch_sizes must be positive integers, not {batch_sizes!r}")
    if repeats < 1 or not time_budget_s > 0:
        raise ValueError("repeats must be at least 1 and time_budget_s positive")
    started = time.perf_counter()
    deadline = started + time_budget_s
    gpu = GpuProbe()
    batches = {size: batch_of(sample, size) for size in batch_sizes}
    rss_before = _status_bytes("VmRSS")
    peak_was_reset = _reset_peak_rss()
    results = []
    try:
        for position, size in enumerate(batch_sizes):
            batch = batches[size]
            predict(batch)  # warm-up: lazy initialization, caches, first-call compilation
            share = (deadline - time.perf_counter()) / (len(batch_sizes) - position)
            stop = time.perf_counter() + share
            seconds: list[float] = []
            while len(seconds) < repeats and (not seconds or time.perf_counter() < stop):
                before = time.perf_counter()
                predict(batch)
                seconds.append(time.perf_counter() - before)
            results.append(_latency(seconds, size))
            gpu.sample()
    finally:
        gpu.close()
    peak, peak_source = _peak_rss()
    memory: dict[str, Any] = {
        "peak_rss_bytes": peak, "rss_before_bytes": rss_before,
        "peak_rss_source": f"{peak_source}, reset before the calls" if peak_was_reset
        else f"{peak_source}, the process's whole life (the peak could not be reset)",
        "tracemalloc_peak_bytes": None, "tracemalloc_reason": None}
    largest = max(batch_sizes)
    expected = next(r for r in results if r["batch_size"] == largest)["latency_ms"]["p50"] / 1000
    if not trace_allocations:
        memory["tracemalloc_reason"] = "not asked for"
    elif time.perf_counter() + 3 * expected > deadline:  # tracing slows allocation-heavy code a few times
        memory["tracemalloc_reason"] = "skipped: the time budget is spent"
    else:
        already = tracemalloc.is_tracing()
        if not already:
            tracemalloc.start()
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        predict(batches[largest])
        memory["tracemalloc_peak_bytes"] = tracemalloc.get_traced_memory()[1] - base
        if not already:
            tracemalloc.stop()
    return {"batches": results, "memory": memory, "model_size": model_size(model, model_path),
            "gpu": gpu.result(), "gpu_reason": None if gpu.devices else gpu.reason,
            "wall_s": time.perf_counter() - started}
