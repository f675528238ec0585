"""Request and response types of the projects API (the one schema source for REST, SDK, CLI)."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

from pydantic import Field, model_validator

from ..errors import InvalidValue
from ..identity.roles import Role
from ..schema import (
    LongText,
    PrincipalName,
    ProjectName,
    RequestModel,
    ResponseModel,
    Title,
)


class MemberKind(str, Enum):
    user = "user"
    group = "group"


class ProjectCreate(RequestModel):
    name: ProjectName
    display_name: Title | None = Field(None, description="Human title; defaults to the name.")
    description: LongText = ""


class ProjectUpdate(RequestModel):
    display_name: Title | None = None
    description: LongText | None = None

    @model_validator(mode="after")
    def _something_to_change(self) -> ProjectUpdate:
        if self.display_name is None and self.description is None:
            raise InvalidValue("give display_name and/or description to change")
        return self


class ProjectListQuery(RequestModel):
    limit: int = Field(100, ge=1, le=500)
    offset: int = Field(0, ge=0, le=1_000_000)
    include_archived: bool = False


class Project(ResponseModel):
    name: str
    display_name: str
    description: str
    archived: bool
    archived_at: datetime | None
    created_by: str
    created_at: datetime
    updated_at: datetime
    my_role: Role | None = Field(None, description="The caller's effective role in this project.")


class ProjectList(ResponseModel):
    items: list[Project]
    total: int
    limit: int
    offset: int


class MemberAdd(RequestModel):
    user: PrincipalName | None = None
    group: PrincipalName | None = None
    role: Role

    @model_validator(mode="after")
    def _exactly_one_principal(self) -> MemberAdd:
        if (self.user is None) == (self.group is None):
            raise InvalidValue("give exactly one of 'user' or 'group'")
        return self

    @property
    def kind(self) -> MemberKind:
        return MemberKind.user if self.user is not None else MemberKind.group

    @property
    def principal_name(self) -> str:
        return self.user if self.user is not None else self.group  # type: ignore[return-value]


class MemberUpdate(RequestModel):
    role: Role


class Member(ResponseModel):
    kind: MemberKind
    name: str
    role: Role
    added_by: str
    added_at: datetime


class MemberList(ResponseModel):
    items: list[Member]


class ProjectRole(ResponseModel):
    project: str
    display_name: str
    role: Role
    archived: bool


class Me(ResponseModel):
    name: str
    groups: list[str]
    admin: bool
    projects: list[ProjectRole]
