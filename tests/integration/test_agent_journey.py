"""An agent's journey through the real hub, proxy and platform service: the MCP SDK's own ``Client`` over
streamable HTTP at ``/services/aitip/mcp``, with a hub API token, as a developer's agent would work (find
the project, register a dataset version, train on it, follow progress, read and compare the runs, train again
on a newer version without holding the notebook, start a sweep, run a notebook the platform ships by its
name) and as a viewer's agent, which is offered no
write tool and is refused the one it calls anyway."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from aitip.identity.permissions import permission
from aitip.identity.roles import Role
from aitip.operations import tools as mcp_tools
from tests.support.notebooks import TRAIN_ON_DATASET
from tests.support.platform import RunningPlatform

pytestmark = pytest.mark.integration
pytest.importorskip("mcp")

PROJECT = "agent-lab"
PASSWORDS = {"devi": "devi-pass-1234", "vick": "vick-pass-1234"}  # the developer's agent, the viewer's
WRITE_TOOLS = {"registrations_create", "jobs_submit", "sweeps_create", "jobs_cancel", "jobs_retry", "jobs_rerun"}
JOB_WAIT_SECONDS = 240  # a job's kernel start, imports and training on a loaded 2-core machine, with room


@pytest.fixture(scope="module")
def tokens(platform: RunningPlatform) -> dict[str, str]:
    """Two hub users of their own, signed up and approved; the hub admin makes the project and their roles."""
    found = {}
    for name, password in PASSWORDS.items():
        assert platform.signup(name, password).status_code == 200
        platform.approve(name)
        found[name] = platform.token(name, password)
    with platform.api(platform.token(platform.admin_user, platform.admin_password)) as admin:
        assert admin.post("projects", json={"name": PROJECT}).status_code == 201
        for name, role in (("devi", "developer"), ("vick", "viewer")):
            added = admin.post(f"projects/{PROJECT}/members", json={"user": name, "role": role})
            assert added.status_code == 201, added.text
    return found


@contextlib.asynccontextmanager
async def agent(platform: RunningPlatform, token: str) -> AsyncIterator[Any]:
    """An MCP client configured as an agent's would be: the endpoint's URL and a bearer token."""
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    async with create_mcp_http_client(headers={"Authorization": f"Bearer {token}"}) as http_client:
        async with Client(streamable_http_client(f"{platform.url}/services/aitip/mcp",
                                                 http_client=http_client)) as client:
            yield client


def answer(result: Any) -> dict[str, Any]:
    """A tool's structured answer, or the test fails with the tool's error."""
    assert not result.is_error, result.content[0].text
    return result.structured_content  # type: ignore[no-any-return]


def points_csv() -> bytes:
    """A small, learnable two-class table: four features and a label."""
    import pandas as pd
    from sklearn.datasets import make_classification

    features, labels = make_classification(n_samples=240, n_features=4, n_informative=2, n_redundant=0,
                                           class_sep=1.0, random_state=0)
    frame = pd.DataFrame(features.round(4), columns=[f"f{i}" for i in range(4)])
    frame["label"] = labels
    return frame.to_csv(index=False).encode()


@pytest.mark.timeout(900)
def test_a_developers_agent_registers_data_trains_compares_and_sweeps(platform: RunningPlatform,
                                                                      tokens: dict[str, str]) -> None:
    asyncio.run(_developer_journey(platform, tokens["devi"]))


async def _developer_journey(platform: RunningPlatform, token: str) -> None:
    progress: dict[str, list[str]] = {}

    def follower(name: str) -> Any:
        async def on_progress(done: float, total: float | None, message: str | None) -> None:
            progress.setdefault(name, []).append(message or "")
        return on_progress

    async with agent(platform, token) as client:
        offered = {tool.name for tool in (await client.list_tools()).tools}
        assert WRITE_TOOLS <= offered

        projects = answer(await client.call_tool("projects_list", {}))
        (found,) = [p for p in projects["items"] if p["name"] == PROJECT]
        assert found["my_role"] == "developer"

        data = points_csv()
        registration = answer(await client.call_tool("registrations_create", {
            "project": PROJECT, "dataset": "points", "filename": "points.csv",
            "content_base64": base64.b64encode(data).decode(), "message": "registered by an agent",
            "wait_seconds": 120}, progress_callback=follower("register")))
        assert (registration["state"], registration["version"]) == ("registered", 1), registration
        assert progress["register"][-1] == f"registrations.create {registration['id']}: registered"
        version = answer(await client.call_tool("datasets_version", {"project": PROJECT, "dataset": "points",
                                                                     "version": 1}))
        assert (version["version"], version["rows"], version["format"]) == (1, 240, "csv")

        # Two trainings on that version, followed at once, each reporting its states as they change.
        def submit(learning_rate: float) -> Any:
            return client.call_tool("jobs_submit", {
                "project": PROJECT, "notebook": TRAIN_ON_DATASET, "notebook_name": "train_points.ipynb",
                "parameters": {"dataset": "points", "epochs": 3, "learning_rate": learning_rate},
                "inputs": [{"dataset": "points", "version": 1}], "wait_seconds": JOB_WAIT_SECONDS},
                progress_callback=follower(f"job {learning_rate}"))

        jobs = [answer(result) for result in await asyncio.gather(submit(0.01), submit(0.3))]
        for job in jobs:
            assert job["state"] == "succeeded", (job["state"], job["reason"])
            assert [(i["dataset"], i["version"]) for i in job["inputs"]] == [("points", 1)]
        for learning_rate, job in zip((0.01, 0.3), jobs, strict=True):
            states = [message.rsplit(": ", 1)[1] for message in progress[f"job {learning_rate}"]]
            assert states[0] == "queued" and states[-1] == "succeeded" and "running" in states, states
            assert all(message.startswith(f"jobs.submit {job['id']}: ") for message in progress[f"job {learning_rate}"])

        run = answer(await client.call_tool("runs_get", {"run": jobs[0]["mlflow_run_id"]}))
        assert run["job_id"] == jobs[0]["id"] and run["params"]["learning_rate"] == "0.01"
        assert run["metrics"]["test_accuracy"] >= 0.8 and "train_accuracy" in run["metric_keys"]  # it learned
        history = answer(await client.call_tool("runs_metric_history", {
            "run": jobs[0]["mlflow_run_id"], "key": "test_accuracy"}))
        assert [point["step"] for point in history["points"]] == [1, 2, 3]

        run_ids = [job["mlflow_run_id"] for job in jobs]
        comparison = answer(await client.call_tool("runs_compare", {"project": PROJECT, "run": run_ids}))
        assert {r["run_id"] for r in comparison["runs"]} == set(run_ids)
        assert comparison["differing_params"] == ["learning_rate"]
        assert comparison["metrics"]["test_accuracy"][run_ids[0]] == run["metrics"]["test_accuracy"]
        assert set(comparison["metrics"]["test_accuracy"]) == set(run_ids)
        assert all(len(comparison["curves"]["test_accuracy"][run_id]) == 3 for run_id in run_ids)

        # New rows arrive: version 2, and the first training again on it with the better rate, from the job alone.
        grown = data + b"".join(data.splitlines(keepends=True)[1:41])
        registration = answer(await client.call_tool("registrations_create", {
            "project": PROJECT, "dataset": "points", "filename": "points.csv",
            "content_base64": base64.b64encode(grown).decode(), "wait_seconds": 120}))
        assert registration["version"] == 2, registration
        better = max(comparison["runs"], key=lambda r: comparison["metrics"]["test_accuracy"][r["run_id"]])
        rate = float(better["params"]["learning_rate"])
        again = answer(await client.call_tool("jobs_rerun", {
            "job": jobs[0]["id"], "parameters": {"learning_rate": rate},
            "inputs": [{"dataset": "points"}], "wait_seconds": JOB_WAIT_SECONDS},
            progress_callback=follower("rerun")))
        assert again["state"] == "succeeded", (again["state"], again["reason"])
        assert (again["rerun_of"], again["notebook_sha256"]) == (jobs[0]["id"], jobs[0]["notebook_sha256"])
        assert again["parameters"] == {**jobs[0]["parameters"], "learning_rate": rate}
        assert [(i["dataset"], i["version"]) for i in again["inputs"]] == [("points", 2)]
        assert progress["rerun"][-1] == f"jobs.rerun {again['id']}: succeeded"
        retrained = answer(await client.call_tool("runs_get", {"run": again["mlflow_run_id"]}))
        assert retrained["params"]["learning_rate"] == better["params"]["learning_rate"]

        # A sweep of that job's notebook, named by the job: its settings and dataset version, two rates searched.
        sweep = answer(await client.call_tool("sweeps_create", {
            "project": PROJECT, "job": again["id"], "parameters": {"epochs": 2},
            "space": {"learning_rate": {"type": "grid", "values": [0.05, 0.2]}}, "strategy": "grid",
            "parallelism": 2, "objective": "test_accuracy", "direction": "maximize",
            "wait_seconds": 2 * JOB_WAIT_SECONDS}, progress_callback=follower("sweep")))
        assert sweep["state"] == "succeeded", (sweep["state"], sweep["reason"])
        assert (sweep["job"], sweep["parameters"]) == (again["id"], {"dataset": "points", "epochs": 2})
        assert [(i["dataset"], i["version"]) for i in sweep["inputs"]] == [("points", 2)]
        assert sorted(trial["parameters"]["learning_rate"] for trial in sweep["trial_jobs"]) == [0.05, 0.2]
        assert all(trial["state"] == "succeeded" and trial["value"] is not None for trial in sweep["trial_jobs"])
        assert sweep["best_value"] == max(trial["value"] for trial in sweep["trial_jobs"])
        assert progress["sweep"][0] == f"sweeps.create {sweep['id']}: running"

        # A notebook the platform ships, found and run by its name: the agent sends no document at all.
        shipped = answer(await client.call_tool("notebooks_list", {}))
        (training,) = [n for n in shipped["notebooks"] if n["name"] == "train/digits_sklearn"]
        assert {"epochs", "classifier", "model_name"} <= {parameter["name"] for parameter in training["parameters"]}
        ran = answer(await client.call_tool("jobs_submit", {
            "project": PROJECT, "shipped": training["name"],
            "parameters": {"epochs": 2, "classifier": "logistic", "model_name": ""},
            "wait_seconds": JOB_WAIT_SECONDS}))
        assert ran["state"] == "succeeded", (ran["state"], ran["reason"])
        assert ran["notebook_name"] == training["file_name"] == "digits_sklearn.ipynb"
        tracked = answer(await client.call_tool("runs_get", {"run": ran["mlflow_run_id"]}))
        assert tracked["params"]["classifier"] == "logistic" and tracked["metrics"]["final_test_accuracy"] > 0.8


def test_a_viewers_agent_is_offered_no_write_tool_and_is_refused_one(platform: RunningPlatform,
                                                                     tokens: dict[str, str]) -> None:
    asyncio.run(_viewer_journey(platform, tokens["vick"]))


async def _viewer_journey(platform: RunningPlatform, token: str) -> None:
    async with agent(platform, token) as client:
        offered = {tool.name for tool in (await client.list_tools()).tools}
        above_viewer = {name for name in offered if (permission(mcp_tools.by_name()[name].row.action).min_role
                                                     or Role.viewer).at_least(Role.developer)}
        assert above_viewer == set() and not WRITE_TOOLS & offered
        assert {"projects_get", "datasets_versions", "runs_list", "runs_compare", "notebooks_list"} <= offered
        before = [answer(await client.call_tool("datasets_list", {"project": PROJECT})),
                  answer(await client.call_tool("jobs_list", {"project": PROJECT}))]

        refused = await client.call_tool("registrations_create", {
            "project": PROJECT, "dataset": "points", "filename": "points.csv",
            "content_base64": base64.b64encode(b"f0,label\n1,0\n").decode()})
        assert refused.is_error
        error = json.loads(refused.content[0].text)["error"]
        assert error["code"] == "forbidden" and "developer" in error["message"], error
        submitted = await client.call_tool("jobs_submit", {"project": PROJECT, "notebook": TRAIN_ON_DATASET})
        assert submitted.is_error and json.loads(submitted.content[0].text)["error"]["code"] == "forbidden"

        after = [answer(await client.call_tool("datasets_list", {"project": PROJECT})),
                 answer(await client.call_tool("jobs_list", {"project": PROJECT}))]
        assert after == before

