"""The ``onnx`` serving backend: a registered MLflow model is converted to ONNX once (skl2onnx for the
sklearn flavor, ``torch.onnx.export`` for the pytorch flavor), the file is cached next to the model
directory, and predictions run in onnxruntime, which answered one digits row 18-33x and a batch of 64
8-11x faster than the estimator's own ``predict``, with the same labels (benchmarks/serving_onnx.py).

The replica that predicts is forked from a host process that loaded the model; onnxruntime's thread pools
do not survive a fork, so the conversion happens at load time but the ``InferenceSession`` is made on the
first call, in whichever process calls, with one intra-op and one inter-op thread (replicas scale out by
process, not by threads inside one).

Anything this module cannot do raises ``OnnxUnavailable`` with a message saying what and why; the serving
loader maps it to its own ``LoadFailed`` (this module does not import the loader, to keep packages acyclic).
"""

from __future__ import annotations

import io
import logging
import os
import threading
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from aitip.atomic_files import write_atomic

log = logging.getLogger("aitip.serving")

INPUT = "input"  # the graph input's name for a tensor signature (and every pytorch model)
TARGET_OPSET = 21  # skl2onnx's opsets: 21 is tested by skl2onnx 1.20 and run by every onnxruntime >= 1.17
BATCH_EXAMPLE = 2  # torch.export specializes a size-1 dimension to a constant: trace with two rows

# MLflow column type → (skl2onnx tensor type name, numpy dtype the frame's column is fed as).
COLUMN_TYPES: dict[str, tuple[str, Any]] = {
    "double": ("DoubleTensorType", np.float64),
    "float": ("FloatTensorType", np.float32),
    "long": ("Int64TensorType", np.int64),
    "integer": ("Int32TensorType", np.int32),
    "boolean": ("BooleanTensorType", np.bool_),
    "string": ("StringTensorType", object),
}


class OnnxUnavailable(RuntimeError):
    """This model cannot be served by the ONNX backend (flavor, estimator, signature or a missing package)."""


def onnx_path(model_dir: Path) -> Path:
    """Where the converted model is cached: beside the model directory (``.../model`` → ``.../model.onnx``),
    not inside it, so the MLflow model directory stays exactly as it was registered."""
    model_dir = Path(model_dir)
    return model_dir.parent / f"{model_dir.name}.onnx"


def load_onnx(model_dir: Path, mlmodel: dict, signature: Any, *,
              providers: Sequence[str] = ("CPUExecutionProvider",)) -> OnnxModel:
    """Convert the MLflow model in ``model_dir`` to ONNX (or reuse the cached file when it is newer than every
    file of the model) and return a callable ``predict(array_or_frame) -> numpy array``: the label for a
    classifier, the value for a regressor, the first output of a pytorch model."""
    model_dir = Path(model_dir)
    flavors = dict(mlmodel.get("flavors") or {})
    if "sklearn" in flavors:
        convert, prepare = _sklearn_converter(model_dir, signature)
    elif "pytorch" in flavors:
        convert, prepare = _torch_converter(model_dir, signature)
    else:
        named = ", ".join(sorted(name for name in flavors if name != "python_function")) or "python_function"
        raise OnnxUnavailable(f"the ONNX backend converts sklearn and pytorch models; this model's flavor is "
                              f"{named}: serve it with the python backend")
    _import_onnxruntime()  # fail at load time, not on the first request
    target = onnx_path(model_dir)
    source: Path | bytes
    if _cache_is_fresh(target, model_dir):
        source = target
        log.debug("reusing %s", target)
    else:
        data = convert()
        try:
            write_atomic(target, data)
            source = target
        except OSError as error:  # a read-only model store still serves, from memory
            log.warning("could not cache the ONNX model at %s (%s); keeping it in memory", target, error)
            source = data
    return OnnxModel(source, prepare, providers=tuple(providers), squeeze="sklearn" in flavors)


class OnnxModel:
    """A converted model and the onnxruntime session that runs it, made on the first call in each process."""

    def __init__(self, source: Path | bytes, prepare: Callable[[Any, list[str]], dict[str, np.ndarray]], *,
                 providers: tuple[str, ...], squeeze: bool) -> None:
        self.source = source
        self.prepare = prepare
        self.providers = providers
        self.squeeze = squeeze  # sklearn regressors answer (n,), their ONNX graph (n, 1)
        self._session: Any = None
        self._inputs: list[str] = []
        self._output: list[str] = []
        self._pid: int | None = None
        self._lock, self._lock_pid = threading.Lock(), os.getpid()

    @property
    def path(self) -> Path | None:
        """The cached ONNX file, or None when the model is held in memory only."""
        return self.source if isinstance(self.source, Path) else None

    def session(self) -> Any:
        """This process's session; a process forked from the one that made a session makes its own."""
        pid = os.getpid()
        if self._session is None or self._pid != pid:
            if self._lock_pid != pid:  # a lock copied by fork may be held by a thread that did not come along
                self._lock, self._lock_pid = threading.Lock(), pid
            with self._lock:
                if self._session is None or self._pid != pid:
                    session = _new_session(self.source, self.providers)
                    self._inputs = [node.name for node in session.get_inputs()]
                    self._output = [session.get_outputs()[0].name]
                    self._session, self._pid = session, pid
        return self._session

    def __call__(self, data: Any) -> np.ndarray:
        session = self.session()
        output = session.run(self._output, self.prepare(data, self._inputs))[0]
        if self.squeeze and output.ndim == 2 and output.shape[1] == 1:
            output = output.ravel()
        return output


def _new_session(source: Path | bytes, providers: tuple[str, ...]) -> Any:
    ort = _import_onnxruntime()
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    model = str(source) if isinstance(source, Path) else source
    return ort.InferenceSession(model, sess_options=options, providers=list(providers))


def _import_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError as error:
        raise OnnxUnavailable(f"onnxruntime is not installed ({error}); install the platform's dependencies "
                              f"or serve with the python backend") from error
    return onnxruntime


def _cache_is_fresh(target: Path, model_dir: Path) -> bool:
    """The cached file is reused only when it is newer than every file of the model directory."""
    try:
        cached = target.stat().st_mtime_ns
    except FileNotFoundError:
        return False
    newest = max((p.stat().st_mtime_ns for p in model_dir.rglob("*") if p.is_file()), default=0)
    return cached > newest


# -- sklearn ---------------------------------------------------------------------------------------------

def _sklearn_converter(model_dir: Path, signature: Any) -> tuple[Callable[[], bytes], Callable]:
    """How to convert (deferred: skipped when the cache is fresh) and how to turn a request into the feed.

    A tensor signature becomes one input ``[None, n]``: float32 stays float32, every other numeric dtype is fed
    as float64 (what sklearn's ``check_array`` makes of it), so the graph computes what sklearn computes. A
    column signature becomes one input per column when the estimator starts with a ``ColumnTransformer``
    (which selects columns by name); otherwise all-numeric columns are concatenated in signature order into
    one ``[None, n]`` input, since skl2onnx's plain estimators take exactly one input.
    """
    columns = tuple(getattr(signature, "columns", None) or ())
    tensor = getattr(signature, "tensor", None)
    estimator: list[Any] = []  # loaded only to convert: a fresh cached file needs no sklearn load

    def model() -> Any:
        if not estimator:
            import mlflow.sklearn

            estimator.append(mlflow.sklearn.load_model(str(model_dir)))
        return estimator[0]

    if columns:
        names = [column.name for column in columns]
        kinds = [str(column.type) for column in columns]
        unknown = sorted({kind for kind in kinds if kind not in COLUMN_TYPES})
        if unknown:
            raise OnnxUnavailable(f"column types {', '.join(unknown)} have no ONNX tensor type")
        dtype = np.float32 if set(kinds) == {"float"} else np.float64

        def types() -> list:
            if _starts_with_column_transformer(model()):
                return [(name, _tensor_type(COLUMN_TYPES[kind][0], [None, 1])) for name, kind in zip(names, kinds)]
            if "string" in kinds:
                raise OnnxUnavailable("string columns convert only when the model starts with a ColumnTransformer "
                                      "that encodes them")
            return [(INPUT, _float_type(dtype, len(names)))]

        def prepare(data: Any, inputs: list[str]) -> dict[str, np.ndarray]:
            if inputs == [INPUT]:  # the graph's inputs say which of the two shapes was converted
                return {INPUT: _matrix(data, dtype, names)}
            return {name: _column(data, name, index, COLUMN_TYPES[kind][1])
                    for index, (name, kind) in enumerate(zip(names, kinds))}
    else:
        dtype = np.float32 if tensor is not None and str(tensor.dtype) == "float32" else np.float64
        width = None
        if tensor is not None and len(tensor.shape) == 2 and tensor.shape[1] > 0:
            width = int(tensor.shape[1])

        def types() -> list:
            return [(INPUT, _float_type(dtype, width or int(model().n_features_in_)))]

        def prepare(data: Any, inputs: list[str]) -> dict[str, np.ndarray]:
            return {INPUT: _matrix(data, dtype, None)}

    def convert() -> bytes:
        try:
            from skl2onnx import to_onnx
        except ImportError as error:
            raise OnnxUnavailable(f"skl2onnx is not installed ({error})") from error
        estimator_ = model()
        options = {id(estimator_): {"zipmap": False}} if hasattr(estimator_, "classes_") else None
        initial_types = types()
        try:
            proto = to_onnx(estimator_, initial_types=initial_types, options=options, target_opset=TARGET_OPSET)
        except Exception as error:  # skl2onnx raises many types for "cannot convert this estimator"
            raise OnnxUnavailable(f"skl2onnx cannot convert {type(estimator_).__name__}: "
                                  f"{type(error).__name__}: {error}") from error
        return proto.SerializeToString()

    return convert, prepare


def _starts_with_column_transformer(estimator: Any) -> bool:
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    first = estimator.steps[0][1] if isinstance(estimator, Pipeline) else estimator
    return isinstance(first, ColumnTransformer)


def _tensor_type(name: str, shape: list) -> Any:
    from skl2onnx.common import data_types

    return getattr(data_types, name)(shape)


def _float_type(dtype: Any, width: int) -> Any:
    return _tensor_type("FloatTensorType" if dtype == np.float32 else "DoubleTensorType", [None, width])


def _matrix(data: Any, dtype: Any, names: list[str] | None) -> np.ndarray:
    """A 2-D array of ``dtype`` from a frame (columns by name when the signature names them) or an array
    (one row may come flat)."""
    if hasattr(data, "columns"):
        frame = data[names] if names is not None else data
        matrix = frame.to_numpy(dtype=dtype)
    else:
        matrix = np.asarray(data, dtype=dtype)
    return matrix.reshape(1, -1) if matrix.ndim == 1 else matrix


def _column(data: Any, name: str, index: int, dtype: Any) -> np.ndarray:
    if hasattr(data, "columns"):
        values = data[name].to_numpy()
    else:
        array = np.asarray(data, dtype=object)
        values = (array.reshape(1, -1) if array.ndim == 1 else array)[:, index]
    return np.asarray(values, dtype=dtype).reshape(-1, 1)


# -- pytorch ---------------------------------------------------------------------------------------------

def _torch_converter(model_dir: Path, signature: Any) -> tuple[Callable[[], bytes], Callable]:
    """``torch.onnx.export`` with a dynamic batch dimension. The dynamo exporter (needs ``onnxscript``) handles
    both MLflow formats (pickled module and ``torch.export`` pt2); without onnxscript the TorchScript exporter
    handles a pickled module only."""
    tensor = getattr(signature, "tensor", None)
    if tensor is None:
        raise OnnxUnavailable("a pytorch model converts to ONNX only with a tensor signature (dtype and shape)")
    shape = tuple(int(size) for size in tensor.shape)
    if not shape or any(size < 0 for size in shape[1:]):
        raise OnnxUnavailable(f"a pytorch model converts to ONNX only with fixed sizes after the batch "
                              f"dimension; the signature's shape is {shape}")
    dtype = np.dtype(str(tensor.dtype))

    def convert() -> bytes:
        try:
            import torch
        except ImportError as error:
            raise OnnxUnavailable(f"torch is not installed ({error}): install the platform's `torch` extra to "
                                  f"convert pytorch models") from error
        import mlflow.pytorch

        module = mlflow.pytorch.load_model(str(model_dir))
        example = (torch.from_numpy(np.zeros((BATCH_EXAMPLE, *shape[1:]), dtype=dtype)),)
        try:
            import onnxscript  # noqa: F401  the dynamo exporter's dependency
            dynamo = True
        except ImportError:
            dynamo = False
        with warnings.catch_warnings():
            # A pt2 model loads as a GraphModule, which has no eval mode to switch to (it was traced in it).
            warnings.filterwarnings("ignore", message="Exporting a model while it is in training mode")
            try:
                if dynamo:
                    batch = torch.export.Dim("batch")
                    program = torch.onnx.export(module, example, dynamo=True, input_names=[INPUT],
                                                output_names=["output"], dynamic_shapes=({0: batch},),
                                                verbose=False, report=False)
                    return program.model_proto.SerializeToString()
                buffer = io.BytesIO()
                torch.onnx.export(module, example, buffer, dynamo=False, input_names=[INPUT], output_names=["output"],
                                  dynamic_axes={INPUT: {0: "batch"}})
                return buffer.getvalue()
            except Exception as error:
                hint = "" if dynamo else " (install onnxscript for the dynamo exporter, which also reads pt2 models)"
                raise OnnxUnavailable(f"torch.onnx.export failed for {type(module).__name__}: "
                                      f"{type(error).__name__}: {error}{hint}") from error

    def prepare(data: Any, inputs: list[str]) -> dict[str, np.ndarray]:
        array = data.to_numpy(dtype=dtype) if hasattr(data, "columns") else np.asarray(data, dtype=dtype)
        if array.ndim == len(shape) - 1:
            array = array[np.newaxis]
        return {INPUT: array}

    return convert, prepare
