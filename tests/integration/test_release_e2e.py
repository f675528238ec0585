"""Releases end to end through the real hub, proxy and platform service (``aitip up``): versions trained by jobs,
evaluated and simulated by the project's policies; a release requested with the CLI and approved by another
person; a canary rolled out in steps with analyses under live traffic through the proxy, through a SIGKILL of the
platform service (the hub starts it again and the rollout goes on at the step it was at); a second release whose
canary fails on part of the production traffic, aborted by its analysis and back on the stable version; and a
maintainer's agent sending firmware over MCP to a simulated fleet in groups, halted by the emergency stop."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from aitip.device_client.fleet import SimulatedFleet
from aitip.device_client.updater import Provisioned
from tests.evaluation.conftest import TRAINING, digits_csv, training_notebook
from tests.integration.conftest import SERVING_METRICS_SECONDS
from tests.integration.test_agent_journey import agent, answer
from tests.integration.test_platform_faults import _service_pid, _wait_healthy
from tests.integration.test_serving_e2e import cli
from tests.support.fragile_model import FRAGILE_TRAINING
from tests.support.platform import RunningPlatform

pytestmark = pytest.mark.integration

PROJECT, MODEL, ENDPOINT, DATASET = "release-e2e", "digits-release", "digits", "digits"
ENDED = {"succeeded", "failed", "cancelled", "timed_out"}
# A run spans five of the platform's metric flushes (SERVING_METRICS_SECONDS), so that late flushes on a busy machine
# never leave a run without requests.
ANALYSIS = {"interval_seconds": 5 * SERVING_METRICS_SECONDS, "count": 1, "min_requests": 5}


def rollout_of(api: httpx.Client, rollout_id: int) -> dict[str, Any]:
    for _ in range(60):  # the platform service may be starting again
        try:
            found = api.get(f"projects/{PROJECT}/rollouts/{rollout_id}")
        except httpx.HTTPError:
            time.sleep(0.5)
            continue
        if found.status_code == 200:
            return found.json()  # type: ignore[no-any-return]
        time.sleep(0.5)
    raise AssertionError(f"rollout {rollout_id} could not be read")


def wait_rollout(api: httpx.Client, rollout_id: int, done: Any, timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = rollout_of(api, rollout_id)
        if done(found):
            return found
        time.sleep(0.25)
    raise AssertionError(f"rollout {rollout_id} did not get there: {found}")


def weights(api: httpx.Client) -> dict[int, int]:
    found = api.get(f"projects/{PROJECT}/endpoints/{ENDPOINT}")
    assert found.status_code == 200, found.text
    return {variant["version"]: variant["weight"] for variant in found.json()["variants"]}


@dataclass
class Traffic:
    """Calls the endpoint through the hub's proxy every 20 ms on a thread, with bob's hub token, as a client
    application would; ``negative`` sends rows with a negative pixel (which version 3 cannot take)."""

    platform: RunningPlatform
    token: str
    negative: bool = False
    answers: list[tuple[float, int | None]] = field(default_factory=list)  # (when, version; None: failed)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> Traffic:
        self._thread = threading.Thread(target=self._call_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(30)

    def _call_forever(self) -> None:
        from sklearn.datasets import load_digits

        rows = load_digits().data[:8]
        url = f"{self.platform.url}/services/aitip/serve/{PROJECT}/{ENDPOINT}/v2/models/{ENDPOINT}/infer"
        with httpx.Client(timeout=10, headers={"Authorization": f"token {self.token}"}) as http:
            index = 0
            while not self._stop.is_set():
                row = np.array(rows[index % 8], dtype=float)
                if self.negative:
                    row[0] = -1.0
                body = {"inputs": [{"name": "pixels", "shape": [1, 64], "datatype": "FP64", "data": row.tolist()}]}
                try:
                    response = http.post(url, json=body, headers={"X-Route-Key": str(index)})
                    version = int(response.json()["model_version"]) if response.status_code == 200 else None
                except (httpx.HTTPError, ValueError, KeyError):
                    version = None
                self.answers.append((time.monotonic(), version))
                index += 1
                self._stop.wait(0.02)

    def since(self, moment: float) -> list[int | None]:
        return [version for at, version in list(self.answers) if at >= moment]


def train(platform: RunningPlatform, carol: httpx.Client, token: str, notebook: dict[str, Any], name: str,
          parameters: dict[str, Any]) -> None:
    job = carol.post("jobs", json={"project": PROJECT, "notebook": notebook, "notebook_name": name,
                                   "parameters": {"dataset": DATASET, "model_name": MODEL, **parameters},
                                   "inputs": [{"dataset": DATASET}]})
    assert job.status_code == 201, job.text
    done = platform.wait_for_job(token, job.json()["id"], ENDED, timeout=240)
    assert done["state"] == "succeeded", (done["reason"], done["failed_cell"])


@pytest.fixture(scope="module")
def trained(platform: RunningPlatform, people: dict[str, str]) -> Iterator[None]:
    """bob (maintainer) sets the policies: evaluation, the custom simulation, and a release policy asking for both
    and one maintainer's approval. carol (developer) trains versions 1 and 2 (logistic regression) and 3 (the
    same model, but it raises on a negative pixel: it passes its evaluation and simulation, whose data has none).
    Every version is evaluated and simulated by the policies before the tests start."""
    ann, bob, carol = (platform.api(people[name]) for name in ("ann", "bob", "carol"))
    with ann, bob, carol:
        assert ann.post("projects", json={"name": PROJECT}).status_code == 201
        for user, role in (("bob", "maintainer"), ("carol", "developer")):
            assert ann.post(f"projects/{PROJECT}/members", json={"user": user, "role": role}).status_code == 201
        registered = carol.post(f"projects/{PROJECT}/datasets/{DATASET}/versions", params={"filename": "digits.csv"},
                                content=digits_csv(), headers={"Content-Type": "application/octet-stream"})
        assert registered.status_code == 201, registered.text
        for path, body in (
                (f"evaluation-policies/{MODEL}", {"dataset": DATASET, "thresholds": {
                    "accuracy_score": {"threshold": 0.5, "greater_is_better": True}}}),
                (f"simulation-policies/{MODEL}", {"template": "custom", "dataset": DATASET}),
                ("release-policy", {"evaluation": True, "simulations": ["custom"],
                                    "approvals": [{"role": "maintainer", "count": 1}]})):
            answered = bob.put(f"projects/{PROJECT}/{path}", json=body)
            assert answered.status_code == 200, answered.text
        for _ in range(2):
            train(platform, carol, people["carol"], training_notebook(), TRAINING.name, {"classifier": "logistic"})
        train(platform, carol, people["carol"], FRAGILE_TRAINING, "digits_fragile.ipynb", {})
        deadline = time.monotonic() + 420
        while time.monotonic() < deadline:
            simulated = carol.get(f"projects/{PROJECT}/simulations", params={"model": MODEL}).json()["simulations"]
            evaluated = carol.get(f"projects/{PROJECT}/evaluations", params={"model": MODEL}).json()["evaluations"]
            states = {(s["model_version"], s["state"]) for s in simulated}
            if {(1, "passed"), (2, "passed"), (3, "passed")} <= states or any(
                    found["state"] in ("failed", "error") for found in simulated + evaluated):
                break
            time.sleep(1)
        assert {(1, "passed"), (2, "passed"), (3, "passed")} <= states, (evaluated, simulated)
        deployed = bob.post(f"projects/{PROJECT}/endpoints", json={"name": ENDPOINT, "model": MODEL, "version": 1})
        assert deployed.status_code == 201, deployed.text
    yield


def request_and_approve(platform: RunningPlatform, people: dict[str, str], version: str, model_version: int) -> int:
    """carol requests the release with the CLI; her own approval is refused; bob's approves it."""
    code, out, err = cli(platform, people["carol"], "releases", "request", "--project", PROJECT, "--kind", "model",
                         "--name", "digits", "--version", version, "--model", MODEL, "--model-version",
                         str(model_version), "--dataset", DATASET, "--json")
    assert code == 0, err
    import json

    release = json.loads(out)
    assert {e["kind"] for e in release["evidence"]} == {"evaluation", "simulation"}, release["evidence"]
    with platform.api(people["carol"]) as carol, platform.api(people["bob"]) as bob:
        own = carol.post(f"projects/{PROJECT}/releases/{release['id']}/decisions", json={"decision": "approve"})
        assert own.status_code == 403, own.text
        decided = bob.post(f"projects/{PROJECT}/releases/{release['id']}/decisions", json={"decision": "approve"})
        assert decided.status_code == 200 and decided.json()["state"] == "approved", decided.text
    return int(release["id"])


@pytest.mark.timeout(1200)
def test_a_canary_goes_5_20_50_100_with_analyses_and_through_a_sigkill_of_the_platform_at_its_step(
        platform: RunningPlatform, people: dict[str, str], trained: None) -> None:
    release = request_and_approve(platform, people, "1.0.0", 2)
    steps = [{"set_weight": 5}, {"analysis": ANALYSIS}, {"set_weight": 20}, {"analysis": {**ANALYSIS, "count": 2}},
             {"pause": {}}, {"set_weight": 50}, {"analysis": ANALYSIS}, {"set_weight": 100}]
    with platform.api(people["bob"]) as bob, Traffic(platform, people["bob"]) as traffic:
        started = bob.post(f"projects/{PROJECT}/releases/{release}/rollouts", json={"endpoint": ENDPOINT,
                                                                                     "steps": steps})
        assert started.status_code == 201, started.text
        rollout = started.json()
        assert (rollout["step"], rollout["weight"], rollout["stable_version"]) == (1, 5, 1), rollout
        # Killed while it analyses the 20 % canary (step 3): the hub starts the service again, which takes the
        # rollout up from the catalog — at step 3, with the canary at 20 %, its first analysis run kept.
        at_20 = wait_rollout(bob, rollout["id"], lambda r: r["step"] == 3 or r["state"] != "progressing")
        assert (at_20["state"], at_20["weight"]) == ("progressing", 20), at_20
        before = len(at_20["analysis_runs"])
        pid = _service_pid(platform)
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        killed_at = time.monotonic()
        _wait_healthy(platform, pid, timeout=120)
        back = rollout_of(bob, rollout["id"])
        assert back["step"] in (3, 4) and back["weight"] == 20, back
        assert len(back["analysis_runs"]) >= before and back["state"] in ("progressing", "paused"), back
        paused = wait_rollout(bob, rollout["id"], lambda r: r["state"] != "progressing")
        assert (paused["state"], paused["step"], paused["weight"]) == ("paused", 4, 20), paused
        assert weights(bob) == {1: 80, 2: 20}
        served = traffic.since(killed_at)
        assert {1, 2} <= set(served), "both versions serve again after the restart"
        promoted = bob.post(f"projects/{PROJECT}/rollouts/{rollout['id']}/promote", json={})
        assert promoted.status_code == 200, promoted.text
        done = wait_rollout(bob, rollout["id"], lambda r: r["state"] != "progressing")
        assert (done["state"], done["weight"]) == ("completed", 100), done
        assert weights(bob) == {1: 0, 2: 100}
    # Every analysis run passed on real requests; none was repeated or lost across the restart.
    assert [(run["step"], run["outcome"]) for run in done["analysis_runs"]] == [
        (1, "passed"), (3, "passed"), (3, "passed"), (6, "passed")], done["analysis_runs"]
    assert all(run["requests"] >= 5 and run["error_rate"] == 0 for run in done["analysis_runs"])
    assert "Service aitip exited with status -9" in platform.log()


@pytest.mark.timeout(600)
def test_a_canary_that_fails_on_production_traffic_is_aborted_by_its_analysis_back_to_the_stable_version(
        platform: RunningPlatform, people: dict[str, str], trained: None) -> None:
    release = request_and_approve(platform, people, "1.1.0", 3)
    interval = 5
    watch = {"interval_seconds": interval, "count": 1000, "failure_limit": 0, "min_requests": 3,
             "conditions": [{"metric": "error_rate", "max": 0.05}]}
    with platform.api(people["bob"]) as bob, Traffic(platform, people["bob"]) as traffic:
        if weights(bob).get(2) != 100:  # the first test left version 2 on all of the traffic; alone, move it there
            bob.post(f"projects/{PROJECT}/endpoints/{ENDPOINT}/versions", json={"version": 2, "weight": 0})
            bob.put(f"projects/{PROJECT}/endpoints/{ENDPOINT}/traffic", json={"weights": {"1": 0, "2": 100}})
        started = bob.post(f"projects/{PROJECT}/releases/{release}/rollouts", json={
            "endpoint": ENDPOINT, "steps": [{"set_weight": 20}, {"analysis": watch}, {"set_weight": 100}]})
        assert started.status_code == 201, started.text
        rollout = started.json()
        assert (rollout["stable_version"], rollout["canary_version"], rollout["weight"]) == (2, 3, 20), rollout
        healthy = wait_rollout(bob, rollout["id"],
                               lambda r: len(r["analysis_runs"]) >= 2 or r["state"] != "progressing", timeout=60)
        assert healthy["state"] == "progressing" and {r["outcome"] for r in healthy["analysis_runs"]} == {"passed"}
        assert 3 in traffic.since(0), "the canary answered before the traffic turned"
        traffic.negative = True  # production traffic the canary cannot take
        crossed = time.monotonic()
        aborted = wait_rollout(bob, rollout["id"], lambda r: r["state"] != "progressing", timeout=60)
        noticed = time.monotonic()
        assert aborted["state"] == "degraded" and "error_rate" in aborted["message"], aborted
        now_serving = weights(bob)
        assert aborted["weight"] == 0 and (now_serving[2], now_serving[3]) == (100, 0), now_serving
        assert noticed - crossed <= 2 * interval + 1.5, f"aborted {noticed - crossed:.1f} s after the errors began"
        time.sleep(3)
    after = traffic.since(noticed + 1.0)
    assert after and set(after) == {2}, f"a second after the abort, every answer comes from version 2: {set(after)}"
    assert aborted["analysis_runs"][-1]["outcome"] == "failed" and aborted["analysis_runs"][-1]["errors"] > 0


@pytest.mark.timeout(600)
def test_an_agent_sends_firmware_over_mcp_to_a_fleet_in_groups_and_the_emergency_stop_halts_it(
        platform: RunningPlatform, people: dict[str, str], trained: None, tmp_path: Path) -> None:
    """bob's agent, through MCP tools alone: registers six boards in two groups, requests the firmware release,
    and (once ann approved it) starts the rollout and follows it. The boards reach the platform through the hub's
    proxy; two of the four early boards cannot boot the image, above the group's 25 % error threshold."""
    service_url = f"{platform.url}/services/aitip/"

    async def journey() -> tuple[dict[str, Any], dict[str, Any], SimulatedFleet]:
        async with agent(platform, people["bob"]) as client:
            async def call(tool: str, arguments: dict[str, Any]) -> Any:
                return answer(await client.call_tool(tool, {"project": PROJECT, **arguments}))

            devices = {}
            for group, count in (("canary", 2), ("early", 4)):
                for number in range(count):
                    registered = await call("devices_register", {"name": f"{group}-{number}", "hardware": "board-x1",
                                                                 "group": group})
                    devices[registered["device"]["name"]] = Provisioned.from_answer(service_url, registered)
            release = await call("releases_request", {
                "kind": "firmware", "name": "board-fw", "version": "2.0.0", "hardware": "board-x1",
                "firmware_base64": base64.b64encode(b"\x7fELF board-fw 2.0.0" * 512).decode()})
            assert release["state"] == "requested" and release["firmware"]["hardware"] == "board-x1", release
            with platform.api(people["ann"]) as ann:
                decided = ann.post(f"projects/{PROJECT}/releases/{release['id']}/decisions",
                                   json={"decision": "approve"})
                assert decided.status_code == 200 and decided.json()["state"] == "approved", decided.text
            fleet = SimulatedFleet(devices, tmp_path / "fleet", failing={"early-0", "early-1"},
                                   first_poll_spread=0.2, threads=4, long_poll=5)
            try:
                followed, _ = await asyncio.gather(
                    call("device_rollouts_start", {
                        "release": release["id"], "poll_seconds": 0.5, "wait_seconds": 120,
                        "groups": [{"group": "canary", "success_threshold": 100, "error_threshold": 0},
                                   {"group": "early", "success_threshold": 100, "error_threshold": 25}]}),
                    fleet.run(lambda f: f.count("failed") >= 2, timeout=120))
            finally:
                fleet.close()
            return followed, await call("devices_fleet", {}), fleet

    followed, fleet_now, fleet = asyncio.run(journey())
    assert followed["state"] == "stopped" and "2 of 4 devices of group 'early'" in followed["message"], followed
    assert [(w["group"], w["installed"]) for w in followed["waves"]][0] == ("canary", 2), followed["waves"]
    assert fleet.count("failed") == 2 and fleet.count("installed") >= 2
    assert fleet_now["devices"] == 6 and fleet_now["groups"] == {"canary": 2, "early": 4}, fleet_now
