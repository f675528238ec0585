"""The pure rules of releases: semantic version order, release windows, and who fills which approval stage."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from pydantic import ValidationError

from aitip.identity.roles import Role
from aitip.releases import approvals, semver, windows
from aitip.releases.models import ReleasePolicySet, ReleaseRequest, ReleaseWindow

ORDERED = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11",
           "1.0.0-rc.1", "1.0.0", "1.0.1", "1.2.0", "1.10.0", "2.0.0"]  # semver.org's own example, and more


def test_versions_sort_as_semver_says() -> None:
    assert sorted(reversed(ORDERED), key=semver.order_key) == ORDERED
    assert semver.order_key("1.0.0+build.5") == semver.order_key("1.0.0")
    assert semver.newest(["1.9.0", "1.10.0", "1.2.3"]) == "1.10.0"


@pytest.mark.parametrize("bad", ["1.0", "01.0.0", "1.0.0-", "1.0.0-01", "v1.0.0", "1.0.0+"])
def test_what_is_no_semantic_version_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="not a semantic version"):
        semver.order_key(bad)
    with pytest.raises(ValidationError):
        ReleaseRequest(kind="configuration", name="settings", version=bad, configuration={})


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


OFFICE = ReleaseWindow(days=["mon", "tue", "wed", "thu"], start="09:00", end="17:00", timezone="Asia/Shanghai")
NIGHT = ReleaseWindow(days=["fri"], start="22:00", end="02:00")


@pytest.mark.parametrize("moment, open_", [
    ("2026-12-07T01:00:00", True),  # Monday 09:00 in Shanghai
    ("2026-12-07T00:59:00", False),
    ("2026-12-07T09:00:00", False),  # 17:00 in Shanghai: closed
    ("2026-12-11T01:00:00", False),  # Friday in Shanghai: not an office day
    ("2026-12-11T23:30:00", True),  # Friday night, UTC
    ("2026-12-12T01:30:00", True),  # still Friday's night window on Saturday morning
    ("2026-12-12T02:00:00", False),
    ("2026-12-12T23:00:00", False),  # Saturday night
])
def test_windows_open_on_their_days_and_hours_in_their_zone(moment: str, open_: bool) -> None:
    assert windows.open_now([OFFICE.opening(), NIGHT.opening()], at(moment)) is open_


def test_the_next_opening_is_found_and_no_windows_means_any_time() -> None:
    assert windows.next_opening([OFFICE.opening()], at("2026-12-11T03:00:00")) == at("2026-12-14T01:00:00")
    assert windows.open_now([], at("2026-12-12T03:00:00")) and windows.next_opening([], at("2026-12-12T03:00")) is None


@pytest.mark.parametrize("body, message", [
    ({"auto_approve": True, "evaluation": False}, "ships only with evidence"),
    ({"evaluation": False, "simulations": []}, "ships only with evidence"),
    ({"approvals": []}, "at least 1 item"),
    ({"simulations": ["custom", "custom"]}, "named twice"),
    ({"windows": [{"start": "09:00", "end": "09:00"}]}, "never be open"),
    ({"windows": [{"start": "25:00", "end": "09:00"}]}, "String should match pattern"),
    ({"windows": [{"start": "09:00", "end": "10:00", "timezone": "Mars/Olympus"}]}, "not an IANA time zone"),
])
def test_policies_that_cannot_work_are_refused(body: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ReleasePolicySet.model_validate(body)


STAGES = [approvals.Stage(Role.maintainer, 2), approvals.Stage(Role.admin, 1)]


def place(approved: list[int], decider: str, role: Role, *, ordered: bool = True,
          deciders: tuple[str, ...] = ()) -> approvals.Placement:
    return approvals.place(STAGES, ordered, approved, decider=decider, requester="carol", role=role,
                           deciders=list(deciders))


def test_stages_fill_in_order_and_nobody_approves_their_own_request() -> None:
    own = place([], "carol", Role.admin)
    assert own.stage is None and own.forbidden and "own release request" in str(own.refusal)
    assert place([], "ann", Role.admin).stage == 0  # an admin is at least a maintainer
    early = place([0], "bob", Role.developer)
    assert early.forbidden and early.refusal is not None
    assert str(early.refusal) == "the next approval stage needs the maintainer role; you are developer"
    assert early.refusal.in_language("zh_CN") == "下一审批阶段需要维护者角色；你是开发者"
    assert place([0], "dan", Role.maintainer).stage == 0
    assert place([0, 0], "ann", Role.maintainer).forbidden  # the admin stage is next
    twice = place([0], "dan", Role.maintainer, deciders=("dan",))
    assert not twice.forbidden and "decided on this request already" in str(twice.refusal)
    assert approvals.complete(STAGES, [0, 0, 1]) and not approvals.complete(STAGES, [0, 1])
    assert "complete" in str(place([0, 0, 1], "eve", Role.admin).refusal)


def test_without_order_an_approver_fills_the_first_open_stage_their_role_reaches() -> None:
    assert place([0, 0], "ann", Role.admin, ordered=False).stage == 1
    assert place([], "dan", Role.maintainer, ordered=False).stage == 0
    refused = place([0, 0], "dan", Role.maintainer, ordered=False)
    assert refused.forbidden and "an open approval stage needs the admin role" in str(refused.refusal)
