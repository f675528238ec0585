"""Every registered aitip route declares a permission, and its authentication matches it.

Modelled on MLflow's authorization-coverage test: a route added without a decision fails here.
"""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.serverapp import _has_tornado_web_authenticated
from tornado import web
from tornado.routing import Router, Rule

from aitip.identity.permissions import PERMISSIONS, PermissionScope
from aitip.server.handlers.base import AitipHandler
from aitip.server.routes import RouteOperation, platform_routes, workspace_routes

HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def undeclared(handler: type) -> list[str]:
    """What is wrong with a handler's declarations; empty when every method has a sound decision."""
    problems = []
    operations: dict[str, RouteOperation] = getattr(handler, "operations", {})
    for method in HTTP_METHODS:
        function = getattr(handler, method.lower())
        implemented = function is not web.RequestHandler._unimplemented_method
        if not implemented:
            if method in operations:
                problems.append(f"{handler.__name__}: declares {method} but does not implement it")
            continue
        operation = operations.get(method)
        if operation is None:
            problems.append(f"{handler.__name__}.{method}: no declared operation")
            continue
        rule = PERMISSIONS.get(operation.action)
        if rule is None:
            problems.append(f"{handler.__name__}.{method}: action {operation.action!r} is not in PERMISSIONS")
            continue
        public = hasattr(function, "__allow_unauthenticated")
        authenticated = _has_tornado_web_authenticated(function)
        if rule.scope is PermissionScope.public and not public:
            problems.append(f"{handler.__name__}.{method}: public action but not @allow_unauthenticated")
        if rule.scope is not PermissionScope.public and not authenticated:
            problems.append(f"{handler.__name__}.{method}: {rule.scope.value} action but not @web.authenticated")
    return problems


def _registered_handlers(router: Any) -> list[type]:
    found = []
    for rule in getattr(router, "rules", []):
        assert isinstance(rule, Rule)
        target = rule.target
        if isinstance(target, Router):
            found.extend(_registered_handlers(target))
        elif isinstance(target, type) and (issubclass(target, AitipHandler) or hasattr(target, "operations")):
            found.append(target)
    return found


def test_every_registered_route_declares_a_permission(jp_serverapp) -> None:
    registered = _registered_handlers(jp_serverapp.web_app.default_router) + _registered_handlers(
        jp_serverapp.web_app.wildcard_router
    )
    assert {route.handler for route in platform_routes()} <= set(registered), "a platform route is not registered"
    problems = [problem for handler in registered for problem in undeclared(handler)]
    assert problems == []


def test_workspace_routes_declare_permissions_too() -> None:
    problems = [problem for route in workspace_routes() for problem in undeclared(route.handler)]
    assert problems == []


def test_the_check_catches_undeclared_and_mislabelled_methods() -> None:
    class Forgotten(AitipHandler):
        operations = {"GET": RouteOperation("project.read", "declared")}

        @web.authenticated
        async def get(self) -> None: ...

        @web.authenticated
        async def delete(self) -> None: ...

    class Unknown(AitipHandler):
        operations = {"GET": RouteOperation("project.explode", "no such action")}

        @web.authenticated
        async def get(self) -> None: ...

    class OpenByMistake(AitipHandler):
        operations = {"GET": RouteOperation("project.read", "needs a login")}

        @allow_unauthenticated
        async def get(self) -> None: ...

    assert undeclared(Forgotten) == ["Forgotten.DELETE: no declared operation"]
    assert undeclared(Unknown) == ["Unknown.GET: action 'project.explode' is not in PERMISSIONS"]
    assert undeclared(OpenByMistake) == ["OpenByMistake.GET: project action but not @web.authenticated"]
