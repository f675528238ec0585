"""Project rules in the service layer, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from aitip.audit import AuditEventRecord
from aitip.catalog import Catalog
from aitip.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from aitip.identity.directory import DirectoryEntry
from aitip.identity.principal import Principal
from aitip.identity.roles import Role
from aitip.projects.models import MemberAdd, MemberKind, MemberUpdate, ProjectCreate, ProjectListQuery, ProjectUpdate
from aitip.projects.service import ProjectService
from tests.support.directories import FixedDirectory

ANN = Principal("ann")
BOB = Principal("bob")
CAROL = Principal("carol", groups=frozenset({"vision"}))
ROOT = Principal("root", is_admin=True)


@pytest.fixture
def service(catalog: Catalog) -> ProjectService:
    users = {p.name: DirectoryEntry(p.name, p.groups, p.is_admin) for p in (ANN, BOB, CAROL, ROOT)}
    return ProjectService(catalog, FixedDirectory(users, {"vision"}))


async def _project(service: ProjectService, name: str = "alpha", owner: Principal = ANN) -> None:
    await service.create(owner, ProjectCreate(name=name))


@pytest.mark.asyncio
async def test_creator_becomes_admin_and_sees_the_project(service: ProjectService) -> None:
    created = await service.create(ANN, ProjectCreate(name="alpha", display_name="Alpha"))
    assert created.my_role is Role.admin and created.created_by == "ann"
    me = await service.me(ANN)
    assert [(p.project, p.role) for p in me.projects] == [("alpha", Role.admin)]
    assert (await service.list(BOB, ProjectListQuery())).total == 0


@pytest.mark.asyncio
async def test_duplicate_names_conflict(service: ProjectService) -> None:
    await _project(service)
    with pytest.raises(Conflict, match="already exists"):
        await _project(service, owner=BOB)


@pytest.mark.asyncio
async def test_non_members_get_not_found_and_viewers_get_forbidden(service: ProjectService) -> None:
    await _project(service)
    with pytest.raises(NotFound):
        await service.get(BOB, "alpha")
    await service.add_member(ANN, "alpha", MemberAdd(user="bob", role=Role.viewer))
    assert (await service.get(BOB, "alpha")).my_role is Role.viewer
    with pytest.raises(PermissionDenied, match="needs the maintainer role"):
        await service.update(BOB, "alpha", ProjectUpdate(description="mine now"))


@pytest.mark.asyncio
async def test_group_membership_grants_the_group_role(service: ProjectService) -> None:
    await _project(service)
    await service.add_member(ANN, "alpha", MemberAdd(group="vision", role=Role.developer))
    assert (await service.get(CAROL, "alpha")).my_role is Role.developer
    await service.add_member(ANN, "alpha", MemberAdd(user="carol", role=Role.maintainer))
    assert (await service.get(CAROL, "alpha")).my_role is Role.maintainer


@pytest.mark.asyncio
async def test_hub_admins_are_admins_of_every_project(service: ProjectService) -> None:
    await _project(service)
    assert (await service.get(ROOT, "alpha")).my_role is Role.admin
    assert (await service.list(ROOT, ProjectListQuery())).total == 1


@pytest.mark.asyncio
async def test_maintainers_cannot_grant_above_their_role(service: ProjectService) -> None:
    await _project(service)
    await service.add_member(ANN, "alpha", MemberAdd(user="bob", role=Role.maintainer))
    with pytest.raises(PermissionDenied, match="cannot grant"):
        await service.add_member(BOB, "alpha", MemberAdd(user="carol", role=Role.admin))
    with pytest.raises(PermissionDenied, match="cannot grant"):
        await service.update_member(BOB, "alpha", MemberKind.user, "ann", MemberUpdate(role=Role.viewer))
    member = await service.add_member(BOB, "alpha", MemberAdd(user="carol", role=Role.developer))
    assert member.role is Role.developer and member.added_by == "bob"


@pytest.mark.asyncio
async def test_the_last_admin_cannot_leave_or_be_demoted(service: ProjectService) -> None:
    await _project(service)
    with pytest.raises(Conflict, match="last admin"):
        await service.remove_member(ANN, "alpha", MemberKind.user, "ann")
    with pytest.raises(Conflict, match="last admin"):
        await service.update_member(ANN, "alpha", MemberKind.user, "ann", MemberUpdate(role=Role.viewer))
    await service.add_member(ANN, "alpha", MemberAdd(user="bob", role=Role.admin))
    await service.remove_member(ANN, "alpha", MemberKind.user, "ann")
    with pytest.raises(NotFound):
        await service.get(ANN, "alpha")


@pytest.mark.asyncio
async def test_unknown_users_and_groups_are_refused_and_nothing_is_written(service: ProjectService) -> None:
    await _project(service)
    with pytest.raises(InvalidInput, match="no user named 'zed'"):
        await service.add_member(ANN, "alpha", MemberAdd(user="zed", role=Role.viewer))
    with pytest.raises(InvalidInput, match="no group named 'nope'"):
        await service.add_member(ANN, "alpha", MemberAdd(group="nope", role=Role.viewer))
    assert [m.name for m in (await service.members(ANN, "alpha")).items] == ["ann"]


@pytest.mark.asyncio
async def test_archived_projects_are_read_only_until_unarchived(service: ProjectService) -> None:
    await _project(service)
    archived = await service.set_archived(ANN, "alpha", True)
    assert archived.archived and archived.archived_at is not None
    with pytest.raises(Conflict, match="archived"):
        await service.update(ANN, "alpha", ProjectUpdate(description="x"))
    assert (await service.list(ANN, ProjectListQuery())).total == 0
    assert (await service.list(ANN, ProjectListQuery(include_archived=True))).total == 1
    restored = await service.set_archived(ANN, "alpha", False)
    assert not restored.archived
    updated = await service.update(ANN, "alpha", ProjectUpdate(description="x"))
    assert updated.description == "x"


@pytest.mark.asyncio
async def test_pagination_is_stable_and_counts_everything(service: ProjectService) -> None:
    for index in range(7):
        await _project(service, f"p{index}")
    page = await service.list(ANN, ProjectListQuery(limit=3, offset=3))
    assert page.total == 7 and [p.name for p in page.items] == ["p3", "p4", "p5"]


@pytest.mark.asyncio
async def test_every_write_is_audited(service: ProjectService, catalog: Catalog) -> None:
    await _project(service)
    await service.add_member(ANN, "alpha", MemberAdd(user="bob", role=Role.viewer))
    await service.update_member(ANN, "alpha", MemberKind.user, "bob", MemberUpdate(role=Role.developer))
    await service.remove_member(ANN, "alpha", MemberKind.user, "bob")
    with catalog.session() as session:
        actions = [e.action for e in session.scalars(select(AuditEventRecord).order_by(AuditEventRecord.id))]
    assert actions == ["project.create", "member.add", "member.update", "member.remove"]
