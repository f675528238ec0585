"""The MCP face, driven by the MCP SDK's own client over streamable HTTP against the real platform server."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from aitip.identity.permissions import permission
from aitip.identity.roles import Role
from aitip.operations import tools
from tests.server.conftest import TOKENS
from tests.support.notebooks import TRIVIAL

pytest.importorskip("mcp")


@contextlib.asynccontextmanager
async def mcp_client(port: int, base_url: str, user: str) -> AsyncIterator[Any]:
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    async with create_mcp_http_client(headers={"Authorization": f"Bearer {TOKENS[user]}"}) as http_client:
        transport = streamable_http_client(f"http://127.0.0.1:{port}{base_url}mcp", http_client=http_client)
        async with Client(transport) as client:
            yield client


def least_role(tool_name: str) -> Role | None:
    return permission(tools.by_name()[tool_name].row.action).min_role


async def test_tools_list_shows_what_the_caller_may_do_and_calls_are_checked_again(
        api: Any, jp_http_port: int, jp_base_url: str) -> None:
    assert (await api("POST", "projects", body={"name": "alpha"}))[0] == 201
    assert (await api("POST", "projects/alpha/members", body={"user": "bob", "role": "viewer"}))[0] == 201

    async with mcp_client(jp_http_port, jp_base_url, "ann") as client:
        offered = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert {"projects_create", "jobs_submit", "members_add", "runs_compare", "webhooks_subscribe"} <= set(offered)
        assert offered["runs_compare"].input_schema["required"][0] == "project"
        project = await client.call_tool("projects_get", {"project": "alpha"})
        assert not project.is_error and project.structured_content["name"] == "alpha"
        assert project.structured_content["my_role"] == "admin"

    async with mcp_client(jp_http_port, jp_base_url, "bob") as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        writes = {name for name in names if (least_role(name) or Role.viewer).rank > Role.viewer.rank}
        assert writes == set() and "runs_list" in names and "projects_update" not in names
        refused = await client.call_tool("projects_update", {"project": "alpha", "description": "mine now"})
        assert refused.is_error and json.loads(refused.content[0].text)["error"]["code"] == "forbidden"
        read = await client.call_tool("projects_get", {"project": "alpha"})
        assert read.structured_content["description"] == ""

    async with mcp_client(jp_http_port, jp_base_url, "erin") as client:  # in no project: no project tools
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert "projects_get" not in names and {"projects_list", "projects_create", "platform_me"} <= names


async def test_bad_arguments_and_unknown_tools_are_clear_errors_that_write_nothing(
        api: Any, jp_http_port: int, jp_base_url: str) -> None:
    async with mcp_client(jp_http_port, jp_base_url, "ann") as client:
        bad = await client.call_tool("projects_create", {"name": "Not A Name"})
        assert bad.is_error and json.loads(bad.content[0].text)["error"]["code"] == "invalid_input"
        extra = await client.call_tool("projects_create", {"name": "beta", "owner": "eve"})
        assert extra.is_error and "owner" in extra.content[0].text
        unknown = await client.call_tool("projects_explode", {})
        assert unknown.is_error
    assert (await api("GET", "projects"))[1]["total"] == 0


async def test_a_long_operation_returns_its_handle_and_reports_progress_while_the_caller_waits(
        api: Any, jp_http_port: int, jp_base_url: str) -> None:
    assert (await api("POST", "projects", body={"name": "alpha"}))[0] == 201
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append((done, total, message))

    async with mcp_client(jp_http_port, jp_base_url, "ann") as client:
        at_once = await client.call_tool("jobs_submit", {"project": "alpha", "notebook": TRIVIAL})
        assert not at_once.is_error and at_once.structured_content["state"] == "queued"
        waited = await client.call_tool("jobs_submit", {"project": "alpha", "notebook": TRIVIAL, "wait_seconds": 1},
                                        progress_callback=on_progress)
        # No worker runs jobs in this server: the wait ends with the job still queued, said as progress.
        assert waited.structured_content["state"] == "queued"
        assert progress and progress[0][2] == f"jobs.submit {waited.structured_content['id']}: queued"
    status, jobs = await api("GET", "jobs")
    assert status == 200 and jobs["total"] == 2


async def test_without_a_token_the_endpoint_refuses(api: Any, jp_http_port: int, jp_base_url: str) -> None:
    async with httpx.AsyncClient(timeout=30) as plain:
        refused = await plain.post(f"http://127.0.0.1:{jp_http_port}{jp_base_url}mcp",
                                   json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
        wrong = await plain.post(f"http://127.0.0.1:{jp_http_port}{jp_base_url}mcp", headers={
            "Authorization": "Bearer not-a-token"}, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert (refused.status_code, wrong.status_code) == (403, 403)


async def test_the_first_calls_make_the_face_once_and_it_answers_from_then_on(
        api: Any, jp_serverapp: Any, jp_http_port: int, jp_base_url: str) -> None:
    face = jp_serverapp.web_app.settings["aitip_mcp"]
    assert face.managers == []  # a platform no agent has called has not made its MCP server

    async def first_call(user: str) -> set[str]:
        async with mcp_client(jp_http_port, jp_base_url, user) as client:
            return {tool.name for tool in (await client.list_tools()).tools}

    seen = await asyncio.gather(*(first_call(user) for user in ("ann", "ann", "erin")))
    assert len(face.managers) == 2 and seen[0] == seen[1] and "projects_create" in seen[2]
    made = list(face.managers)
    assert "projects_list" in await first_call("ann") and face.managers == made


# ----- a dataset version registered by an agent: the file inline, through the upload's own path -----

CSV = b"id,score\n1,0.5\n2,0.7\n"


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any], tmp_path: Any) -> dict[str, Any]:
    jp_server_config["AitipExtension"]["data_registry_path"] = str(tmp_path / "registry")
    jp_server_config["AitipExtension"]["max_upload_bytes"] = 1024  # the registry's own limit, below the inline one
    return jp_server_config


async def make_lab(api: Any) -> None:
    assert (await api("POST", "projects", body={"name": "lab"}))[0] == 201
    assert (await api("POST", "projects/lab/members", body={"user": "bob", "role": "viewer"}))[0] == 201
    assert (await api("POST", "projects/lab/members", body={"user": "dave", "role": "developer"}))[0] == 201


def inline(content: bytes) -> str:
    return base64.b64encode(content).decode()


async def test_an_agent_registers_a_dataset_version_with_the_file_inline(
        api: Any, jp_http_port: int, jp_base_url: str) -> None:
    """registrations_create answers at once with a handle; with wait_seconds it follows the handle, telling
    each step, and answers with the end."""
    await make_lab(api)
    progress: list[str | None] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append(message)

    async with mcp_client(jp_http_port, jp_base_url, "dave") as client:
        offered = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert "datasets_register" not in offered  # the waiting twin is REST's and the SDK's
        tool = offered["registrations_create"]
        assert tool.input_schema["properties"]["content_base64"]["contentEncoding"] == "base64"
        assert "at most 16777216 bytes" in tool.description and "wait_seconds" in tool.input_schema["properties"]
        arguments = {"project": "lab", "dataset": "scores", "filename": "scores.csv", "content_base64": inline(CSV),
                     "message": "from an agent"}
        handle = await client.call_tool("registrations_create", arguments)
        assert not handle.is_error, handle.content[0].text
        started = handle.structured_content
        assert started["state"] == "working" and started["version"] is None and started["created_by"] == "dave"
        followed = await client.call_tool("registrations_get", {"project": "lab", "dataset": "scores",
                                                                "registration": started["id"]})
        waited = await client.call_tool("registrations_create", {**arguments, "message": "waited for",
                                                                 "wait_seconds": 60},
                                        progress_callback=on_progress)
    assert not followed.is_error and followed.structured_content["id"] == started["id"]
    assert not waited.is_error, waited.content[0].text
    end = waited.structured_content
    assert (end["state"], end["step"], end["error"]) == ("registered", "done", None)
    assert progress[0].startswith(f"registrations.create {end['id']}: working (")
    assert progress[-1] == f"registrations.create {end['id']}: registered"
    first = started
    while first["state"] == "working":  # the one not waited for ends on its own
        await asyncio.sleep(0.05)
        first = (await api("GET", f"projects/lab/datasets/scores/registrations/{started['id']}"))[1]
    assert first["state"] == "registered", first
    status, versions = await api("GET", "projects/lab/datasets/scores/versions", user="bob")
    assert status == 200 and sorted(v["message"] for v in versions["versions"]) == ["from an agent", "waited for"]
    version = next(v for v in versions["versions"] if v["version"] == end["version"])
    assert (version["rows"], version["format"], version["author"]) == (2, "csv", "dave")
    assert version["content_md5"] == hashlib.md5(CSV).hexdigest()


@pytest.mark.parametrize(("user", "arguments", "code", "says"), [
    ("dave", {"content_base64": "not base64!"}, "invalid_input", "not valid base64"),
    ("dave", {"content_base64": inline(b"x" * 5000)}, "payload_too_large", "at most 4096 bytes"),
    ("dave", {"content_base64": inline(b"x" * 2000)}, "payload_too_large", "limit of 1024 bytes"),
    ("dave", {"content_base64": ""}, "invalid_input", "empty"),
    ("dave", {"filename": "scores.exe"}, "unknown_format", "cannot tell the format"),
    ("dave", {"filename": "..\\scores.csv"}, "bad_filename", "path separators"),
    ("dave", {"dataset": "Not A Name"}, "invalid_input", "dataset"),
    ("bob", {}, "forbidden", "developer"),
], ids=["bad base64", "over the inline limit", "over the upload limit", "empty", "unknown format",
        "folders in the name", "bad dataset name", "viewer"])
async def test_a_refused_registration_is_a_tool_error_that_leaves_nothing(
        api: Any, jp_http_port: int, jp_base_url: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch,
        user: str, arguments: dict[str, Any], code: str, says: str) -> None:
    await make_lab(api)
    monkeypatch.setenv("AITIP_MAX_INLINE_FILE_BYTES", "4096")
    async with mcp_client(jp_http_port, jp_base_url, user) as client:
        refused = await client.call_tool("registrations_create", {
            "project": "lab", "dataset": "scores", "filename": "scores.csv", "content_base64": inline(CSV),
            **arguments})
    assert refused.is_error
    error = json.loads(refused.content[0].text)["error"]
    assert error["code"] == code and says in error["message"], error
    assert await api("GET", "projects/lab/datasets") == (200, {"datasets": []})
    assert await api("GET", "projects/lab/datasets/scores/registrations") == (200, {"registrations": []})
    staging = tmp_path / "staging"
    assert not staging.exists() or list(staging.iterdir()) == []


async def test_the_quality_gate_holds_for_an_agent(api: Any, jp_http_port: int, jp_base_url: str) -> None:
    await make_lab(api)
    arguments = {"project": "lab", "dataset": "scores", "filename": "scores.csv", "content_base64": inline(CSV),
                 "wait_seconds": 60}
    async with mcp_client(jp_http_port, jp_base_url, "dave") as client:
        first = await client.call_tool("registrations_create", arguments)
        assert first.structured_content["state"] == "registered", first.content[0].text
        assert (await api("PATCH", "projects/lab/datasets/scores", body={"quality_rules": {"min_rows": 5}}))[0] == 200
        second = await client.call_tool("registrations_create", arguments)
    end = second.structured_content
    assert not second.is_error and end["state"] == "rejected" and end["version"] is None
    assert end["error"]["code"] == "quality_gate_failed" and end["error"]["detail"]["failures"]
    status, versions = await api("GET", "projects/lab/datasets/scores/versions")
    assert status == 200 and [v["version"] for v in versions["versions"]] == [1]


async def test_a_call_as_large_as_a_file_inline_reaches_the_tool(api: Any, jp_http_port: int,
                                                                 jp_base_url: str) -> None:
    """The SDK's transport refuses bodies over 4 MiB by default; the face takes a whole inline file (here
    refused by the registry's own, smaller, limit: the service answered, not the transport)."""
    await make_lab(api)
    content = b"id\n" + b"1\n" * (3 << 20)
    async with mcp_client(jp_http_port, jp_base_url, "dave") as client:
        refused = await client.call_tool("registrations_create", {
            "project": "lab", "dataset": "big", "filename": "big.csv", "content_base64": inline(content)})
    error = json.loads(refused.content[0].text)["error"]
    assert error["code"] == "payload_too_large" and "limit of 1024 bytes" in error["message"], error


@pytest.mark.parametrize(("meta", "padding", "media_type"), [
    (None, 0, "application/json"),
    ({"progressToken": "p-1"}, 0, "text/event-stream"),
    (None, 80 * 1024, "text/event-stream"),  # past the look-ahead: streamed on, not read whole
], ids=["no progress asked", "progress asked", "large body"])
async def test_a_call_that_asks_no_progress_is_answered_as_plain_json(
        api: Any, jp_http_port: int, jp_base_url: str, meta: Any, padding: int, media_type: str) -> None:
    """No event stream to set up and parse where no notification can come before the answer."""
    assert (await api("POST", "projects", body={"name": "alpha"}))[0] == 201
    params: dict[str, Any] = {"name": "projects_get", "arguments": {"project": "alpha"}}
    if meta is not None:
        params["_meta"] = meta
    body = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": params, "padding": "x" * padding}
    async with httpx.AsyncClient() as http:
        response = await http.post(f"http://127.0.0.1:{jp_http_port}{jp_base_url}mcp", json=body, headers={
            "Authorization": f"Bearer {TOKENS['ann']}", "Accept": "application/json, text/event-stream",
            "MCP-Protocol-Version": "2025-06-18"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].split(";")[0] == media_type
    text = response.text if media_type == "application/json" else next(
        line[len("data: "):] for line in response.text.splitlines() if line.startswith("data: {"))
    answer = json.loads(text)
    assert answer["id"] == 7 and answer["result"]["structuredContent"]["name"] == "alpha"


@pytest.mark.parametrize(("body", "token"), [
    (b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "x"}}', None),
    (b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"_meta": {"progressToken": 3}}}', 3),
    (b'[{"jsonrpc": "2.0", "id": 1, "method": "ping"}]', True),
    (b"not json", True),
])
def test_progress_token_reads_what_the_request_asks(body: bytes, token: Any) -> None:
    from aitip.server.mcp import progress_token

    assert progress_token(body) == token
