"""Effective roles, including a job credential's confinement to its project (admins too)."""

from __future__ import annotations

import pytest

from aitip.identity.principal import Principal
from aitip.identity.roles import Role
from aitip.projects.access import effective_role
from aitip.projects.tables import MemberRecord, ProjectRecord


def _project(name: str) -> ProjectRecord:
    project = ProjectRecord(name=name, display_name=name, description="", created_by="ann")
    project.members = [MemberRecord(kind="user", name="carol", role="developer", added_by="ann"),
                       MemberRecord(kind="group", name="vision", role="maintainer", added_by="ann")]
    return project


CASES = [
    (Principal("carol"), "alpha", Role.developer),
    (Principal("carol", frozenset({"vision"})), "alpha", Role.maintainer),
    (Principal("erin"), "alpha", None),
    (Principal("root", is_admin=True), "alpha", Role.admin),
    (Principal("carol", job_id=1, project_scope="alpha"), "alpha", Role.developer),
    (Principal("carol", job_id=1, project_scope="beta"), "alpha", None),
    (Principal("root", is_admin=True, job_id=2, project_scope="alpha"), "alpha", Role.admin),
    (Principal("root", is_admin=True, job_id=2, project_scope="beta"), "alpha", None),
]


@pytest.mark.parametrize(("principal", "project", "role"), CASES, ids=[str(c) for c in CASES])
def test_effective_role(principal: Principal, project: str, role: Role | None) -> None:
    assert effective_role(principal, _project(project)) == role
