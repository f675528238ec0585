"""Projects and their members: the projects section of the operation table."""

from __future__ import annotations

from ..operations.table import Operation, Section
from .models import (
    Member,
    MemberAdd,
    MemberList,
    MemberUpdate,
    Project,
    ProjectCreate,
    ProjectList,
    ProjectListQuery,
    ProjectUpdate,
)

_NAME = {"project": "name"}
_MEMBER = {"project": "name", "member": "member_name"}

SECTION = Section("projects", "Projects and members", (
    Operation("projects.list", "project.list", "GET", "projects", "List the projects you belong to",
              query=ProjectListQuery, response=ProjectList, call="projects.list"),
    Operation("projects.create", "project.create", "POST", "projects", "Create a project; you become its admin",
              body=ProjectCreate, response=Project, status=201, call="projects.create", location="name"),
    Operation("projects.get", "project.read", "GET", "projects/{project}", "Read a project", response=Project,
              call="projects.get", arguments=_NAME),
    Operation("projects.update", "project.update", "PATCH", "projects/{project}",
              "Change a project's title or description", body=ProjectUpdate, response=Project,
              call="projects.update", arguments=_NAME),
    Operation("projects.archive", "project.archive", "POST", "projects/{project}/archive",
              "Archive a project (read-only until unarchived)", response=Project, call="projects.archive",
              arguments=_NAME),
    Operation("projects.unarchive", "project.archive", "POST", "projects/{project}/unarchive",
              "Unarchive a project", response=Project, call="projects.unarchive", arguments=_NAME),
    Operation("members.list", "member.list", "GET", "projects/{project}/members", "List a project's members",
              response=MemberList, call="projects.members", arguments=_NAME),
    Operation("members.add", "member.add", "POST", "projects/{project}/members", "Add a user or group with a role",
              body=MemberAdd, response=Member, status=201, call="projects.add_member", arguments=_NAME),
    Operation("members.update", "member.update", "PATCH", "projects/{project}/members/{kind}/{member}",
              "Change a member's role", body=MemberUpdate, response=Member, call="projects.update_member",
              arguments=_MEMBER),
    Operation("members.remove", "member.remove", "DELETE", "projects/{project}/members/{kind}/{member}",
              "Remove a member", status=204, call="projects.remove_member", arguments=_MEMBER),
))
