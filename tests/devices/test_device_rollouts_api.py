"""Firmware over the air through the platform: a firmware release is requested and approved, devices are
registered, and a simulated fleet (real HTTP to the platform, TUF verification, A/B slots) takes the release
group after group; a second release whose image does not boot on too many devices of a group is stopped, and
every device that had not installed it hears so at its next poll."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPClientError

from aitip.device_client.fleet import SimulatedFleet
from aitip.device_client.updater import Provisioned
from tests.releases.test_releases_api import make_alpha

RELEASES = "projects/alpha/releases"
GROUPS = {"canary": 2, "early": 4, "late": 6}


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any], tracking_uri: str) -> dict[str, Any]:
    jp_server_config["AitipExtension"]["mlflow_tracking_uri"] = tracking_uri
    return jp_server_config


async def firmware_release(api: Any, version: str, image: bytes) -> int:
    status, release = await api("POST", RELEASES, user="carol", body={
        "kind": "firmware", "name": "board-fw", "version": version, "hardware": "board-x1",
        "firmware_base64": base64.b64encode(image).decode(), "changelog": f"firmware {version}"})
    assert status == 201, release
    assert release["firmware"]["length"] == len(image) and release["state"] == "requested", release
    status, decided = await api("POST", f"{RELEASES}/{release['id']}/decisions", user="dave",
                                body={"decision": "approve"})
    assert status == 200 and decided["state"] == "approved", decided
    return int(release["id"])


async def register_fleet(api: Any, base_url: str) -> dict[str, Provisioned]:
    devices = {}
    for group, count in GROUPS.items():
        for number in range(count):
            name = f"{group}-{number}"
            status, answer = await api("POST", "projects/alpha/devices", user="dave", body={
                "name": name, "hardware": "board-x1", "group": group, "tags": ["lab"]})
            assert status == 201, answer
            devices[name] = Provisioned.from_answer(base_url, answer)
    status, other = await api("POST", "projects/alpha/devices", user="dave",
                              body={"name": "other-board", "hardware": "board-y2", "group": "early"})
    assert status == 201 and other["token"].startswith("aitipdev_") and other["base_url"] == "ota/alpha/"
    assert other["trusted_root"]["signed"]["_type"] == "root", other
    return devices


async def device_call(base_url: str, path: str, token: str | None, *, body: Any = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        response = await AsyncHTTPClient().fetch(
            base_url + path, method="POST" if body is not None else "GET", headers=headers,
            body=json.dumps(body) if body is not None else None, raise_error=True)
    except HTTPClientError as error:
        response = error.response
        assert response is not None
    text = response.body.decode(errors="replace")
    return response.code, json.loads(text) if response.headers.get("Content-Type", "").startswith(
        "application/json") and text else text


async def test_firmware_goes_to_the_fleet_group_by_group_and_an_emergency_stop_halts_it(
        api: Any, jp_serverapp: Any, jp_http_port: int, jp_base_url: str, tmp_path: Path) -> None:
    await make_alpha(api)
    base_url = f"http://127.0.0.1:{jp_http_port}{jp_base_url}"
    devices = await register_fleet(api, base_url)
    assert (await api("POST", "projects/alpha/devices", user="carol",
                      body={"name": "x", "hardware": "board-x1"}))[0] == 403
    assert (await api("POST", "projects/alpha/devices", user="dave",
                      body={"name": "canary-0", "hardware": "board-x1"}))[0] == 409

    first = await firmware_release(api, "1.0.0", b"\x7fELF firmware 1.0.0" * 200)
    waves = [{"group": "canary", "success_threshold": 100, "error_threshold": 0},
             {"group": "early", "success_threshold": 75, "error_threshold": 25},
             {"group": "late", "success_threshold": 100, "error_threshold": 10}]
    assert (await api("POST", f"{RELEASES}/{first}/device-rollouts", user="carol",
                      body={"groups": waves}))[0] == 403
    status, rollout = await api("POST", f"{RELEASES}/{first}/device-rollouts", user="dave",
                                body={"groups": waves, "poll_seconds": 0.3})
    assert status == 201, rollout
    assert rollout["state"] == "running" and rollout["target"] == "firmware/board-fw/1.0.0.bin", rollout
    assert [(wave["devices"], wave["started"]) for wave in rollout["waves"]] == [(2, True), (4, False), (6, False)]
    status, busy = await api("POST", f"{RELEASES}/{first}/device-rollouts", user="dave", body={"groups": waves})
    assert status == 409 and busy["error"]["code"] == "device_rollout_busy", busy

    fleet = SimulatedFleet(devices, tmp_path / "fleet", first_poll_spread=0.2, threads=4)
    try:
        assert await fleet.run(lambda f: f.count("reported") == len(devices), timeout=60), \
            [(name, log.errors[-1:]) for name, log in fleet.logs.items() if log.reported_at is None][:2]
    finally:
        fleet.close()
    status, done = await api("GET", f"projects/alpha/device-rollouts/{rollout['id']}", user="bob")
    assert done["state"] == "succeeded", done
    assert [(wave["installed"], wave["failed"]) for wave in done["waves"]] == [(2, 0), (4, 0), (6, 0)], done
    canary_done = max(fleet.logs[f"canary-{n}"].installed_at for n in range(2))
    assert all(fleet.logs[f"early-{n}"].installed_at > canary_done for n in range(4)), "early before the canary"
    status, summary = await api("GET", "projects/alpha/fleet", user="bob")
    assert summary["devices"] == 13 and {"version": "1.0.0", "state": "idle", "devices": 12} in [
        {key: item[key] for key in ("version", "state", "devices")} for item in summary["by_version"]], summary
    status, listed = await api("GET", "projects/alpha/devices", user="bob", params={"version": "1.0.0"})
    assert len(listed["devices"]) == 12 and {d["slot"] for d in listed["devices"]} == {"b"}, listed

    # The second release: its image does not boot on half of the early group -> an emergency stop there.
    second = await firmware_release(api, "1.1.0", b"\x7fELF firmware 1.1.0" * 200)
    status, rollout = await api("POST", f"{RELEASES}/{second}/device-rollouts", user="dave",
                                body={"groups": waves, "poll_seconds": 0.3})
    assert status == 201, rollout
    fleet = SimulatedFleet(devices, tmp_path / "fleet", failing={"early-0", "early-1"}, first_poll_spread=0.2,
                           threads=4)

    async def stopped() -> dict[str, Any]:
        return (await api("GET", f"projects/alpha/device-rollouts/{rollout['id']}", user="bob"))[1]

    try:
        assert await fleet.run(lambda f: f.count("failed") >= 2 and all(
            fleet.logs[name].stopped_at is not None for name in ("early-2", "early-3")
            if fleet.logs[name].installed_at is None), timeout=120)
    finally:
        fleet.close()
    found = await stopped()
    assert found["state"] == "stopped" and "emergency stop" in found["message"], found
    assert "2 of 4 devices of group 'early'" in found["message"], found
    assert found["waves"][1]["withdrawn"] + found["waves"][1]["installed"] + found["waves"][1]["failed"] == 4, found
    assert found["waves"][2]["started"] is False and all(
        fleet.logs[f"late-{n}"].installed_at is None for n in range(6)), "the late group got it after the stop"
    status, updating = await api("GET", "projects/alpha/devices", user="bob", params={"state": "updating"})
    assert updating["devices"] == [], "a withdrawn update leaves its device running what it ran"
    failed = await api("GET", "projects/alpha/devices", user="bob", params={"state": "failed"})
    assert sorted(device["name"] for device in failed[1]["devices"]) == ["early-0", "early-1"], failed
    assert all("did not boot" in device["message"] and device["version"] == "1.0.0"
               for device in failed[1]["devices"]), failed
    status, refused = await api("POST", f"projects/alpha/device-rollouts/{rollout['id']}/resume", user="dave")
    assert status == 409 and refused["error"]["code"] == "device_rollout_state", refused


async def test_the_device_route_takes_only_a_device_token_of_its_own_project(
        api: Any, jp_serverapp: Any, jp_http_port: int, jp_base_url: str) -> None:
    await make_alpha(api)
    assert (await api("POST", "projects", user="ann", body={"name": "beta"}))[0] == 201
    base_url = f"http://127.0.0.1:{jp_http_port}{jp_base_url}"
    status, answer = await api("POST", "projects/alpha/devices", user="dave",
                               body={"name": "d1", "hardware": "board-x1"})
    token = answer["token"]
    assert (await device_call(base_url, "ota/alpha/metadata/1.root.json", None))[0] == 401
    assert (await device_call(base_url, "ota/alpha/metadata/1.root.json", "aitipdev_forged"))[0] == 401
    status, refused = await device_call(base_url, "ota/beta/metadata/1.root.json", token)
    assert status == 403 and refused["error"]["code"] == "forbidden", refused
    status, root = await device_call(base_url, "ota/alpha/metadata/1.root.json", token)
    assert status == 200 and root["signed"]["_type"] == "root", root
    assert (await device_call(base_url, "ota/alpha/metadata/..%2Fkeys%2Froot.pem", token))[0] == 404
    assert (await device_call(base_url, "ota/alpha/targets/../keys/root.pem", token))[0] == 404
    status, bad = await device_call(base_url, "ota/alpha/check-in", token, body={"version": 7})
    assert status == 422 and "version" in bad["error"]["message"], bad
    status, said = await device_call(base_url, "ota/alpha/check-in", token, body={"version": None, "slot": "a"})
    assert status == 200 and said["action"] == "none" and said["device"] == "d1", said
    assert (await api("DELETE", f"projects/alpha/devices/{answer['device']['id']}", user="dave"))[0] == 204
    assert (await device_call(base_url, "ota/alpha/check-in", token, body={}))[0] == 401


async def test_a_stop_is_not_lost_on_a_long_poll_the_device_gave_up(
        api: Any, jp_serverapp: Any, jp_http_port: int, jp_base_url: str) -> None:
    """A device holds its check-in open (``wait``), then drops the connection; the emergency stop that comes
    meanwhile wakes that abandoned poll, which has nobody to tell: the device hears it at its next check-in."""
    import asyncio

    await make_alpha(api)
    base_url = f"http://127.0.0.1:{jp_http_port}{jp_base_url}"
    status, answer = await api("POST", "projects/alpha/devices", user="dave",
                               body={"name": "d1", "hardware": "board-x1", "group": "canary"})
    token = answer["token"]
    release = await firmware_release(api, "1.0.0", b"image")
    status, rollout = await api("POST", f"{RELEASES}/{release}/device-rollouts", user="dave",
                                body={"groups": [{"group": "canary"}], "poll_seconds": 1})
    assert status == 201, rollout
    assert (await api("POST", f"projects/alpha/device-rollouts/{rollout['id']}/pause", user="dave"))[0] == 200
    status, said = await device_call(base_url, "ota/alpha/check-in", token, body={"version": None})
    assert said["action"] == "none" and "paused" in said["reason"], said

    body = b'{"version": null}'
    reader, writer = await asyncio.open_connection("127.0.0.1", jp_http_port)
    writer.write(f"POST {jp_base_url}ota/alpha/check-in?wait=30 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    await writer.drain()
    await asyncio.sleep(0.5)
    writer.close()  # the device gave up on its poll
    await asyncio.sleep(0.5)
    status, stopped = await api("POST", f"projects/alpha/device-rollouts/{rollout['id']}/stop", user="dave",
                                body={"reason": "field reports"})
    assert status == 200 and stopped["state"] == "stopped", stopped
    await asyncio.sleep(0.5)  # the abandoned poll wakes, and finds nobody
    status, said = await device_call(base_url, "ota/alpha/check-in", token, body={"version": None})
    assert said["action"] == "stop" and said["reason"] == "field reports", said
    status, said = await device_call(base_url, "ota/alpha/check-in", token, body={"version": None})
    assert said["action"] == "none", "a device hears of a stop once"


async def test_an_agent_sends_firmware_to_the_fleet_over_mcp_and_is_told_of_the_emergency_stop(
        api: Any, jp_serverapp: Any, jp_http_port: int, jp_base_url: str, tmp_path: Path) -> None:
    """A maintainer's agent, through MCP tools alone: registers the devices, requests the firmware release, and
    (once a person approved it) starts the rollout and follows it; the early group's boards fail to boot it, and
    the tool's answer is the emergency stop with its reason."""
    import asyncio

    from tests.server.test_mcp import mcp_client

    await make_alpha(api)
    base_url = f"http://127.0.0.1:{jp_http_port}{jp_base_url}"

    async def call(client: Any, tool: str, arguments: dict[str, Any], **options: Any) -> Any:
        answered = await client.call_tool(tool, {"project": "alpha", **arguments}, **options)
        assert not answered.is_error, (tool, answered.content[0].text)
        return answered.structured_content

    progress: list[str] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append(message or "")

    async with mcp_client(jp_http_port, jp_base_url, "dave") as agent:
        devices = {}
        for group, count in (("canary", 2), ("early", 4)):
            for number in range(count):
                answer = await call(agent, "devices_register", {"name": f"{group}-{number}", "hardware": "board-x1",
                                                                "group": group})
                devices[answer["device"]["name"]] = Provisioned.from_answer(base_url, answer)
        release = await call(agent, "releases_request", {
            "kind": "firmware", "name": "board-fw", "version": "3.0.0", "hardware": "board-x1",
            "firmware_base64": base64.b64encode(b"\x7fELF 3.0.0" * 100).decode()})
        refused = await agent.call_tool("device_rollouts_start", {"project": "alpha", "release": release["id"],
                                                                  "groups": [{"group": "canary"}]})
        assert refused.is_error and "release_not_approved" in refused.content[0].text, refused.content[0].text
        status, decided = await api("POST", f"{RELEASES}/{release['id']}/decisions", user="frank",
                                    body={"decision": "approve"})
        assert status == 200 and decided["state"] == "approved", decided
        fleet = SimulatedFleet(devices, tmp_path / "fleet", failing={"early-0", "early-1"}, first_poll_spread=0.2,
                               threads=4, long_poll=5)
        try:
            followed, _ = await asyncio.gather(
                call(agent, "device_rollouts_start", {
                    "release": release["id"], "poll_seconds": 0.5, "wait_seconds": 90,
                    "groups": [{"group": "canary", "success_threshold": 100, "error_threshold": 0},
                               {"group": "early", "success_threshold": 100, "error_threshold": 25}]},
                    progress_callback=on_progress),
                fleet.run(lambda f: f.count("failed") >= 2, timeout=90))
        finally:
            fleet.close()
        fleet_now = await call(agent, "devices_fleet", {})
    assert followed["state"] == "stopped" and "2 of 4 devices of group 'early'" in followed["message"], followed
    assert [wave["installed"] for wave in followed["waves"]][0] == 2, followed["waves"]
    assert progress and progress[-1].endswith(": stopped"), progress
    assert fleet_now["devices"] == 6 and fleet_now["groups"] == {"canary": 2, "early": 4}, fleet_now


async def test_a_restarted_controller_goes_on_where_the_rollout_was(
        api: Any, jp_serverapp: Any, jp_http_port: int, jp_base_url: str, tmp_path: Path) -> None:
    """The fleet controller stopped (its last batch written) and started again, as a restarted platform does:
    the rollout is at the same group with the same reports, and the next group starts from there."""
    await make_alpha(api)
    base_url = f"http://127.0.0.1:{jp_http_port}{jp_base_url}"
    devices = {}
    for name, group in (("c-0", "canary"), ("e-0", "early"), ("e-1", "early")):
        status, answer = await api("POST", "projects/alpha/devices", user="dave",
                                   body={"name": name, "hardware": "board-x1", "group": group})
        devices[name] = Provisioned.from_answer(base_url, answer)
    release = await firmware_release(api, "1.0.0", b"image one")
    status, rollout = await api("POST", f"{RELEASES}/{release}/device-rollouts", user="dave", body={
        "groups": [{"group": "canary"}, {"group": "early"}], "poll_seconds": 0.3})
    assert status == 201, rollout
    canary = SimulatedFleet({"c-0": devices["c-0"]}, tmp_path / "fleet", first_poll_spread=0.1, threads=1)
    try:
        assert await canary.run(lambda f: f.count("reported") == 1, timeout=30)
    finally:
        canary.close()
    controller = jp_serverapp.web_app.settings["aitip"].fleet
    await controller.stop()
    controller.rollouts.clear()
    controller.devices.clear()
    controller.by_token.clear()
    await controller.start()
    status, found = await api("GET", f"projects/alpha/device-rollouts/{rollout['id']}", user="bob")
    assert (found["state"], found["group_index"]) == ("running", 1), found
    assert [(wave["installed"], wave["assigned"], wave["started"]) for wave in found["waves"]] == [
        (1, 0, True), (0, 2, True)], found
    early = SimulatedFleet({name: devices[name] for name in ("e-0", "e-1")}, tmp_path / "fleet",
                           first_poll_spread=0.1, threads=2)
    try:
        assert await early.run(lambda f: f.count("reported") == 2, timeout=30)
    finally:
        early.close()
    status, done = await api("GET", f"projects/alpha/device-rollouts/{rollout['id']}", user="bob")
    assert done["state"] == "succeeded", done


async def test_two_rollouts_started_at_once_for_the_same_hardware_make_one(api: Any, jp_serverapp: Any) -> None:
    import asyncio

    await make_alpha(api)
    assert (await api("POST", "projects/alpha/devices", user="dave",
                      body={"name": "d1", "hardware": "board-x1", "group": "canary"}))[0] == 201
    first = await firmware_release(api, "1.0.0", b"one")
    second = await firmware_release(api, "1.1.0", b"two")
    answers = await asyncio.gather(*(api("POST", f"{RELEASES}/{release}/device-rollouts", user="dave",
                                         body={"groups": [{"group": "canary"}]}) for release in (first, second)))
    assert sorted(status for status, _ in answers) == [201, 409], answers
    status, listed = await api("GET", "projects/alpha/device-rollouts", user="bob")
    assert len(listed["rollouts"]) == 1, listed
