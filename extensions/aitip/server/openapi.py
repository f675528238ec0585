"""The OpenAPI 3.1 document, generated from the route table and the domains' pydantic models."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from .. import __version__
from ..identity.permissions import PermissionScope, permission
from .routes import API_PREFIX, Route, platform_routes

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


def _documented(routes: list[Route]) -> list[Route]:
    return [route for route in routes if route.template != "{path}" and route.prefix == API_PREFIX]


@cache
def openapi_document() -> dict[str, Any]:
    routes = _documented(platform_routes())
    models: set[type[BaseModel]] = set()
    for route in routes:
        for operation in route.operations.values():
            models.update(m for m in (operation.body, operation.response) if m is not None)
    ordered = sorted(models, key=lambda model: model.__name__)
    _, schemas = models_json_schema([(m, "validation") for m in ordered],
                                    ref_template="#/components/schemas/{model}")
    components = dict(schemas.get("$defs", {}))
    components["Error"] = ERROR_SCHEMA

    paths: dict[str, Any] = {}
    for route in routes:
        item: dict[str, Any] = {}
        for method, operation in route.operations.items():
            rule = permission(operation.action)
            entry: dict[str, Any] = {
                "operationId": operation.action.replace(".", "_") + "_" + method.lower(),
                "summary": operation.summary,
                "x-aitip-action": operation.action,
                "x-aitip-min-role": rule.min_role.value if rule.min_role else rule.scope.value,
                "parameters": [
                    {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                    for name in route.parameters
                ],
                "responses": {
                    "4XX": {"description": "Refused", "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/Error"}}}},
                },
            }
            if rule.scope is PermissionScope.public:
                entry["security"] = []
            if operation.query is not None:
                for name, info in operation.query.model_fields.items():
                    entry["parameters"].append({"name": name, "in": "query", "required": False,
                                                "schema": {"type": _json_type(info.annotation)},
                                                "description": info.description or ""})
            if operation.body is not None:
                entry["requestBody"] = {"required": True, "content": {"application/json": {
                    "schema": {"$ref": f"#/components/schemas/{operation.body.__name__}"}}}}
            ok: dict[str, Any] = {"description": "OK"}
            if operation.response is not None:
                ok["content"] = {"application/json": {
                    "schema": {"$ref": f"#/components/schemas/{operation.response.__name__}"}}}
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


def _json_type(annotation: Any) -> str:
    return {int: "integer", bool: "boolean", float: "number"}.get(annotation, "string")
