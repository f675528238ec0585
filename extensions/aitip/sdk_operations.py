"""Every operation of the table as an SDK method, generated: ``client.ops.<group>.<verb>(**arguments)``.

The arguments are the operation's inputs by field name (path parameters, query and body fields together,
as :mod:`aitip.operations.inputs` defines them, the same names the MCP tools and the CLI take); each method's
signature and docstring are built from the row, so ``help(client.ops.runs.compare)`` shows them. The answer
is the row's response model (a dict where the row has none). The hand-written methods of :class:`Client`
(``submit_job`` reading a notebook file, ``follow_job``, ``wait_job``) are conveniences on top.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .operations.inputs import input_fields
from .operations.table import Operation, operations

if TYPE_CHECKING:
    from .client import Client

FACE = "sdk"


def offered(row: Operation) -> bool:
    return FACE not in row.not_in


def call(client: Client, row: Operation, arguments: dict[str, Any]) -> Any:
    """Send ``row`` with ``arguments`` (by field name); the answer as the row's response model."""
    fields = {field.name: field for field in input_fields(row)}
    if row.takes_file and "file" in arguments and "filename" in fields:
        arguments = {"filename": Path(arguments["file"]).name, **arguments}  # the file's own name by default
    unknown = sorted(set(arguments) - set(fields) - ({"file"} if row.takes_file else set()))
    if unknown:
        raise TypeError(f"{row.name}() got unexpected arguments {unknown}; it takes {sorted(fields)}")
    missing = [name for name, field in fields.items() if field.required and name not in arguments]
    if missing:
        raise TypeError(f"{row.name}() is missing required arguments {missing}")
    path = row.path
    params: dict[str, Any] = {}
    body: dict[str, Any] = {}
    for name, value in arguments.items():
        field = fields.get(name)
        if field is None:
            continue
        if field.where == "path":
            path = path.replace("{" + name + "}", quote(str(value), safe=""))
        elif field.where == "query":
            params[field.alias] = _query_value(value)
        else:
            body[field.alias] = value
    if row.takes_file:
        file = Path(arguments["file"])
        with file.open("rb") as handle:
            answer = client.upload(path, iter(lambda: handle.read(1 << 20), b""), file.stat().st_size,
                                   params=params)
        return row.response.model_validate(answer) if row.response is not None and answer is not None else answer
    if row.gives_file:
        return client.download(path, params=params or None)
    return client.request(row.method, path, json_body=body if row.body is not None else None, params=params or None,
                          model=row.response)


def _query_value(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return [_query_value(item) for item in value]
    return value


def _method(client: Client, row: Operation) -> Callable[..., Any]:
    def method(**arguments: Any) -> Any:
        return call(client, row, arguments)

    optional = {"filename"} if row.takes_file else set()  # the file's own name by default
    parameters = [inspect.Parameter(field.name, inspect.Parameter.KEYWORD_ONLY,
                                     default=inspect.Parameter.empty if field.required and field.name not in optional
                                     else None)
                  for field in input_fields(row)]
    if row.takes_file:
        parameters.append(inspect.Parameter("file", inspect.Parameter.KEYWORD_ONLY))
    parameters.sort(key=lambda parameter: parameter.default is not inspect.Parameter.empty)
    method.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    method.__name__ = row.verb
    method.__qualname__ = row.name
    lines = [row.summary, "", f"{row.method} {row.path} (needs {row.action})"]
    lines += [f"  {field.name}: {field.description or field.where}" for field in input_fields(row)]
    method.__doc__ = "\n".join(lines)
    return method


class OperationGroup:
    """The operations of one group (``projects``, ``runs``, ...) as methods."""

    def __init__(self, client: Client, group: str, rows: Iterable[Operation]) -> None:
        self._group = group
        self._verbs: list[str] = []
        for row in rows:
            setattr(self, row.verb, _method(client, row))
            self._verbs.append(row.verb)

    def __dir__(self) -> list[str]:
        return sorted(self._verbs)

    def __repr__(self) -> str:
        return f"<aitip operations {self._group}: {', '.join(self._verbs)}>"


class Operations:
    """``client.ops``: one attribute per group of the operation table."""

    def __init__(self, client: Client) -> None:
        groups: dict[str, list[Operation]] = {}
        for row in operations():
            if offered(row):
                groups.setdefault(row.group, []).append(row)
        self._groups = sorted(groups)
        for group, rows in groups.items():
            setattr(self, group, OperationGroup(client, group, rows))

    def __dir__(self) -> list[str]:
        return list(self._groups)

    def __repr__(self) -> str:
        return f"<aitip operations: {', '.join(self._groups)}>"
