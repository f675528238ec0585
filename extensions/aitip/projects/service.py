"""The projects service: the one place that checks project roles and writes projects and members."""

from __future__ import annotations

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..audit import record
from ..catalog import Catalog
from ..catalog.base import utcnow
from ..catalog.service import CatalogService
from ..operations.actions import action_of, performs
from ..errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
    Phrase,
)
from ..i18n import N_
from ..identity.directory import Directory
from ..identity.principal import Principal
from ..identity.roles import Role
from .access import authorize, effective_role, refuse_if_archived
from .models import (
    Me,
    Member,
    MemberAdd,
    MemberKind,
    MemberList,
    MemberUpdate,
    Project,
    ProjectCreate,
    ProjectList,
    ProjectListQuery,
    ProjectRole,
    ProjectUpdate,
)
from .tables import MemberRecord, ProjectRecord


def _project_model(record: ProjectRecord, role: Role | None) -> Project:
    return Project(
        name=record.name,
        display_name=record.display_name,
        description=record.description,
        archived=record.archived,
        archived_at=record.archived_at,
        created_by=record.created_by,
        created_at=record.created_at,
        updated_at=record.updated_at,
        my_role=role,
    )


MEMBER_KINDS = {MemberKind.user: N_("user"), MemberKind.group: N_("group")}


def _member_kind(kind: MemberKind) -> Phrase:
    """A member's kind as a message names it, in the reader's language."""
    return Phrase(MEMBER_KINDS[kind])


def _member_model(record: MemberRecord) -> Member:
    return Member(kind=MemberKind(record.kind), name=record.name, role=Role(record.role),
                  added_by=record.added_by, added_at=record.added_at)


class ProjectService(CatalogService):
    """Projects and membership, with every rule of who may do what."""

    def __init__(self, catalog: Catalog, directory: Directory) -> None:
        super().__init__(catalog)
        self.directory = directory

    # ----- projects -----

    async def me(self, principal: Principal) -> Me:
        principal = self._signed_in(principal)

        def work(session: Session) -> Me:
            projects = [
                ProjectRole(project=p.name, display_name=p.display_name, role=role, archived=p.archived)
                for p, role in self._visible(session, principal, include_archived=True)
            ]
            return Me(name=principal.name, groups=sorted(principal.groups), admin=principal.is_admin,
                      projects=projects)

        return await self._in_transaction(work)

    def _visible(self, session: Session, principal: Principal, *, include_archived: bool
                 ) -> list[tuple[ProjectRecord, Role]]:
        query = select(ProjectRecord).order_by(ProjectRecord.name)
        if not include_archived:
            query = query.where(ProjectRecord.archived.is_(False))
        if not principal.is_admin:
            member_of = select(MemberRecord.project_id).where(
                or_(
                    (MemberRecord.kind == "user") & (MemberRecord.name == principal.name),
                    (MemberRecord.kind == "group") & (MemberRecord.name.in_(sorted(principal.groups) or [""])),
                )
            )
            query = query.where(ProjectRecord.id.in_(member_of))
        result = []
        for project in session.scalars(query):
            role = effective_role(principal, project)
            if role is not None:
                result.append((project, role))
        return result

    async def create(self, principal: Principal, request: ProjectCreate) -> Project:
        principal = self._signed_in(principal)

        def work(session: Session) -> Project:
            if session.scalar(select(func.count()).where(ProjectRecord.name == request.name)):
                raise Conflict("a project named {name!r} already exists", code="project_exists",
                               name=request.name)
            project = ProjectRecord(name=request.name, display_name=request.display_name or request.name,
                                    description=request.description, created_by=principal.name)
            project.members.append(
                MemberRecord(kind="user", name=principal.name, role=Role.admin.value, added_by=principal.name)
            )
            session.add(project)
            record(session, principal.name, "project.create", f"project:{request.name}")
            try:
                session.flush()
            except IntegrityError as exc:
                raise Conflict("a project named {name!r} already exists", code="project_exists",
                               name=request.name) from exc
            return _project_model(project, Role.admin)

        return await self._in_transaction(work)

    async def list(self, principal: Principal, query: ProjectListQuery) -> ProjectList:
        principal = self._signed_in(principal)

        def work(session: Session) -> ProjectList:
            visible = self._visible(session, principal, include_archived=query.include_archived)
            page = visible[query.offset: query.offset + query.limit]
            return ProjectList(items=[_project_model(p, role) for p, role in page], total=len(visible),
                               limit=query.limit, offset=query.offset)

        return await self._in_transaction(work)

    @performs
    async def get(self, principal: Principal, name: str, *, action: str) -> Project:
        principal = self._signed_in(principal)

        def work(session: Session) -> Project:
            project, role = authorize(session, principal, action, name)
            return _project_model(project, role)

        return await self._in_transaction(work)

    @performs
    async def update(self, principal: Principal, name: str, request: ProjectUpdate, *, action: str) -> Project:
        principal = self._signed_in(principal)

        def work(session: Session) -> Project:
            project, role = authorize(session, principal, action, name)
            refuse_if_archived(project)
            changes = request.model_dump(exclude_none=True)
            for field, value in changes.items():
                setattr(project, field, value)
            project.updated_at = utcnow()
            record(session, principal.name, action, f"project:{name}", {"fields": sorted(changes)})
            session.flush()
            return _project_model(project, role)

        return await self._in_transaction(work)

    @performs
    async def archive(self, principal: Principal, name: str, *, action: str) -> Project:
        return await self.set_archived(principal, name, True, action=action)

    @performs
    async def unarchive(self, principal: Principal, name: str, *, action: str) -> Project:
        return await self.set_archived(principal, name, False, action=action)

    async def set_archived(self, principal: Principal, name: str, archived: bool, *,
                           action: str | None = None) -> Project:
        """Archive or unarchive (``action``: the operation's, ``projects.archive``'s by default)."""
        principal = self._signed_in(principal)
        action = action or action_of("projects.archive")

        def work(session: Session) -> Project:
            project, role = authorize(session, principal, action, name)
            if project.archived == archived:
                raise Conflict(N_("project {name!r} is already archived") if archived else
                               N_("project {name!r} is already active"), code="no_change", name=name)
            project.archived = archived
            project.archived_at = utcnow() if archived else None
            project.updated_at = utcnow()
            record(session, principal.name, "project.archive" if archived else "project.unarchive",
                   f"project:{name}")
            session.flush()
            return _project_model(project, role)

        return await self._in_transaction(work)

    # ----- members -----

    @performs
    async def members(self, principal: Principal, name: str, *, action: str) -> MemberList:
        principal = self._signed_in(principal)

        def work(session: Session) -> MemberList:
            project, _ = authorize(session, principal, action, name)
            ordered = sorted(project.members, key=lambda m: (m.kind, m.name))
            return MemberList(items=[_member_model(m) for m in ordered])

        return await self._in_transaction(work)

    @staticmethod
    def _check_grant(principal: Principal, own_role: Role, granted: Role) -> None:
        if not principal.is_admin and granted.rank > own_role.rank:
            raise PermissionDenied(
                "you are {role} and cannot grant the higher role {granted}",
                detail={"your_role": own_role.value, "requested_role": granted.value},
                role=own_role.word, granted=granted.word)

    @staticmethod
    def _admins_left_after(project: ProjectRecord, leaving: MemberRecord) -> int:
        return sum(1 for m in project.members if m.role == Role.admin.value and m is not leaving)

    @performs
    async def add_member(self, principal: Principal, name: str, request: MemberAdd, *, action: str) -> Member:
        principal = self._signed_in(principal)
        kind, member_name = request.kind, request.principal_name
        # Fail fast for a stranger before asking the hub anything about the member.
        await self._in_transaction(lambda s: authorize(s, principal, action, name))
        if kind is MemberKind.user:
            exists = await self.directory.user(member_name) is not None
        else:
            exists = await self.directory.group_exists(member_name)
        if not exists:
            raise InvalidInput(N_("JupyterHub has no user named {member_name!r} (someone who signed up is one once "
                                  "an admin approves them at /hub/authorize)") if kind is MemberKind.user else
                               N_("JupyterHub has no group named {member_name!r}"),
                               code=f"unknown_{kind.value}", member_name=member_name)

        def work(session: Session) -> Member:
            project, role = authorize(session, principal, action, name)
            refuse_if_archived(project)
            self._check_grant(principal, role, request.role)
            if any(m.kind == kind.value and m.name == member_name for m in project.members):
                raise Conflict("{kind} {member_name!r} is already a member of {name!r}; change their role instead",
                               code="already_member", kind=_member_kind(kind), member_name=member_name, name=name)
            member = MemberRecord(kind=kind.value, name=member_name, role=request.role.value,
                                  added_by=principal.name)
            project.members.append(member)
            record(session, principal.name, action, f"project:{name}",
                   {"kind": kind.value, "name": member_name, "role": request.role.value})
            try:
                session.flush()
            except IntegrityError as exc:
                raise Conflict("{kind} {member_name!r} is already a member of {name!r}", code="already_member",
                               kind=_member_kind(kind), member_name=member_name, name=name) from exc
            return _member_model(member)

        return await self._in_transaction(work)

    def _find_member(self, project: ProjectRecord, kind: MemberKind, member_name: str) -> MemberRecord:
        for member in project.members:
            if member.kind == kind.value and member.name == member_name:
                return member
        raise NotFound("{kind} {member_name!r} is not a member of project {name!r}",
                       kind=_member_kind(kind), member_name=member_name, name=project.name)

    @performs
    async def update_member(self, principal: Principal, name: str, kind: MemberKind, member_name: str,
                            request: MemberUpdate, *, action: str) -> Member:
        principal = self._signed_in(principal)

        def work(session: Session) -> Member:
            project, role = authorize(session, principal, action, name)
            refuse_if_archived(project)
            member = self._find_member(project, kind, member_name)
            self._check_grant(principal, role, Role(member.role))
            self._check_grant(principal, role, request.role)
            if member.role == Role.admin.value and request.role is not Role.admin \
                    and self._admins_left_after(project, member) == 0:
                raise Conflict("{member_name!r} is the last admin of {name!r}; make someone else admin first",
                               code="last_admin", member_name=member_name, name=name)
            previous = member.role
            member.role = request.role.value
            member.updated_at = utcnow()
            record(session, principal.name, action, f"project:{name}",
                   {"kind": kind.value, "name": member_name, "from": previous, "to": request.role.value})
            session.flush()
            return _member_model(member)

        return await self._in_transaction(work)

    @performs
    async def remove_member(self, principal: Principal, name: str, kind: MemberKind, member_name: str, *, action: str) -> None:
        principal = self._signed_in(principal)

        def work(session: Session) -> None:
            project, role = authorize(session, principal, action, name)
            refuse_if_archived(project)
            member = self._find_member(project, kind, member_name)
            self._check_grant(principal, role, Role(member.role))
            if member.role == Role.admin.value and self._admins_left_after(project, member) == 0:
                raise Conflict("{member_name!r} is the last admin of {name!r}; make someone else admin first",
                               code="last_admin", member_name=member_name, name=name)
            project.members.remove(member)
            record(session, principal.name, action, f"project:{name}",
                   {"kind": kind.value, "name": member_name, "role": member.role})

        await self._in_transaction(work)
