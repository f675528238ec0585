"""No way around the roles: through the real hub, with two users in different projects and real spawned
servers, code run in a user's kernel, in a JupyterLab terminal, in a job's kernel and in a sweep trial tries
to read and to write the platform's state and the other user's data, to read the environment and open files
of the platform's processes, and to signal them. Every attempt must be refused."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from aitip.launcher import descendants
from tests.support.notebooks import notebook
from tests.support.platform import RunningPlatform, start_platform

pytestmark = pytest.mark.integration

PASSWORDS = {"ann": "ann-pass-1234", "bob": "bob-pass-1234"}

# What the probe does, in whatever context it runs: each attempt is refused (PermissionError) or it is not.
PROBE = r'''
import json, os, sys
attempts = json.loads(ATTEMPTS)
outcome = {}
for name, kind, target in attempts:
    try:
        if kind == "read":
            with open(target, "rb") as handle:
                handle.read(64)
        elif kind == "write":
            if os.path.isdir(target):
                path = os.path.join(target, ".probe-" + str(os.getpid()))
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
                os.unlink(path)
            else:
                os.close(os.open(target, os.O_WRONLY | os.O_APPEND))  # opened for writing, nothing written
        elif kind == "list":
            os.listdir(target)
        elif kind == "readlink":
            [os.readlink(os.path.join(target, fd)) for fd in os.listdir(target)]
        elif kind == "signal":
            os.kill(int(target), 0)  # the same permission check as any signal, and harmless
        outcome[name] = "ALLOWED"
    except PermissionError:
        outcome[name] = "refused"
    except OSError as error:
        outcome[name] = f"OTHER {type(error).__name__}: {error}"
print("PROBE-RESULT " + json.dumps(outcome))
'''


def _platform_pids(platform: RunningPlatform) -> dict[str, int]:
    found: dict[str, int] = {}
    wanted = {"jupyterhub": b"-m\x00jupyterhub\x00", "proxy": b"configurable-http-proxy",
              "platform service": b"aitip.server.platform", "dashboards": b"-m\x00panel\x00serve\x00"}
    for pid in [platform.process.pid, *descendants(platform.process.pid)]:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        for name, marker in wanted.items():
            if marker in cmdline and name not in found:
                found[name] = pid
    assert set(found) == set(wanted), found
    return found


def _attempts(platform: RunningPlatform, bob_job: dict[str, Any], bob_dataset: dict[str, Any]) -> list[list[str]]:
    home = platform.home
    hub = home / "hub"
    registry = home / "datasets" / "registry"
    md5 = bob_dataset["content_md5"]
    cache = registry / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]
    artifacts = home / "mlartifacts" / "beta" / bob_job["mlflow_run_id"] / "artifacts"
    workspace = home / "job-workspaces" / f"{bob_job['id']}.{bob_job['attempt']}"
    files = {
        "catalog": home / "catalog.sqlite",
        "hub database": hub / "jupyterhub.sqlite",
        "cookie secret": hub / "jupyterhub_cookie_secret",
        "other project's registry file": registry / "beta" / "people" / "data.csv",
        "other project's DVC cache object": cache,
        "MLflow store": home / "mlflow.sqlite",
        "other project's artifact": artifacts / "notes.txt",
        "other user's job report": home / "jobs" / str(bob_job["id"]) / f"attempt-{bob_job['attempt']}" / "output.ipynb",
        "other user's job spool": workspace / "control" / "tracking.spool",
    }
    directories = {
        "platform state": home,
        "hub directory": hub,
        "registry": registry,
        "other project's artifacts": artifacts,
        "other user's home": home / "users" / "aitip-bob",
        "other user's job directory": workspace / "work",
        "all job workspaces": home / "job-workspaces",
    }
    for label, path in [*files.items(), *directories.items()]:
        assert path.exists(), f"{label}: {path} does not exist; the attack would prove nothing"
    attempts = []
    for label, path in files.items():
        attempts += [[f"read {label}", "read", str(path)], [f"write {label}", "write", str(path)]]
    for label, path in directories.items():
        attempts += [[f"list {label}", "list", str(path)], [f"write into {label}", "write", str(path)]]
    for label, pid in _platform_pids(platform).items():
        attempts += [[f"environ of {label}", "read", f"/proc/{pid}/environ"],
                     [f"open files of {label}", "readlink", f"/proc/{pid}/fd"],
                     [f"signal {label}", "signal", str(pid)]]
    return attempts


def _probe_code(attempts: list[list[str]]) -> str:
    return f"ATTEMPTS = {json.dumps(json.dumps(attempts))}\n{PROBE}"


def _result(printed: str) -> dict[str, str]:
    line = next((line for line in printed.splitlines() if line.startswith("PROBE-RESULT ")), None)
    assert line is not None, printed[-3000:]
    return json.loads(line[len("PROBE-RESULT "):])


async def _in_terminal(platform: RunningPlatform, user: str, token: str, code: str, timeout: float = 120) -> str:
    """Run ``code`` with the venv's Python in a JupyterLab terminal of the user's server; its output."""
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    with httpx.Client(base_url=f"{platform.url}/user/{user}/api/", timeout=60,
                      headers={"Authorization": f"token {token}"}) as server:
        created = server.post("terminals")
        assert created.status_code == 200, created.text
        name = created.json()["name"]
    url = platform.url.replace("http://", "ws://") + f"/user/{user}/terminals/websocket/{name}"
    connection = await websocket_connect(HTTPRequest(url, headers={"Authorization": f"token {token}"}))
    script = f"/tmp/probe-{uuid.uuid4().hex}.py"
    marker = uuid.uuid4().hex
    command = (f"cat > {script} <<'{marker}'\n{code}\n{marker}\n"
               f"id -un; {sys.executable} {script}; rm -f {script}; echo DONE-$((40+2))-{marker}\n")
    connection.write_message(json.dumps(["stdin", command]))
    output, deadline = "", time.monotonic() + timeout
    while f"DONE-42-{marker}" not in output:  # the shell's echo of the command shows $((40+2)), not 42
        message = await asyncio.wait_for(connection.read_message(), max(0.1, deadline - time.monotonic()))
        if message is None:
            break
        kind, *payload = json.loads(message)
        if kind == "stdout":
            output += payload[0]
    connection.close()
    return output


def _job_output(api: httpx.Client, job_id: int) -> str:
    events = api.get(f"jobs/{job_id}/events", params={"limit": 10_000}).json()["items"]
    return "".join(event["data"].get("text", "") for event in events if event["kind"] == "output")


BOB_JOB = notebook("import mlflow\nopen('notes.txt', 'w').write('bob only')\nmlflow.log_artifact('notes.txt')\n"
                   "mlflow.log_metric('secret', 7.0)")


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Any:
    running = start_platform(tmp_path_factory.mktemp("isolation-home"))
    yield running
    code, left = running.stop()
    assert code == 0 and left == [], running.log()[-3000:]


def test_every_way_out_is_refused(platform: RunningPlatform) -> None:
    tokens = {}
    for name, password in PASSWORDS.items():
        assert platform.signup(name, password).status_code == 200
        platform.approve(name)
        tokens[name] = platform.token(name, password)
    ann, bob = platform.api(tokens["ann"]), platform.api(tokens["bob"])
    assert ann.post("projects", json={"name": "alpha"}).status_code == 201
    assert bob.post("projects", json={"name": "beta"}).status_code == 201
    dataset = bob.post("projects/beta/datasets/people/versions", params={"filename": "people.csv"},
                       content=b"email,age\nbob@example.com,41\nzoe@example.com,37\n")
    assert dataset.status_code == 201, dataset.text
    assert bob.patch("projects/beta/datasets/people", json={"sensitive_columns": {"email": "hash"}}).status_code == 200
    job = bob.post("jobs", json={"project": "beta", "notebook": BOB_JOB}).json()
    bob_job = platform.wait_for_job(tokens["bob"], job["id"], {"succeeded", "failed"})
    assert bob_job["state"] == "succeeded", (bob_job["reason"], _job_output(bob, job["id"])[-2000:])

    attempts = _attempts(platform, bob_job, dataset.json())
    code = _probe_code(attempts)
    results: dict[str, dict[str, str]] = {}

    platform.spawn("bob", tokens["bob"])  # bob's own server, under his account, beside ann's
    bob_home = platform.home / "users" / "aitip-bob"
    assert bob_home.stat().st_uid != 0 and (bob_home.stat().st_mode & 0o777) == 0o700
    platform.spawn("ann", tokens["ann"])
    kernel = platform.run_in_kernel("ann", tokens["ann"], "import os\nprint('uid', os.getuid())\n" + code)
    assert kernel["error"] is None, kernel["error"]
    results["user kernel"] = _result(kernel["stdout"])

    terminal = asyncio.run(_in_terminal(platform, "ann", tokens["ann"], code))
    assert "aitip-ann" in terminal, terminal[-2000:]
    results["terminal"] = _result(terminal)

    probe_notebook = notebook(code + "\nimport mlflow\nmlflow.log_metric('score', float(trial))", parameters="trial = 0")
    job = ann.post("jobs", json={"project": "alpha", "notebook": probe_notebook}).json()
    finished = platform.wait_for_job(tokens["ann"], job["id"], {"succeeded", "failed"})
    assert finished["state"] == "succeeded", finished["reason"]
    results["job kernel"] = _result(_job_output(ann, job["id"]))

    sweep = ann.post("sweeps", json={"project": "alpha", "notebook": probe_notebook, "objective": "score",
                                     "direction": "maximize", "strategy": "grid", "trials": 1,
                                     "space": {"trial": {"type": "grid", "values": [1]}}})
    assert sweep.status_code == 201, sweep.text
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        trials = ann.get(f"sweeps/{sweep.json()['id']}").json()["trial_jobs"]
        if trials and all(t["state"] in ("succeeded", "failed") for t in trials):
            break
        time.sleep(1)
    assert trials and trials[0]["state"] == "succeeded", trials
    results["sweep trial"] = _result(_job_output(ann, trials[0]["job_id"]))

    total = sum(len(outcome) for outcome in results.values())
    refused = sum(value == "refused" for outcome in results.values() for value in outcome.values())
    print(f"\n{total} attempts from {len(results)} contexts ({', '.join(results)}), {refused} refused")
    not_refused = {f"{context}: {name}": value for context, outcome in results.items()
                   for name, value in outcome.items() if value != "refused"}
    assert not_refused == {}
    assert total == len(attempts) * 4
    ann.close()
    bob.close()


def test_state_files_are_the_platforms_alone(platform: RunningPlatform) -> None:
    """What the probes could not open is also not readable on paper: owner root, no group or other bits."""
    home = platform.home
    assert os.stat(home).st_mode & 0o777 == 0o711
    for path in [home / "catalog.sqlite", home / "mlflow.sqlite", home / "hub" / "jupyterhub.sqlite",
                 home / "hub" / "jupyterhub_cookie_secret"]:
        info = os.stat(path)
        assert (info.st_uid, info.st_mode & 0o077) == (0, 0), f"{path}: {oct(info.st_mode)}"
    for directory in ("hub", "datasets", "mlartifacts", "notebooks", "jobs"):
        assert os.stat(home / directory).st_mode & 0o077 == 0, directory
