"""How a row's inputs reach its service method, for every face alike.

The binding is worked out once per row from the method's signature: the caller (its first parameter),
then each path parameter (by name, or renamed by the row's ``arguments``), the query model and the body
model (by their types; the inline body where REST streams the body), and a query model's fields by name
where the method takes them one by one. A row whose method cannot be bound this way fails the table's test,
not a request.
"""

from __future__ import annotations

import enum
import inspect
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from pydantic import BaseModel

from ..domains.registry import load, services
from ..errors import ServiceUnavailable
from .parameters import PATH_PARAMETERS
from .table import Operation

@dataclass(frozen=True)
class Binding:
    """Which service parameter each input goes to."""

    method: str
    path: Mapping[str, str]  # path parameter -> service parameter
    query: str | None  # the parameter taking the query model whole
    body: str | None  # ... the body model whole
    query_fields: Mapping[str, str]  # query field -> service parameter, where the method takes them one by one
    body_fields: Mapping[str, str]
    wrap: str | None  # the response model's field that takes a list the method returns
    path_enums: Mapping[str, type[enum.Enum]]  # path parameter -> the enum its service parameter is typed with
    takes_action: bool  # the method is @performs: it receives the row's permission action


def service_class(name: str) -> type:
    """The class of the service rows call ``name``, as the domain that provides it declares it."""
    try:
        spec = services()[name]
    except KeyError:
        raise KeyError(f"no domain provides a service named {name!r}") from None
    return load(spec.location)  # type: ignore[no-any-return]


@cache
def binding(row: Operation) -> Binding:
    assert row.call is not None and row.service is not None
    method_name = row.call.split(".", 1)[1]
    method = getattr(service_class(row.service), method_name, None)
    if method is None or not inspect.iscoroutinefunction(method):
        raise TypeError(f"operation {row.name!r}: {row.call} is not an async method of its service")
    hints = typing.get_type_hints(method)
    parameters = list(inspect.signature(method).parameters.values())[2:]  # after self and the caller

    def renamed(names: Any) -> dict[str, str]:
        return {row.arguments.get(name, name): name for name in names}

    body_model = row.body if row.body is not None else row.inline_body  # what the call gets, from any face
    path, query_fields, body_fields = (renamed(row.parameters),
                                       renamed(row.query.model_fields if row.query is not None else ()),
                                       renamed(body_model.model_fields if body_model is not None else ()))
    bound_path: dict[str, str] = {}
    path_enums: dict[str, type[enum.Enum]] = {}
    bound_query: dict[str, str] = {}
    bound_body: dict[str, str] = {}
    query = body = None
    takes_action = bool(getattr(method, "__performs__", False))
    for parameter in parameters:
        hint = hints.get(parameter.name)
        if parameter.name == "action" and takes_action:
            continue
        if parameter.name in path:
            source = path.pop(parameter.name)
            bound_path[source] = parameter.name
            if isinstance(hint, type) and issubclass(hint, enum.Enum):
                path_enums[source] = hint
        elif row.query is not None and _takes(hint, row.query):
            query = parameter.name
        elif body_model is not None and _takes(hint, body_model):
            body = parameter.name
        elif parameter.name in query_fields:
            bound_query[query_fields.pop(parameter.name)] = parameter.name
        elif parameter.name in body_fields:
            bound_body[body_fields.pop(parameter.name)] = parameter.name
        elif parameter.default is inspect.Parameter.empty:
            raise TypeError(f"operation {row.name!r}: {row.call}'s parameter {parameter.name!r} takes nothing "
                            f"the operation has")
    problems = []
    if path:
        problems.append(f"path parameters {sorted(path.values())}")
    if row.query is not None and query is None and query_fields:  # taken one by one, every field is taken
        problems.append(f"query fields {sorted(query_fields.values())}")
    if body_model is not None and body is None and body_fields:
        problems.append(f"body fields {sorted(body_fields.values())}")
    if problems:
        raise TypeError(f"operation {row.name!r}: {row.call} takes nothing for {', '.join(problems)}")
    return Binding(method_name, bound_path, query, body, bound_query, bound_body, _list_field(row), path_enums,
                   takes_action)


def _takes(hint: Any, model: type[BaseModel]) -> bool:
    """Whether a parameter typed ``hint`` takes ``model`` whole (``model`` or ``model | None``)."""
    return hint is model or model in typing.get_args(hint)


def _list_field(row: Operation) -> str | None:
    """The response model's one list field, which takes a list the service returns (a page without paging)."""
    if row.response is None:
        return None
    lists = [name for name, info in row.response.model_fields.items() if typing.get_origin(info.annotation) is list]
    return lists[0] if len(row.response.model_fields) == 1 and len(lists) == 1 else None


def running_service(services: Any, name: str) -> Any:
    """The running service ``name`` (``services``: the platform's context), or a 503 saying why not."""
    service = getattr(services, name, None)
    if service is None:
        raise ServiceUnavailable(services()[name].unavailable)
    return service


def convert_path(row: Operation, path: Mapping[str, str]) -> dict[str, Any]:
    """The path's values as the service takes them (an impossible one refused as its parameter says)."""
    return {name: PATH_PARAMETERS[name].convert(path[name]) for name in row.parameters}


async def invoke(services: Any, row: Operation, caller: Any, path: Mapping[str, Any],
                 query: BaseModel | None = None, body: BaseModel | None = None) -> Any:
    """Run ``row`` for ``caller``: the path's values converted (:func:`convert_path`), the query and the body
    already validated against the row's models."""
    bound = binding(row)
    assert row.service is not None
    service = running_service(services, row.service)
    arguments: dict[str, Any] = {}
    for name, target in bound.path.items():
        kind = bound.path_enums.get(name)
        arguments[target] = kind(path[name]) if kind is not None else path[name]
    if bound.query is not None:
        arguments[bound.query] = query
    for field_name, target in bound.query_fields.items():
        arguments[target] = getattr(query, field_name)
    if bound.body is not None:
        arguments[bound.body] = body
    for field_name, target in bound.body_fields.items():
        arguments[target] = getattr(body, field_name)
    if bound.takes_action:
        arguments["action"] = row.action
    result = await getattr(service, bound.method)(caller, **arguments)
    if isinstance(result, list) and bound.wrap is not None and row.response is not None:
        return row.response(**{bound.wrap: result})
    return result
