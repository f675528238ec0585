"""The fleet controller's settings come from the server's configuration: a device with nothing to install is
told to check in again after ``FleetController.idle_poll_seconds``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.devices.test_device_rollouts_api import device_call
from tests.releases.test_releases_api import make_alpha


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    jp_server_config["FleetController"] = {"idle_poll_seconds": 42.0}
    return jp_server_config


async def test_an_idle_device_polls_as_configured(api: Any, jp_serverapp: Any, jp_http_port: int,
                                                 jp_base_url: str) -> None:
    await make_alpha(api)
    status, answer = await api("POST", "projects/alpha/devices", user="dave",
                               body={"name": "d1", "hardware": "board-x1"})
    assert status == 201, answer
    status, said = await device_call(f"http://127.0.0.1:{jp_http_port}{jp_base_url}", "ota/alpha/check-in",
                                     answer["token"], body={"version": None, "slot": "a"})
    assert status == 200 and (said["action"], said["poll_seconds"]) == ("none", 42.0), said
