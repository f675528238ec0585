"""A row's inputs as one flat set of named arguments, for the faces that take keyword arguments (the SDK's
methods, the MCP tools, the CLI's options): the path parameters, the query's fields and the body's fields,
each by its field name (``from_version``, where the query string says ``from``).

REST keeps them apart (path, query string, JSON body); the other faces take one object and split it here,
validating each part against the row's own models, so every face refuses exactly what REST refuses.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from functools import cache
from typing import Any

from pydantic import BaseModel, ValidationError

from ..errors import InvalidInput
from .parameters import PATH_PARAMETERS
from .table import Operation


@dataclass(frozen=True)
class InputField:
    name: str
    where: str  # "path", "query" or "body"
    alias: str  # the name on the wire (a query parameter's alias)
    required: bool
    description: str


@cache
def input_fields(row: Operation) -> tuple[InputField, ...]:
    fields = [InputField(name, "path", name, True, PATH_PARAMETERS[name].description) for name in row.parameters]
    for where, model in (("query", row.query), ("body", row.body)):
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
def input_schema(row: Operation) -> dict[str, Any]:
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
    for model in (row.query, row.body):
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


def split_arguments(row: Operation, arguments: dict[str, Any]) -> tuple[dict[str, str], BaseModel | None,
                                                                         BaseModel | None]:
    """``arguments`` as the row's path values (strings, as a router gives them), query and body, each
    validated by its model; unknown or missing arguments are refused as REST refuses them (422)."""
    fields = {field.name: field for field in input_fields(row)}
    unknown = sorted(set(arguments) - set(fields))
    if unknown:
        raise InvalidInput(f"unknown arguments {unknown}; {row.name} takes {sorted(fields) or 'none'}",
                           detail=[{"field": name, "message": "not an argument of this operation",
                                    "type": "extra_forbidden"} for name in unknown])
    path: dict[str, str] = {}
    parts: dict[str, dict[str, Any]] = {"query": {}, "body": {}}
    for name, value in arguments.items():
        field = fields[name]
        if field.where == "path":
            if isinstance(value, bool) or not isinstance(value, str | int):
                raise InvalidInput(f"invalid arguments: {name}: a string or integer is required",
                                   detail=[{"field": name, "message": "a string or integer is required",
                                            "type": "path_parameter"}])
            path[name] = str(value)
        else:
            parts[field.where][field.alias] = value
    missing = [name for name in row.parameters if name not in path]
    if missing:
        raise InvalidInput(f"invalid arguments: {missing[0]}: required",
                           detail=[{"field": name, "message": "required", "type": "missing"} for name in missing])
    return path, _validated(row.query, parts["query"], "query"), _validated(row.body, parts["body"], "body")


def _validated(model: type[BaseModel] | None, values: dict[str, Any], where: str) -> BaseModel | None:
    if model is None:
        return None
    try:
        if where == "body":  # as REST reads a body: from JSON, strictly
            return model.model_validate_json(json.dumps(values))
        return model.model_validate(values, strict=False)  # as REST reads a query string: leniently
    except ValidationError as exc:
        detail = [{"field": ".".join(str(part) for part in item["loc"]) or f"({where})", "message": item["msg"],
                   "type": item["type"]} for item in exc.errors(include_url=False, include_input=False)]
        more = f" (and {len(detail) - 1} more)" if len(detail) > 1 else ""
        raise InvalidInput(f"invalid arguments: {detail[0]['field']}: {detail[0]['message']}{more}",
                           detail=detail) from exc
