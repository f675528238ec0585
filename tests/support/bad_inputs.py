"""Bad inputs generated from a row's models: from each model's JSON Schema (validation mode, by alias, as the
server reads it) and a valid example, one wrong thing at a time.

A body gets: malformed JSON, a JSON array, each required field missing, each field of a wrong type and (where
it is not nullable) null, an unknown field where extras are forbidden, and for each constraint of a field a
value just past it (maxLength, minLength, pattern, enum, format, minimum/maximum and their exclusive forms,
minItems/maxItems, item constraints, nested objects' fields, a map's values and keys); an integer the model
leaves unbounded gets one past the catalog's 64-bit integers. A query gets the same
per parameter, as query-string text: a wrong type, each bound, length, pattern, enum and format, each
required parameter missing, and an unknown parameter.

Each variant changes one field of the valid example, so the refusal is for that field: it names ``field``.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

UNKNOWN = "unexpected_field"
NOT_A_CHOICE = "not-a-choice"
# Strings tried, in order, for one that breaks a field's pattern.
PATTERN_BREAKERS = ["has space", "UPPER/case", "a\nb", "\x00", " ", "-", "..", "ftp://x.example", "x" * 3,
                    "a/b.txt"]
# Wrong JSON values, in order; the first whose type the field does not accept is sent.
WRONG_TYPES: list[tuple[str, Any]] = [("integer", 7), ("string", "text"), ("number", 1.5), ("boolean", True),
                                      ("array", []), ("object", {})]
ALL_TYPES = {"string", "integer", "number", "boolean", "array", "object", "null"}


@dataclass(frozen=True)
class BadInput:
    """One bad request: a body (``raw``) or a query (``query``) with one thing wrong."""

    label: str  # what is wrong, e.g. "body.name: pattern"
    field: str | None  # the field the refusal names (dotted); None where the whole body is wrong
    status: int
    code: str
    raw: bytes | None = None
    query: tuple[tuple[str, str], ...] | None = None
    # Past a bound the model leaves open but the catalog has (its 64-bit integers): the model accepts it, the
    # server must still refuse it.
    beyond_model: bool = False


def _schema(model: type[BaseModel]) -> tuple[dict[str, Any], dict[str, Any]]:
    schema = model.model_json_schema(mode="validation", by_alias=True)
    return schema, schema.get("$defs", {})


def _resolve(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        rest = {key: value for key, value in schema.items() if key != "$ref"}
        schema = {**defs[schema["$ref"].rsplit("/", 1)[-1]], **rest}
    return schema


def _branches(schema: dict[str, Any], defs: dict[str, Any]) -> list[dict[str, Any]]:
    """The alternatives a value may take (a nullable field's ``null`` among them)."""
    schema = _resolve(schema, defs)
    if "anyOf" in schema:
        return [branch for option in schema["anyOf"] for branch in _branches(option, defs)]
    return [schema]


def json_types(schema: dict[str, Any], defs: dict[str, Any]) -> set[str]:
    """The JSON types a field accepts (all of them where a branch says nothing of its type)."""
    found: set[str] = set()
    for branch in _branches(schema, defs):
        if "type" in branch:
            kinds = branch["type"] if isinstance(branch["type"], list) else [branch["type"]]
            found |= set(kinds) | ({"integer"} if "number" in kinds else set())
        elif "enum" in branch or "const" in branch:
            values = branch.get("enum", [branch.get("const")])
            found |= {_json_type(value) for value in values}
        else:
            return set(ALL_TYPES)
    return found


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _matches(pattern: str, value: str) -> bool:
    return re.search(pattern, value) is not None


def _too_long(branch: dict[str, Any], current: Any) -> str:
    """A string one past maxLength that still fits the pattern, where padding the example can make one."""
    limit = branch["maxLength"]
    seed = current if isinstance(current, str) and current else "a"
    for candidate in (seed + seed[-1] * (limit + 1 - len(seed)), seed[0] * (limit + 1 - len(seed)) + seed,
                      seed[:1] + seed[1:2] * (limit + 1 - len(seed)) + seed[1:]):
        if len(candidate) == limit + 1 and ("pattern" not in branch or _matches(branch["pattern"], candidate)):
            return candidate
    return "a" * (limit + 1)


def _string_variants(branch: dict[str, Any], current: Any) -> Iterator[tuple[str, Any]]:
    if "maxLength" in branch:
        yield "maxLength", _too_long(branch, current)
    if branch.get("minLength", 0) > 0:
        yield "minLength", "a" * (branch["minLength"] - 1)
    if "pattern" in branch:
        low, high = branch.get("minLength", 0), branch.get("maxLength", 1 << 30)
        for candidate in PATTERN_BREAKERS:
            if low <= len(candidate) <= high and not _matches(branch["pattern"], candidate):
                yield "pattern", candidate
                break
    if "enum" in branch:
        yield "enum", NOT_A_CHOICE
    if branch.get("format") == "date-time":
        yield "format", "yesterday"


INT64_PAST = 2**63  # one past the largest integer SQLite (and PostgreSQL's bigint) can hold
BEYOND_MODEL = "past 64-bit integers"


def _number_variants(branch: dict[str, Any], types: set[str]) -> Iterator[tuple[str, Any]]:
    """Values past the branch's bounds; for a field that is only an integer (an id, a count: a column, not a
    JSON value stored whole) and has no upper bound, one past the catalog's integers."""
    unbounded = "maximum" not in branch and "exclusiveMaximum" not in branch
    if branch.get("type") == "integer" and unbounded and types <= {"integer", "null"}:
        yield BEYOND_MODEL, INT64_PAST
    if "minimum" in branch:
        yield "minimum", branch["minimum"] - 1
    if "exclusiveMinimum" in branch:
        yield "exclusiveMinimum", branch["exclusiveMinimum"]
    if "maximum" in branch:
        yield "maximum", branch["maximum"] + 1
    if "exclusiveMaximum" in branch:
        yield "exclusiveMaximum", branch["exclusiveMaximum"]


def _value_variants(schema: dict[str, Any], defs: dict[str, Any], current: Any) -> Iterator[tuple[str, str, Any]]:
    """(where under the field, what is wrong, the bad value) for one JSON field whose valid value is
    ``current`` (None where the example leaves it out)."""
    types = json_types(schema, defs)
    wrong = next((value for kind, value in WRONG_TYPES if kind not in types), None)
    if wrong is not None and types != ALL_TYPES:
        yield "", "type", wrong
    if "null" not in types:
        yield "", "null", None
    for branch in _branches(schema, defs):
        kind = branch.get("type")
        if kind == "string" or "enum" in branch:
            for what, value in _string_variants(branch, current):
                yield "", what, value
        elif kind in ("integer", "number"):
            for what, value in _number_variants(branch, types):
                yield "", what, value
        elif kind == "array":
            yield from _array_variants(branch, defs, current)
        elif kind == "object" and isinstance(current, dict):
            yield from _object_value_variants(branch, defs, current)


def _array_variants(branch: dict[str, Any], defs: dict[str, Any], current: Any) -> Iterator[tuple[str, str, Any]]:
    items = current if isinstance(current, list) else []
    if branch.get("minItems", 0) > 0 and len(items) >= branch["minItems"] - 1:
        yield "", "minItems", items[:branch["minItems"] - 1]
    if "maxItems" in branch and items:
        yield "", "maxItems", (items * (branch["maxItems"] + 1))[:branch["maxItems"] + 1]
    if "items" in branch:
        first = items[0] if items else None
        for where, what, value in _value_variants(branch["items"], defs, first):
            yield f"0{'.' + where if where else ''}", f"item {what}", [value, *items[1:]]


def _object_value_variants(branch: dict[str, Any], defs: dict[str, Any],
                           current: dict[str, Any]) -> Iterator[tuple[str, str, Any]]:
    """A nested object's own fields (a nested model), or a map's values and keys."""
    if "properties" in branch:
        for where, what, body in object_variants(branch, defs, current):
            yield where, what, body
        return
    values = branch.get("additionalProperties")
    if current and isinstance(values, dict):
        key, value = next(iter(current.items()))
        for where, what, bad in _value_variants(values, defs, value):
            yield f"{key}{'.' + where if where else ''}", f"value {what}", {**current, key: bad}
    if current and "maxProperties" in branch:
        value = next(iter(current.values()))
        yield "", "maxProperties", {f"k{index}": value for index in range(branch["maxProperties"] + 1)}
    if branch.get("minProperties", 0) > 0:
        yield "", "minProperties", {}
    if current and "maxLength" in branch.get("propertyNames", {}):
        value = next(iter(current.values()))
        yield "", "key maxLength", {"k" * (branch["propertyNames"]["maxLength"] + 1): value}


def object_variants(schema: dict[str, Any], defs: dict[str, Any],
                    current: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(field, what is wrong, the whole object) for an object whose valid value is ``current``."""
    schema = _resolve(schema, defs)
    for name in schema.get("required", []):
        if name in current:
            yield name, "missing", {key: value for key, value in current.items() if key != name}
    if schema.get("additionalProperties") is False:
        yield UNKNOWN, "unknown field", {**current, UNKNOWN: 1}
    for name, field in schema.get("properties", {}).items():
        for where, what, value in _value_variants(field, defs, current.get(name)):
            changed = copy.deepcopy(current)
            changed[name] = value
            yield f"{name}{'.' + where if where else ''}", what, changed


def body_inputs(model: type[BaseModel], example: dict[str, Any]) -> list[BadInput]:
    """Bad bodies for ``model``, each the valid ``example`` with one thing wrong."""
    schema, defs = _schema(model)
    found = [BadInput("body: malformed JSON", None, 400, "invalid_json", raw=json.dumps(example).encode()[:-1]),
             BadInput("body: an array", None, 422, "invalid_input", raw=json.dumps([example]).encode())]
    for field, what, body in object_variants(schema, defs, example):
        found.append(BadInput(f"body.{field}: {what}", field, 422, "invalid_input", raw=json.dumps(body).encode(),
                              beyond_model=what.endswith(BEYOND_MODEL)))
    return found


def _query_text(value: Any) -> str:
    return json.dumps(value) if isinstance(value, bool) else str(value)


def _pairs(values: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple((name, _query_text(item)) for name, value in values.items()
                 for item in (value if isinstance(value, list) else [value]))


def _query_value_variants(schema: dict[str, Any], defs: dict[str, Any], current: Any) -> Iterator[tuple[str, Any]]:
    """(what is wrong, the bad value) for one query parameter's value, as text would carry it."""
    types = json_types(schema, defs)
    if types & {"integer", "number", "boolean"} and "string" not in types:
        yield "type", "many" if "boolean" not in types else "maybe"
    for branch in _branches(schema, defs):
        kind = branch.get("type")
        if kind == "string" or "enum" in branch:
            yield from _string_variants(branch, current)
        elif kind in ("integer", "number"):
            yield from _number_variants(branch, types)


def query_inputs(model: type[BaseModel], example: dict[str, Any]) -> list[BadInput]:
    """Bad query strings for ``model``, each the valid ``example`` with one parameter wrong. Every value of a
    query string is text: a wrong type is text that is not a number or a boolean; a list is its parameter
    repeated (an empty one is the parameter left out, which ``missing`` covers)."""
    schema, defs = _schema(model)
    required = schema.get("required", [])
    found = [BadInput(f"query.{UNKNOWN}: unknown parameter", UNKNOWN, 422, "invalid_input",
                      query=_pairs({**example, UNKNOWN: "1"}))]
    for name in required:
        if name in example:
            rest = {key: value for key, value in example.items() if key != name}
            found.append(BadInput(f"query.{name}: missing", name, 422, "invalid_input", query=_pairs(rest)))
    for name, field in schema.get("properties", {}).items():
        current = example.get(name)
        variants = [(what, value) for what, value in _query_value_variants(field, defs, current)]
        for branch in _branches(field, defs):
            if branch.get("type") != "array":
                continue
            items = current if isinstance(current, list) else []
            if branch.get("minItems", 0) > 1 and len(items) >= branch["minItems"] - 1:
                variants.append(("minItems", items[:branch["minItems"] - 1]))
            if "maxItems" in branch and items:
                variants.append(("maxItems", (items * (branch["maxItems"] + 1))[:branch["maxItems"] + 1]))
            for what, value in _query_value_variants(branch.get("items", {}), defs, items[0] if items else None):
                variants.append((f"item {what}", [value, *items[1:]]))
        for what, value in variants:
            found.append(BadInput(f"query.{name}: {what}", name, 422, "invalid_input",
                                  query=_pairs({**example, name: value}), beyond_model=what.endswith(BEYOND_MODEL)))
    return found
