"""The operation table: every operation the platform offers, once, in sections a domain contributes.

A row says what an operation is (its name, the permission action it needs, its method and path, the
models it speaks, the service method that does it, whether it is long-running); every face is generated
from the rows: the REST routes and their handlers, the OpenAPI document, the SDK's methods, the CLI's
sub-commands and the MCP tools. A face that needs more than the generic binding (a streamed upload, a
Server-Sent Events stream, a download) names its own handler, and still takes its declaration from here.

The least role of a row is its action's, from :mod:`aitip.identity.permissions`: one action may cover
several operations (``job.read`` reads a job, its events and its notebook), and each is declared once.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from pydantic import BaseModel

from ..domains.registry import section_modules
from ..identity.permissions import Permission, permission
from .parameters import PATH_PARAMETERS

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
_NAME = re.compile(r"[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*")


@dataclass(frozen=True, eq=False)  # a row is itself: hashed by identity (its arguments are a dict)
class Operation:
    """One operation: a method on a path, and everything its faces need to offer it."""

    name: str  # "<group>.<verb>": the SDK method, the CLI command and the MCP tool are named from it
    action: str  # the permission it needs (its least role)
    method: str
    path: str  # relative to the API prefix; {parameters} as in aitip.operations.parameters
    summary: str
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    # "<service>.<method>" on the platform's services; the generic handler and the MCP face bind the path
    # parameters, the query and the body to its parameters (see aitip.operations.binding).
    call: str | None = None
    # Input (path parameter, query or body field) -> the service method's parameter, where the names differ.
    arguments: Mapping[str, str] = field(default_factory=dict)
    # "module:Class" of an explicit REST handler (streams, uploads, downloads); it still declares nothing.
    handler: str | None = None
    # Long-running: it returns at once with a handle (a job, a sweep) whose state changes later.
    long_running: bool = False
    # The attribute of the result that names it under the request's path (the Location of a 201).
    location: str | None = None
    # Faces that cannot offer it: e.g. {"mcp"} for a binary download an agent cannot use as a tool.
    not_in: frozenset[str] = frozenset()
    # Where REST streams the body as it is (an upload its handler takes): the JSON body that a face taking
    # only JSON arguments (MCP) sends instead, the file inline; ``call`` takes it as it would take a body.
    inline_body: type[BaseModel] | None = None
    # It answers with a file's bytes (a download): the SDK returns them, the CLI writes them (--output).
    gives_file: bool = False

    @property
    def group(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def verb(self) -> str:
        return self.name.split(".", 1)[1]

    @property
    def parameters(self) -> list[str]:
        return re.findall(r"\{(\w+)\}", self.path)

    @property
    def takes_file(self) -> bool:
        """Its REST body is a file streamed as it is (an upload); the SDK and CLI send one from a path."""
        return self.inline_body is not None

    @property
    def permission(self) -> Permission:
        return permission(self.action)

    @property
    def service(self) -> str | None:
        return self.call.split(".", 1)[0] if self.call else None

    def explicit_handler(self) -> type:
        assert self.handler is not None
        module, _, name = self.handler.partition(":")
        return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Section:
    """A domain's operations, in the order its faces list them."""

    domain: str
    title: str
    operations: tuple[Operation, ...]


@cache
def sections() -> tuple[Section, ...]:
    """Every registered domain's section (:mod:`aitip.domains`), in the registry's order."""
    found = tuple(importlib.import_module(module).SECTION for module in section_modules())
    validate([row for section in found for row in section.operations])
    return found


def operations() -> tuple[Operation, ...]:
    return tuple(row for section in sections() for row in section.operations)


@cache
def by_name() -> dict[str, Operation]:
    return {row.name: row for row in operations()}


def operation(name: str) -> Operation:
    try:
        return by_name()[name]
    except KeyError:
        raise KeyError(f"no operation is named {name!r}") from None


def validate(rows: list[Operation]) -> None:
    """Refuse a table with two rows for one name or one method and path, an unknown action or path
    parameter, or a row that names neither a service call nor a handler (both: the handler wins)."""
    names: set[str] = set()
    routes: set[tuple[str, str]] = set()
    for row in rows:
        where = f"operation {row.name!r}"
        if not _NAME.fullmatch(row.name):
            raise ValueError(f"{where}: a name is '<group>.<verb>' in lower case")
        if row.name in names:
            raise ValueError(f"{where} is declared twice")
        names.add(row.name)
        if row.method not in METHODS:
            raise ValueError(f"{where}: unknown method {row.method!r}")
        if (row.method, row.path) in routes:
            raise ValueError(f"{where}: {row.method} {row.path} is declared twice")
        routes.add((row.method, row.path))
        permission(row.action)  # raises for an undeclared action
        unknown = [name for name in row.parameters if name not in PATH_PARAMETERS]
        if unknown:
            raise ValueError(f"{where}: path parameters {unknown} are not in aitip.operations.parameters")
        if row.call is None and row.handler is None:
            raise ValueError(f"{where}: names neither a service call nor a handler")
        if row.call is not None and row.call.count(".") != 1:
            raise ValueError(f"{where}: call is '<service>.<method>'")
        if row.inline_body is not None and (row.handler is None or row.call is None or row.body is not None):
            raise ValueError(f"{where}: an inline body stands in for a streamed body: it needs a handler that "
                             "streams it, a call that takes it, and no JSON body")
        inputs = {*row.parameters, *(row.query.model_fields if row.query else ()),
                  *(row.body.model_fields if row.body else ()),
                  *(row.inline_body.model_fields if row.inline_body else ())}
        stray = set(row.arguments) - inputs
        if stray:
            raise ValueError(f"{where}: arguments for inputs the operation does not have: {sorted(stray)}")


def describe(row: Operation) -> dict[str, Any]:
    """A row as the README's generated table and `aitip ops` show it."""
    rule = row.permission
    return {"name": row.name, "method": row.method, "path": row.path, "action": row.action,
            "least_role": rule.min_role.value if rule.min_role else rule.scope.value,
            "long_running": row.long_running, "summary": row.summary}


def markdown() -> str:
    """The table as the README shows it (a test keeps the README's copy equal to this)."""
    lines = ["| operation (SDK `client.ops.<group>.<verb>`, MCP tool `<group>_<verb>`) | REST | least role | |",
             "|---|---|---|---|"]
    for section in sections():
        for row in section.operations:
            info = describe(row)
            faces = ", ".join(sorted({"sdk", "mcp"} & set(row.not_in)))
            notes = "; ".join(part for part in ("long-running" if row.long_running else "",
                                                f"not in {faces}" if faces else "",
                                                "mcp takes the file inline"
                                                if row.inline_body and "mcp" not in row.not_in else "") if part)
            lines.append(f"| `{row.name}` {row.summary} | `{row.method} {row.path}` | {info['least_role']} | "
                         f"{notes} |")
    return "\n".join(lines)
