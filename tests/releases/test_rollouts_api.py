"""Service rollouts through the platform's API, on a real endpoint under real traffic: two versions of a model
trained and evaluated by the platform's jobs, an approved release of the second rolled out onto the endpoint
serving the first — weights set, the canary's metrics analysed, a pause promoted by hand, completed and rolled
back; then a rollout whose analysis fails is aborted by the controller (the canary's weight to 0), retried and
aborted by hand; and what a rollout cannot be is refused."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
from tornado.httpclient import HTTPClientError

from tests.evaluation.conftest import digits_csv
from tests.evaluation.test_evaluations_api import wait_evaluation
from tests.releases.test_releases_api import make_alpha
from tests.server.conftest import TOKENS
from tests.simulation.test_simulations_api import train
from tests.support.workers import start_worker
from tests.webhooks.conftest import serve
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow  # trained models and jobs: minutes for the file

RELEASES = "projects/alpha/releases"
ROLLOUTS = "projects/alpha/rollouts"
ENDPOINT = "projects/alpha/endpoints/digits"
# Each analysis run measures the canary since the one before, from the points serving writes (every second on these
# servers, 5 s by default): an interval of five flushes, so that flushes late on a busy machine do not leave a run
# without requests.
METRICS_SECONDS = 1.0
ANALYSIS = {"interval_seconds": 5 * METRICS_SECONDS, "count": 1, "min_requests": 5}


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any], tracking_uri: str) -> dict[str, Any]:
    jp_server_config["AitipExtension"]["run_jobs"] = True
    jp_server_config["AitipExtension"]["serving_metrics_seconds"] = METRICS_SECONDS
    jp_server_config["AitipExtension"]["mlflow_tracking_uri"] = tracking_uri
    jp_server_config["WebhookDispatcher"] = {"allowed_networks": ["127.0.0.1/32"], "base_delay_seconds": 0.1}
    return jp_server_config


@contextlib.asynccontextmanager
async def traffic(jp_fetch: Any) -> AsyncIterator[dict[int, int]]:
    """bob calls the endpoint every 20 ms while the block runs; the answers' counts by version."""
    from sklearn.datasets import load_digits

    rows = load_digits().data[:8]
    answered: dict[int, int] = {}

    async def call_forever() -> None:
        index = 0
        while True:
            row = rows[index % 8:index % 8 + 1]
            body = {"inputs": [{"name": "pixels", "shape": [1, 64], "datatype": "FP64",
                                "data": np.asarray(row, dtype=float).reshape(-1).tolist()}]}
            try:
                response = await jp_fetch("serve", "alpha", "digits", "v2", "models", "digits", "infer",
                                          method="POST", body=json.dumps(body),
                                          headers={"Authorization": f"token {TOKENS['bob']}",
                                                   "X-Route-Key": str(index)})
                version = int(json.loads(response.body)["model_version"])
                answered[version] = answered.get(version, 0) + 1
            except HTTPClientError:
                pass
            index += 1
            await asyncio.sleep(0.02)

    task = asyncio.create_task(call_forever())
    try:
        yield answered
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def wait_rollout(api: Any, rollout_id: int, states: set[str], timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, rollout = await api("GET", f"{ROLLOUTS}/{rollout_id}", user="bob")
        assert status == 200, rollout
        if rollout["state"] in states:
            return rollout
        await asyncio.sleep(0.25)
    raise AssertionError(f"rollout {rollout_id} did not become {states}: {rollout}")


async def weights(api: Any) -> dict[int, int]:
    status, endpoint = await api("GET", ENDPOINT, user="bob")
    assert status == 200, endpoint
    return {variant["version"]: variant["weight"] for variant in endpoint["variants"]}


async def approved_release(api: Any, jp_serverapp: Any) -> int:
    """digits-mlp versions 1 and 2, trained and evaluated by the project's policy; release 1.0.0 of version 2,
    requested by carol and approved by dave; endpoint digits serving version 1. The release's id."""
    status, version = await api("POST", "projects/alpha/datasets/digits/versions", raw=digits_csv(),
                                params={"filename": "digits.csv"})
    assert status == 201, version
    await start_worker(jp_serverapp)
    assert (await api("PUT", "projects/alpha/evaluation-policies/digits-mlp", body={
        "dataset": "digits", "thresholds": {"accuracy_score": {"threshold": 0.5, "greater_is_better": True}}}))[0] == 200
    for _ in range(2):
        await train(api, "digits-mlp", "logistic")
    for model_version in (1, 2):
        assert (await wait_evaluation(api, model_version=model_version))["state"] == "passed"
    status, release = await api("POST", RELEASES, user="carol", body={
        "kind": "model", "name": "digits", "version": "1.0.0", "model": "digits-mlp", "model_version": 2,
        "dataset": "digits"})
    assert status == 201, release
    status, approved = await api("POST", f"{RELEASES}/{release['id']}/decisions", user="dave",
                                 body={"decision": "approve"})
    assert status == 200 and approved["state"] == "approved", approved
    status, endpoint = await api("POST", "projects/alpha/endpoints", user="dave",
                                 body={"name": "digits", "model": "digits-mlp", "version": 1}, )
    assert status == 201, endpoint
    return int(release["id"])


async def test_a_release_rolls_out_in_steps_is_aborted_by_its_analysis_and_rolled_back(
        api: Any, jp_fetch: Any, jp_serverapp: Any) -> None:
    async with serve() as receiver:  # on the server's own loop (a fixture's would be another)
        await roll_out_abort_retry_and_roll_back(api, jp_fetch, jp_serverapp, receiver)


async def roll_out_abort_retry_and_roll_back(api: Any, jp_fetch: Any, jp_serverapp: Any, receiver: Any) -> None:
    await make_alpha(api)
    release = await approved_release(api, jp_serverapp)
    status, subscription = await api("POST", "projects/alpha/webhooks",
                                     body={"url": receiver.url("/rollouts"), "events": ["rollout.*"]})
    assert status == 201, subscription
    start = f"{RELEASES}/{release}/rollouts"
    steps = [{"set_weight": 25}, {"analysis": ANALYSIS}, {"pause": {}}, {"set_weight": 100}]
    assert (await api("POST", start, user="carol", body={"endpoint": "digits", "steps": steps}))[0] == 403
    status, refused = await api("POST", start, user="dave", body={
        "endpoint": "digits", "steps": [{"set_weight": 50}, {"set_weight": 20}, {"set_weight": 100}]})
    assert status == 422 and "the weights go back from 50 to 20" in refused["error"]["message"], refused

    async with traffic(jp_fetch) as answered:
        status, rollout = await api("POST", start, user="dave", body={"endpoint": "digits", "steps": steps})
        assert status == 201, rollout
        assert (rollout["state"], rollout["step"], rollout["weight"]) == ("progressing", 1, 25), rollout
        assert (rollout["stable_version"], rollout["canary_version"]) == (1, 2)
        assert await weights(api) == {1: 75, 2: 25}
        busy = await api("POST", start, user="dave", body={"endpoint": "digits", "steps": steps})
        assert busy[0] == 409 and busy[1]["error"]["code"] == "rollout_active", busy
        # The analysis passes on the canary's real requests; the rollout then waits at its pause.
        paused = await wait_rollout(api, rollout["id"], {"paused", "degraded"})
        assert paused["state"] == "paused" and paused["message"] == "paused until promoted", paused
        run = paused["analysis_runs"][0]
        assert run["outcome"] == "passed" and run["requests"] >= 5 and run["error_rate"] == 0, run
        status, promoted = await api("POST", f"{ROLLOUTS}/{rollout['id']}/promote", user="dave", body={})
        assert status == 200 and (promoted["state"], promoted["weight"]) == ("completed", 100), promoted
        assert await weights(api) == {1: 0, 2: 100}
        served_before = dict(answered)
        await asyncio.sleep(1)
        assert answered.get(2, 0) > served_before.get(2, 0) and answered.get(1, 0) == served_before.get(1, 0)
        status, back = await api("POST", f"{ROLLOUTS}/{rollout['id']}/rollback", user="dave")
        assert status == 200 and back["state"] == "rolled_back", back
        assert await weights(api) == {1: 100, 2: 0}

        # A p99 bound no real request keeps: the first analysis run fails and the controller aborts.
        strict = {**ANALYSIS, "conditions": [{"metric": "latency_p99_ms", "max": 0.001}]}
        status, second = await api("POST", start, user="dave", body={
            "endpoint": "digits", "steps": [{"set_weight": 30}, {"analysis": strict}, {"set_weight": 100}]})
        assert status == 201 and second["weight"] == 30, second
        began = time.monotonic()
        aborted = await wait_rollout(api, second["id"], {"degraded", "completed"})
        assert aborted["state"] == "degraded" and "latency_p99_ms" in aborted["message"], aborted
        assert time.monotonic() - began <= 2 * strict["interval_seconds"] + 2
        assert aborted["weight"] == 0 and await weights(api) == {1: 100, 2: 0}
        status, retried = await api("POST", f"{ROLLOUTS}/{second['id']}/retry", user="dave")
        assert status == 200 and (retried["state"], retried["weight"]) == ("progressing", 30), retried
        status, by_hand = await api("POST", f"{ROLLOUTS}/{second['id']}/abort", user="dave")
        assert status == 200 and by_hand["state"] == "degraded" and by_hand["message"] == "aborted by hand", by_hand
        assert await weights(api) == {1: 100, 2: 0}
        again = await api("POST", f"{ROLLOUTS}/{second['id']}/abort", user="dave")
        assert again[0] == 409 and again[1]["error"]["code"] == "rollout_state", again

    status, listed = await api("GET", ROLLOUTS, user="bob", params={"state": "degraded"})
    assert status == 200 and [r["id"] for r in listed["rollouts"]] == [second["id"]], listed
    # A release not yet approved does not roll out.
    status, unapproved = await api("POST", RELEASES, user="carol", body={
        "kind": "model", "name": "digits", "version": "1.1.0", "model": "digits-mlp", "model_version": 2,
        "dataset": "digits"})
    assert status == 201, unapproved
    status, refused = await api("POST", f"{RELEASES}/{unapproved['id']}/rollouts", user="dave",
                                body={"endpoint": "digits"})
    assert status == 409 and refused["error"]["code"] == "release_not_approved", refused
    # Every change of state or weight reached the project's subscriber, the controller's as its own.
    events = sorted((request.json() for request in await receiver.wait_for(10)), key=lambda e: e["created_at"])
    assert [(e["event"], e["data"]["weight"], e["data"]["by"]) for e in events] == [
        ("rollout.started", 0, "dave"), ("rollout.step", 25, "aitip:rollout"), ("rollout.paused", 25, "aitip:rollout"),
        ("rollout.completed", 100, "dave"), ("rollout.rolled_back", 0, "dave"),
        ("rollout.started", 0, "dave"), ("rollout.step", 30, "aitip:rollout"), ("rollout.degraded", 0, "aitip:rollout"),
        ("rollout.progressing", 30, "dave"), ("rollout.degraded", 0, "dave")], events


async def test_a_restarted_controller_takes_a_rollout_up_at_the_step_it_was_at(
        api: Any, jp_fetch: Any, jp_serverapp: Any) -> None:
    await make_alpha(api)
    release = await approved_release(api, jp_serverapp)
    steps = [{"set_weight": 20}, {"pause": {"seconds": 4}}, {"set_weight": 60}, {"pause": {"seconds": 600}},
             {"set_weight": 100}]
    status, rollout = await api("POST", f"{RELEASES}/{release}/rollouts", user="dave",
                                body={"endpoint": "digits", "steps": steps})
    assert status == 201 and (rollout["step"], rollout["weight"]) == (1, 20), rollout
    controller = jp_serverapp.web_app.settings["aitip"].rollouts
    await controller.stop()  # as at shutdown: nothing of the rollout is kept in memory
    await asyncio.sleep(5)  # its pause ends while the platform is down
    status, stopped = await api("GET", f"{ROLLOUTS}/{rollout['id']}", user="bob")
    assert (stopped["step"], stopped["weight"]) == (1, 20) and await weights(api) == {1: 80, 2: 20}
    await controller.start()  # as at the next start: from the catalog alone
    resumed = await wait_rollout(api, rollout["id"], {"progressing"}, timeout=5)
    status, resumed = await eventually(lambda: api("GET", f"{ROLLOUTS}/{rollout['id']}", user="bob"),
                                       lambda answer: answer[1]["step"] == 3, interval=0.25)  # then 600 s paused
    assert (resumed["state"], resumed["step"], resumed["weight"]) == ("progressing", 3, 60), resumed
    assert await weights(api) == {1: 40, 2: 60}
    await controller.stop()
    await controller.start()
    await asyncio.sleep(2)  # a pause of ten minutes is not cut short by a restart
    status, still = await api("GET", f"{ROLLOUTS}/{rollout['id']}", user="bob")
    assert (still["step"], still["weight"]) == (3, 60), still


async def test_an_agent_takes_a_model_from_training_to_a_completed_canary_over_mcp(
        api: Any, jp_fetch: Any, jp_serverapp: Any, jp_http_port: int, jp_base_url: str) -> None:
    """The PRD's agent flow, by a maintainer's agent through MCP tools alone: policies set, a version trained,
    evaluated and simulated by the platform, a release refused without evidence and then approved by the policy
    on its evidence, rolled out onto the endpoint in steps with analyses, followed until complete."""
    from tests.server.test_mcp import mcp_client
    from tests.evaluation.conftest import training_notebook

    await make_alpha(api)
    status, version = await api("POST", "projects/alpha/datasets/digits/versions", raw=digits_csv(),
                                params={"filename": "digits.csv"})
    assert status == 201, version
    await start_worker(jp_serverapp)
    progress: list[str] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append(message or "")

    async def call(client: Any, tool: str, arguments: dict[str, Any], **options: Any) -> Any:
        answered = await client.call_tool(tool, {"project": "alpha", **arguments}, **options)
        assert not answered.is_error, (tool, answered.content[0].text)
        return answered.structured_content

    async with mcp_client(jp_http_port, jp_base_url, "dave") as agent:
        await call(agent, "evaluation_policies_set", {"model": "digits-mlp", "dataset": "digits", "thresholds": {
            "accuracy_score": {"threshold": 0.5, "greater_is_better": True}}})
        await call(agent, "simulation_policies_set", {"model": "digits-mlp", "template": "custom", "dataset": "digits"})
        await call(agent, "release_policy_set", {"evaluation": True, "simulations": ["custom"], "auto_approve": True})
        for _ in range(2):
            trained = await agent.call_tool("jobs_submit", {
                "project": "alpha", "notebook": training_notebook(), "notebook_name": "digits_sklearn.ipynb",
                "inputs": [{"dataset": "digits"}], "wait_seconds": 240,
                "parameters": {"model_name": "digits-mlp", "dataset": "digits", "classifier": "logistic"}})
            assert not trained.is_error and trained.structured_content["state"] == "succeeded", trained.content
        request = {"kind": "model", "name": "digits", "version": "1.0.0", "model": "digits-mlp", "model_version": 2,
                   "dataset": "digits"}
        early = await agent.call_tool("releases_request", {"project": "alpha", **request})
        if early.is_error:  # asked before the policies' jobs ended: told what is missing
            assert "evidence_missing" in early.content[0].text, early.content[0].text
        for _ in range(600):
            simulated = await call(agent, "simulations_list", {"model": "digits-mlp"})
            if {(s["model_version"], s["state"]) for s in simulated["simulations"]} >= {(1, "passed"), (2, "passed")}:
                break
            await asyncio.sleep(0.5)
        release = early.structured_content if not early.is_error else await call(agent, "releases_request", request)
        assert release["state"] == "approved" and release["decisions"][0]["user"] == "aitip:policy", release
        assert {e["kind"] for e in release["evidence"]} == {"evaluation", "simulation"}
        await call(agent, "endpoints_deploy", {"name": "digits", "model": "digits-mlp", "version": 1})
        analysis = {"analysis": ANALYSIS}
        async with traffic(jp_fetch):
            done = await call(agent, "rollouts_start", {
                "release": release["id"], "endpoint": "digits", "wait_seconds": 120,
                "steps": [{"set_weight": 5}, analysis, {"set_weight": 20}, analysis, {"set_weight": 50}, analysis,
                          {"set_weight": 100}]}, progress_callback=on_progress)
    assert done["state"] == "completed" and done["weight"] == 100, done
    assert [run["outcome"] for run in done["analysis_runs"]] == ["passed"] * 3, done["analysis_runs"]
    assert progress[0] == f"rollouts.start {done['id']}: progressing (step 2 of 7, weight 5 %)"
    assert progress[-1].endswith(": completed")
    assert await weights(api) == {1: 0, 2: 100}


async def test_an_analysis_judges_the_canarys_accuracy_on_the_labels_that_arrive(
        api: Any, jp_fetch: Any, jp_serverapp: Any) -> None:
    """Callers name their requests (X-Request-Id) and send the true labels to the endpoint's feedback as they
    learn them: a canary the labels say is right passes an accuracy floor and completes; rolled back and started
    again while the labels that arrive say it is wrong, the same release is aborted by its accuracy."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    await make_alpha(api)
    release = await approved_release(api, jp_serverapp)
    judged = {**ANALYSIS, "conditions": [{"metric": "error_rate", "max": 0.05},
                                         {"metric": "accuracy", "min": 0.8, "min_labelled": 5}]}
    steps = [{"set_weight": 50}, {"analysis": judged}, {"set_weight": 100}]
    labels_say_wrong = False

    async def call(path: str, body: dict[str, Any], request_id: str | None = None) -> dict[str, Any]:
        caller = "carol" if path == "feedback" else "bob"  # labels: a developer's (serving.label)
        headers = {"Authorization": f"token {TOKENS[caller]}", **({"X-Request-Id": request_id} if request_id else {})}
        response = await jp_fetch("serve", "alpha", "digits", *path.split("/"), method="POST",
                                  body=json.dumps(body), headers=headers)
        return json.loads(response.body)  # type: ignore[no-any-return]

    async def labelled_traffic() -> None:
        index = 0
        while True:
            row = index % 200
            request_id = f"q-{index}"
            try:
                await call("v2/models/digits/infer", {"inputs": [{
                    "name": "pixels", "shape": [1, 64], "datatype": "FP64",
                    "data": digits.data[row].astype(float).tolist()}]}, request_id)
                truth = int(digits.target[row])
                await call("feedback", {"labels": {request_id: (truth + 1) % 10 if labels_say_wrong else truth}})
            except HTTPClientError:
                pass
            index += 1
            await asyncio.sleep(0.02)

    task = asyncio.create_task(labelled_traffic())
    try:
        status, first = await api("POST", f"{RELEASES}/{release}/rollouts", user="dave",
                                  body={"endpoint": "digits", "steps": steps})
        assert status == 201, first
        done = await wait_rollout(api, first["id"], {"completed", "degraded", "paused"})
        run = done["analysis_runs"][0]
        assert done["state"] == "completed" and run["outcome"] == "passed", done
        assert run["labelled"] >= 5 and run["accuracy"] >= 0.8, run
        assert (await api("POST", f"{ROLLOUTS}/{first['id']}/rollback", user="dave"))[0] == 200
        labels_say_wrong = True
        status, second = await api("POST", f"{RELEASES}/{release}/rollouts", user="dave",
                                   body={"endpoint": "digits", "steps": steps})
        assert status == 201, second
        aborted = await wait_rollout(api, second["id"], {"completed", "degraded", "paused"})
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    run = aborted["analysis_runs"][0]
    assert aborted["state"] == "degraded" and "accuracy" in aborted["message"] and "below 0.8" in aborted["message"]
    assert run["outcome"] == "failed" and run["labelled"] >= 5 and run["accuracy"] < 0.8, run
    assert run["error_rate"] == 0, "the canary answered every request: only its accuracy failed"
    assert await weights(api) == {1: 100, 2: 0}


async def test_a_service_release_brings_its_settings_and_firmware_with_a_model_drives_a_canary(
        api: Any, jp_fetch: Any, jp_serverapp: Any) -> None:
    """A service release pins an endpoint's model version and settings: it rolls out only onto its endpoint,
    sets the scaling it names before the canary takes traffic, and is refused where its other settings differ
    from the deployment's. Firmware that embeds a model version drives a canary of that version too."""
    await make_alpha(api)
    await approved_release(api, jp_serverapp)
    service = {"kind": "service", "name": "digits-service", "model": "digits-mlp", "model_version": 2,
               "dataset": "digits", "endpoint": "digits"}
    status, refused = await api("POST", RELEASES, user="carol", body={
        **service, "version": "1.0.0", "settings": {"max_batch_size": "8"}})
    assert status == 422 and "max_batch_size" in refused["error"]["message"], refused
    status, refused = await api("POST", RELEASES, user="carol", body={
        "kind": "model", "name": "digits", "version": "1.1.0", "model": "digits-mlp", "model_version": 2,
        "dataset": "digits", "endpoint": "digits"})
    assert status == 422 and "a model release has no endpoint" in refused["error"]["message"], refused
    released = {}
    for version, settings in (("1.0.0", {"scaling": {"replicas_min": 1, "replicas_max": 3}}),
                              ("1.1.0", {"max_batch_size": 8})):
        status, release = await api("POST", RELEASES, user="carol", body={**service, "version": version,
                                                                           "settings": settings})
        assert status == 201, release
        assert release["endpoint"] == "digits" and release["content"]["subject"]["settings"] == release["settings"]
        assert {e["kind"] for e in release["evidence"]} == {"evaluation"}, "a service release carries its evidence"
        status, decided = await api("POST", f"{RELEASES}/{release['id']}/decisions", user="dave",
                                    body={"decision": "approve"})
        assert status == 200 and decided["state"] == "approved", decided
        released[version] = release
    start = f"{RELEASES}/{released['1.0.0']['id']}/rollouts"
    status, refused = await api("POST", start, user="dave", body={"endpoint": "other", "steps": [{"set_weight": 100}]})
    assert status == 422 and refused["error"]["code"] == "rollout_wrong_endpoint", refused
    status, refused = await api("POST", f"{RELEASES}/{released['1.1.0']['id']}/rollouts", user="dave",
                                body={"endpoint": "digits", "steps": [{"set_weight": 100}]})
    assert status == 409 and refused["error"]["code"] == "rollout_settings_differ", refused
    assert refused["error"]["detail"] == {"max_batch_size": {"release": 8, "endpoint": 64}}, refused
    status, rollout = await api("POST", start, user="dave", body={"endpoint": "digits",
                                                                  "steps": [{"set_weight": 50}, {"set_weight": 100}]})
    assert status == 201 and (rollout["state"], rollout["weight"]) == ("completed", 100), rollout
    status, endpoint = await api("GET", ENDPOINT, user="bob")
    assert endpoint["settings"]["scaling"]["replicas_max"] == 3 and await weights(api) == {1: 0, 2: 100}
    assert (await api("POST", f"{ROLLOUTS}/{rollout['id']}/rollback", user="dave"))[0] == 200

    status, firmware = await api("POST", RELEASES, user="carol", body={
        "kind": "firmware", "name": "board-fw", "version": "1.0.0", "hardware": "board-x1",
        "firmware_base64": base64.b64encode(b"\x7fELF board with digits-mlp v2").decode(),
        "model": "digits-mlp", "model_version": 2, "dataset": "digits"})
    assert status == 201, firmware
    assert (await api("POST", f"{RELEASES}/{firmware['id']}/decisions", user="dave",
                      body={"decision": "approve"}))[0] == 200
    status, rollout = await api("POST", f"{RELEASES}/{firmware['id']}/rollouts", user="dave",
                                body={"endpoint": "digits", "steps": [{"set_weight": 100}]})
    assert status == 201 and rollout["state"] == "completed" and rollout["release"] == "board-fw 1.0.0", rollout
    assert await weights(api) == {1: 0, 2: 100}
