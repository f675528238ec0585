"""Project-scoped authorization shared by every domain service: load the project, find the caller's
effective role, and refuse with 404 (non-members learn nothing) or 403 (members below the role). It is the
projects domain's read API too: other domains learn of projects and members here, not from its tables."""

from __future__ import annotations

from collections.abc import Collection
from typing import TypeVar

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from ..errors import Conflict, NotFound, PermissionDenied, Phrase
from ..identity.permissions import permission
from ..identity.principal import Principal
from ..identity.roles import Role
from .tables import MemberRecord, ProjectRecord

T = TypeVar("T")


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
    project = find_project(session, name)
    if project is None:
        raise NotFound("project {name!r} does not exist or you are not a member of it", name=name)
    return project


def authorize_record(principal: Principal, action: str, project: ProjectRecord) -> Role:
    rule = permission(action)
    role = effective_role(principal, project)
    if role is None:
        raise NotFound("project {name!r} does not exist or you are not a member of it", name=project.name)
    assert rule.min_role is not None, f"{action} is not a project action"
    if not role.at_least(rule.min_role):
        raise PermissionDenied(
            "{action} needs the {role} role in project {name!r}; you are {your_role}",
            detail={"action": action, "required_role": rule.min_role.value, "your_role": role.value},
            action=action, role=rule.min_role.word, name=project.name, your_role=role.word)
    return role


def authorize(session: Session, principal: Principal, action: str, name: str) -> tuple[ProjectRecord, Role]:
    """Load the project and check ``action`` for the caller."""
    project = load_project(session, name)
    return project, authorize_record(principal, action, project)


def project_row(session: Session, record_class: type[T], row_id: int, project: ProjectRecord, what: str) -> T:
    """The row ``row_id`` of ``record_class`` (a table with ``project_id``) if it belongs to ``project``: another
    project's row is as absent as a missing one (404 naming ``what``, marked with ``N_()``)."""
    found = session.get(record_class, row_id)
    if found is None or found.project_id != project.id:  # type: ignore[attr-defined]
        raise NotFound("project {name!r} has no {what} {row_id}", name=project.name, what=Phrase(what),
                       row_id=row_id)
    return found


def refuse_if_archived(project: ProjectRecord) -> None:
    if project.archived:
        raise Conflict("project {name!r} is archived; unarchive it first", code="project_archived",
                       name=project.name)


def member_project_ids(principal: Principal) -> Select[tuple[int]]:
    """The ids of the projects the caller belongs to (as a user or through a group), as a subquery."""
    return select(MemberRecord.project_id).where(or_(
        (MemberRecord.kind == "user") & (MemberRecord.name == principal.name),
        (MemberRecord.kind == "group") & (MemberRecord.name.in_(sorted(principal.groups) or [""])),
    ))


def member_projects(session: Session, principal: Principal) -> dict[int, str]:
    """The projects the caller is a member of (by name or through a hub group), by id."""
    rows = session.execute(select(ProjectRecord.id, ProjectRecord.name)
                           .where(ProjectRecord.id.in_(member_project_ids(principal))))
    return {row.id: row.name for row in rows}


def project_names(session: Session, ids: Collection[int]) -> dict[int, str]:
    """Project names by id, for the ids given."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    return dict(session.execute(select(ProjectRecord.id, ProjectRecord.name)
                                .where(ProjectRecord.id.in_(wanted))).tuples().all())


def find_project(session: Session, name: str) -> ProjectRecord | None:
    """The project named so, unchecked (the caller checks access with :func:`authorize_record`)."""
    return session.scalar(select(ProjectRecord).where(ProjectRecord.name == name))


def user_members(session: Session, name: str) -> list[str]:
    """The users who are members of the project in their own name (not through a group)."""
    project = find_project(session, name)
    return sorted(member.name for member in project.members if member.kind == "user") if project else []
