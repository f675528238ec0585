"""Devices and firmware rollouts as the CLI writes them for a person, from the API's own answers."""

from __future__ import annotations

from pathlib import Path

from aitip.devices.models import DeviceList, DeviceRollout, Fleet, Provisioning
from aitip.devices.text import device_rollout_text, devices_text, fleet_text, provisioning_text

DEVICE = {"id": 7, "project": "fleet", "name": "sn-7", "hardware": "board-x1", "group": "field", "tags": ["bench"],
          "token_hint": "aitipdev_abcde", "version": None, "slot": None, "state": "registered", "message": "",
          "last_seen": None, "created_by": "dave", "created_at": "2026-12-06T10:00:00Z"}


def rollout(**changes: object) -> dict:
    answer = {"id": 3, "project": "fleet", "release": 9, "release_name": "board-fw", "version": "2.1.0",
              "target": "firmware/board-fw/2.1.0.bin", "state": "running", "group_index": 1, "poll_seconds": 5.0,
              "waves": [{"group": "canary", "success_threshold": 100, "error_threshold": 0, "devices": 4,
                         "assigned": 0, "installed": 4, "failed": 0, "withdrawn": 0, "started": True},
                        {"group": "field", "success_threshold": 95, "error_threshold": 5, "devices": 20,
                         "assigned": 15, "installed": 4, "failed": 1, "withdrawn": 0, "started": True}],
              "message": "", "created_by": "dave", "created_at": "2026-12-06T10:00:00Z",
              "updated_at": "2026-12-06T10:05:00Z"}
    answer.update(changes)
    return DeviceRollout.model_validate(answer).model_dump(mode="json")


def test_a_rollout_reads_group_by_group_with_what_each_needs_to_go_on() -> None:
    lines = device_rollout_text(rollout()).splitlines()
    assert lines[0] == "device rollout 3: board-fw 2.1.0 (release 9) — running, group 2 of 2"
    assert lines[1].startswith("target firmware/board-fw/2.1.0.bin; devices check in every 5 s; started by dave")
    assert lines[3].split() == ["GROUP", "DEVICES", "INSTALLED", "FAILURES", "TO", "INSTALL", "WITHDRAWN", "GOES", "ON",
                                "AT", "STOPS", "ABOVE"]
    assert lines[4].split()[:5] == ["✓", "canary", "4", "4", "(100"]
    assert lines[5].split()[:8] == ["▶", "field", "20", "4", "(20", "%)", "1", "(5"]
    assert lines[5].endswith("95 % installed   5 % failed")
    ended = device_rollout_text(rollout(state="succeeded", group_index=2)).splitlines()
    assert "succeeded, group 2 of 2" in ended[0] and all(line.startswith("✓") for line in ended[4:6])


def test_devices_say_when_they_were_last_seen_and_the_fleet_what_it_runs() -> None:
    seen = {**DEVICE, "id": 8, "name": "sn-8", "version": "2.1.0", "slot": "b", "state": "idle",
            "message": "running 2.1.0 from slot b", "last_seen": "2026-12-06T10:07:00Z"}
    lines = devices_text(DeviceList.model_validate({"devices": [DEVICE, seen]}).model_dump(mode="json")).splitlines()
    assert lines[0].split() == ["ID", "NAME", "GROUP", "HARDWARE", "VERSION", "SLOT", "STATE", "LAST", "SEEN",
                                "MESSAGE"]
    assert lines[1].split() == ["7", "sn-7", "field", "board-x1", "-", "-", "registered", "never", "-"]
    assert lines[2].split()[:7] == ["8", "sn-8", "field", "board-x1", "2.1.0", "b", "idle"]
    fleet = Fleet.model_validate({"project": "fleet", "devices": 2, "groups": {"field": 2}, "by_version": [
        {"version": "2.1.0", "state": "idle", "devices": 1}, {"version": None, "state": "registered", "devices": 1}]})
    shown = fleet_text(fleet.model_dump(mode="json")).splitlines()
    assert shown[:2] == ["fleet: 2 devices", "groups: field 2"]
    assert shown[5].split() == ["none", "reported", "registered", "1"]


def provisioning() -> dict:
    return Provisioning.model_validate({"device": DEVICE, "token": "aitipdev_secret", "base_url": "ota/fleet/",
                                        "trusted_root": {"signed": {}}, "release_key_pem": "PEM"}).model_dump(
        mode="json")


def test_a_provisioning_that_cannot_be_saved_says_how_to_get_another(tmp_path: Path) -> None:
    shown = provisioning_text(provisioning(), "https://hub.example.com/services/aitip/", folder=tmp_path / "gone")
    assert "aitipdev_secret" in shown and "No such file or directory" in shown and "register it again" in shown


def test_a_provisioning_is_saved_beside_others_never_over_them(tmp_path: Path) -> None:
    (tmp_path / "sn-7.json").write_text("mine")
    (tmp_path / "sn-7-7.json").write_text("mine too")
    shown = provisioning_text(provisioning(), None, folder=tmp_path)
    assert "provisioning not saved" in shown and "sn-7-7.json exists" in shown
    assert (tmp_path / "sn-7.json").read_text() == "mine"
