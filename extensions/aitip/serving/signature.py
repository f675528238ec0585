"""A model's input signature (MLflow's ``MLmodel``), and the check of a request's data against it: the data as
an array or frame the model takes, or a :class:`BadInput` naming what was expected. MLflow's own check costs
most of its per-call time (pyfunc's schema enforcement); this one converts once and checks shapes and kinds."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InvalidValue, Listed, Phrase
from ..i18n import N_

# MLflow's column types -> the numpy kind a value must be castable to.
COLUMN_DTYPES = {"double": np.float64, "float": np.float32, "long": np.int64, "integer": np.int32,
                 "boolean": np.bool_, "string": np.object_, "binary": np.object_, "datetime": "datetime64[ns]"}


class BadInput(InvalidValue):
    """The request's data does not fit the model's signature: answered 400 with ``expected``, the message in the
    caller's language (a template of its values, as the platform's errors are)."""

    def __init__(self, message: str, expected: dict[str, Any] | None = None, /, **values: Any) -> None:
        super().__init__(message, **values)
        self.expected = expected


@dataclass(frozen=True)
class TensorInput:
    dtype: str
    shape: tuple[int, ...]  # -1 where any size goes
    name: str | None = None

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.dtype, "shape": list(self.shape)}


@dataclass(frozen=True)
class ColumnInput:
    name: str
    type: str
    required: bool = True

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "required": self.required}


@dataclass(frozen=True)
class Signature:
    """A model's inputs: one tensor, or named columns (a frame); neither when the model declares none."""

    tensor: TensorInput | None = None
    columns: tuple[ColumnInput, ...] = ()
    outputs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def declared(self) -> bool:
        return self.tensor is not None or bool(self.columns)

    def describe(self) -> dict[str, Any]:
        if self.tensor is not None:
            return {"tensor": self.tensor.describe()}
        if self.columns:
            return {"columns": [column.describe() for column in self.columns]}
        return {}

    def text(self) -> Phrase:
        """What the model takes, as a request's refusal says it."""
        if self.tensor is not None:
            shape = ", ".join("N" if size == -1 else str(size) for size in self.tensor.shape)
            return Phrase(N_("a {dtype} tensor of shape ({shape})"), dtype=self.tensor.dtype, shape=shape)
        if self.columns:
            return Phrase(N_("columns {columns}"), columns=Listed([
                Phrase(N_("{name} ({type})") if column.required else N_("{name} ({type}, optional)"),
                       name=column.name, type=column.type) for column in self.columns]))
        return Phrase(N_("any input (the model declares no signature)"))

    # ----- checks -----

    def tensor_rows(self, data: Any, shape: list[int] | None = None) -> np.ndarray:
        """``data`` (nested lists or a flat list with ``shape``) as the model's tensor, rows first."""
        spec = self.tensor
        assert spec is not None
        try:
            array = np.asarray(data, dtype=spec.dtype)
        except (ValueError, TypeError):
            raise BadInput("the input is not {dtype} numbers; expected {expected}", self.describe(),
                           dtype=spec.dtype, expected=self.text()) from None
        if shape is not None:
            if int(np.prod(shape)) != array.size:
                raise BadInput("shape {shape} holds {count} values but {given} were given; expected {expected}",
                               self.describe(), shape=shape, count=int(np.prod(shape)), given=array.size,
                               expected=self.text())
            array = array.reshape(shape)
        if array.ndim == len(spec.shape) - 1:
            array = array.reshape((1, *array.shape))  # one row given without its batch axis
        if array.ndim != len(spec.shape) or any(want not in (-1, got) for want, got in zip(spec.shape, array.shape)):
            raise BadInput("the input has shape {shape}; expected {expected}", self.describe(),
                           shape=list(array.shape), expected=self.text())
        return array

    def frame_rows(self, frame: Any) -> Any:
        """``frame`` (a pandas DataFrame) with the signature's columns, each cast to its type."""
        missing = [column.name for column in self.columns if column.required and column.name not in frame.columns]
        if missing:
            raise BadInput(N_("missing column {columns}; expected {expected}") if len(missing) == 1 else
                           N_("missing columns {columns}; expected {expected}"), self.describe(),
                           columns=", ".join(missing), expected=self.text())
        wanted = [column for column in self.columns if column.name in frame.columns]
        frame = frame[[column.name for column in wanted]]
        kinds = {column.name: COLUMN_DTYPES[column.type] for column in wanted
                 if COLUMN_DTYPES.get(column.type, np.object_) is not np.object_}
        try:
            return frame.astype(kinds) if kinds else frame
        except (ValueError, TypeError):
            for name, kind in kinds.items():
                try:
                    frame[name].astype(kind)
                except (ValueError, TypeError):
                    wrong = next(column for column in wanted if column.name == name)
                    raise BadInput("column {name} is not {type}; expected {expected}", self.describe(),
                                   name=name, type=wrong.type, expected=self.text()) from None
            raise


def parse(mlmodel: dict[str, Any]) -> Signature:
    """The signature of an ``MLmodel`` document (its ``signature.inputs``, a JSON string)."""
    signature = mlmodel.get("signature") or {}
    inputs = json.loads(signature.get("inputs") or "[]")
    outputs = json.loads(signature.get("outputs") or "[]")
    if not inputs:
        return Signature(outputs=outputs)
    if inputs[0].get("type") == "tensor":
        if len(inputs) != 1:
            raise ValueError("models with more than one input tensor are not served yet")
        spec = inputs[0]["tensor-spec"]
        return Signature(tensor=TensorInput(spec["dtype"], tuple(spec["shape"]), inputs[0].get("name")),
                         outputs=outputs)
    columns = tuple(ColumnInput(entry["name"], entry["type"], entry.get("required", True)) for entry in inputs)
    return Signature(columns=columns, outputs=outputs)
