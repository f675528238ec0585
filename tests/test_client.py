"""Where the SDK finds the platform, and how the CLI prints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aitip.cli import table
from aitip.client import NotConfigured, resolve_endpoint, save_credentials


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AITIP_URL", "AITIP_TOKEN", "JUPYTERHUB_SERVICE_URL", "JUPYTERHUB_SERVICE_PREFIX",
                 "JUPYTERHUB_API_TOKEN", "AITIP_PLATFORM_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AITIP_CONFIG_DIR", str(tmp_path / "config"))


def test_nothing_configured_says_what_to_do() -> None:
    with pytest.raises(NotConfigured, match="aitip login"):
        resolve_endpoint()


def test_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AITIP_URL", "http://h:8000/services/aitip")
    monkeypatch.setenv("AITIP_TOKEN", "t")
    assert resolve_endpoint() == ("http://h:8000/services/aitip/api/aitip/v1/", "t")


def test_inside_a_user_server_the_own_relay_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:41234/user/ann/")
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/user/ann/")
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "server-token")
    monkeypatch.setenv("AITIP_PLATFORM_URL", "http://127.0.0.1:8181/services/aitip/")
    assert resolve_endpoint() == ("http://127.0.0.1:41234/user/ann/api/aitip/v1/", "server-token")


def test_saved_login_is_used_and_private(tmp_path: Path) -> None:
    path = save_credentials("http://hub/services/aitip/", "saved", "ann")
    assert path.stat().st_mode & 0o077 == 0
    assert json.loads(path.read_text())["user"] == "ann"
    assert resolve_endpoint() == ("http://hub/services/aitip/api/aitip/v1/", "saved")


def test_tables_align_and_say_when_empty() -> None:
    assert table([], ["name"]) == "(none)"
    rendered = table([{"name": "alpha", "role": "admin", "archived": False},
                      {"name": "b", "role": None, "archived": True}], ["name", "role", "archived"])
    assert rendered.splitlines() == ["NAME   ROLE   ARCHIVED", "alpha  admin  no", "b      -      yes"]
