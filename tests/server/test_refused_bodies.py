"""A refused request body, whatever its size, gets the platform's JSON error — on a real server, over a
hand-driven HTTP/1.1 connection (tests/server/wire.py) that shows what the server sends and when.

* With ``Expect: 100-continue``, a request refused on its headers is answered at once: no ``100 Continue``,
  and the client never sends the body.
* Without it, the server reads and drops the body, then answers, and the connection serves the next request
  (closing under an unread body would reset it; configurable-http-proxy then shows its own 503 page).
* Nothing is staged or registered.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.server.conftest import TOKENS
from tests.server.wire import Wire

KB, MB = 1000, 1000 * 1000
SIZES = {"1KB": 1 * KB, "3MB": 3 * MB, "200MB": 200 * MB}
UPLOAD = "projects/lab/datasets/users/versions?filename=users.csv"
OCTETS = "application/octet-stream"
MAX_UPLOAD = 512  # bytes: every size above is over it

# (case, user, path under api/aitip/v1/, Content-Type, status, error code, sizes)
CASES: list[tuple[str, str | None, str, str, int, str, tuple[str, ...]]] = [
    ("viewer", "bob", UPLOAD, OCTETS, 403, "forbidden", ("1KB", "3MB", "200MB")),
    ("outsider", "erin", UPLOAD, OCTETS, 404, "not_found", ("1KB", "3MB")),
    ("unknown-project", "ann", "projects/nope/datasets/users/versions?filename=users.csv", OCTETS, 404,
     "not_found", ("1KB", "3MB", "200MB")),
    ("over-max-upload", "ann", UPLOAD, OCTETS, 413, "payload_too_large", ("1KB", "3MB", "200MB")),
    # chunked: no declared size to refuse first (over MAX_UPLOAD), so the format is what is refused
    ("unknown-format-chunked", "ann", "projects/lab/datasets/users/versions?filename=users.exe", OCTETS, 422,
     "unknown_format", ("1KB", "3MB")),
    ("bad-query", "ann", "projects/lab/datasets/users/versions?filename=a.csv&filename=b.csv", OCTETS, 422,
     "invalid_input", ("3MB",)),
    ("no-token", None, UPLOAD, OCTETS, 403, "forbidden", ("1KB", "3MB")),
    ("json-wrong-type", "ann", "projects", "text/plain", 415, "unsupported_media_type", ("1KB", "3MB", "200MB")),
    ("json-too-large", "ann", "projects", "application/json", 413, "payload_too_large", ("3MB", "200MB")),
    ("unknown-route", "ann", "no/such/route", "application/json", 404, "not_found", ("1KB", "3MB")),
]
# Refused only once the body has been read: with Expect the server says 100 Continue first.
AFTER_BODY = [
    ("not-json", "ann", "projects", "application/json", 400, "invalid_encoding", ("1KB",)),
]


def _params() -> list[Any]:
    params = []
    for case, user, path, content_type, status, code, sizes in CASES:
        for size in sizes:
            for expect in (True, False):
                params.append(pytest.param(user, path, content_type, SIZES[size], "chunked" in case, expect, status,
                                           code, id=f"{case}-{size}-{'expect' if expect else 'plain'}"))
    return params


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    jp_server_config["AitipExtension"]["data_registry_path"] = str(tmp_path / "registry")
    jp_server_config["AitipExtension"]["max_upload_bytes"] = MAX_UPLOAD
    return jp_server_config


async def make_lab(api: Any) -> None:
    assert (await api("POST", "projects", body={"name": "lab"}))[0] == 201
    assert (await api("POST", "projects/lab/members", body={"user": "bob", "role": "viewer"}))[0] == 201


def headers(user: str | None, content_type: str) -> dict[str, str]:
    sent = {"Content-Type": content_type}
    if user is not None:
        sent["Authorization"] = f"token {TOKENS[user]}"
    return sent


async def assert_nothing_left(api: Any, tmp_path: Path) -> None:
    assert await api("GET", "projects/lab/datasets") == (200, {"datasets": []})
    staging = tmp_path / "staging"
    assert not staging.exists() or list(staging.iterdir()) == []
    _status, projects = await api("GET", "projects")
    assert [p["name"] for p in projects["items"]] == ["lab"]


@pytest.mark.parametrize(("user", "path", "content_type", "size", "chunked", "expect", "status", "code"), _params())
async def test_a_refused_body_gets_the_json_error(api: Any, jp_http_port: int, jp_base_url: str, tmp_path: Path,
                                                 user: str | None, path: str, content_type: str, size: int,
                                                 chunked: bool, expect: bool, status: int, code: str) -> None:
    await make_lab(api)
    async with Wire.open(jp_http_port) as wire:
        answer = await wire.exchange("POST", f"{jp_base_url}api/aitip/v1/{path}", headers(user, content_type),
                                     body_bytes=size, chunked=chunked, expect=expect)
        assert (answer.status, answer.error_code) == (status, code), answer.body[:300]
        assert answer.headers["content-type"].startswith("application/json")
        assert answer.json()["error"]["message"]
        assert answer.informational == []  # never "100 Continue" before a refusal
        if expect:
            assert answer.sent == 0, "the client was told to go ahead, or sent the body unasked"
        else:
            assert answer.sent == size
            # The body was read to its end: the connection is still good for another request.
            assert wire.reusable()
            again = await wire.exchange("GET", f"{jp_base_url}api/aitip/v1/health", {})
            assert again.status == 200
    await assert_nothing_left(api, tmp_path)


@pytest.mark.parametrize(("user", "path", "content_type", "size", "status", "code"),
                         [pytest.param(u, p, t, SIZES[s], st, c, id=f"{case}-{s}")
                          for case, u, p, t, st, c, sizes in AFTER_BODY for s in sizes])
async def test_a_body_refused_once_read_is_read_after_100_continue(api: Any, jp_http_port: int, jp_base_url: str,
                                                                    tmp_path: Path, user: str, path: str,
                                                                    content_type: str, size: int, status: int,
                                                                    code: str) -> None:
    await make_lab(api)
    async with Wire.open(jp_http_port) as wire:
        answer = await wire.exchange("POST", f"{jp_base_url}api/aitip/v1/{path}", headers(user, content_type),
                                     body_bytes=size, expect=True)
        assert (answer.status, answer.error_code, answer.informational, answer.sent) == (status, code, [100], size)
        assert wire.reusable()
    await assert_nothing_left(api, tmp_path)


async def test_an_accepted_upload_is_told_to_go_ahead(api: Any, jp_http_port: int, jp_base_url: str,
                                                      tmp_path: Path) -> None:
    """The control: the same request from a developer gets 100 Continue, sends its body, and registers."""
    await make_lab(api)
    async with Wire.open(jp_http_port) as wire:
        answer = await wire.exchange("POST", f"{jp_base_url}api/aitip/v1/{UPLOAD}", headers("ann", OCTETS),
                                     content=b"a,b\n1,2\n", expect=True)
        assert (answer.informational, answer.status) == ([100], 201), answer.body
        assert answer.json()["rows"] == 1
        assert wire.reusable()
    listing = await api("GET", "projects/lab/datasets")
    assert [d["name"] for d in listing[1]["datasets"]] == ["users"]


async def test_a_chunked_upload_over_the_limit_is_read_then_refused(api: Any, jp_http_port: int, jp_base_url: str,
                                                                    tmp_path: Path) -> None:
    """No Content-Length to refuse on: the upload is refused as it passes the limit, and the rest is read."""
    await make_lab(api)
    async with Wire.open(jp_http_port) as wire:
        answer = await wire.exchange("POST", f"{jp_base_url}api/aitip/v1/{UPLOAD}", headers("ann", OCTETS),
                                     body_bytes=3 * MB, chunked=True)
        assert (answer.status, answer.error_code, answer.sent) == (413, "payload_too_large", 3 * MB)
        assert wire.reusable()
        assert (await wire.exchange("GET", f"{jp_base_url}api/aitip/v1/health", {})).status == 200
    await assert_nothing_left(api, tmp_path)


class TestBeyondTheDiscardBound:
    """A body larger than ``discard_body_bytes`` is answered before it is read, and the connection closed."""

    @pytest.fixture
    def jp_server_config(self, jp_server_config: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
        from aitip.server.handlers import base

        monkeypatch.setattr(base, "LINGER_SECONDS", 1.0)  # this client stops sending: the linger runs out
        jp_server_config["AitipExtension"]["discard_body_bytes"] = 1 * MB
        return jp_server_config

    async def test_declared(self, api: Any, jp_http_port: int, jp_base_url: str, tmp_path: Path) -> None:
        await make_lab(api)
        async with Wire.open(jp_http_port) as wire:
            answer = await wire.exchange("POST", f"{jp_base_url}api/aitip/v1/{UPLOAD}", headers("bob", OCTETS),
                                         body_bytes=200 * MB, stop_when_answered=True)
            assert (answer.status, answer.error_code) == (403, "forbidden")
            assert answer.headers["connection"] == "close"
            assert answer.sent_before_answer < 200 * MB
            assert await wire.closed_within(60)
        await assert_nothing_left(api, tmp_path)

    async def test_chunked(self, api: Any, jp_http_port: int, jp_base_url: str, tmp_path: Path) -> None:
        await make_lab(api)
        async with Wire.open(jp_http_port) as wire:
            answer = await wire.exchange("POST", f"{jp_base_url}api/aitip/v1/{UPLOAD}", headers("bob", OCTETS),
                                         body_bytes=200 * MB, chunked=True, stop_when_answered=True)
            assert (answer.status, answer.error_code) == (403, "forbidden")
            assert answer.headers["connection"] == "close"
            assert answer.sent_before_answer < 200 * MB
            assert await wire.closed_within(60)
        await assert_nothing_left(api, tmp_path)

    async def test_within_the_bound_still_drained(self, api: Any, jp_http_port: int, jp_base_url: str,
                                                  tmp_path: Path) -> None:
        await make_lab(api)
        async with Wire.open(jp_http_port) as wire:
            answer = await wire.exchange("POST", f"{jp_base_url}api/aitip/v1/{UPLOAD}", headers("bob", OCTETS),
                                         body_bytes=MB // 2)
            assert (answer.status, answer.sent_before_answer) == (403, MB // 2)
            assert wire.reusable()


class TestJupyterMaxBodySize:
    """Bodies over the server's ``max_body_size``, which tornado would drop with a bare 400, get JSON."""

    @pytest.fixture
    def jp_server_config(self, jp_server_config: dict[str, Any]) -> dict[str, Any]:
        jp_server_config["ServerApp"]["max_body_size"] = 1 * MB
        return jp_server_config

    @pytest.mark.parametrize("size", [3 * MB, 200 * MB])
    async def test_json_route(self, api: Any, jp_http_port: int, jp_base_url: str, tmp_path: Path,
                              size: int) -> None:
        await make_lab(api)
        async with Wire.open(jp_http_port) as wire:
            answer = await wire.exchange("POST", f"{jp_base_url}api/aitip/v1/projects",
                                         headers("ann", "application/json"), body_bytes=size)
            assert (answer.status, answer.error_code) == (413, "payload_too_large")
            assert wire.reusable()

    async def test_upload_route(self, api: Any, jp_http_port: int, jp_base_url: str, tmp_path: Path) -> None:
        await make_lab(api)
        async with Wire.open(jp_http_port) as wire:
            answer = await wire.exchange("POST", f"{jp_base_url}api/aitip/v1/{UPLOAD}", headers("bob", OCTETS),
                                         body_bytes=3 * MB)
            assert (answer.status, answer.error_code) == (403, "forbidden")
            assert wire.reusable()


async def test_a_client_that_honours_expect_and_stays_is_let_go(api: Any, jp_http_port: int, jp_base_url: str,
                                                                 tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """After the early answer the server waits for a body that may still come (a proxy sends it anyway);
    a client that neither sends it nor leaves is not waited for forever (nor before the answer)."""
    from aitip.server.handlers import base

    monkeypatch.setattr(base, "REFUSED_BODY_IDLE_SECONDS", 1.0)
    await make_lab(api)
    async with Wire.open(jp_http_port) as wire:
        answer = await wire.exchange("POST", f"{jp_base_url}api/aitip/v1/{UPLOAD}", headers("bob", OCTETS),
                                     body_bytes=3 * MB, expect=True)
        assert (answer.status, answer.sent) == (403, 0)
        assert await asyncio.wait_for(wire.closed_within(120), 130)


def test_notebook_routes_collect_what_their_handlers_accept() -> None:
    """The operations whose body carries a notebook collect bodies up to NOTEBOOK_BODY_BYTES, and only they."""
    from aitip.operations import operations
    from aitip.server.handlers import base

    carrying = {row.action for row in operations() if row.body is not None
                and {"notebook", "notebook_document"} & set(row.body.model_fields)}
    assert carrying == base.NOTEBOOK_ACTIONS == {"job.submit", "sweep.create", "evaluation.run", "evaluation.manage"}


@pytest.mark.parametrize(("path", "status", "code"), [("jobs", 400, "invalid_json"),
                                                      ("projects", 413, "payload_too_large")])
async def test_json_limits_are_per_route(api: Any, jp_http_port: int, jp_base_url: str, path: str, status: int,
                                         code: str) -> None:
    """2 MB: over max_body_bytes (1 MiB), within a notebook's 16 MiB (read, then found not to be JSON)."""
    async with Wire.open(jp_http_port) as wire:
        answer = await wire.exchange("POST", f"{jp_base_url}api/aitip/v1/{path}", headers("ann", "application/json"),
                                     content=b"{" * (2 * MB))
        assert (answer.status, answer.error_code) == (status, code), answer.body[:200]
