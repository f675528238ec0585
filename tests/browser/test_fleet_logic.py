"""The Releases page's device parts without a browser: a firmware release's title and evidence, its rollouts to
device groups as rows and bars, and the fleet chart — on answers shaped by the devices API's own models."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from aitip.devices.models import DeviceRollout, Fleet
from panel_apps import fleet_views
from panel_apps.language import use_language
from panel_apps.release_views import evidence_html, title_html
from tests.browser.test_release_logic import release

AT = datetime(2026, 12, 5, 9, 30, tzinfo=timezone.utc)


def rollout(state: str = "running", group_index: int = 1) -> dict[str, Any]:
    waves = [{"group": "canary", "success_threshold": 100, "error_threshold": 0, "devices": 2, "assigned": 0,
              "installed": 2, "failed": 0, "started": True},
             {"group": "field", "success_threshold": 90, "error_threshold": 10, "devices": 10, "assigned": 6,
              "installed": 3, "failed": 1, "started": True},
             {"group": "rest", "success_threshold": 100, "error_threshold": 5, "devices": 40, "assigned": 0,
              "installed": 0, "failed": 0, "started": False}]
    return DeviceRollout.model_validate({
        "id": 4, "project": "vision", "release": 1, "release_name": "board-fw", "version": "2.0.0",
        "target": "firmware/board-fw/2.0.0.bin", "state": state, "group_index": group_index, "poll_seconds": 30,
        "waves": waves, "message": "", "created_by": "dave", "created_at": AT, "updated_at": AT}).model_dump(mode="json")


def firmware_release(**changes: Any) -> dict[str, Any]:
    fields = dict(kind="firmware", name="board-fw", version="2.0.0", model=None, model_version=None, dataset=None,
                  dataset_version=None, evidence=[], firmware={"sha256": "ab" * 32, "length": 9728,
                                                               "hardware": "board-x1"})
    return release(**{**fields, **changes})


def test_a_firmware_release_says_what_it_is_and_why_it_carries_no_evidence() -> None:
    with use_language("en"):
        assert "firmware for board-x1, 9.5 KiB" in title_html(firmware_release())
        assert "embeds no model version" in evidence_html(firmware_release())
    with use_language("zh_CN"):
        assert "board-x1 的固件，9.5 KiB" in title_html(firmware_release())


def test_firmware_with_a_model_shows_the_model_evidence_and_the_image() -> None:
    with use_language("en"):
        chain = evidence_html(firmware_release(model="digits", model_version=2, dataset="digits", dataset_version=1,
                                               evidence=release()["evidence"]))
    assert "evaluation 3: passed" in chain and "firmware image for board-x1, SHA-256 abababababab" in chain


def test_device_rollouts_read_as_rows_and_group_bars() -> None:
    with use_language("en"):
        frame = fleet_views.device_rollouts_frame([rollout()])
        bars = fleet_views.waves_html(rollout())
    row = frame.iloc[0]
    assert row["group"] == "field (2 / 3)" and row["installed"] == "5 / 52" and "data-state='running'" in row["state"]
    assert "3 of 10 installed, 1 failed" in bars and "next group at 90 %, stop above 10 % failed" in bars
    assert "data-group='rest' data-started='false'" in bars and "waiting" in bars
    assert "width:30.0%" in bars and "width:10.0%" in bars
    with use_language("zh_CN"):
        assert "紧急停止" in fleet_views.device_rollouts_frame([rollout("stopped")]).iloc[0]["state"]


def test_the_fleet_chart_stacks_devices_per_version_by_state() -> None:
    fleet = Fleet.model_validate({"project": "vision", "devices": 7, "groups": {"canary": 2, "field": 5},
                                  "by_version": [{"version": "1.0.0", "state": "idle", "devices": 4},
                                                 {"version": "1.0.0", "state": "failed", "devices": 1},
                                                 {"version": None, "state": "registered", "devices": 2}]})
    with use_language("en"):
        chart = fleet_views.fleet_figure(fleet.model_dump(mode="json"))
        empty = fleet_views.fleet_figure({"project": "vision", "devices": 0, "groups": {}, "by_version": []})
    assert list(chart.y_range.factors) == ["1.0.0", "none yet"] and "devices-7" in chart.css_classes
    source = chart.renderers[0].data_source.data
    assert source["idle"] == [4, 0] and source["failed"] == [1, 0] and source["registered"] == [0, 2]
    assert "empty" in empty.css_classes
    assert chart.right == [chart.legend[0]] and chart.center.count(chart.legend[0]) == 0  # beside the bars


def test_a_test_run_reads_as_a_link_of_the_evidence_chain() -> None:
    base = release()
    test_run = {**base["evidence"][0], "kind": "test_run", "id": 12, "state": "succeeded", "notebook": "smoke.ipynb",
                "job_id": 12}
    with use_language("en"):
        chain = evidence_html(release(evidence=[*base["evidence"], test_run]))
    assert "test run: job 12 of smoke.ipynb succeeded" in chain
