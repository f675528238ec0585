"""The Releases page in a real browser, through the real hub. ann's project: the digits table, an evaluation policy,
two versions trained and evaluated by the platform's own jobs, endpoint digits serving version 1; bob (a
developer) requested a release of version 2 with its evidence, and a configuration release. ann reads the
evidence chain, approves and promotes from the page and follows a rollout of the release onto the endpoint; bob,
reading Chinese, is told why he may not decide on his own request."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.browser.conftest import open_dashboard, screenshot
from tests.evaluation.conftest import digits_csv, training_notebook
from tests.support.platform import RunningPlatform

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1200)]

PROJECT = "releases-ui"  # its own project: its jobs must not change other tests' counts
MODEL = "digits-released"


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def wait_evaluated(api: Any, version: int, timeout: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [e for e in api.get(f"projects/{PROJECT}/evaluations", params={"model": MODEL}).json()["evaluations"]
                 if e["model_version"] == version and e["state"] in ("passed", "failed", "error")]
        if found:
            return found[0]
        time.sleep(1)
    raise AssertionError(f"version {version} was not evaluated")


@pytest.fixture(scope="module")
def requested(platform: RunningPlatform, people: dict[str, str]) -> dict[str, Any]:
    """The model release (of version 2, evidence and all) and the configuration release bob requested."""
    with platform.api(people["ann"]) as ann, platform.api(people["bob"]) as bob:
        assert ann.post("projects", json={"name": PROJECT}).status_code == 201
        assert ann.post(f"projects/{PROJECT}/members", json={"user": "bob", "role": "developer"}).status_code == 201
        uploaded = ann.post(f"projects/{PROJECT}/datasets/digits/versions", content=digits_csv(),
                            params={"filename": "digits.csv"}, timeout=120)
        assert uploaded.status_code == 201, uploaded.text
        policy = ann.put(f"projects/{PROJECT}/evaluation-policies/{MODEL}", json={
            "dataset": "digits", "thresholds": {"accuracy_score": {"threshold": 0.5, "greater_is_better": True}}})
        assert policy.status_code == 200, policy.text
        for version in (1, 2):
            job = ann.post("jobs", json={"project": PROJECT, "notebook": training_notebook(),
                                         "notebook_name": "digits_sklearn.ipynb", "inputs": [{"dataset": "digits"}],
                                         "parameters": {"model_name": MODEL, "dataset": "digits",
                                                        "classifier": "logistic"}})
            assert job.status_code == 201, job.text
            ended = platform.wait_for_job(people["ann"], job.json()["id"],
                                          {"succeeded", "failed", "cancelled", "timed_out"})
            assert ended["state"] == "succeeded", ended.get("reason")
            assert wait_evaluated(ann, version)["state"] == "passed"
        model = bob.post(f"projects/{PROJECT}/releases", json={
            "kind": "model", "name": "digits", "version": "1.0.0", "model": MODEL, "model_version": 2,
            "dataset": "digits", "changelog": "A logistic regression on raw pixels."})
        assert model.status_code == 201, model.text
        configuration = bob.post(f"projects/{PROJECT}/releases", json={
            "kind": "configuration", "name": "limits", "version": "1.0.0", "configuration": {"max_batch": 64}})
        assert configuration.status_code == 201, configuration.text
        endpoint = ann.post(f"projects/{PROJECT}/endpoints", json={"name": "digits", "model": MODEL, "version": 1},
                            timeout=180)
        assert endpoint.status_code == 201, endpoint.text
    return model.json()


def release_rows(page: Page) -> Any:
    return page.locator(".table-releases .tabulator-row")


def test_a_maintainer_reads_the_evidence_approves_promotes_and_follows_a_rollout(
        platform: RunningPlatform, people: dict[str, str], requested: dict[str, Any], ann_page: Page,
        screenshots: Path) -> None:
    page = open_dashboard(ann_page, platform, f"releases?project={PROJECT}&release={requested['id']}&lang=en")
    expect(release_rows(page)).to_have_count(2)
    expect(page.locator("#release-title")).to_contain_text("digits 1.0.0")
    expect(page.locator("#release-title .release-state[data-state='requested']")).to_contain_text(
        "waiting for approval")
    chain = page.locator(".evidence-chain li")
    expect(chain).to_have_count(4)
    expect(chain.nth(0)).to_contain_text("dataset digits version 1")
    expect(chain.nth(1)).to_contain_text(f"model {MODEL} version 2")
    expect(chain.nth(2)).to_contain_text(": passed")
    expect(chain.nth(3)).to_contain_text("signed (key")
    expect(page.locator(".approval-stage[data-stage='0'][data-complete='false']")).to_contain_text("maintainer")
    expect(page.locator(".promote button")).to_contain_text("Promote to test")
    screenshot(page, screenshots, "releases-requested")

    page.locator(".decision-comment input").fill("evidence read")
    page.locator(".approve button").click()
    expect(page.locator(".aitip-info")).to_contain_text("digits 1.0.0 is approved.")
    expect(page.locator(".decision[data-decision='approve']")).to_contain_text("“evidence read”")
    expect(page.locator(".approve button")).to_be_disabled()
    page.locator(".promote button").click()
    expect(page.locator(".aitip-info")).to_contain_text("digits 1.0.0 is in test now.")
    expect(page.locator(".environment[data-environment='test'][data-reached='true']")).to_be_visible()

    with platform.api(people["ann"]) as ann:
        started = ann.post(f"projects/{PROJECT}/releases/{requested['id']}/rollouts", json={
            "endpoint": "digits", "steps": [{"set_weight": 10}, {"pause": {}}, {"set_weight": 100}]}, timeout=60)
        assert started.status_code == 201, started.text
    page.locator(".refresh button").click()
    expect(page.locator(".table-rollouts .rollout-state[data-state='paused']")).to_be_visible()
    expect(page.locator(".rollout-step[data-where='current']")).to_contain_text("pause until promoted")
    expect(page.locator(".rollout-analysis.empty")).to_be_visible()
    screenshot(page, screenshots, "releases-rollout-paused")
    page.locator(".rollout-promote button").click()
    expect(page.locator(".aitip-info")).to_contain_text("is completed: the canary takes 100 %")
    expect(page.locator(".table-rollouts .rollout-state[data-state='completed']")).to_be_visible()
    with platform.api(people["ann"]) as ann:
        endpoint = ann.get(f"projects/{PROJECT}/endpoints/digits").json()
    assert {v["version"]: v["weight"] for v in endpoint["variants"]} == {1: 0, 2: 100}


def test_the_requester_reads_chinese_and_is_told_why_he_may_not_decide(
        platform: RunningPlatform, requested: dict[str, Any], chinese_sign_in: Any, screenshots: Path) -> None:
    page = open_dashboard(chinese_sign_in("bob"), platform, f"releases?project={PROJECT}")
    expect(release_rows(page)).to_have_count(2)
    release_rows(page).filter(has_text="limits 1.0.0").click()
    expect(page.locator("#release-title")).to_contain_text("一份配置")
    expect(page.locator(".evidence-none")).to_contain_text("配置发布不携带证据")
    expect(page.locator(".approve button")).to_be_disabled()
    expect(page.locator(".decide-why")).to_contain_text("任何人都不能审批自己的发布申请。")
    expect(page.locator(".promote-why")).to_contain_text("晋级需要维护者或更高角色；你是开发者。")
    screenshot(page, screenshots, "releases-zh")


def test_a_service_release_shows_its_endpoint_and_settings_beside_its_evidence(
        platform: RunningPlatform, people: dict[str, str], requested: dict[str, Any], ann_page: Page,
        screenshots: Path) -> None:
    """Run after the two above (it adds a third release to their project)."""
    with platform.api(people["bob"]) as bob:
        service = bob.post(f"projects/{PROJECT}/releases", json={
            "kind": "service", "name": "digits-api", "version": "1.0.0", "model": MODEL, "model_version": 2,
            "dataset": "digits", "endpoint": "digits", "settings": {"max_batch_size": 32}})
        assert service.status_code == 201, service.text
    page = open_dashboard(ann_page, platform, f"releases?project={PROJECT}&release={service.json()['id']}&lang=en")
    expect(release_rows(page)).to_have_count(3)
    expect(page.locator("#release-title")).to_contain_text(f"endpoint digits: model {MODEL} version 2")
    chain = page.locator(".evidence-chain li")
    expect(chain).to_have_count(5)
    expect(page.locator(".evidence-chain .evidence-service")).to_contain_text(
        "endpoint digits: backend python, max_batch_size 32")
    expect(page.locator(".approve button")).to_be_enabled()
    screenshot(page, screenshots, "releases-service")


FLEET_PROJECT = "fleet-ui"


@pytest.fixture(scope="module")
def firmware_rolled_out(platform: RunningPlatform, people: dict[str, str], tmp_path_factory: Any) -> dict[str, Any]:
    """bob's firmware 1.0.0 for board-x1, approved by ann and sent to groups canary (2 devices, online: they
    install it through the hub's proxy, TUF and all) and early (3 devices, offline: the group waits)."""
    import asyncio
    import base64
    import threading

    from aitip.device_client.fleet import SimulatedFleet
    from aitip.device_client.updater import Provisioned

    with platform.api(people["ann"]) as ann, platform.api(people["bob"]) as bob:
        assert ann.post("projects", json={"name": FLEET_PROJECT}).status_code == 201
        assert ann.post(f"projects/{FLEET_PROJECT}/members", json={"user": "bob", "role": "developer"}).status_code == 201
        devices = {}
        for name, group in (("c-0", "canary"), ("c-1", "canary"), ("e-0", "early"), ("e-1", "early"),
                            ("e-2", "early")):
            answer = ann.post(f"projects/{FLEET_PROJECT}/devices", json={"name": name, "hardware": "board-x1",
                                                                          "group": group})
            assert answer.status_code == 201, answer.text
            devices[name] = Provisioned.from_answer(f"{platform.url}/services/aitip/", answer.json())
        release = bob.post(f"projects/{FLEET_PROJECT}/releases", json={
            "kind": "firmware", "name": "board-fw", "version": "1.0.0", "hardware": "board-x1",
            "firmware_base64": base64.b64encode(b"\x7fELF board firmware" * 512).decode(),
            "changelog": "The first firmware for the x1 board."})
        assert release.status_code == 201, release.text
        decided = ann.post(f"projects/{FLEET_PROJECT}/releases/{release.json()['id']}/decisions",
                           json={"decision": "approve"})
        assert decided.status_code == 200, decided.text
        started = ann.post(f"projects/{FLEET_PROJECT}/releases/{release.json()['id']}/device-rollouts", json={
            "groups": [{"group": "canary", "success_threshold": 100, "error_threshold": 0},
                       {"group": "early", "success_threshold": 100, "error_threshold": 34}], "poll_seconds": 1})
        assert started.status_code == 201, started.text
    canary = {name: devices[name] for name in ("c-0", "c-1")}
    fleet = SimulatedFleet(canary, tmp_path_factory.mktemp("fleet"), threads=2, first_poll_spread=0.2)
    held: list[bool] = []
    # Its own thread and event loop: the browser tests' loop is running in this one.
    runner = threading.Thread(target=lambda: held.append(asyncio.run(
        fleet.run(lambda f: f.count("reported") == 2, timeout=120))))
    runner.start()
    runner.join()
    fleet.close()
    assert held == [True], fleet.logs
    return release.json()


def test_a_maintainer_follows_a_firmware_rollout_and_stops_it(
        platform: RunningPlatform, firmware_rolled_out: dict[str, Any], ann_page: Page, chinese_sign_in: Any,
        screenshots: Path) -> None:
    page = open_dashboard(ann_page, platform, f"releases?project={FLEET_PROJECT}&lang=en")
    expect(page.locator("#release-title")).to_contain_text("firmware for board-x1, 9.5 KiB")
    expect(page.locator(".evidence-none")).to_contain_text("embeds no model version")
    expect(page.locator(".table-device-rollouts .device-rollout-state[data-state='running']")).to_be_visible()
    expect(page.locator(".wave[data-group='canary']")).to_contain_text("2 of 2 installed, 0 failed")
    expect(page.locator(".wave[data-group='early'][data-started='true']")).to_contain_text("0 of 3 installed")
    expect(page.locator(".fleet-chart.devices-5")).to_be_visible()
    screenshot(page, screenshots, "releases-firmware-running")
    expect(page.locator(".device-resume button")).to_be_disabled()
    page.locator(".device-stop button").click()
    expect(page.locator(".aitip-info")).to_contain_text("emergency stop")
    expect(page.locator(".table-device-rollouts .device-rollout-state[data-state='stopped']")).to_be_visible()
    expect(page.locator(".device-stop button")).to_be_disabled()
    expect(page.locator(".rollout-analysis")).to_be_hidden()  # an endpoint's analysis: not firmware's
    page.locator(".refresh button").click()  # the early group, never online, is no longer "updating"
    expect(page.locator(".fleet-chart.devices-5.states-idle-registered")).to_be_visible()
    expect(page.locator(".wave[data-group='early']")).to_contain_text("3 withdrawn by the stop")
    screenshot(page, screenshots, "releases-firmware-stopped")

    chinese = open_dashboard(chinese_sign_in("bob"), platform, f"releases?project={FLEET_PROJECT}")
    expect(chinese.locator(".table-device-rollouts .device-rollout-state[data-state='stopped']")).to_contain_text(
        "紧急停止")
    expect(chinese.locator(".wave[data-group='canary']")).to_contain_text("已安装")
    expect(chinese.locator(".device-stop button")).to_be_disabled()
    screenshot(chinese, screenshots, "releases-firmware-zh")
