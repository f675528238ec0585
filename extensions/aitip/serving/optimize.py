"""``aitip serve optimize``: packaging a registered model for Triton with Triton Model Navigator.

The navigator (0.14) pins numpy<2 and needs TensorRT, so it never runs in the platform's environment: the work
happens in ``notebooks/serve/optimize_triton.ipynb`` on the ``aitip-triton`` kernel (kernels/triton), run as a
job. These pure helpers are the platform's side of that contract: ``optimize_parameters`` checks what the job
will be given before a GPU is spent on it, and ``read_navigator_summary`` reads back what the notebook wrote
(``navigator_summary.json`` in the output folder) so the result can be shown and recorded without the navigator.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import yaml

NOTEBOOK = "serve/optimize_triton.ipynb"  # under notebooks/
KERNEL = "aitip-triton"
SUMMARY = "navigator_summary.json"
SUMMARY_SCHEMA = 1
MAX_BATCH = 4096
DEVICES = ("cuda", "cpu")
STATUSES = ("OK", "FAIL", "SKIPPED", "NOOP", "INITIALIZED")
# Triton's model name becomes a folder of the model repository and part of its URLs.
MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
# What the navigator 0.14 can produce from each MLflow flavor the notebook loads. A sklearn model reaches the
# navigator as ONNX (skl2onnx in the notebook); TensorRT conversion of its ai.onnx.ml operators usually fails,
# and the summary says so per format.
FORMATS = {
    "sklearn": ("onnx", "trt"),
    "pytorch": ("torch", "torchscript", "torch-exportedprogram", "onnx", "torch-trt", "trt"),
}
DEFAULT_FORMATS = {"sklearn": ("onnx", "trt"), "pytorch": ("torchscript", "onnx", "trt")}


def optimize_parameters(model_dir: str | Path, output_dir: str | Path, *, batch_sizes: Any = (1, 8, 64),
                        formats: Any = None, model_name: str = "model", device: str = "cuda",
                        stability_percentage: float = 10.0) -> dict[str, Any]:
    """The notebook's parameters, checked: an MLflow model directory of a flavor the notebook loads, an output
    folder outside it, batch sizes as a sorted list of distinct positive integers, and target formats the
    navigator can make from that flavor. ``stability_percentage`` is the navigator's allowed variation between
    measurement windows (its default 10; a busy CPU timing microsecond models needed 30 here). Raises
    ``ValueError`` saying what to fix."""
    model_dir, output_dir = Path(model_dir).resolve(), Path(output_dir).resolve()
    mlmodel_file = model_dir / "MLmodel"
    if not mlmodel_file.is_file():
        raise ValueError(f"model_dir must be an MLflow model directory (with an MLmodel file): {model_dir}")
    try:
        mlmodel = yaml.safe_load(mlmodel_file.read_text()) or {}
    except yaml.YAMLError as error:
        raise ValueError(f"the MLmodel file in {model_dir} is not valid YAML: {error}") from error
    flavors = set((mlmodel.get("flavors") or {}))
    flavor = next((name for name in FORMATS if name in flavors), None)
    if flavor is None:
        named = ", ".join(sorted(flavors - {"python_function"})) or "python_function only"
        raise ValueError(f"Triton packaging takes sklearn or pytorch models; this model's flavor is {named}")
    if output_dir == model_dir or output_dir.is_relative_to(model_dir):
        raise ValueError(f"output_dir must be outside the model directory, not {output_dir}")
    if output_dir.exists() and not output_dir.is_dir():
        raise ValueError(f"output_dir exists and is not a folder: {output_dir}")

    if isinstance(batch_sizes, (str, bytes)) or not hasattr(batch_sizes, "__iter__"):
        raise ValueError(f"batch_sizes must be a list of positive integers, not {batch_sizes!r}")
    sizes = list(batch_sizes)
    if not sizes or any(isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_BATCH
                        for size in sizes):
        raise ValueError(f"batch_sizes must be a non-empty list of integers from 1 to {MAX_BATCH}, not {sizes!r}")

    if formats is None:
        wanted = list(DEFAULT_FORMATS[flavor])
    elif isinstance(formats, str) or not hasattr(formats, "__iter__"):
        raise ValueError(f"formats must be a list of format names, not {formats!r}")
    else:
        wanted = list(dict.fromkeys(str(name).strip().lower() for name in formats))
    unknown = [name for name in wanted if name not in FORMATS[flavor]]
    if not wanted or unknown:
        raise ValueError(f"formats for a {flavor} model are among {', '.join(FORMATS[flavor])}; "
                         f"not {', '.join(unknown) or 'none'}")

    if not isinstance(model_name, str) or not MODEL_NAME.match(model_name):
        raise ValueError(f"model_name must be 1-128 letters, digits, '_', '.' or '-', starting with a letter or "
                         f"digit, not {model_name!r}")
    if device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, not {device!r}")
    if device == "cpu" and any(name in ("trt", "torch-trt") for name in wanted):
        raise ValueError("TensorRT formats (trt, torch-trt) need device 'cuda'")
    if isinstance(stability_percentage, bool) or not isinstance(stability_percentage, (int, float)) \
            or not 0 < stability_percentage <= 100:
        raise ValueError(f"stability_percentage must be a number above 0 and at most 100, not {stability_percentage!r}")
    return {"model_dir": str(model_dir), "output_dir": str(output_dir), "batch_sizes": sorted(set(sizes)),
            "target_formats": wanted, "model_name": model_name, "target_device": device,
            "stability_percentage": float(stability_percentage)}


def read_navigator_summary(output_dir: str | Path) -> dict[str, Any]:
    """What the notebook wrote into ``output_dir``, normalized (see ``normalize_summary``), with the package and
    Triton repository paths resolved under ``output_dir``. Raises ``ValueError`` when the summary is missing or
    malformed (the job then failed before writing it)."""
    output_dir = Path(output_dir)
    path = output_dir / SUMMARY
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"no {SUMMARY} in {output_dir}: the optimize notebook did not finish") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from error
    summary = normalize_summary(raw, str(path))
    summary["package"] = _inside(output_dir, summary["package"])
    summary["repository"] = _inside(output_dir, summary["repository"])
    return summary


def normalize_summary(raw: Any, source: str) -> dict[str, Any]:
    """A summary as the notebook made it (its file, or the output it displayed), normalized: per model variant
    its format, overall status, and per runner the command statuses and p50 latency (ms) and throughput
    (inferences/s) per batch size; the selected runtime; the package and Triton repository as paths relative to
    the output folder. Raises ``ValueError`` naming ``source`` when it is not a summary this platform reads."""
    if not isinstance(raw, dict) or raw.get("schema") != SUMMARY_SCHEMA:
        raise ValueError(f"{source} has schema {raw.get('schema') if isinstance(raw, dict) else None!r}; "
                         f"this platform reads schema {SUMMARY_SCHEMA}")
    models = raw.get("models")
    if not isinstance(models, dict):
        raise ValueError(f"{source} has no 'models' table")

    summary_models: dict[str, Any] = {}
    for key, model in models.items():
        runners = {}
        for name, runner in (model.get("runners") or {}).items():
            runners[name] = {
                "status": _status(runner.get("status")),
                "commands": {command: _status(status) for command, status in (runner.get("commands") or {}).items()},
                "latency_ms": _per_batch(runner.get("latency_ms")),
                "throughput": _per_batch(runner.get("throughput")),
            }
        summary_models[key] = {"format": str(model.get("format") or key), "status": _status(model.get("status")),
                               "conversion": {command: _status(status)
                                              for command, status in (model.get("conversion") or {}).items()},
                               "runners": runners}

    best = raw.get("best")
    if best is not None and (not isinstance(best, dict) or best.get("model") not in summary_models):
        raise ValueError(f"{source}: 'best' names no model of the summary: {best!r}")
    formats: dict[str, str] = {}  # format → the best status any of its variants reached
    for model in summary_models.values():
        now = formats.get(model["format"])
        if now is None or STATUSES.index(model["status"]) < STATUSES.index(now):
            formats[model["format"]] = model["status"]
    return {
        "navigator_version": raw.get("navigator_version"),
        "model_name": raw.get("model_name"),
        "flavor": raw.get("flavor"),
        "target_device": raw.get("target_device"),
        "batch_sizes": [int(size) for size in raw.get("batch_sizes") or []],
        "formats": formats,
        "models": summary_models,
        "best": best,
        "package": _relative(source, raw.get("package")),
        "repository": _relative(source, raw.get("repository")),
        "repository_error": raw.get("repository_error"),
        "elapsed_s": raw.get("elapsed_s"),
    }


def _status(value: Any) -> str:
    text = str(value or "").upper()
    return text if text in STATUSES else "FAIL"  # an unknown word is not a success


def _per_batch(table: Any) -> dict[int, float]:
    out = {}
    for size, value in (table or {}).items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(number):
            out[int(size)] = number
    return dict(sorted(out.items()))


def _relative(source: str, path: Any) -> str | None:
    """A path the notebook named, kept only as a plain relative path (no '..', not absolute)."""
    if not path:
        return None
    text = str(path)
    if Path(text).is_absolute() or ".." in Path(text).parts:
        raise ValueError(f"{source} points outside its output folder: {text!r}")
    return text


def _inside(root: Path, relative: Any) -> str | None:
    """A path the notebook wrote, relative to the output folder; refused if it points outside it."""
    if not relative:
        return None
    resolved = (root / str(relative)).resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise ValueError(f"the summary points outside {root}: {relative!r}")
    return str(resolved)
