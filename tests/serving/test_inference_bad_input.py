"""The inference routes' bad-input table: every malformed request to a replica (the Open Inference Protocol's
infer and MLflow's invocations) is a 400 that says what was expected — the model's signature — never a 500; an
unknown model or route is a 404. Run against a real replica server (tornado, in this process) serving a real
MLflow model with a tensor signature, and one with a column signature."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tornado import httpserver
from tornado.httpclient import AsyncHTTPClient, HTTPClientError

from aitip.serving.loading import load
from aitip.serving.replica import ReplicaState, application

ROW = [0.0] * 64


def _oip(**entry: Any) -> bytes:
    base = {"name": "x", "shape": [1, 64], "datatype": "FP64", "data": ROW}
    return json.dumps({"inputs": [{**base, **entry}]}).encode()


# (case, path, body, content type, status, words the answer must hold)
TENSOR_CASES = [
    ("not json", "v2/models/digits/infer", b"{not json", "application/json", 400, "not JSON"),
    ("no inputs", "v2/models/digits/infer", b'{"outputs": []}', "application/json", 400, "needs 'inputs'"),
    ("inputs not a list", "v2/models/digits/infer", b'{"inputs": {"a": 1}}', "application/json", 400, "needs 'inputs'"),
    ("input lacks data", "v2/models/digits/infer", json.dumps({"inputs": [{"name": "x", "shape": [1, 64],
                                                                          "datatype": "FP64"}]}).encode(),
     "application/json", 400, "lacks data"),
    ("unknown datatype", "v2/models/digits/infer", _oip(datatype="FP128"), "application/json", 400, "OIP datatypes"),
    ("negative shape", "v2/models/digits/infer", _oip(shape=[-1, 64]), "application/json", 400, "list of sizes"),
    ("shape does not hold the data", "v2/models/digits/infer", _oip(shape=[2, 64]), "application/json", 400,
     "holds 128 values"),
    ("63 columns", "v2/models/digits/infer", _oip(shape=[1, 63], data=ROW[:63]), "application/json", 400,
     "shape (N, 64)"),
    ("strings for numbers", "v2/models/digits/infer", _oip(datatype="BYTES", data=["a"] * 64), "application/json",
     400, "float64"),
    ("two inputs for one tensor", "v2/models/digits/infer", json.dumps({"inputs": [
        json.loads(_oip())["inputs"][0], json.loads(_oip())["inputs"][0]]}).encode(), "application/json", 400,
     "2 inputs"),
    ("three dimensions", "v2/models/digits/infer", _oip(shape=[1, 1, 64]), "application/json", 400, "shape"),
    ("no mlflow key", "invocations", b'{"rows": [[1]]}', "application/json", 400, "exactly one of"),
    ("two mlflow keys", "invocations", json.dumps({"inputs": [ROW], "instances": [ROW]}).encode(),
     "application/json", 400, "exactly one of"),
    ("mlflow wrong width", "invocations", json.dumps({"inputs": [ROW[:10]]}).encode(), "application/json", 400,
     "shape (N, 64)"),
    ("mlflow strings", "invocations", json.dumps({"instances": [["x"] * 64]}).encode(), "application/json", 400,
     "float64"),
    ("split without data", "invocations", b'{"dataframe_split": {"columns": ["a"]}}', "application/json", 400,
     "needs 'data'"),
    ("records not a list", "invocations", b'{"dataframe_records": {"a": 1}}', "application/json", 400,
     "list of records"),
    ("csv of the wrong width", "invocations", b"a,b\n1,2\n", "text/csv", 400, "shape (N, 64)"),
    ("unknown model", "v2/models/other/infer", _oip(), "application/json", 404, "no model 'other'"),
    ("unknown route", "v1/models/digits:predict", _oip(), "application/json", 404, "no route"),
]
COLUMN_CASES = [
    ("missing column", "invocations", json.dumps({"dataframe_records": [{"width": 1.0}]}).encode(),
     "application/json", 400, "missing column count"),
    ("text in a long column", "invocations", json.dumps({"dataframe_split": {"columns": ["width", "count"],
                                                                            "data": [[1.0, "many"]]}}).encode(),
     "application/json", 400, "column count is not long"),
    ("oip columns of different lengths", "v2/models/digits/infer", json.dumps({"inputs": [
        {"name": "width", "shape": [2], "datatype": "FP64", "data": [1.0, 2.0]},
        {"name": "count", "shape": [1], "datatype": "INT64", "data": [1]}]}).encode(), "application/json", 400,
     "differ in length"),
]


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import mlflow.sklearn
    import pandas
    from mlflow.models import infer_signature
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    root = tmp_path_factory.mktemp("bad-input-models")
    digits = load_digits()
    tensor = LogisticRegression(max_iter=200).fit(digits.data, digits.target)
    mlflow.sklearn.save_model(tensor, str(root / "tensor"), pip_requirements=["scikit-learn"],
                              signature=infer_signature(digits.data[:3], tensor.predict(digits.data[:3])))
    frame = pandas.DataFrame({"width": [1.0, 2.0, 3.0, 4.0], "count": np.array([1, 5, 2, 8], dtype="int64")})
    columns = LogisticRegression().fit(frame, [0, 1, 0, 1])
    mlflow.sklearn.save_model(columns, str(root / "columns"), pip_requirements=["scikit-learn"],
                              signature=infer_signature(frame, columns.predict(frame)))
    return {"tensor": root / "tensor", "columns": root / "columns"}


async def _replica(model_dir: Path) -> tuple[httpserver.HTTPServer, int]:
    state = ReplicaState(load(model_dir), name="digits", model_name="digits-model", version="1", max_batch_size=64,
                         max_batch_wait_ms=0)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.setblocking(False)
    server = httpserver.HTTPServer(application(state))
    server.add_sockets([listener])
    return server, listener.getsockname()[1]


async def _send(port: int, path: str, body: bytes, content_type: str,
                language: str | None = None) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": content_type, **({"Accept-Language": language} if language else {})}
    try:
        response = await AsyncHTTPClient().fetch(f"http://127.0.0.1:{port}/{path}", method="POST", body=body,
                                                 headers=headers)
    except HTTPClientError as error:
        assert error.response is not None
        response = error.response
    return response.code, json.loads(response.body)


@pytest.mark.parametrize("case, path, body, content_type, status, words", TENSOR_CASES,
                         ids=[case[0] for case in TENSOR_CASES])
async def test_a_bad_request_to_a_tensor_model_is_refused_with_its_signature(
        model_dirs: dict[str, Path], case: str, path: str, body: bytes, content_type: str, status: int,
        words: str) -> None:
    server, port = await _replica(model_dirs["tensor"])
    try:
        code, answer = await _send(port, path, body, content_type)
        assert code == status, answer
        text = json.dumps(answer)
        assert words in text, answer
        if status == 400 and "expected" in answer and answer["expected"]:
            assert answer["expected"] == {"tensor": {"name": None, "datatype": "float64", "shape": [-1, 64]}}
        code, answer = await _send(port, "v2/models/digits/infer", _oip(), "application/json")
        assert code == 200, answer  # and the replica still answers good requests
    finally:
        server.stop()


@pytest.mark.parametrize("case, path, body, content_type, status, words", COLUMN_CASES,
                         ids=[case[0] for case in COLUMN_CASES])
async def test_a_bad_request_to_a_column_model_names_the_columns(
        model_dirs: dict[str, Path], case: str, path: str, body: bytes, content_type: str, status: int,
        words: str) -> None:
    server, port = await _replica(model_dirs["columns"])
    try:
        code, answer = await _send(port, path, body, content_type)
        assert code == status and words in json.dumps(answer), answer
        assert answer["expected"] == {"columns": [{"name": "width", "type": "double", "required": True},
                                                  {"name": "count", "type": "long", "required": True}]}
        code, answer = await _send(port, "invocations", json.dumps({"dataframe_records": [
            {"width": 2.5, "count": 3}]}).encode(), "application/json")
        assert code == 200 and len(answer["predictions"]) == 1, answer
    finally:
        server.stop()


@pytest.mark.parametrize(("model", "path", "body", "chinese"), [
    ("tensor", "v2/models/digits/infer", _oip(shape=[1, 3], data=[1.0, 2.0, 3.0]),
     "输入的形状为 [1, 3]；应为形状为 (N, 64) 的 float64 张量"),
    ("tensor", "invocations", json.dumps({"inputs": [["a"]]}).encode(),
     "输入不是 float64 数值；应为形状为 (N, 64) 的 float64 张量"),
    ("columns", "invocations", json.dumps({"dataframe_records": [{"width": 1.0}]}).encode(),
     "缺少列 count；应为列 width（double）、count（long）"),
    ("tensor", "v1/models/digits:predict", _oip(), "没有路由 '/v1/models/digits:predict'"),
])
async def test_a_refusal_is_in_the_language_the_caller_reads(model_dirs: dict[str, Path], model: str, path: str,
                                                             body: bytes, chinese: str) -> None:
    """The platform's router hands on the language the caller reads (``Accept-Language``); the words of the
    refusal follow it, its values (shapes, types, names) and ``expected`` stay as they are."""
    server, port = await _replica(model_dirs[model])
    try:
        code, answer = await _send(port, path, body, "application/json", "zh-CN")
        said = answer.get("error") or answer.get("message")
        assert code in (400, 404) and said is not None and said.startswith(chinese), answer
        english_code, english = await _send(port, path, body, "application/json")
        assert english_code == code and (english.get("error") or english.get("message")).isascii(), english
        assert english.get("expected") == answer.get("expected")
    finally:
        server.stop()
