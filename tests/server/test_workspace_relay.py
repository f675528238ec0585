"""Workspace mode refuses clearly when it cannot or must not relay (the real relay runs in integration)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from aitip.identity.directory import IdentityProviderDirectory
from aitip.server.authorizer import StandalonePlatformAuthorizer
from tests.server.conftest import USERS
from tests.support.identity import TokenUsersIdentityProvider

@pytest.fixture
def platform_url() -> Iterator[str]:
    """A port bound and never listened on: refused for the whole test, and no other test's server can take it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{held.getsockname()[1]}/services/aitip/"


@pytest.fixture
def jp_server_config(platform_url: str) -> dict[str, Any]:
    return {
        "ServerApp": {
            "jpserver_extensions": {"aitip": True},
            "identity_provider_class": TokenUsersIdentityProvider,
            "authorizer_class": StandalonePlatformAuthorizer,
        },
        "TokenUsersIdentityProvider": {"users": USERS},
        "AitipExtension": {"mode": "workspace", "platform_url": platform_url, "platform_token": "server-token",
                           "directory_class": IdentityProviderDirectory},
    }


async def test_health_reports_workspace_mode(api) -> None:
    status, body = await api("GET", "health", user=None)
    assert status == 200 and body["mode"] == "workspace" and body["platform_configured"] is True


async def test_only_the_servers_owner_may_relay(api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUPYTERHUB_USER", "ann")
    status, body = await api("GET", "me", user="bob")
    assert status == 403 and "only for its owner 'ann'" in body["error"]["message"]


async def test_an_unreachable_platform_is_a_clear_503(api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUPYTERHUB_USER", "ann")
    status, body = await api("GET", "projects", user="ann")
    assert status == 503 and body["error"]["code"] == "service_unavailable"
    assert "did not answer" in body["error"]["message"]


async def test_relay_needs_credentials(api) -> None:
    status, _ = await api("GET", "me", user=None)
    assert status == 403
