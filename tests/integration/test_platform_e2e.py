"""The spine end to end: a real hub, proxy, platform service and user server on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
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


def test_a_person_just_approved_can_be_added_to_a_project_before_signing_in(platform: RunningPlatform,
                                                                             people: dict[str, str]) -> None:
    """The admin approves a sign-up, then adds the person at once: approving makes the JupyterHub user (it was
    made only at the first sign-in, so the platform answered "no user named 'dora'")."""
    assert platform.signup("dora", "dora-pass-1234").status_code == 200
    with platform.api(people["ann"]) as ann:
        assert ann.post("projects", json={"name": "welcome"}).status_code == 201
        early = ann.post("projects/welcome/members", json={"user": "dora", "role": "viewer"})
        assert early.status_code == 422 and early.json()["error"]["code"] == "unknown_user", early.text
        platform.approve("dora")
        added = ann.post("projects/welcome/members", json={"user": "dora", "role": "developer"})
        assert added.status_code == 201, added.text
    with platform.api(platform.token("dora", "dora-pass-1234")) as dora:
        assert dora.get("projects/welcome").json()["my_role"] == "developer"


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


EXAMPLE = Path(__file__).resolve().parents[2] / "notebooks" / "train" / "digits_sklearn.ipynb"


def test_training_notebook_runs_from_cli_sdk_and_api(platform: RunningPlatform, people: dict[str, str],
                                                     tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The example training notebook as a job three ways; each an MLflow run with metrics, the executed
    notebook and a registered model version."""
    with platform.api(people["ann"]) as ann:
        assert ann.post("projects", json={"name": "jobs-demo"}).status_code == 201
        via_api = ann.post("jobs", json={"project": "jobs-demo", "notebook": json.loads(EXAMPLE.read_text()),
                                         "notebook_name": EXAMPLE.name,
                                         "parameters": {"epochs": 2, "model_name": "digits-api"}})
        assert via_api.status_code == 201, via_api.text

    env = {**os.environ, "AITIP_URL": f"{platform.url}/services/aitip/", "AITIP_TOKEN": people["ann"]}
    cli = subprocess.run([str(Path(sys.executable).parent / "aitip"), "run", str(EXAMPLE), "--project", "jobs-demo",
                          "-p", "epochs", "3", "-p", "model_name", "digits-cli", "--follow"],
                         env=env, capture_output=True, text=True, timeout=240)
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert "epoch   3" in cli.stdout and "succeeded" in cli.stderr

    platform.spawn("ann", people["ann"])
    sdk = platform.run_in_kernel("ann", people["ann"], (
        "import aitip\nclient = aitip.Client()\n"
        f"job = client.submit_job('jobs-demo', {str(EXAMPLE)!r}, parameters={{'epochs': 2, 'model_name': 'digits-sdk'}})\n"
        "job = client.wait_job(job.id, timeout=200, poll=0.5)\nprint(job.state.value, job.id)"), timeout=240)
    assert sdk["error"] is None, sdk["error"]
    assert sdk["stdout"].split()[0] == "succeeded"

    with httpx.Client(base_url=f"{platform.url}/user/ann/api/", timeout=60,
                      headers={"Authorization": f"token {people['ann']}"}) as server:
        upload = server.put("contents/train.ipynb", json={"type": "notebook", "format": "json",
                                                           "content": json.loads(EXAMPLE.read_text())})
        assert upload.status_code in (200, 201), upload.text
        from_lab = server.post("aitip/v1/jobs", json={"project": "jobs-demo", "path": "train.ipynb",
                                                      "parameters": {"epochs": 1, "model_name": ""}})
        assert from_lab.status_code == 201, from_lab.text
        assert from_lab.json()["notebook_name"] == "train.ipynb"

    from mlflow.tracking import MlflowClient

    with platform.api(people["ann"]) as ann:
        jobs = ann.get("jobs", params={"project": "jobs-demo"}).json()["items"]
        deadline = time.monotonic() + 200
        while any(j["state"] not in ("succeeded", "failed") for j in jobs) and time.monotonic() < deadline:
            time.sleep(1)
            jobs = ann.get("jobs", params={"project": "jobs-demo"}).json()["items"]
        assert [j["state"] for j in jobs] == ["succeeded"] * 4, [(j["id"], j["state"], j["reason"]) for j in jobs]
        # The executed notebook is stored in MLflow after the job has ended, off its path: its event says when.
        for job in jobs:
            while not any(e["kind"] == "report_stored" for e in ann.get(f"jobs/{job['id']}/events").json()["items"]):
                assert time.monotonic() < deadline + 60, f"job {job['id']}'s report was never stored"
                time.sleep(0.2)
    # Read as an administrator reads the store directly: artifacts are mlflow-artifacts:/<project>/... URIs,
    # files under the platform's artifact root.
    from aitip.experiments.artifacts import DESTINATION_ENV, register_artifacts_scheme

    monkeypatch.setenv(DESTINATION_ENV, str(platform.home / "mlartifacts"))
    register_artifacts_scheme()
    tracking = MlflowClient(tracking_uri=f"sqlite:///{platform.home / 'mlflow.sqlite'}")
    for job in jobs:
        run = tracking.get_run(job["mlflow_run_id"])
        assert run.data.tags["aitip.job_id"] == str(job["id"]) and run.data.tags["aitip.user"] == "ann"
        assert len(tracking.get_metric_history(run.info.run_id, "test_accuracy")) == int(run.data.params["epochs"])
        assert {a.path for a in tracking.list_artifacts(run.info.run_id, "notebook")} == {
            "notebook/output.ipynb", "notebook/output.html"}
    for name in ("digits-api", "digits-cli", "digits-sdk"):
        (version,) = tracking.search_model_versions(f"name='{name}'")
        assert version.run_id in {j["mlflow_run_id"] for j in jobs}
        # registered by the job's kernel through the tracking gateway: the model is its project's
        assert tracking.get_registered_model(name).tags == {"aitip.project": "jobs-demo"}


def test_job_monitor_widget_in_a_notebook(platform: RunningPlatform, people: dict[str, str]) -> None:
    """The ipywidgets monitor follows a job live from inside a user's kernel, and its Cancel works."""
    platform.spawn("ann", people["ann"])
    code = (
        "import aitip, json\nfrom aitip.widgets import JobMonitor\nclient = aitip.Client()\n"
        "nb = {'nbformat': 4, 'nbformat_minor': 5, 'metadata': {}, 'cells': [\n"
        "  {'cell_type': 'code', 'id': 'a', 'metadata': {}, 'outputs': [], 'execution_count': None,\n"
        "   'source': 'for i in range(3): print(\"line\", i)'}]}\n"
        "job = client.submit_job('jobs-demo', nb)\n"
        "monitor = JobMonitor(job.id)\nmonitor.wait(60)\n"
        "print(json.dumps({'state': monitor.job.state.value, 'log': monitor.output_area.value,\n"
        "                  'cancel_disabled': monitor.cancel_button.disabled,\n"
        "                  'retry_disabled': monitor.retry_button.disabled}))\n"
        "slow = client.submit_job('jobs-demo', dict(nb, cells=[dict(nb['cells'][0], source='import time; time.sleep(60)')]))\n"
        "watch = JobMonitor(slow.id)\nimport time\n"
        "while client.get_job(slow.id).state.value != 'running': time.sleep(0.2)\n"
        "watch.cancel()\nprint(watch.wait(60).state.value)\n"
    )
    result = platform.run_in_kernel("ann", people["ann"], code, timeout=150)
    assert result["error"] is None, result["error"]
    first, second = result["stdout"].strip().splitlines()
    shown = json.loads(first)
    assert shown == {"state": "succeeded", "log": "line 0\nline 1\nline 2\n", "cancel_disabled": True,
                     "retry_disabled": False}
    assert second == "cancelled"
