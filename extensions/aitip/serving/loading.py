"""A model version's files loaded for serving: its signature, and a ``predict`` over a batch of rows. The
native flavor is called directly where MLflow has one (a scikit-learn estimator's ``predict``); other
flavors go through ``mlflow.pyfunc``. The ``onnx`` backend converts the model once and runs it in
onnxruntime (:mod:`.onnx_backend`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from .signature import Signature, parse

BACKENDS = ("python", "onnx")


class LoadFailed(RuntimeError):
    """The model version cannot be served (its files, flavor or backend): the deployment fails with this."""


@dataclass
class LoadedModel:
    signature: Signature
    predict: Callable[[Any], Any]
    flavor: str
    backend: str


def read_mlmodel(model_dir: Path) -> dict[str, Any]:
    path = model_dir / "MLmodel"
    if not path.is_file():
        raise LoadFailed(f"{model_dir} holds no MLmodel file: it is not an MLflow model")
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise LoadFailed(f"the MLmodel file cannot be read: {error}") from None
    if not isinstance(document, dict) or "flavors" not in document:
        raise LoadFailed("the MLmodel file names no flavors")
    return document


def load(model_dir: Path, backend: str = "python") -> LoadedModel:
    if backend not in BACKENDS:
        raise LoadFailed(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    mlmodel = read_mlmodel(model_dir)
    try:
        signature = parse(mlmodel)
    except (ValueError, KeyError, TypeError) as error:
        raise LoadFailed(f"the model's signature cannot be read: {error}") from None
    flavors = mlmodel["flavors"]
    if backend == "onnx":
        try:
            from .onnx_backend import OnnxUnavailable, load_onnx
        except ImportError as error:
            raise LoadFailed(f"the onnx backend needs skl2onnx and onnxruntime: {error}") from None
        try:
            return LoadedModel(signature, load_onnx(model_dir, mlmodel, signature), "onnx", backend)
        except OnnxUnavailable as error:
            raise LoadFailed(f"the model cannot run in onnxruntime: {error}") from None
    try:
        if "sklearn" in flavors:
            import mlflow.sklearn

            estimator = mlflow.sklearn.load_model(str(model_dir))
            return LoadedModel(signature, estimator.predict, "sklearn", backend)
        import mlflow.pyfunc

        model = mlflow.pyfunc.load_model(str(model_dir))
        return LoadedModel(signature, model.predict, next(iter(flavors)), backend)
    except Exception as error:  # whatever the flavor's loader raises is the reason the deployment fails
        raise LoadFailed(f"the model cannot be loaded: {type(error).__name__}: {error}") from None


def as_array(predictions: Any) -> np.ndarray:
    """A model's answer as an array (a frame's or series' values)."""
    values = getattr(predictions, "to_numpy", None)
    return np.asarray(values() if callable(values) else predictions)
