"""The ONNX serving backend on real MLflow model directories: predictions equal scikit-learn's on every test
row (float64 signatures convert to double graphs, so no rounding slack is needed), column signatures are fed
by name, the converted file is made once and reused, a forked child makes its own onnxruntime session, and
what cannot be converted is refused with ``OnnxUnavailable`` naming the reason."""

from __future__ import annotations

import importlib.util
import json
import os
import pickle
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from aitip.serving import onnx_backend
from aitip.serving.onnx_backend import OnnxUnavailable, load_onnx, onnx_path

MLP_TRUSTED = ["sklearn.neural_network._stochastic_optimizers.AdamOptimizer"]


@dataclass(frozen=True)
class Tensor:
    dtype: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class Column:
    name: str
    type: str


@dataclass(frozen=True)
class Signature:
    """The shape the serving loader hands over: a tensor spec or named columns."""

    tensor: Tensor | None = None
    columns: tuple[Column, ...] = ()


def read_model(model_dir: Path) -> tuple[dict, Signature]:
    mlmodel = yaml.safe_load((model_dir / "MLmodel").read_text())
    inputs = json.loads(mlmodel["signature"]["inputs"])
    if inputs[0]["type"] == "tensor":
        spec = inputs[0]["tensor-spec"]
        return mlmodel, Signature(tensor=Tensor(spec["dtype"], tuple(spec["shape"])))
    return mlmodel, Signature(columns=tuple(Column(i["name"], i["type"]) for i in inputs))


def save(estimator: Any, model_dir: Path, x: Any, **kwargs: Any) -> Path:
    import mlflow.sklearn
    from mlflow.models import infer_signature

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow.sklearn.save_model(estimator, str(model_dir), signature=infer_signature(x, estimator.predict(x)),
                                  pip_requirements=["scikit-learn"], **kwargs)  # no slow inference
    return model_dir


def load(model_dir: Path, **kwargs: Any) -> onnx_backend.OnnxModel:
    mlmodel, signature = read_model(model_dir)
    return load_onnx(model_dir, mlmodel, signature, **kwargs)


@pytest.fixture(scope="module")
def digits() -> dict[str, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=0)
    return {"x_train": x_train, "x_test": x_test, "y_train": y_train, "y_test": y_test}


@pytest.fixture(scope="module")
def models(digits: dict, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Any, Path]]:
    """Each estimator and its saved MLflow model directory (each in a folder of its own, as registered
    artifacts are), made once for the module."""
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    root = tmp_path_factory.mktemp("models")
    x, y = digits["x_train"], digits["y_train"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logistic = LogisticRegression(max_iter=500).fit(x, y)
        mlp = make_pipeline(StandardScaler(), MLPClassifier((64,), max_iter=300, random_state=0)).fit(x, y)
        ridge = Ridge().fit(x, y.astype(float))
    return {
        "logistic": (logistic, save(logistic, root / "logistic" / "model", x)),
        "mlp": (mlp, save(mlp, root / "mlp" / "model", x, skops_trusted_types=MLP_TRUSTED)),
        "ridge": (ridge, save(ridge, root / "ridge" / "model", x)),
    }


def frame_data(rows: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"reading": rng.normal(size=rows), "count": rng.integers(0, 10, rows),
                          "site": rng.choice(["north", "south", "east"], rows)})
    target = ((frame.reading + 0.2 * frame["count"] + (frame.site == "north") + rng.normal(scale=0.3, size=rows))
              > 1.2).astype(int).to_numpy()
    return frame, target


def fresh_copy(model_dir: Path, tmp_path: Path) -> Path:
    """A private copy, so cache tests do not see another test's converted file."""
    import shutil

    target = tmp_path / "copy" / model_dir.name
    shutil.copytree(model_dir, target)
    return target


@pytest.mark.parametrize("name", ["logistic", "mlp", "ridge"])
def test_tensor_models_predict_what_sklearn_predicts(name: str, models: dict, digits: dict) -> None:
    estimator, model_dir = models[name]
    predict = load(model_dir)
    x_test = digits["x_test"]
    expected = estimator.predict(x_test)

    def same(got: np.ndarray, want: np.ndarray) -> None:
        assert got.shape == want.shape
        if name == "ridge":  # a regressor's values: double arithmetic in another order, not bit for bit
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)
        else:
            assert (got == want).all(), f"{(got != want).sum()} of {len(want)} labels differ"

    same(predict(x_test), expected)
    assert predict.path == onnx_path(model_dir) == model_dir.parent / "model.onnx"
    # One row, flat or 2-D, and a frame of the same values, give the same answer.
    same(predict(x_test[0]), expected[:1])
    same(predict(x_test[:1]), expected[:1])
    same(predict(pd.DataFrame(x_test[:5])), expected[:5])


def test_a_float64_signature_converts_to_a_double_graph(models: dict) -> None:
    import onnx

    predict = load(models["mlp"][1])
    graph = onnx.load(str(predict.path)).graph
    assert [(i.name, i.type.tensor_type.elem_type) for i in graph.input] == [("input", onnx.TensorProto.DOUBLE)]


def test_session_is_single_threaded(models: dict, digits: dict) -> None:
    predict = load(models["logistic"][1])
    predict(digits["x_test"][:1])
    options = predict.session().get_session_options()
    assert (options.intra_op_num_threads, options.inter_op_num_threads) == (1, 1)


def test_column_signature_is_fed_by_name(tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    frame, target = frame_data(400, seed=1)
    numeric = frame[["reading", "count"]]
    estimator = LogisticRegression().fit(numeric, target)
    model_dir = save(estimator, tmp_path / "columns" / "model", numeric)
    mlmodel, signature = read_model(model_dir)
    assert [(c.name, c.type) for c in signature.columns] == [("reading", "double"), ("count", "long")]
    predict = load_onnx(model_dir, mlmodel, signature)
    test, _ = frame_data(300, seed=2)
    expected = estimator.predict(test[["reading", "count"]])
    assert (predict(test[["reading", "count"]]) == expected).all()
    assert (predict(test[["count", "site", "reading"]]) == expected).all()  # reordered, extra column ignored
    assert (predict(test[["reading", "count"]].to_numpy()) == expected).all()  # an array: signature order


def test_column_transformer_gets_one_input_per_column(tmp_path: Path) -> None:
    import onnx
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    frame, target = frame_data(400, seed=3)
    estimator = Pipeline([
        ("columns", ColumnTransformer([("numbers", StandardScaler(), ["reading", "count"]),
                                       ("site", OneHotEncoder(handle_unknown="ignore"), ["site"])])),
        ("classify", LogisticRegression()),
    ]).fit(frame, target)
    model_dir = save(estimator, tmp_path / "pipeline" / "model", frame)
    predict = load(model_dir)
    test, _ = frame_data(300, seed=4)
    assert (predict(test) == estimator.predict(test)).all()
    assert [i.name for i in onnx.load(str(predict.path)).graph.input] == ["reading", "count", "site"]


def test_string_columns_without_a_column_transformer_are_refused(tmp_path: Path) -> None:
    mlmodel = {"flavors": {"sklearn": {}}}
    signature = Signature(columns=(Column("site", "string"),))
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    from sklearn.linear_model import LogisticRegression

    estimator = LogisticRegression()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("mlflow.sklearn.load_model", lambda uri: estimator)
        with pytest.raises(OnnxUnavailable, match="string columns"):
            load_onnx(model_dir, mlmodel, signature)


@pytest.mark.parametrize("flavors, named", [
    ({"python_function": {}, "xgboost": {"data": "model.xgb"}}, "xgboost"),
    ({"python_function": {"loader_module": "mlflow.pyfunc.model"}}, "python_function"),
    ({"python_function": {}, "transformers": {}, "langchain": {}}, "langchain, transformers"),
])
def test_unsupported_flavor_is_named(flavors: dict, named: str, tmp_path: Path) -> None:
    with pytest.raises(OnnxUnavailable, match=f"flavor is {named}"):
        load_onnx(tmp_path, {"flavors": flavors}, Signature(tensor=Tensor("float64", (-1, 4))))


def test_an_estimator_skl2onnx_cannot_convert_is_refused(tmp_path: Path, digits: dict) -> None:
    from sklearn.kernel_ridge import KernelRidge

    estimator = KernelRidge().fit(digits["x_train"][:200], digits["y_train"][:200].astype(float))
    model_dir = save(estimator, tmp_path / "kernel" / "model", digits["x_train"][:200])
    with pytest.raises(OnnxUnavailable, match="skl2onnx cannot convert KernelRidge"):
        load(model_dir)
    assert not onnx_path(model_dir).exists()


def test_the_converted_file_is_reused_until_the_model_changes(models: dict, digits: dict, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    estimator, original = models["logistic"]
    model_dir = fresh_copy(original, tmp_path)
    first = load(model_dir)
    cached = onnx_path(model_dir)
    made = cached.stat().st_mtime_ns

    def no_conversion(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the model was loaded again although the cached ONNX file is fresh")

    with monkeypatch.context() as patch:
        patch.setattr("mlflow.sklearn.load_model", no_conversion)
        second = load(model_dir)
        assert (second(digits["x_test"]) == estimator.predict(digits["x_test"])).all()
    assert cached.stat().st_mtime_ns == made
    assert first.path == second.path == cached
    assert [p.name for p in cached.parent.iterdir() if p.name.startswith(".")] == []  # no temporary left

    later = time.time() + 5  # the model is replaced in place: its files are now newer than the cache
    os.utime(model_dir / "MLmodel", (later, later))
    load(model_dir)
    assert cached.stat().st_mtime_ns > made


def test_an_unwritable_cache_serves_from_memory(models: dict, digits: dict, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    estimator, original = models["logistic"]
    model_dir = fresh_copy(original, tmp_path)

    def read_only(path: Path, data: bytes, **kwargs: Any) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(onnx_backend, "write_atomic", read_only)
    predict = load(model_dir)
    assert predict.path is None and isinstance(predict.source, bytes)
    assert (predict(digits["x_test"]) == estimator.predict(digits["x_test"])).all()


def _predict_in_child(predict: Any, rows: np.ndarray) -> dict:
    """Fork; the child predicts and sends back its labels and whether it made its own session."""
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        status = 0
        try:
            before = predict._session
            labels = predict(rows)
            answer = {"labels": labels.tolist(), "own_session": predict._session is not before,
                      "pid": predict._pid == os.getpid()}
        except BaseException as error:  # noqa: BLE001 - reported to the parent
            answer, status = {"error": repr(error)}, 1
        with os.fdopen(writer, "wb") as handle:
            pickle.dump(answer, handle)
        os._exit(status)
    os.close(writer)
    with os.fdopen(reader, "rb") as handle:
        answer = pickle.load(handle)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0, answer
    return answer


@pytest.mark.parametrize("parent_predicts_first", [False, True])
def test_a_forked_child_predicts_with_its_own_session(parent_predicts_first: bool, models: dict,
                                                      digits: dict) -> None:
    estimator, model_dir = models["mlp"]
    predict = load(model_dir)
    assert predict._session is None  # loading made no session: nothing the fork could break
    x_test = digits["x_test"]
    if parent_predicts_first:
        predict(x_test[:1])
    answer = _predict_in_child(predict, x_test)
    assert answer["labels"] == estimator.predict(x_test).tolist()
    assert answer["own_session"] and answer["pid"]
    if parent_predicts_first:
        assert predict._pid == os.getpid()  # the parent's session is untouched and still answers
        assert predict(x_test[:3]).tolist() == estimator.predict(x_test[:3]).tolist()


def test_without_torch_a_pytorch_model_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch → ImportError
    mlmodel = {"flavors": {"python_function": {}, "pytorch": {"model_data": "data"}}}
    with pytest.raises(OnnxUnavailable, match="torch is not installed"):
        load_onnx(tmp_path / "model", mlmodel, Signature(tensor=Tensor("float32", (-1, 64))))


def test_a_pytorch_model_needs_a_tensor_signature_with_fixed_sizes(tmp_path: Path) -> None:
    mlmodel = {"flavors": {"pytorch": {}}}
    with pytest.raises(OnnxUnavailable, match="tensor signature"):
        load_onnx(tmp_path, mlmodel, Signature(columns=(Column("a", "double"),)))
    with pytest.raises(OnnxUnavailable, match="fixed sizes"):
        load_onnx(tmp_path, mlmodel, Signature(tensor=Tensor("float32", (-1, -1, 3))))


def save_torch(serialization_format: str, model_dir: Path, x: np.ndarray) -> np.ndarray:
    """A small network on the digits, saved by MLflow in ``serialization_format``; returns its outputs on x."""
    import mlflow.pytorch
    import torch
    from mlflow.models import infer_signature

    torch.manual_seed(0)
    network = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10)).eval()
    with torch.no_grad():
        expected = network(torch.from_numpy(x)).numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow.pytorch.save_model(network, str(model_dir), serialization_format=serialization_format,
                                  signature=infer_signature(x, expected), input_example=x[:4],
                                  pip_requirements=["torch"])
    return expected


needs_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                                 reason="torch is not installed (the platform's `torch` extra)")


@needs_torch
@pytest.mark.parametrize("serialization_format", ["pickle", "pt2"])
def test_pytorch_models_predict_what_torch_predicts(serialization_format: str, tmp_path: Path,
                                                    digits: dict) -> None:
    if importlib.util.find_spec("onnxscript") is None:
        pytest.skip("the dynamo exporter needs onnxscript (the platform's `torch` extra)")
    x = digits["x_test"].astype(np.float32)
    expected = save_torch(serialization_format, tmp_path / serialization_format / "model", x)
    predict = load(tmp_path / serialization_format / "model")
    np.testing.assert_allclose(predict(x), expected, rtol=1e-5, atol=1e-5)
    assert predict(x[0]).shape == (1, 10)
    assert (predict(x).argmax(axis=1) == expected.argmax(axis=1)).all()


@needs_torch
def test_without_onnxscript_a_pickled_module_still_exports(tmp_path: Path, digits: dict,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The TorchScript exporter takes over; a pt2 model (a traced GraphModule) it cannot export is refused
    with a hint to install onnxscript."""
    x = digits["x_test"].astype(np.float32)
    expected = save_torch("pickle", tmp_path / "pickle" / "model", x)
    save_torch("pt2", tmp_path / "pt2" / "model", x)
    monkeypatch.setitem(sys.modules, "onnxscript", None)
    np.testing.assert_allclose(load(tmp_path / "pickle" / "model")(x), expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(OnnxUnavailable, match="install onnxscript"):
        load(tmp_path / "pt2" / "model")
