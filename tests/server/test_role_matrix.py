"""Route x role: who may do what in a project, checked over HTTP against the permission table."""

from __future__ import annotations

from typing import Any

import pytest

from aitip.identity.permissions import PERMISSIONS
from aitip.identity.roles import Role
from tests.support.notebooks import TRIVIAL

ROLE_HOLDERS = {"viewer": "bob", "developer": "carol", "maintainer": "dave", "admin": "ann"}
CALLERS = ["outsider", "viewer", "developer", "maintainer", "admin", "hub-admin"]
CALLER_USERS = {**ROLE_HOLDERS, "outsider": "erin", "hub-admin": "root"}

# (action, method, path, body, status when allowed)
PROJECT_ROUTES: list[tuple[str, str, str, Any, int]] = [
    ("project.read", "GET", "projects/alpha", None, 200),
    ("project.update", "PATCH", "projects/alpha", {"description": "new"}, 200),
    ("project.archive", "POST", "projects/alpha/archive", None, 200),
    ("project.archive", "POST", "projects/alpha/unarchive", None, 409),
    ("member.list", "GET", "projects/alpha/members", None, 200),
    ("member.add", "POST", "projects/alpha/members", {"user": "frank", "role": "viewer"}, 201),
    ("member.update", "PATCH", "projects/alpha/members/users/erin-ro", {"role": "developer"}, 200),
    ("member.remove", "DELETE", "projects/alpha/members/users/erin-ro", None, 204),
    ("job.submit", "POST", "jobs", {"project": "alpha", "notebook": TRIVIAL}, 201),
    ("job.read", "GET", "jobs/1", None, 200),
    ("job.read", "GET", "jobs/1/events", None, 200),
    ("job.cancel", "POST", "jobs/1/cancel", None, 200),
    ("job.retry", "POST", "jobs/1/retry", None, 201),
    ("job.record_input", "POST", "jobs/1/inputs", {"dataset": "base", "version": 1}, 200),
    ("job.track", "POST", "jobs/1/tracking", None, 200),
    ("tracking.gateway", "GET", "tracking/api/2.0/mlflow/experiments/get?experiment_id=1", None, 200),
    ("sweep.create", "POST", "sweeps", {"project": "alpha", "notebook": TRIVIAL, "strategy": "grid",
                                         "space": {"x": {"type": "grid", "values": [1, 2]}}, "objective": "y"}, 201),
    ("sweep.read", "GET", "sweeps/1", None, 200),
    ("sweep.cancel", "POST", "sweeps/1/cancel", None, 200),
    ("experiment.read", "GET", "projects/alpha/experiments", None, 200),
    ("experiment.read", "GET", "projects/alpha/runs", None, 200),
    ("model.read", "GET", "projects/alpha/models", None, 200),
    ("dataset.read", "GET", "projects/alpha/datasets", None, 200),
    ("dataset.read", "GET", "projects/alpha/datasets/base/versions/1/preview", None, 200),
    ("dataset.read", "GET", "projects/alpha/datasets/base/diff?from=1&to=2", None, 200),
    ("dataset.write", "POST", "projects/alpha/datasets/base/versions/1/restore", {}, 201),
    ("dataset.manage", "PATCH", "projects/alpha/datasets/base", {"description": "edited"}, 200),
    ("annotation.read", "GET", "projects/alpha/annotations/1", None, 200),
    ("annotation.manage", "POST", "projects/alpha/annotations",
     {"name": "more", "dataset": "base", "labels": ["a", "b"], "annotators": ["bob"]}, 201),
    ("annotation.manage", "POST", "projects/alpha/annotations/1/export", {}, 409),  # nothing reviewed yet
    ("annotation.label", "POST", "projects/alpha/annotations/1/items/1/label", {"label": "a"}, 200),
    ("webhook.read", "GET", "projects/alpha/webhooks", None, 200),
    ("webhook.read", "GET", "projects/alpha/webhook-deliveries", None, 200),
    # A public address given as a literal: checked without DNS; nothing is sent until an event happens.
    ("webhook.manage", "POST", "projects/alpha/webhooks", {"url": "https://8.8.8.8/hook"}, 201),
]
# The seeded annotation task assigns its items to every project member; a hub admin outside the project
# may label in principle but has nothing assigned.
ASSIGNEE_RULE = {"annotation.label"}
# Job 1 belongs to the developer: cancel and retry are for its owner or a maintainer and above.
OWNER_RULE = {"job.cancel", "job.retry", "sweep.cancel"}
# Only a job's own credential records its reads (tests/server/test_job_credentials.py): no person may.
JOB_ONLY_RULE = {"job.record_input", "job.track"}
# The tracking gateway names no project in its path: it serves a job's credential alone, and refuses anyone
# else (tests/isolation/test_tracking_gateway.py drives it with a real job's kernel).
JOB_CREDENTIAL_ONLY = {"tracking.gateway"}
ACCOUNT_ROUTES: list[tuple[str, str, str, Any, int]] = [
    ("platform.me", "GET", "me", None, 200),
    ("platform.openapi", "GET", "openapi.json", None, 200),
    ("project.list", "GET", "projects", None, 200),
    ("project.create", "POST", "projects", {"name": "mine"}, 201),
    ("job.list", "GET", "jobs", None, 200),
]


async def seed_data(api: Any) -> None:
    for content in (b"a,b\n1,2\n", b"a,b\n1,2\n3,4\n"):
        status, version = await api("POST", "projects/alpha/datasets/base/versions", user="ann", raw=content,
                                    params={"filename": "base.csv"})
        assert status == 201, version
    status, task = await api("POST", "projects/alpha/annotations", user="ann", body={
        "name": "seed", "dataset": "base", "labels": ["a", "b"], "annotators": sorted(ROLE_HOLDERS.values()),
        "overlap": len(ROLE_HOLDERS)})
    assert status == 201 and task["id"] == 1, task


async def seed(api: Any) -> Any:
    assert (await api("POST", "projects", user="ann", body={"name": "alpha"}))[0] == 201
    for role, user in ROLE_HOLDERS.items():
        if role != "admin":
            status, _ = await api("POST", "projects/alpha/members", user="ann", body={"user": user, "role": role})
            assert status == 201
    status, _ = await api("POST", "projects/alpha/members", user="ann", body={"user": "erin-ro", "role": "viewer"})
    assert status == 201
    status, job = await api("POST", "jobs", user=ROLE_HOLDERS["developer"], body={"project": "alpha",
                                                                                   "notebook": TRIVIAL})
    assert status == 201 and job["id"] == 1, job
    status, sweep = await api("POST", "sweeps", user=ROLE_HOLDERS["developer"], body={
        "project": "alpha", "notebook": TRIVIAL, "strategy": "grid", "objective": "y",
        "space": {"x": {"type": "grid", "values": [1, 2]}}})
    assert status == 201 and sweep["id"] == 1, sweep
    return api


def _expected(action: str, caller: str, allowed_status: int) -> int:
    rule = PERMISSIONS[action]
    assert rule.min_role is not None
    if action in JOB_CREDENTIAL_ONLY:
        return 403
    if caller == "outsider":
        return 404
    if action in JOB_ONLY_RULE:
        return 403
    role = Role.admin if caller == "hub-admin" else Role(caller)
    if action in OWNER_RULE and role is Role.developer:
        return allowed_status  # the developer owns job 1
    if action in ASSIGNEE_RULE and caller == "hub-admin":
        return 404
    return allowed_status if role.at_least(rule.min_role) else 403


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize(("action", "method", "path", "body", "allowed"), PROJECT_ROUTES,
                         ids=[f"{r[1]} {r[2]}" for r in PROJECT_ROUTES])
async def test_project_routes(api, caller: str, action: str, method: str, path: str, body: Any,
                              allowed: int) -> None:
    seeded = await seed(api)
    if action.startswith(("dataset.", "annotation.")) or action in JOB_ONLY_RULE:
        await seed_data(seeded)
    path, _, query = path.partition("?")
    params = dict(pair.split("=", 1) for pair in query.split("&")) if query else None
    status, response = await seeded(method, path, user=CALLER_USERS[caller], body=body, params=params)
    assert status == _expected(action, caller, allowed), response
    if status in (403, 404):
        assert response["error"]["code"] in ("forbidden", "not_found")


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize(("action", "method", "path", "body", "allowed"), ACCOUNT_ROUTES,
                         ids=[f"{r[1]} {r[2]}" for r in ACCOUNT_ROUTES])
async def test_account_routes_need_only_a_login(api, caller: str, action: str, method: str, path: str,
                                                body: Any, allowed: int) -> None:
    seeded = await seed(api)
    status, _ = await seeded(method, path, user=CALLER_USERS[caller], body=body)
    assert status == allowed
    status, _ = await seeded(method, path, user=None, body=body)
    assert status == 403


def test_the_matrix_covers_every_project_action() -> None:
    project_actions = {a for a, rule in PERMISSIONS.items() if rule.min_role is not None}
    assert project_actions == {row[0] for row in PROJECT_ROUTES}


async def test_a_developer_cannot_cancel_someone_elses_job(api) -> None:
    seeded = await seed(api)
    status, _ = await seeded("POST", "projects/alpha/members", user="ann", body={"user": "frank", "role": "developer"})
    assert status == 201
    status, body = await seeded("POST", "jobs/1/cancel", user="frank")
    assert status == 403 and "owner" in body["error"]["message"]
