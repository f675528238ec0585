"""The request bodies clients already send, decoded to the model's input, and the answers they expect back:
the Open Inference Protocol's ``infer`` (KServe v2, as Triton and MLServer speak it) and MLflow's
``/invocations`` (``dataframe_split``, ``dataframe_records``, ``instances``, ``inputs``, or CSV)."""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np

from .signature import BadInput, Signature

OIP_DATATYPES = {"BOOL": "bool", "UINT8": "uint8", "UINT16": "uint16", "UINT32": "uint32", "UINT64": "uint64",
                 "INT8": "int8", "INT16": "int16", "INT32": "int32", "INT64": "int64", "FP16": "float16",
                 "FP32": "float32", "FP64": "float64", "BYTES": "object"}
NUMPY_TO_OIP = {numpy: oip for oip, numpy in OIP_DATATYPES.items()}
MLFLOW_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise BadInput("the body is not JSON: {error}", error=str(error)) from None


def oip_input(body: bytes, signature: Signature) -> Any:
    """An OIP infer request's inputs as the model's input (a tensor's rows, or a frame of named inputs)."""
    request = _json(body)
    inputs = request.get("inputs") if isinstance(request, dict) else None
    if not isinstance(inputs, list) or not inputs or not all(isinstance(entry, dict) for entry in inputs):
        raise BadInput("an infer request needs 'inputs': a list of {name, shape, datatype, data}",
                       signature.describe())
    for entry in inputs:
        missing = [key for key in ("name", "shape", "datatype", "data") if key not in entry]
        if missing:
            raise BadInput("input {name!r} lacks {missing}", signature.describe(), name=entry.get("name", "?"),
                           missing=", ".join(missing))
        if entry["datatype"] not in OIP_DATATYPES:
            raise BadInput("input {name!r} has datatype {datatype!r}; OIP datatypes are {known}",
                           signature.describe(), name=entry["name"], datatype=entry["datatype"],
                           known=", ".join(OIP_DATATYPES))
        shape = entry["shape"]
        if not isinstance(shape, list) or not all(isinstance(size, int) and size >= 0 for size in shape):
            raise BadInput("input {name!r} has shape {shape!r}; a shape is a list of sizes", signature.describe(),
                           name=entry["name"], shape=shape)
    if signature.columns:
        import pandas

        columns = {}
        for entry in inputs:
            values = np.asarray(entry["data"], dtype=object if entry["datatype"] == "BYTES" else None)
            columns[entry["name"]] = values.reshape(-1)
        lengths = {len(values) for values in columns.values()}
        if len(lengths) > 1:
            raise BadInput("the inputs (columns) differ in length", signature.describe())
        return signature.frame_rows(pandas.DataFrame(columns))
    if len(inputs) != 1:
        raise BadInput("{count} inputs were given; expected one: {expected}", signature.describe(), count=len(inputs),
                       expected=signature.text())
    entry = inputs[0]
    if signature.tensor is not None:
        return signature.tensor_rows(entry["data"], entry["shape"])
    return np.asarray(entry["data"], dtype=OIP_DATATYPES[entry["datatype"]]).reshape(entry["shape"])


def oip_answer(predictions: np.ndarray, model: str, version: str, request_id: str | None) -> dict[str, Any]:
    array = np.asarray(predictions)
    datatype = NUMPY_TO_OIP.get(array.dtype.name, "BYTES")
    answer: dict[str, Any] = {"model_name": model, "model_version": version,
                              "outputs": [{"name": "predictions", "shape": list(array.shape), "datatype": datatype,
                                           "data": array.reshape(-1).tolist()}]}
    if request_id:
        answer["id"] = request_id
    return answer


def mlflow_input(body: bytes, content_type: str, signature: Signature) -> Any:
    """An ``/invocations`` body as the model's input."""
    import pandas

    if content_type.startswith("text/csv"):
        try:
            frame = pandas.read_csv(io.BytesIO(body))
        except (ValueError, pandas.errors.ParserError) as error:
            raise BadInput("the CSV body cannot be read: {error}", signature.describe(), error=str(error)) from None
        return _frame_input(frame, signature)
    request = _json(body)
    keys = [key for key in MLFLOW_KEYS if isinstance(request, dict) and key in request]
    if len(keys) != 1:
        raise BadInput("the body must hold exactly one of {keys} (MLflow's serving formats)", signature.describe(),
                       keys=", ".join(MLFLOW_KEYS))
    key = keys[0]
    value = request[key]
    if key in ("instances", "inputs"):
        if isinstance(value, dict) and signature.columns:
            return _frame_input(pandas.DataFrame({k: np.atleast_1d(v) for k, v in value.items()}), signature)
        if signature.tensor is not None:
            return signature.tensor_rows(value)
        if signature.columns and isinstance(value, list) and value and isinstance(value[0], dict):
            return _frame_input(pandas.DataFrame.from_records(value), signature)
        return np.asarray(value)
    try:
        if key == "dataframe_split":
            if not isinstance(value, dict) or "data" not in value:
                raise BadInput("dataframe_split needs 'data' (rows) and 'columns'", signature.describe())
            frame = pandas.DataFrame(value["data"], columns=value.get("columns"))
        else:
            if not isinstance(value, list):
                raise BadInput("dataframe_records needs a list of records", signature.describe())
            frame = pandas.DataFrame.from_records(value)
    except (ValueError, TypeError) as error:
        raise BadInput("{key} cannot be read as a table: {error}", signature.describe(), key=key,
                       error=str(error)) from None
    return _frame_input(frame, signature)


def _frame_input(frame: Any, signature: Signature) -> Any:
    if signature.columns:
        return signature.frame_rows(frame)
    if signature.tensor is not None:
        return signature.tensor_rows(frame.to_numpy())
    return frame


def mlflow_answer(predictions: Any) -> dict[str, Any]:
    array = np.asarray(predictions)
    return {"predictions": array.tolist()}



MAX_LABELLED = 10_000
MAX_REQUEST_ID = 200


def feedback_labels(body: bytes) -> dict[str, Any]:
    """``{"labels": {request id: label, or a list of labels (one per row)}}``, checked; a :class:`BadInput` says
    what is wrong."""
    try:
        document = json.loads(body or b"null")
    except ValueError:
        raise BadInput("the body is not JSON: send {\"labels\": {\"<X-Request-Id>\": <true label>, ...}}") from None
    labels = document.get("labels") if isinstance(document, dict) else None
    if not isinstance(labels, dict) or not labels:
        raise BadInput("send {\"labels\": {\"<X-Request-Id>\": <true label>, ...}}: the ids of answered requests "
                       "and their true labels (a list of labels for a request of several rows)")
    if len(labels) > MAX_LABELLED:
        raise BadInput("{count} labels in one call; send at most {most}", count=len(labels), most=MAX_LABELLED)
    for request_id, label in labels.items():
        if len(request_id) > MAX_REQUEST_ID:
            raise BadInput("a request id of {length} characters; at most {most}", length=len(request_id),
                           most=MAX_REQUEST_ID)
        values = label if isinstance(label, list) else [label]
        if len(values) > MAX_LABELLED or not all(isinstance(value, (str, int, float, bool)) for value in values):
            raise BadInput("the label of {request_id!r} is not a label (a string or number, or a list of at most "
                           "{most} of them)", request_id=request_id, most=MAX_LABELLED)
    return labels
