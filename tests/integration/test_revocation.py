"""Revocation and role changes take effect on the next request (through the real hub and proxy): a revoked
hub token kept working for about five minutes (JupyterHub's token-lookup cache) and a removed admin flag for
ten seconds (the platform's directory cache)."""

from __future__ import annotations

import pytest

from tests.support.platform import RunningPlatform

pytestmark = pytest.mark.integration


def test_a_revoked_token_is_refused_on_the_next_request(platform: RunningPlatform, people: dict[str, str]) -> None:
    token = platform.token("carol", "carol-pass-1234")
    with platform.api(token) as api, platform.hub_api(people["admin"]) as hub:
        assert api.get("me").status_code == 200
        assert api.post("projects", json={"name": "revoked-first"}).status_code == 201  # a write, cached or not
        newest = max(hub.get("users/carol/tokens").json()["api_tokens"], key=lambda entry: int(entry["id"][1:]))
        assert hub.delete(f"users/carol/tokens/{newest['id']}").status_code == 204
        read, write = api.get("me"), api.post("projects", json={"name": "revoked-after"})
    assert (read.status_code, write.status_code) == (403, 403), (read.text, write.text)


def test_a_removed_admin_flag_is_gone_on_the_next_request(platform: RunningPlatform, people: dict[str, str]) -> None:
    with platform.hub_api(people["admin"]) as hub, platform.api(people["bob"]) as bob:
        assert hub.patch("users/bob", json={"admin": True}).status_code == 200
        assert bob.get("me").json()["admin"] is True
        assert bob.post("projects", json={"name": "bobs-admin-check"}).status_code == 201
        assert bob.get("projects/revoked-first").status_code == 200  # as admin: every project
        assert hub.patch("users/bob", json={"admin": False}).status_code == 200
        me, other = bob.get("me").json(), bob.get("projects/revoked-first")
    assert me["admin"] is False and other.status_code == 404


def test_refusals_keep_the_proxys_connection_usable(platform: RunningPlatform) -> None:
    """A request refused on its headers, then another on the same connection through the hub's proxy: a
    handler that answered from prepare() made tornado close the connection unannounced, and the proxy
    answered the next request with its 503 page (about one in three here)."""
    with platform.api("not-a-token-at-all") as api:
        answers = [(api.get("me").status_code, api.post("projects", json={"name": f"x{i}"}).status_code)
                   for i in range(30)]
    assert set(answers) == {(403, 403)}, answers
