"""REST handlers generated from the operation table: one class per path, one method per row.

A generated method checks the row's permission (before the body is read, in ``AitipHandler.prepare``),
converts the path parameters, validates the query and the body against the row's models, calls the row's
service method through :func:`aitip.operations.binding.invoke`, and answers with the result. A row that
names an explicit handler keeps that handler's method; the class still takes its declarations from the rows.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from jupyter_server.auth.decorator import allow_unauthenticated, authorized
from tornado import web

from ...identity.permissions import PermissionScope
from ...operations.binding import convert_path, invoke
from ...operations.table import Operation
from .base import AitipHandler


class OperationHandler(AitipHandler):
    """The base of generated handlers: runs a row end to end."""

    async def run_operation(self, row: Operation, path: dict[str, str]) -> None:
        values = convert_path(row, path)  # an impossible project is a 404 before the body is judged
        query = self.query(row.query) if row.query is not None else None
        body = self.json_body(row.body, limit=self.buffered_body_limit) if row.body is not None else None
        result = await invoke(self.context, row, self.principal, values, query, body)
        if row.location is not None and result is not None:
            self.set_header("Location", f"{self.request.path.rstrip('/')}/{getattr(result, row.location)}")
        self.send(result)


def _generic_method(row: Operation) -> Callable[..., Coroutine[Any, Any, None]]:
    async def method(self: OperationHandler, **path: str) -> None:
        await self.run_operation(row, path)

    method.__name__ = row.method.lower()
    method.__doc__ = row.summary
    if row.permission.scope is PermissionScope.public:
        return allow_unauthenticated(method)  # type: ignore[no-any-return]
    return web.authenticated(authorized(method))  # type: ignore[no-any-return]


def _class_name(path: str) -> str:
    words = [part for part in path.replace("{", "").replace("}", "").replace("-", "/").replace(".", "/").split("/")
             if part]
    return "".join(word.capitalize() for word in words) + "Handler"


def operation_handler(rows: Sequence[Operation]) -> type[AitipHandler]:
    """The handler class of one path: the explicit handler its rows name (at most one), or a generated one,
    declaring each row under its method and implementing the rows that name no handler."""
    explicit = {row.handler for row in rows if row.handler is not None}
    if len(explicit) > 1:
        raise ValueError(f"the rows of {rows[0].path} name different handlers: {sorted(explicit)}")
    base: type[AitipHandler] = (next(row for row in rows if row.handler).explicit_handler() if explicit
                                else OperationHandler)
    namespace: dict[str, Any] = {"operations": {row.method: row for row in rows}, "__module__": __name__}
    for row in rows:
        if row.handler is None:
            namespace[row.method.lower()] = _generic_method(row)
    if base is OperationHandler:
        return type(_class_name(rows[0].path), (OperationHandler,), namespace)
    return type(base.__name__, (base, OperationHandler), namespace)
