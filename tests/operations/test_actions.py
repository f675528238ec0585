"""Services receive the permission action from the row: the project-scoped service methods rows call are
``@performs`` and none retypes its row's action."""

from __future__ import annotations

import inspect

import pytest

from aitip.identity.permissions import PermissionScope
from aitip.operations.actions import action_of, performs, row_action
from aitip.operations.binding import binding, service_class
from aitip.operations.table import operation, operations

PROJECT_ROWS = [row for row in operations()
                if row.call is not None and row.permission.scope is PermissionScope.project]


@pytest.mark.parametrize("row", PROJECT_ROWS, ids=[row.name for row in PROJECT_ROWS])
def test_a_project_operation_hands_its_service_the_rows_action(row) -> None:  # noqa: ANN001
    assert binding(row).takes_action, f"{row.call} is not @performs: it would have to retype {row.action!r}"
    method = getattr(service_class(row.service), row.call.split(".", 1)[1])
    source = inspect.getsource(inspect.unwrap(method))
    assert f'"{row.action}"' not in source, f"{row.call} retypes the action {row.action!r}"
    assert row_action(service_class(row.service), method.__name__) == row.action


def test_a_shared_step_takes_the_named_operations_action() -> None:
    assert action_of("datasets.register") == operation("datasets.register").action == "dataset.write"


def test_performs_needs_an_action_parameter() -> None:
    with pytest.raises(TypeError, match="takes no 'action' parameter"):
        @performs
        async def read(self, principal) -> None:  # noqa: ANN001
            return None
