"""Triton packaging, the platform's side: the optimize notebook's parameters are checked before a GPU job is
spent on them, the summary the notebook writes (an example captured from a real navigator 0.14 run, CPU
runner) is read back and normalized, a malformed one is refused, and the notebook itself is valid nbformat
with a ``parameters`` cell declaring what ``optimize_parameters`` returns."""

from __future__ import annotations

import ast
import copy
import json
from pathlib import Path

import nbformat
import pytest

from aitip.serving.optimize import (KERNEL, NOTEBOOK, SUMMARY, optimize_parameters, read_navigator_summary)

ROOT = Path(__file__).resolve().parents[2]

# What notebooks/serve/optimize_triton.ipynb wrote for the digits MLP pipeline (skops) on a 2-CPU machine with
# model navigator 0.14.0, target_device "cpu", formats ["onnx"] (trimmed to the fields the platform reads).
CPU_RUN = {
    "schema": 1, "navigator_version": "0.14.0", "model_name": "digits", "flavor": "sklearn", "target_device": "cpu",
    "batch_sizes": [1, 8, 64], "stability_percentage": 30, "target_formats": ["onnx"],
    "models": {"onnx": {
        "format": "onnx", "status": "OK", "conversion": {"CopyModel": "OK"},
        "runners": {"OnnxCPU": {"status": "OK", "commands": {"Correctness": "OK", "Performance": "OK"},
                                "latency_ms": {"1": 0.022026, "8": 0.030589, "64": 0.054968},
                                "throughput": {"1": 38593.27, "8": 249984.27, "64": 1122342.85}}}}},
    "best": {"model": "onnx", "runner": "OnnxCPU", "latency_ms": 0.022026, "throughput": 38593.27},
    "sklearn_agreement": 1.0, "package": "model.nav", "repository": "triton_repository",
    "repository_error": None, "elapsed_s": 8.37,
}


def mlflow_dir(path: Path, *flavors: str) -> Path:
    path.mkdir(parents=True)
    (path / "MLmodel").write_text("flavors:\n" + "".join(f"  {name}: {{}}\n" for name in flavors))
    return path


@pytest.fixture
def sklearn_model(tmp_path: Path) -> Path:
    return mlflow_dir(tmp_path / "models" / "digits" / "model", "python_function", "sklearn")


def test_parameters_are_normalized(sklearn_model: Path, tmp_path: Path) -> None:
    got = optimize_parameters(sklearn_model, tmp_path / "out", batch_sizes=[64, 1, 8, 8], formats=["ONNX", "trt"],
                              model_name="digits-mlp")
    assert got == {"model_dir": str(sklearn_model.resolve()), "output_dir": str((tmp_path / "out").resolve()),
                   "batch_sizes": [1, 8, 64], "target_formats": ["onnx", "trt"], "model_name": "digits-mlp",
                   "target_device": "cuda", "stability_percentage": 10.0}
    json.dumps(got)  # papermill parameters are JSON


def test_default_formats_follow_the_flavor(sklearn_model: Path, tmp_path: Path) -> None:
    torch_model = mlflow_dir(tmp_path / "torch" / "model", "pytorch")
    assert optimize_parameters(sklearn_model, tmp_path / "a")["target_formats"] == ["onnx", "trt"]
    assert optimize_parameters(torch_model, tmp_path / "b")["target_formats"] == ["torchscript", "onnx", "trt"]
    assert optimize_parameters(torch_model, tmp_path / "c", formats=["torch-trt"])["target_formats"] == ["torch-trt"]


@pytest.mark.parametrize("change, message", [
    ({"batch_sizes": []}, "batch_sizes must be a non-empty list"),
    ({"batch_sizes": [0, 1]}, "integers from 1 to 4096"),
    ({"batch_sizes": [1, 5000]}, "integers from 1 to 4096"),
    ({"batch_sizes": [1.5]}, "integers from 1 to 4096"),
    ({"batch_sizes": [True]}, "integers from 1 to 4096"),
    ({"batch_sizes": "1,8"}, "must be a list of positive integers"),
    ({"batch_sizes": 8}, "must be a list of positive integers"),
    ({"formats": ["torchscript"]}, "formats for a sklearn model are among onnx, trt; not torchscript"),
    ({"formats": ["tensorrt"]}, "not tensorrt"),
    ({"formats": []}, "not none"),
    ({"formats": "onnx"}, "formats must be a list"),
    ({"model_name": "../escape"}, "model_name must be"),
    ({"model_name": ""}, "model_name must be"),
    ({"device": "tpu"}, "device must be one of cuda, cpu"),
    ({"device": "cpu"}, "TensorRT formats (trt, torch-trt) need device 'cuda'"),
    ({"stability_percentage": 0}, "stability_percentage must be"),
    ({"stability_percentage": "10"}, "stability_percentage must be"),
])
def test_bad_parameters_say_what_to_fix(change: dict, message: str, sklearn_model: Path, tmp_path: Path) -> None:
    arguments = {"batch_sizes": [1, 8], "formats": ["onnx", "trt"], **change}
    with pytest.raises(ValueError) as raised:
        optimize_parameters(sklearn_model, tmp_path / "out", **arguments)
    assert message in str(raised.value)


def test_a_cpu_run_of_the_onnx_format_is_allowed(sklearn_model: Path, tmp_path: Path) -> None:
    got = optimize_parameters(sklearn_model, tmp_path / "out", formats=["onnx"], device="cpu",
                              stability_percentage=30)
    assert (got["target_device"], got["stability_percentage"]) == ("cpu", 30.0)


def test_model_dir_and_output_dir_are_checked(sklearn_model: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="MLflow model directory"):
        optimize_parameters(tmp_path / "nowhere", tmp_path / "out")
    with pytest.raises(ValueError, match="outside the model directory"):
        optimize_parameters(sklearn_model, sklearn_model / "triton")
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="not a folder"):
        optimize_parameters(sklearn_model, tmp_path / "file")
    other = mlflow_dir(tmp_path / "xgb", "python_function", "xgboost")
    with pytest.raises(ValueError, match="flavor is xgboost"):
        optimize_parameters(other, tmp_path / "out")
    pyfunc = mlflow_dir(tmp_path / "pyfunc", "python_function")
    with pytest.raises(ValueError, match="python_function only"):
        optimize_parameters(pyfunc, tmp_path / "out")


def write_summary(folder: Path, summary: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / SUMMARY).write_text(json.dumps(summary))
    return folder


def test_the_summary_of_a_real_run_is_read(tmp_path: Path) -> None:
    out = write_summary(tmp_path / "out", CPU_RUN)
    got = read_navigator_summary(out)
    assert got["formats"] == {"onnx": "OK"}
    runner = got["models"]["onnx"]["runners"]["OnnxCPU"]
    assert runner["latency_ms"] == {1: 0.022026, 8: 0.030589, 64: 0.054968}
    assert runner["throughput"][64] == 1122342.85
    assert runner["commands"] == {"Correctness": "OK", "Performance": "OK"}
    assert got["best"]["runner"] == "OnnxCPU" and got["batch_sizes"] == [1, 8, 64]
    assert got["package"] == str((out / "model.nav").resolve())
    assert got["repository"] == str((out / "triton_repository").resolve())
    assert got["navigator_version"] == "0.14.0" and got["target_device"] == "cpu"


def test_a_failed_format_and_odd_values_are_reported_not_trusted(tmp_path: Path) -> None:
    summary = copy.deepcopy(CPU_RUN)
    summary["models"]["trt"] = {"format": "trt", "status": "FAIL", "conversion": {"ConvertONNX2TRT": "FAIL"},
                                "runners": {"TensorRT": {"status": "SKIPPED", "commands": {"Correctness": "wat"},
                                                         "latency_ms": {"1": "NaN", "8": None}}}}
    summary["models"]["trt-fp16"] = {"format": "trt", "status": "OK", "runners": {}}
    summary["repository"], summary["repository_error"] = None, "ModelNavigatorEmptyPackageError: no models"
    got = read_navigator_summary(write_summary(tmp_path / "out", summary))
    assert got["formats"] == {"onnx": "OK", "trt": "OK"}  # a format's best variant
    trt = got["models"]["trt"]
    assert trt["status"] == "FAIL" and trt["conversion"] == {"ConvertONNX2TRT": "FAIL"}
    assert trt["runners"]["TensorRT"]["commands"] == {"Correctness": "FAIL"}  # an unknown word is no success
    assert trt["runners"]["TensorRT"]["latency_ms"] == {}
    assert got["repository"] is None and "EmptyPackage" in got["repository_error"]


@pytest.mark.parametrize("content, message", [
    (None, "did not finish"),
    ("{not json", "not valid JSON"),
    (json.dumps({**CPU_RUN, "schema": 2}), "schema 2"),
    (json.dumps([1, 2]), "schema None"),
    (json.dumps({**CPU_RUN, "models": []}), "no 'models' table"),
    (json.dumps({**CPU_RUN, "best": {"model": "trt"}}), "'best' names no model"),
    (json.dumps({**CPU_RUN, "package": "../../etc/passwd"}), "points outside"),
])
def test_a_missing_or_malformed_summary_is_refused(content: str | None, message: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    if content is not None:
        (out / SUMMARY).write_text(content)
    with pytest.raises(ValueError, match=message):
        read_navigator_summary(out)


def parameters_cell(notebook: nbformat.NotebookNode) -> dict:
    [cell] = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    names = {}
    for statement in ast.parse(cell.source).body:
        assert isinstance(statement, ast.Assign), "a parameters cell holds only assignments"
        names[statement.targets[0].id] = ast.literal_eval(statement.value)
    return names


def test_the_notebook_is_valid_and_declares_the_parameters(sklearn_model: Path, tmp_path: Path) -> None:
    notebook = nbformat.read(ROOT / "notebooks" / NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    assert notebook.metadata.kernelspec.name == KERNEL
    declared = parameters_cell(notebook)
    assert {"model_dir", "output_dir", "batch_sizes", "target_formats"} <= set(declared)
    # Every parameter optimize_parameters produces is one the notebook declares, with the same type.
    produced = optimize_parameters(sklearn_model, tmp_path / "out")
    assert set(produced) <= set(declared)
    for name, value in produced.items():
        assert type(value) is type(declared[name]), name
    for cell in notebook.cells:
        if cell.cell_type == "code":
            compile(cell.source, f"{NOTEBOOK} cell", "exec")  # no syntax error on the GPU machine
            assert not cell.get("outputs"), "the notebook is stored without outputs"
