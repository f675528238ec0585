"""Projects and members over REST; every rule lives in ProjectService."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ...projects.models import (
    Member,
    MemberAdd,
    MemberKind,
    MemberList,
    MemberUpdate,
    Project,
    ProjectCreate,
    ProjectList,
    ProjectListQuery,
    ProjectUpdate,
)
from ...projects.service import ProjectService
from ..routes import Operation
from .base import AitipHandler


class ProjectsBase(AitipHandler):
    @property
    def service(self) -> ProjectService:
        assert self.context.projects is not None
        return self.context.projects


class ProjectsHandler(ProjectsBase):
    operations = {
        "GET": Operation("project.list", "List the projects you belong to", query=ProjectListQuery,
                         response=ProjectList),
        "POST": Operation("project.create", "Create a project; you become its admin", body=ProjectCreate,
                          response=Project, status=201),
    }

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.send(await self.service.list(self.principal, self.query(ProjectListQuery)))

    @web.authenticated
    @authorized
    async def post(self) -> None:
        project = await self.service.create(self.principal, self.json_body(ProjectCreate))
        self.set_header("Location", f"{self.request.path.rstrip('/')}/{project.name}")
        self.send(project)


class ProjectHandler(ProjectsBase):
    operations = {
        "GET": Operation("project.read", "Read a project", response=Project),
        "PATCH": Operation("project.update", "Change a project's title or description", body=ProjectUpdate,
                           response=Project),
    }

    @web.authenticated
    @authorized
    async def get(self, project: str) -> None:
        self.send(await self.service.get(self.principal, self.project_name(project)))

    @web.authenticated
    @authorized
    async def patch(self, project: str) -> None:
        name = self.project_name(project)
        self.send(await self.service.update(self.principal, name, self.json_body(ProjectUpdate)))


class ProjectArchiveHandler(ProjectsBase):
    operations = {"POST": Operation("project.archive", "Archive a project (read-only until unarchived)",
                                    response=Project)}

    @web.authenticated
    @authorized
    async def post(self, project: str) -> None:
        self.send(await self.service.set_archived(self.principal, self.project_name(project), True))


class ProjectUnarchiveHandler(ProjectsBase):
    operations = {"POST": Operation("project.archive", "Unarchive a project", response=Project)}

    @web.authenticated
    @authorized
    async def post(self, project: str) -> None:
        self.send(await self.service.set_archived(self.principal, self.project_name(project), False))


class MembersHandler(ProjectsBase):
    operations = {
        "GET": Operation("member.list", "List a project's members", response=MemberList),
        "POST": Operation("member.add", "Add a user or group with a role", body=MemberAdd, response=Member,
                          status=201),
    }

    @web.authenticated
    @authorized
    async def get(self, project: str) -> None:
        self.send(await self.service.members(self.principal, self.project_name(project)))

    @web.authenticated
    @authorized
    async def post(self, project: str) -> None:
        name = self.project_name(project)
        self.send(await self.service.add_member(self.principal, name, self.json_body(MemberAdd)))


class MemberHandler(ProjectsBase):
    operations = {
        "PATCH": Operation("member.update", "Change a member's role", body=MemberUpdate, response=Member),
        "DELETE": Operation("member.remove", "Remove a member", status=204),
    }

    @staticmethod
    def _kind(kind: str) -> MemberKind:
        return MemberKind.user if kind == "users" else MemberKind.group

    @web.authenticated
    @authorized
    async def patch(self, project: str, kind: str, member: str) -> None:
        name = self.project_name(project)
        body = self.json_body(MemberUpdate)
        self.send(await self.service.update_member(self.principal, name, self._kind(kind), member, body))

    @web.authenticated
    @authorized
    async def delete(self, project: str, kind: str, member: str) -> None:
        await self.service.remove_member(self.principal, self.project_name(project), self._kind(kind), member)
        self.send(None)
