"""The OpenAPI 3.1 document, generated from what the server validates: the route table, the router's
parameter patterns and the domains' pydantic models.

- Path parameters: the router's pattern for each (``routes.PARAMETER_PATTERNS``), or for names the rule
  their handler holds them to (``PATH_PARAMETER_TYPES``: project names, dataset names with their length).
- Query parameters: the query model's JSON schema in validation mode, by alias (``?from=`` of the diff),
  one parameter per field with every constraint (patterns, lengths, bounds, enums).
- Bodies: the body model's JSON schema in validation mode; constraints a model enforces in a validator
  are added from ``VALIDATOR_SCHEMAS`` (their JSON Schema equivalent), or, where JSON Schema cannot say
  them (a comparison between two fields, a notebook's full nbformat check), listed in the operation's
  ``x-aitip-checks``. A test fails for a validator that is in neither.
- Uploads: the streamed file as an ``application/octet-stream`` body.
"""

from __future__ import annotations

import copy
import typing
from functools import cache
from typing import Any

from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import models_json_schema

from .. import __version__
from ..identity.permissions import PermissionScope, permission
from ..jobs.library import names as shipped_names
from ..schema import DatasetName, ProjectName
from .routes import API_PREFIX, PARAMETER_PATTERNS, Route, platform_routes

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "detail": {}},
        }
    },
}

PATH_PARAMETER_TYPES: dict[str, Any] = {
    # The router takes any segment and the handler answers 404 for a name that is not a DNS label.
    "project": ProjectName,
    # The router's pattern is the dataset name rule's; the handler adds its length (422).
    "dataset": DatasetName,
}

_NOTEBOOK = {"type": "object", "required": ["nbformat", "cells"],
             "properties": {"nbformat": {"const": 4}, "cells": {"type": "array"}}}

# A shipped notebook's name is one of the library's (the pattern alone lets through names it does not have).
_SHIPPED = {"enum": shipped_names()}
_SHIPPED_IF_GIVEN = {"properties": {"shipped": {"anyOf": [_SHIPPED, {"type": "null"}]}}}


def _one_of(fields: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Exactly one of ``fields`` given (not null), as each schema says."""
    return {"oneOf": [{"required": [name], "properties": {other: schema if other == name else {"type": "null"}
                                                          for other in fields}}
                      for name, schema in fields.items()]}


# Validators of documented request models -> the JSON Schema they amount to ({"allOf" part} merged into
# the model's schema), or a string: why JSON Schema cannot say it (listed as x-aitip-checks).
VALIDATOR_SCHEMAS: dict[tuple[str, str], dict[str, Any] | str] = {
    ("ProjectUpdate", "_something_to_change"): {"anyOf": [
        {"required": ["display_name"], "properties": {"display_name": {"type": "string"}}},
        {"required": ["description"], "properties": {"description": {"type": "string"}}}]},
    ("MemberAdd", "_exactly_one_principal"): {"oneOf": [
        {"required": ["user"], "properties": {"user": {"type": "string"}, "group": {"type": "null"}}},
        {"required": ["group"], "properties": {"group": {"type": "string"}, "user": {"type": "null"}}}]},
    ("JobSubmit", "_looks_like_a_notebook"): {"properties": {"notebook": _NOTEBOOK}},
    ("SweepCreate", "_looks_like_a_notebook"): {"properties": {"notebook": _NOTEBOOK}},
    ("JobSubmit", "_shipped_is_known"): _SHIPPED_IF_GIVEN,
    ("SweepCreate", "_shipped_is_known"): _SHIPPED_IF_GIVEN,
    ("JobSubmit", "_one_notebook"): _one_of({"notebook": {"type": "object"}, "shipped": _SHIPPED}),
    ("SweepCreate", "_one_notebook"): _one_of({"notebook": {"type": "object"}, "shipped": _SHIPPED,
                                               "job": {"type": "integer"}}),
    ("TaskCreate", "_distinct_labels"): {"properties": {"labels": {"uniqueItems": True}}},
    ("GpuHoursQuery", "_utc"): {},  # a time without a zone is read as UTC: nothing is refused
    ("Dimension", "_consistent"): "a sweep dimension takes 'values' (grid, choice) or 'low' < 'high' (uniform, "
                                  "int; loguniform above 0; int with whole bounds), not both",
    ("RequestModel", "_integral_numbers"): {},  # 3.0 for an integer field is 3, as JSON Schema says
    ("GpuHoursQuery", "_ordered"): "'since' must be before 'until'",
    ("EvaluationSettings", "_looks_like_a_notebook"): {
        "properties": {"notebook_document": {"anyOf": [_NOTEBOOK, {"type": "null"}]}}},
    ("EvaluationCreate", "_looks_like_a_notebook"): {
        "properties": {"notebook_document": {"anyOf": [_NOTEBOOK, {"type": "null"}]}}},
    ("TemplateSave", "_one_template"): {"oneOf": [
        {"required": ["document"], "properties": {"document": {"type": "object"}, "yaml": {"type": "null"}}},
        {"required": ["yaml"], "properties": {"yaml": {"type": "string"}, "document": {"type": "null"}}}]},
    ("TemplateSave", "_a_yaml_mapping"): "yaml is a YAML mapping; the template (document or yaml), its extends "
                                         "applied, is checked against the condition registry and the threshold "
                                         "grammar (422 naming each key at fault under document or yaml)",
    ("SimulationSettings", "_data_or_endpoint"): "a dataset (a model's simulation) or an endpoint (an LLM's), not "
                                                 "both; the template's kind says which it needs, and its keys are "
                                                 "checked against the condition registry (422 naming what is wrong)",
    ("SimulationCreate", "_model_with_version"): "the model and its version together; without the model's "
                                                 "simulation policy the template is required",
    ("Scaling", "_bounds"): "replicas_min must not be above replicas_max",
    ("ScalingSet", "_bounds"): "replicas_min must not be above replicas_max",
    ("VariantAdd", "_shadow_has_no_weight"): "a shadow version takes no weight (weight 0 with shadow true)",
    ("TrafficSet", "_versions"): "weights' keys are model versions (numbers from 1); the weights are whole "
                                 "percents that sum to 100",
    ("OptimizationStart", "_tensorrt_needs_a_gpu"): {"not": {
        "required": ["device", "formats"],
        "properties": {"device": {"const": "cpu"},
                       "formats": {"type": "array", "contains": {"enum": ["trt", "torch-trt"]}}}}},
    ("ReleaseWindow", "_known_zone"): "timezone is an IANA time zone name (such as UTC or Asia/Shanghai)",
    ("ReleaseWindow", "_not_empty"): "start and end differ (an end before the start closes the next day)",
    ("ReleasePolicySet", "_distinct"): {"properties": {"simulations": {"uniqueItems": True}}},
    ("ReleasePolicySet", "_distinct_notebooks"): "each test notebook is named once",
    ("ReleasePolicySet", "_some_gate"): {"anyOf": [
        {"properties": {"evaluation": {"const": True}}},
        {"required": ["simulations"], "properties": {"simulations": {"minItems": 1}}}]},
    ("Condition", "_bound"): {"oneOf": [
        {"required": ["metric", "min"], "properties": {"metric": {"const": "accuracy"}, "min": {"type": "number"},
                                                       "max": {"type": "null"}}},
        {"required": ["metric", "max"], "properties": {"metric": {"enum": ["error_rate", "latency_p99_ms"]},
                                                       "max": {"type": "number"}, "min": {"type": "null"}}}]},
    ("Step", "_one_kind"): {"oneOf": [
        {"required": [kind], "properties": {other: {"type": "null"} for other in ("set_weight", "pause", "analysis")
                                            if other != kind}}
        for kind in ("set_weight", "pause", "analysis")]},
    ("RolloutStart", "_reaches_100"): "steps hold at least one set_weight; the weights never go back and the "
                                      "last is 100",
    ("ReleaseRequest", "_label_keys"): {"properties": {"metadata": {"propertyNames": {
        "pattern": "^[A-Za-z0-9_.-]{1,64}$"}}}},
    ("ReleaseRequest", "_subject"): "a model release names model, model_version and dataset (dataset_version "
                                    "optional) and no configuration; a configuration release gives only its "
                                    "configuration (a JSON object up to 64 KiB); a firmware release gives "
                                    "firmware_base64 and hardware, and model, model_version and dataset all three "
                                    "or none; a service release names model, model_version, dataset and endpoint, "
                                    "and settings are an endpoint's serving settings; only a firmware release has "
                                    "firmware_base64 and hardware, only a service release endpoint and settings",
    ("DeviceRolloutStart", "_distinct"): "each group is named once",
    ("MetricThreshold", "_some_check"): {"anyOf": [
        {"required": [name], "properties": {name: {"type": "number"}}}
        for name in ("threshold", "min_absolute_change", "min_relative_change")]},
}
_WEBHOOK_URL = ("url must be an http(s) URL whose host is a valid domain name or address, without spaces, "
                "control characters or credentials; its addresses must not be private unless an admin allows them "
                "(422)")
_NOT_IN_JSON_SCHEMA = {
    "SubscriptionCreate": [_WEBHOOK_URL],
    "DatasetSettings": ["quality_rules must be a valid quality gate: min_rows, max_null_fraction, "
                        "declared_schema, label_column ... (422 invalid_quality_rules)"],
    "JobSubmit": ["the notebook must pass nbformat 4's own validation and have a code cell (422 invalid_notebook)",
                  "parameters must be declared in the notebook's parameters cell, with its types (422)",
                  "callback." + _WEBHOOK_URL],
    "RegistrationQuery": ["callback_" + _WEBHOOK_URL],
    "EvaluationCreate": ["without an evaluation policy for the model, dataset is required (422 dataset_required)",
                         "notebook_document must pass nbformat 4's own validation and have a code cell "
                         "(422 invalid_notebook)",
                         "label_column must be a column of the dataset version (422 unknown_label_column)"],
    "PolicySet": ["label_column must be a column of the dataset version (422 unknown_label_column)",
                  "notebook_document must pass nbformat 4's own validation and have a code cell (422 invalid_notebook)"],
    "SweepCreate": ["the notebook must pass nbformat 4's own validation and have a code cell (422 invalid_notebook)",
                    "searched and fixed parameters must be declared in the notebook's parameters cell (422)",
                    "job must be a job of the project that the caller may read (404; 422 naming its project)",
                    "inputs must be versions of the project's datasets (422 unknown_dataset, "
                    "unknown_dataset_version)",
                    "callback." + _WEBHOOK_URL],
    "JobRerun": ["parameters must be declared in the job's notebook's parameters cell, with its types (422)",
                 "inputs must be versions of the job's project's datasets (422 unknown_dataset, "
                 "unknown_dataset_version)",
                 "the job's tags with those given are at most 32 (422)",
                 "callback." + _WEBHOOK_URL],
}


def model_validators(model: type[BaseModel]) -> list[tuple[str, str]]:
    """(model, validator) for a request model's field and model validators and those of the models it
    holds (what JSON Schema does not see by itself); an inherited validator under the class defining it."""
    found: set[tuple[str, str]] = set()
    for each in _models_within(model):
        decorators = each.__pydantic_decorators__
        for name in {**decorators.field_validators, **decorators.model_validators}:
            owner = next((base.__name__ for base in each.__mro__ if name in vars(base)), each.__name__)
            found.add((owner, name))
    return sorted(found)


def _models_within(model: type[BaseModel]) -> list[type[BaseModel]]:
    seen: list[type[BaseModel]] = []

    def walk(annotation: Any) -> None:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if annotation not in seen:
                seen.append(annotation)
                for field in annotation.model_fields.values():
                    walk(field.annotation)
            return
        for argument in typing.get_args(annotation):
            walk(argument)

    walk(model)
    return seen


def _checks(model: type[BaseModel]) -> list[str]:
    found = [rule for key in model_validators(model) if isinstance(rule := VALIDATOR_SCHEMAS.get(key), str)]
    return found + _NOT_IN_JSON_SCHEMA.get(model.__name__, [])


def _with_validators(model: type[BaseModel], schema: dict[str, Any]) -> dict[str, Any]:
    parts = [rule for owner, name in model_validators(model)
             if owner == model.__name__ and isinstance(rule := VALIDATOR_SCHEMAS.get((owner, name)), dict) and rule]
    if not parts:
        return schema
    return {**schema, "allOf": [*schema.get("allOf", []), *parts]}


def _documented(routes: list[Route]) -> list[Route]:
    return [route for route in routes
            if route.template != "{path}" and route.prefix == API_PREFIX and not route.foreign_api]


def path_parameter_schema(name: str) -> dict[str, Any]:
    declared = PATH_PARAMETER_TYPES.get(name)
    if declared is not None:
        schema = TypeAdapter(declared).json_schema(mode="validation")
        schema.pop("examples", None)
        return schema
    return {"type": "string", "pattern": f"^(?:{PARAMETER_PATTERNS[name]})$"}


def _resolve(schema: Any, definitions: dict[str, Any]) -> Any:
    """``schema`` with local ``$ref``s replaced by what they name (query parameters stand alone)."""
    if isinstance(schema, dict):
        if "$ref" in schema:
            target = definitions[schema["$ref"].rsplit("/", 1)[-1]]
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            return {**_resolve(target, definitions), **_resolve(rest, definitions)}
        return {key: _resolve(value, definitions) for key, value in schema.items()}
    if isinstance(schema, list):
        return [_resolve(item, definitions) for item in schema]
    return schema


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is absent or a string: ``X | None`` is documented as X (absent means None)."""
    options = schema.get("anyOf")
    if options and any(option.get("type") == "null" for option in options):
        kept = [option for option in options if option.get("type") != "null"]
        rest = {k: v for k, v in schema.items() if k not in ("anyOf", "default")}
        schema = {**rest, **kept[0]} if len(kept) == 1 else {**rest, "anyOf": kept}
    return schema


def query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """One parameter per field of a query model, named by alias, with every constraint it validates."""
    schema = model.model_json_schema(mode="validation", by_alias=True)
    definitions = schema.get("$defs", {})
    required = set(schema.get("required", []))
    parameters = []
    for name, field in schema.get("properties", {}).items():
        field = _without_null(_resolve(copy.deepcopy(field), definitions))
        description = field.pop("description", "")
        field.pop("title", None)
        parameters.append({"name": name, "in": "query", "required": name in required, "schema": field,
                           "description": description})
    return parameters


@cache
def openapi_document() -> dict[str, Any]:
    routes = _documented(platform_routes())
    wanted: set[tuple[type[BaseModel], str]] = set()
    for route in routes:
        for operation in route.operations.values():
            if operation.body is not None:
                wanted.add((operation.body, "validation"))
            if operation.response is not None:
                wanted.add((operation.response, "serialization"))
    ordered = sorted(wanted, key=lambda item: (item[0].__name__, item[1]))
    refs, schemas = models_json_schema(ordered, ref_template="#/components/schemas/{model}")  # type: ignore[arg-type]
    components = dict(schemas.get("$defs", {}))
    for model, mode in ordered:
        if mode == "validation":
            name = refs[(model, mode)]["$ref"].rsplit("/", 1)[-1]
            components[name] = _with_validators(model, components[name])
    components["Error"] = ERROR_SCHEMA

    paths: dict[str, Any] = {}
    for route in routes:
        item: dict[str, Any] = {}
        for method, operation in route.operations.items():
            rule = permission(operation.action)
            entry: dict[str, Any] = {
                "operationId": operation.name.replace(".", "_"),
                "summary": operation.summary,
                "x-aitip-action": operation.action,
                "x-aitip-long-running": operation.long_running,
                "x-aitip-min-role": rule.min_role.value if rule.min_role else rule.scope.value,
                "parameters": [{"name": name, "in": "path", "required": True, "schema": path_parameter_schema(name)}
                               for name in route.parameters],
                "responses": {
                    "4XX": {"description": "Refused", "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/Error"}}}},
                },
            }
            if rule.scope is PermissionScope.public:
                entry["security"] = []
            checks: list[str] = []
            if operation.query is not None:
                entry["parameters"] += query_parameters(operation.query)
                checks += _checks(operation.query)
            if operation.body is not None:
                entry["requestBody"] = {"required": True, "content": {"application/json": {
                    "schema": refs[(operation.body, "validation")]}}}
                checks += _checks(operation.body)
            elif getattr(route.handler, "_stream_request_body", False) and method in ("POST", "PUT"):
                entry["requestBody"] = {"required": True, "description": "The file's bytes, streamed",
                                        "content": {"application/octet-stream": {
                                            "schema": {"type": "string", "format": "binary"}}}}
            if checks:
                entry["x-aitip-checks"] = checks
            ok: dict[str, Any] = {"description": "OK"}
            if operation.response is not None:
                ok["content"] = {"application/json": {"schema": refs[(operation.response, "serialization")]}}
            entry["responses"][str(operation.status)] = ok
            item[method.lower()] = entry
        paths["/" + API_PREFIX + route.template] = item

    return {
        "openapi": "3.1.0",
        "info": {"title": "AITIP platform API", "version": __version__},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"hubToken": {"type": "apiKey", "in": "header", "name": "Authorization",
                                             "description": "'token <JupyterHub API token>'"}},
        },
        "security": [{"hubToken": []}],
    }
