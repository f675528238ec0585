"""The permission table itself: well-formed, and every role ordering holds."""

from __future__ import annotations

import pytest

from aitip.identity.permissions import PERMISSIONS, Permission, PermissionScope, _table, permission
from aitip.identity.roles import Role


def test_roles_are_ordered() -> None:
    assert [r.value for r in sorted(Role, key=lambda r: r.rank)] == ["viewer", "developer", "maintainer", "admin"]
    assert Role.admin.at_least(Role.viewer) and not Role.viewer.at_least(Role.developer)
    assert Role.highest([Role.viewer, Role.maintainer, Role.developer]) is Role.maintainer
    assert Role.highest([]) is None


def test_only_project_actions_name_a_role() -> None:
    for rule in PERMISSIONS.values():
        assert (rule.scope is PermissionScope.project) == (rule.min_role is not None), rule


@pytest.mark.parametrize(
    "entries",
    [
        (Permission("x", PermissionScope.public, None, ""), Permission("x", PermissionScope.public, None, "")),
        (Permission("y", PermissionScope.project, None, ""),),
        (Permission("z", PermissionScope.authenticated, Role.viewer, ""),),
    ],
)
def test_malformed_tables_are_refused_at_import(entries: tuple[Permission, ...]) -> None:
    with pytest.raises(ValueError):
        _table(*entries)


def test_unknown_actions_are_an_error() -> None:
    with pytest.raises(KeyError, match="no permission is declared"):
        permission("project.delete_everything")
