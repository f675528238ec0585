"""``aitip-device`` against the platform: enrolled from the registration's answer, it checks in, installs the
firmware it is told to (TUF, the release signature, the other slot) and reports; ``status`` shows the slots."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from aitip.device_client import cli
from tests.devices.test_device_rollouts_api import RELEASES, firmware_release
from tests.releases.test_releases_api import make_alpha
from tests.support.cli import cli_runner


async def test_a_device_enrols_installs_and_reports(api: Any, jp_serverapp: Any, jp_http_port: int, jp_base_url: str,
                                                   tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Registered by a person (no --json): the CLI keeps the provisioning, whose token it shows only once, in a
    file the device enrolls from with the command it prints."""
    await make_alpha(api)
    platform = f"http://127.0.0.1:{jp_http_port}{jp_base_url}"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sn-1.json").write_text("someone's own file")
    code, shown, _ = await asyncio.to_thread(cli_runner(platform), "devices", "register", "--project", "alpha",
                                             "--name", "sn-1", "--hardware", "board-x1", "--group", "canary",
                                             user="dave")
    assert code == 0, shown
    saved = tmp_path / "sn-1-1.json"
    assert (tmp_path / "sn-1.json").read_text() == "someone's own file", "never written over"
    assert saved.stat().st_mode & 0o077 == 0 and json.loads(saved.read_text())["token"] in shown
    enroll = shown.splitlines()[-1].split()
    assert enroll[:6] == ["aitip-device", "enroll", "--state-dir", "DIR", "--platform", platform], shown
    state = tmp_path / "device"
    assert await asyncio.to_thread(cli.main, ["enroll", "--state-dir", str(state), *enroll[4:]]) == 0
    assert (state / cli.PROVISIONED).stat().st_mode & 0o077 == 0, "the token is the device's secret"
    release = await firmware_release(api, "1.0.0", b"\x7fELF cli" * 64)
    status, rollout = await api("POST", f"{RELEASES}/{release}/device-rollouts", user="dave",
                                body={"groups": [{"group": "canary"}]})
    assert status == 201, rollout
    assert await asyncio.to_thread(cli.main, ["run", "--state-dir", str(state), "--once", "--wait", "0"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [event["event"] for event in events] == ["enrolled", "installing", "installed"], events
    assert events[-1]["message"] == "running 1.0.0 from slot b"
    assert await asyncio.to_thread(cli.main, ["status", "--state-dir", str(state)]) == 0
    assert json.loads(capsys.readouterr().out) == {"active": "b", "version": "1.0.0",
                                                   "slots": {"a": None, "b": "1.0.0"}}
    assert await asyncio.to_thread(cli.main, ["run", "--state-dir", str(state), "--once", "--wait", "0"]) == 0
    quiet = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(event["event"], event["version"]) for event in quiet] == [("up to date", "1.0.0")], quiet
    assert quiet[0]["next_check_in_seconds"] > 0
    status, done = await api("GET", f"projects/alpha/device-rollouts/{rollout['id']}", user="bob")
    assert done["state"] == "succeeded", done


def test_enrolling_refuses_what_is_no_registration(tmp_path: Path) -> None:
    (tmp_path / "other.json").write_text(json.dumps({"device": {}}))
    with pytest.raises(SystemExit, match="not a devices.register answer"):
        cli.main(["enroll", "--state-dir", str(tmp_path / "d"), "--platform", "http://x/", str(tmp_path / "other.json")])
