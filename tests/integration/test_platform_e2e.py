"""The spine end to end: a real hub, proxy, platform service and user server on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import PASSWORDS
from tests.support.platform import RunningPlatform

pytestmark = pytest.mark.integration


def test_each_token_is_its_own_user(platform: RunningPlatform, people: dict[str, str]) -> None:
    for name in ("ann", "bob", "carol", "admin"):
        with platform.api(people[name]) as api:
            me = api.get("me")
        assert me.status_code == 200, me.text
        assert me.json()["name"] == name
        assert me.json()["admin"] is (name == "admin")


def test_no_token_is_refused(platform: RunningPlatform) -> None:
    import httpx

    response = httpx.get(f"{platform.url}/services/aitip/api/aitip/v1/me", follow_redirects=False)
    assert response.status_code == 403
    assert httpx.get(f"{platform.url}/services/aitip/api/aitip/v1/health").json()["mode"] == "platform"


def test_roles_hold_through_the_hub(platform: RunningPlatform, people: dict[str, str]) -> None:
    ann, bob, carol = (platform.api(people[n]) for n in ("ann", "bob", "carol"))
    with ann, bob, carol:
        created = ann.post("projects", json={"name": "spine-demo", "display_name": "Spine demo"})
        assert created.status_code == 201, created.text
        added = ann.post("projects/spine-demo/members", json={"user": "bob", "role": "viewer"})
        assert added.status_code == 201, added.text
        assert bob.get("projects/spine-demo").json()["my_role"] == "viewer"
        write = bob.patch("projects/spine-demo", json={"description": "bob was here"})
        assert write.status_code == 403 and write.json()["error"]["code"] == "forbidden"
        add = bob.post("projects/spine-demo/members", json={"user": "carol", "role": "viewer"})
        assert add.status_code == 403
        hidden = carol.get("projects/spine-demo")
        assert hidden.status_code == 404 and hidden.json()["error"]["code"] == "not_found"
        assert carol.patch("projects/spine-demo", json={"description": "x"}).status_code == 404
        unknown = ann.post("projects/spine-demo/members", json={"user": "nobody-here", "role": "viewer"})
        assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "unknown_user"
        assert ann.get("projects/spine-demo").json()["description"] == ""


def test_hub_groups_grant_project_roles(platform: RunningPlatform, people: dict[str, str]) -> None:
    with platform.hub_api(people["admin"]) as hub:
        assert hub.post("groups/vision", json={"users": ["carol"]}).status_code == 201
    with platform.api(people["ann"]) as ann, platform.api(people["carol"]) as carol:
        assert ann.post("projects", json={"name": "grouped"}).status_code == 201
        assert ann.post("projects/grouped/members", json={"group": "vision", "role": "developer"}).status_code == 201
        assert carol.get("projects/grouped").json()["my_role"] == "developer"
        assert "vision" in carol.get("me").json()["groups"]
        missing = ann.post("projects/grouped/members", json={"group": "no-such-group", "role": "viewer"})
        assert missing.status_code == 422 and missing.json()["error"]["code"] == "unknown_group"


@pytest.mark.parametrize("path", ["api/contents", "api/contents/x.ipynb", "api/kernels", "api/sessions",
                                  "api/terminals", "api/kernelspecs"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_the_platform_service_refuses_jupyter_apis(platform: RunningPlatform, people: dict[str, str],
                                                   path: str, method: str) -> None:
    import httpx

    response = httpx.request(method, f"{platform.url}/services/aitip/{path}", json={} if method == "POST" else None,
                             headers={"Authorization": f"token {people['admin']}"})
    # Refused by the authorizer (403), not served in platform mode (404: terminals are not loaded),
    # or a method Jupyter does not offer there (405): never executed.
    assert response.status_code in (403, 404, 405), (path, response.status_code, response.text[:200])
    if path in ("api/contents", "api/kernels", "api/sessions"):
        assert response.status_code == 403
    assert not (platform.home / "x.ipynb").exists()


def test_sdk_inside_a_user_kernel_sees_its_user(platform: RunningPlatform, people: dict[str, str]) -> None:
    platform.spawn("ann", people["ann"])
    result = platform.run_in_kernel("ann", people["ann"], "import aitip\nme = aitip.Client().me()\n"
                                    "print(me.name, [p.project for p in me.projects])")
    assert result["error"] is None, result["error"]
    name, projects = result["stdout"].strip().split(" ", 1)
    assert name == "ann"
    assert "spine-demo" in projects
    with platform.hub_api(people["ann"]) as hub:
        relayed = hub.get(f"{platform.url}/user/ann/api/aitip/v1/projects/spine-demo")
        assert relayed.status_code == 200 and relayed.json()["my_role"] == "admin"


def test_cli_logs_in_and_manages_projects(platform: RunningPlatform, people: dict[str, str], tmp_path: Path) -> None:
    env = {**os.environ, "AITIP_CONFIG_DIR": str(tmp_path), "AITIP_PASSWORD": PASSWORDS["bob"]}
    aitip = [str(Path(sys.executable).parent / "aitip")]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(aitip + list(args), env=env, capture_output=True, text=True, timeout=60)

    login = run("login", "--hub", platform.url, "-u", "bob", "--json")
    assert login.returncode == 0, login.stderr
    assert json.loads(login.stdout)["user"] == "bob"
    assert (tmp_path / "credentials.json").stat().st_mode & 0o077 == 0
    created = run("projects", "create", "bobs-lab", "--display-name", "Bob's lab", "--json")
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["my_role"] == "admin"
    table = run("projects", "list")
    assert table.returncode == 0 and "bobs-lab" in table.stdout and "spine-demo" in table.stdout
    refused = run("projects", "update", "spine-demo", "--description", "nope")
    assert refused.returncode == 1 and "403 forbidden" in refused.stderr
    me = run("me", "--json")
    assert json.loads(me.stdout)["name"] == "bob"


def test_a_browser_session_reaches_the_api(platform: RunningPlatform, people: dict[str, str]) -> None:
    """Log in at the hub like a person, open the platform page (hub OAuth), then call the API with the
    cookie: reads directly, writes with the XSRF header, as JupyterLab and dashboards do."""
    browser = platform.browser_login("ann", PASSWORDS["ann"])
    browser.follow_redirects = True
    try:
        page = browser.get("/services/aitip/")
        assert page.status_code == 200 and '<strong id="user">ann</strong>' in page.text
        assert "spine-demo" in page.text
        me = browser.get("/services/aitip/api/aitip/v1/me")
        assert me.status_code == 200 and me.json()["name"] == "ann"
        no_xsrf = browser.patch("/services/aitip/api/aitip/v1/projects/spine-demo", json={"description": "x"})
        assert no_xsrf.status_code == 403
        xsrf = next(c.value for c in browser.cookies.jar if c.name == "_xsrf" and c.path.startswith("/services"))
        write = browser.patch("/services/aitip/api/aitip/v1/projects/spine-demo", json={"description": "from a browser"},
                              headers={"X-XSRFToken": xsrf})
        assert write.status_code == 200, write.text
        assert write.json()["description"] == "from a browser"
        assert browser.get("/user/ann/lab").status_code == 200  # JupyterLab signs in through hub OAuth
        lab = browser.get("/user/ann/api/aitip/v1/me")  # JupyterLab's origin, through the workspace relay
        assert lab.status_code == 200 and lab.json()["name"] == "ann"
    finally:
        browser.close()
