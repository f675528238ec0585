"""Services receive the permission action from the operation table's row, instead of retyping it.

A service method that rows call is marked ``@performs``: it takes ``action`` (keyword-only), which the
binding passes from the row (:func:`aitip.operations.binding.invoke`); a direct caller (another service,
a test) that gives none gets the action of the row that calls this method, from the same table. A method
that two rows with different actions call must be given one."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from functools import cache
from typing import Any, TypeVar

Method = TypeVar("Method", bound=Callable[..., Awaitable[Any]])


@cache
def row_action(service: type, method: str) -> str:
    """The action of the rows whose call is ``<service>.<method>`` for this service class."""
    from .binding import service_class
    from .table import operations

    actions = {row.action for row in operations() if row.call is not None and row.service is not None
               and row.call.split(".", 1)[1] == method and issubclass(service, service_class(row.service))}
    if len(actions) != 1:
        raise LookupError(f"{service.__name__}.{method} is called by rows with the actions {sorted(actions)}; "
                          "pass action= explicitly")
    return actions.pop()


def action_of(name: str) -> str:
    """The action of the operation named ``name``, for a step several operations share (an upload that REST
    streams and MCP sends inline) when its caller gives none."""
    from .table import operation

    return operation(name).action


def performs(method: Method) -> Method:
    """Mark ``method`` as the implementation of operation rows; see the module's docstring."""
    if "action" not in inspect.signature(method).parameters:
        raise TypeError(f"{method.__qualname__} is marked @performs but takes no 'action' parameter")

    @functools.wraps(method)
    async def with_action(self: Any, *args: Any, action: str | None = None, **kwargs: Any) -> Any:
        return await method(self, *args, action=action or row_action(type(self), method.__name__), **kwargs)

    with_action.__performs__ = True  # type: ignore[attr-defined]
    return with_action  # type: ignore[return-value]
