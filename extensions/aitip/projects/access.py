"""Project-scoped authorization shared by every domain service: load the project, find the caller's
effective role, and refuse with 404 (non-members learn nothing) or 403 (members below the role)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import Conflict, NotFound, PermissionDenied
from ..identity.permissions import permission
from ..identity.principal import Principal
from ..identity.roles import Role
from .tables import ProjectRecord


def effective_role(principal: Principal, project: ProjectRecord) -> Role | None:
    """Hub admins are admins everywhere; others hold the highest of their user and group roles.

    A job's credential holds its owner's role in the job's project and none elsewhere."""
    if principal.project_scope is not None and principal.project_scope != project.name:
        return None
    if principal.is_admin:
        return Role.admin
    roles = [
        Role(member.role)
        for member in project.members
        if (member.kind == "user" and member.name == principal.name)
        or (member.kind == "group" and member.name in principal.groups)
    ]
    return Role.highest(roles)


def load_project(session: Session, name: str) -> ProjectRecord:
    project = session.scalar(select(ProjectRecord).where(ProjectRecord.name == name))
    if project is None:
        raise NotFound(f"project {name!r} does not exist or you are not a member of it")
    return project


def authorize_record(principal: Principal, action: str, project: ProjectRecord) -> Role:
    rule = permission(action)
    role = effective_role(principal, project)
    if role is None:
        raise NotFound(f"project {project.name!r} does not exist or you are not a member of it")
    assert rule.min_role is not None, f"{action} is not a project action"
    if not role.at_least(rule.min_role):
        raise PermissionDenied(
            f"{action} needs the {rule.min_role.value} role in project {project.name!r}; you are {role.value}",
            detail={"action": action, "required_role": rule.min_role.value, "your_role": role.value},
        )
    return role


def authorize(session: Session, principal: Principal, action: str, name: str) -> tuple[ProjectRecord, Role]:
    """Load the project and check ``action`` for the caller."""
    project = load_project(session, name)
    return project, authorize_record(principal, action, project)


def refuse_if_archived(project: ProjectRecord) -> None:
    if project.archived:
        raise Conflict(f"project {project.name!r} is archived; unarchive it first", code="project_archived")
