"""A row's inputs as one flat set of named arguments, for the faces that take keyword arguments (the SDK's
methods, the MCP tools, the CLI's options): the path parameters, the query's fields and the body's fields,
each by its field name (``from_version``, where the query string says ``from``).

REST keeps them apart (path, query string, JSON body); the other faces take one object and split it here,
validating each part against the row's own models, so every face refuses exactly what REST refuses.

A face that takes JSON arguments only (MCP) cannot stream an upload: with ``inline=True`` it takes the row's
``inline_body`` in place of the streamed body, the file itself as an :data:`InlineFile` (base64, bounded).
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import os
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any

from pydantic import BaseModel, PlainValidator, ValidationError, WithJsonSchema
from pydantic_core import PydanticCustomError

from ..errors import InvalidInput, PayloadTooLarge
from ..i18n import N_
from ..validation_messages import refusal
from .parameters import PATH_PARAMETERS
from .table import Operation

MAX_INLINE_ENV = "AITIP_MAX_INLINE_FILE_BYTES"
DEFAULT_MAX_INLINE_BYTES = 16 * 1024 * 1024
_TOO_LARGE = "inline_file_too_large"


def max_inline_bytes() -> int:
    """The largest file taken inline, decoded (``$AITIP_MAX_INLINE_FILE_BYTES``, else 16 MiB): a JSON message
    is held in memory whole, so this stays well below a streamed upload's limit."""
    configured = os.environ.get(MAX_INLINE_ENV, "").strip()
    if not configured:
        return DEFAULT_MAX_INLINE_BYTES
    if not configured.isdigit() or int(configured) < 1:
        raise ValueError(f"${MAX_INLINE_ENV} is a positive number of bytes, not {configured!r}")
    return int(configured)


def encoded_length(size: int) -> int:
    """The base64 text of ``size`` bytes, in characters (padded)."""
    return 4 * -(-size // 3)


def _decoded(value: Any) -> bytes:
    """The file's bytes; one over the limit is refused by its length, before it is decoded."""
    if not isinstance(value, str):
        raise PydanticCustomError("string_type", "a base64 string is required")
    limit = max_inline_bytes()
    if len(value) > encoded_length(limit):
        raise PydanticCustomError(_TOO_LARGE, "the file is about {size} bytes; a file sent inline may be at "
                                  "most {limit} bytes", {"size": len(value) * 3 // 4, "limit": limit})
    try:
        content = base64.b64decode(value, validate=True)
    except binascii.Error as exc:
        raise PydanticCustomError("base64_decode", "not valid base64: {reason}", {"reason": str(exc)}) from exc
    if len(content) > limit:
        raise PydanticCustomError(_TOO_LARGE, "the file is {size} bytes; a file sent inline may be at most "
                                  "{limit} bytes", {"size": len(content), "limit": limit})
    return content


# A file's bytes in a JSON argument: base64 (RFC 4648, padded), at most max_inline_bytes() once decoded.
InlineFile = Annotated[bytes, PlainValidator(_decoded),
                       WithJsonSchema({"type": "string", "contentEncoding": "base64"})]


@dataclass(frozen=True)
class InputField:
    name: str
    where: str  # "path", "query" or "body"
    alias: str  # the name on the wire (a query parameter's alias)
    required: bool
    description: str


def body_model(row: Operation, inline: bool = False) -> type[BaseModel] | None:
    """The JSON body a face sends: the row's, or with ``inline`` (a face that cannot stream) its inline body."""
    return row.inline_body if inline and row.inline_body is not None else row.body


@cache
def input_fields(row: Operation, inline: bool = False) -> tuple[InputField, ...]:
    fields = [InputField(name, "path", name, True, PATH_PARAMETERS[name].description) for name in row.parameters]
    for where, model in (("query", row.query), ("body", body_model(row, inline))):
        if model is None:
            continue
        for name, info in model.model_fields.items():
            fields.append(InputField(name, where, info.alias or name, info.is_required(), info.description or ""))
    names = [field.name for field in fields]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise ValueError(f"operation {row.name!r}: inputs named twice across path, query and body: {duplicated}")
    return tuple(fields)


@cache
def input_schema(row: Operation, inline: bool = False) -> dict[str, Any]:
    """The JSON Schema of the flat arguments (a tool's ``inputSchema``): each field with every constraint its
    model validates, definitions shared under ``$defs``."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    definitions: dict[str, Any] = {}
    for name in row.parameters:
        parameter = PATH_PARAMETERS[name]
        schema: dict[str, Any] = {"type": parameter.json_type, "description": parameter.description}
        if parameter.json_type == "string":
            schema["pattern"] = f"^(?:{parameter.pattern})$"
        properties[name] = schema
        required.append(name)
    for model in (row.query, body_model(row, inline)):
        if model is None:
            continue
        schema = copy.deepcopy(model.model_json_schema(mode="validation", by_alias=False,
                                                       ref_template="#/$defs/{model}"))
        definitions.update(schema.pop("$defs", {}))
        for name, field in schema.get("properties", {}).items():
            field.pop("title", None)
            properties[name] = field
        required += schema.get("required", [])
    result: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        result["required"] = required
    if definitions:
        result["$defs"] = definitions
    return result


def split_arguments(row: Operation, arguments: dict[str, Any], inline: bool = False) -> tuple[
        dict[str, str], BaseModel | None, BaseModel | None]:
    """``arguments`` as the row's path values (strings, as a router gives them), query and body, each
    validated by its model; unknown or missing arguments are refused as REST refuses them (422), a file
    inline over its limit as REST refuses a large upload (413)."""
    fields = {field.name: field for field in input_fields(row, inline)}
    unknown = sorted(set(arguments) - set(fields))
    if unknown:
        raise InvalidInput("unknown arguments {unknown}; {name} takes {fields}",
                           detail=[{"field": name, "message": "not an argument of this operation",
                                    "type": "extra_forbidden"} for name in unknown],
                           unknown=unknown, name=row.name, fields=sorted(fields) or 'none')
    path: dict[str, str] = {}
    parts: dict[str, dict[str, Any]] = {"query": {}, "body": {}}
    for name, value in arguments.items():
        field = fields[name]
        if field.where == "path":
            if isinstance(value, bool) or not isinstance(value, str | int):
                raise InvalidInput("invalid arguments: {name}: a string or integer is required",
                                   detail=[{"field": name, "message": "a string or integer is required",
                                            "type": "path_parameter"}], name=name)
            path[name] = str(value)
        else:
            parts[field.where][field.alias] = value
    missing = [name for name in row.parameters if name not in path]
    if missing:
        raise InvalidInput("invalid arguments: {missing}: required",
                           detail=[{"field": name, "message": "required", "type": "missing"} for name in missing],
                           missing=missing[0])
    return path, _validated(row, row.query, parts["query"], "query"), _validated(row, body_model(row, inline),
                                                                               parts["body"], "body")


def _validated(row: Operation, model: type[BaseModel] | None, values: dict[str, Any],
               where: str) -> BaseModel | None:
    if model is None:
        return None
    try:
        if where == "body":  # as REST reads a body: from JSON, strictly
            return model.model_validate_json(json.dumps(values))
        return model.model_validate(values, strict=False)  # as REST reads a query string: leniently
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        too_large = next((item for item in errors if item["type"] == _TOO_LARGE), None)
        if too_large is not None:
            limit = (too_large.get("ctx") or {}).get("limit")
            raise PayloadTooLarge("{field}: {reason} (the limit is ${max_inline_env}); stream a larger file to "
                                  "{method} {path}",
                                  detail={"limit_bytes": limit},
                                  field='.'.join(map(str, too_large['loc'])), reason=too_large['msg'],
                                  max_inline_env=MAX_INLINE_ENV, method=row.method, path=row.path) from exc
        raise refusal(exc, N_("arguments"), unnamed=f"({where})") from exc
