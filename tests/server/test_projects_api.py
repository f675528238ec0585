"""The projects API end to end on a real Jupyter server in platform mode."""

from __future__ import annotations

import pytest




async def test_health_needs_no_credentials(api) -> None:
    status, body = await api("GET", "health", user=None)
    assert status == 200 and body["status"] == "ok" and body["mode"] == "platform"


async def test_everything_else_needs_credentials(api) -> None:
    for method, path in [("GET", "me"), ("GET", "projects"), ("POST", "projects"), ("GET", "openapi.json")]:
        status, body = await api(method, path, user=None, body={} if method == "POST" else None)
        assert status == 403, (method, path)
        assert body["error"]["code"] == "forbidden"


async def test_me_reports_identity_and_roles(api) -> None:
    await api("POST", "projects", body={"name": "alpha"})
    status, me = await api("GET", "me", user="ann")
    assert status == 200
    assert me == {"name": "ann", "groups": [], "admin": False,
                  "projects": [{"project": "alpha", "display_name": "alpha", "role": "admin", "archived": False}]}
    _, carol = await api("GET", "me", user="carol")
    assert carol["groups"] == ["vision"] and carol["projects"] == []
    _, root = await api("GET", "me", user="root")
    assert root["admin"] is True and root["projects"][0]["role"] == "admin"


async def test_project_lifecycle(api) -> None:
    status, created = await api("POST", "projects", body={"name": "alpha", "display_name": "Alpha",
                                                          "description": "first"})
    assert status == 201 and created["my_role"] == "admin"
    status, _ = await api("PATCH", "projects/alpha", body={"description": "changed"})
    assert status == 200
    status, listed = await api("GET", "projects")
    assert listed["total"] == 1 and listed["items"][0]["description"] == "changed"
    status, archived = await api("POST", "projects/alpha/archive")
    assert status == 200 and archived["archived"] is True
    status, body = await api("PATCH", "projects/alpha", body={"description": "nope"})
    assert status == 409 and body["error"]["code"] == "project_archived"
    assert (await api("GET", "projects"))[1]["total"] == 0
    assert (await api("GET", "projects", params={"include_archived": "true"}))[1]["total"] == 1
    assert (await api("POST", "projects/alpha/unarchive"))[0] == 200


async def test_members_lifecycle(api) -> None:
    await api("POST", "projects", body={"name": "alpha"})
    status, member = await api("POST", "projects/alpha/members", body={"user": "bob", "role": "viewer"})
    assert status == 201 and member["name"] == "bob" and member["role"] == "viewer"
    status, body = await api("POST", "projects/alpha/members", body={"user": "bob", "role": "viewer"})
    assert status == 409 and body["error"]["code"] == "already_member"
    status, member = await api("PATCH", "projects/alpha/members/users/bob", body={"role": "developer"})
    assert status == 200 and member["role"] == "developer"
    status, _ = await api("POST", "projects/alpha/members", body={"group": "vision", "role": "viewer"})
    assert status == 201
    _, members = await api("GET", "projects/alpha/members", user="carol")
    assert [(m["kind"], m["name"], m["role"]) for m in members["items"]] == [
        ("group", "vision", "viewer"), ("user", "ann", "admin"), ("user", "bob", "developer")]
    status, _ = await api("DELETE", "projects/alpha/members/users/bob")
    assert status == 204
    status, body = await api("GET", "projects/alpha", user="bob")
    assert status == 404 and body["error"]["code"] == "not_found"


async def test_unknown_routes_answer_json_404(api) -> None:
    status, body = await api("GET", "no/such/route")
    assert status == 404 and "no API route" in body["error"]["message"]


@pytest.mark.parametrize(("method", "path", "parameter", "value"), [
    ("GET", "runs/nosuchrun", "run", "nosuchrun"),
    ("GET", "projects/alpha/releases/latest", "release", "latest"),
    ("POST", "projects/alpha/datasets/users/versions/0x1/restore", "version", "0x1"),
    ("DELETE", "projects/alpha/endpoints/digits/keys/first", "key", "first"),
])
async def test_a_path_value_not_of_its_form_is_named_with_the_form_it_should_have(
        api, method: str, path: str, parameter: str, value: str) -> None:
    """An operation's path but for one value (a run id that is not 32 hex digits) says which value, which
    parameter it stands for and what that parameter looks like — in the caller's language."""
    from aitip.operations.parameters import PATH_PARAMETERS

    status, body = await api(method, path)
    assert status == 404 and body["error"]["code"] == "not_found"
    assert body["error"]["detail"]["parameter"] == parameter and body["error"]["detail"]["value"] == value
    assert f"{value!r} is not a {parameter} of {method} /" in body["error"]["message"]
    assert PATH_PARAMETERS[parameter].description in body["error"]["message"]
    status, body = await api(method, path, headers={"Accept-Language": "zh-CN"})
    assert status == 404 and f"{value!r} 不是 {method} /" in body["error"]["message"]


async def test_openapi_describes_every_route_with_its_permission(api) -> None:
    status, doc = await api("GET", "openapi.json")
    assert status == 200 and doc["openapi"].startswith("3.1")
    operation = doc["paths"]["/api/aitip/v1/projects"]["post"]
    assert operation["x-aitip-action"] == "project.create"
    assert operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("ProjectCreate")
    assert "ProjectCreate" in doc["components"]["schemas"]
    assert doc["paths"]["/api/aitip/v1/health"]["get"]["security"] == []


async def test_home_page_shows_the_signed_in_user_and_projects(jp_fetch) -> None:
    await jp_fetch("api", "aitip", "v1", "projects", method="POST", body=b'{"name": "alpha<b>"}',
                   headers={"Authorization": "token tok-ann", "Content-Type": "application/json"},
                   raise_error=False)
    await jp_fetch("api", "aitip", "v1", "projects", method="POST", body=b'{"name": "alpha", "display_name": "<b>A</b>"}',
                   headers={"Authorization": "token tok-ann", "Content-Type": "application/json"})
    page = await jp_fetch("home", headers={"Authorization": "token tok-ann"})
    html = page.body.decode()
    assert page.code == 200 and '<strong id="user">ann</strong>' in html
    assert "&lt;b&gt;A&lt;/b&gt;" in html and "<b>A</b>" not in html
