"""The ASGI bridge (``aitip.server.asgi``) served by a real tornado server: the request as the application sees
it, bodies in and out, Server-Sent Events as they are written, a client that goes away, the body limit, the
scope hook, the context holder, and the MCP SDK's streamable HTTP transport driven by the SDK's own client."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import pytest
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from tornado import web
from tornado.httpclient import HTTPClientError
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from aitip.server.asgi import AsgiHandler, AsyncContextHolder

MiB = 1024 * 1024


@contextlib.asynccontextmanager
async def serving(*handlers: Any) -> AsyncIterator[str]:
    """A tornado server on a free port with these URL specs; yields its base URL."""
    sockets = bind_sockets(0, "127.0.0.1")
    server = HTTPServer(web.Application(list(handlers)))
    server.add_sockets(sockets)
    try:
        yield f"http://127.0.0.1:{sockets[0].getsockname()[1]}"
    finally:
        server.stop()
        await server.close_all_connections()


async def raw_exchange(base: str, head: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection to the server with ``head`` (a request's head, without the blank line) sent on it."""
    host, port = base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(head.replace("\n", "\r\n").encode() + b"\r\n\r\n")
    await writer.drain()
    return reader, writer


async def describe_request(request: Request) -> JSONResponse:
    scope = request.scope
    return JSONResponse({
        "name": request.path_params["name"],
        "query": dict(request.query_params),
        "method": scope["method"],
        "path": scope["path"],
        "raw_path": scope["raw_path"].decode(),
        "root_path": scope["root_path"],
        "http_version": scope["http_version"],
        "scheme": scope["scheme"],
        "client": list(scope["client"]),
        "server": list(scope["server"]),
        "probe": [value.decode() for name, value in scope["headers"] if name == b"x-probe"],
        "state": scope["state"],
    })


async def echo(request: Request) -> Response:
    body, messages = bytearray(), 0
    async for chunk in request.stream():
        body += chunk
        messages += 1
    return Response(bytes(body), media_type="application/octet-stream", headers={"x-messages": str(messages)})


DEMO_APP = Starlette(routes=[Route("/things/{name}", describe_request), Route("/echo", echo, methods=["POST"])])
DEMO_PREFIX = "/services/demo"
DEMO_SPEC = (DEMO_PREFIX + "(?:/.*)?", AsgiHandler, {"asgi_app": DEMO_APP, "root_path": DEMO_PREFIX})


async def test_the_app_sees_the_request_as_an_asgi_server_passes_it() -> None:
    async with serving(DEMO_SPEC) as base, httpx.AsyncClient(base_url=base) as client:
        response = await client.get(f"{DEMO_PREFIX}/things/a%20b?x=1&y=two", headers={"X-Probe": "yes"})
        assert response.status_code == 200
        assert response.json() == {
            "name": "a b",
            "query": {"x": "1", "y": "two"},
            "method": "GET",
            "path": "/services/demo/things/a b",
            "raw_path": "/services/demo/things/a%20b",
            "root_path": DEMO_PREFIX,
            "http_version": "1.1",
            "scheme": "http",
            "client": ["127.0.0.1", response.json()["client"][1]],
            "server": ["127.0.0.1", int(base.rsplit(":", 1)[1])],
            "probe": ["yes"],
            "state": {},
        }
        assert response.headers["content-type"] == "application/json"
        assert int(response.headers["content-length"]) == len(response.content)
        assert "etag" not in response.headers

        # No ETag of tornado's, so no 304 the application never chose.
        cached = await client.get(f"{DEMO_PREFIX}/things/x", headers={"If-None-Match": "*"})
        assert cached.status_code == 200 and cached.json()["name"] == "x"

        # The application's own 404, not tornado's.
        missing = await client.get(f"{DEMO_PREFIX}/nothing")
        assert (missing.status_code, missing.text) == (404, "Not Found")


async def chunks_of(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start:start + size]


@pytest.mark.parametrize("size, chunked", [(10, False), (8 * MiB, False), (8 * MiB, True)],
                         ids=["small", "8MiB-with-length", "8MiB-chunked"])
async def test_a_posted_body_reaches_the_app_whole_and_in_pieces(size: int, chunked: bool) -> None:
    body = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    content = chunks_of(body, 100_000) if chunked else body
    async with serving(DEMO_SPEC) as base, httpx.AsyncClient(base_url=base, timeout=30) as client:
        response = await client.post(f"{DEMO_PREFIX}/echo", content=content)
    assert response.status_code == 200
    assert response.content == body
    if size > MiB:
        assert int(response.headers["x-messages"]) > 1  # streamed through, not gathered first


class EventStream:
    """An ASGI app answering with an event stream: one event, then (once released) a second and the end.
    ``listens``: after the first event it waits for the client to go, instead of writing on."""

    def __init__(self, *, listens: bool = False, keeps_writing: bool = False) -> None:
        self.listens = listens
        self.keeps_writing = keeps_writing
        self.release = asyncio.Event()
        self.waiting = False
        self.received: list[dict[str, Any]] = []
        self.send_error: BaseException | None = None
        self.done = asyncio.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            self.received.append(await receive())  # the (empty) request
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]})
            await send({"type": "http.response.body", "body": b"data: first\n\n", "more_body": True})
            if self.listens:
                self.received.append(await receive())
                return
            if self.keeps_writing:
                try:
                    while True:
                        await asyncio.sleep(0.02)
                        await send({"type": "http.response.body", "body": b": tick\n\n", "more_body": True})
                except OSError as error:
                    self.send_error = error
                    raise
            self.waiting = True
            await self.release.wait()
            self.waiting = False
            await send({"type": "http.response.body", "body": b"data: second\n\n", "more_body": False})
        finally:
            self.done.set()


async def test_server_sent_events_go_out_as_the_app_writes_them() -> None:
    app = EventStream()
    async with (serving(("/events", AsgiHandler, {"asgi_app": app})) as base, httpx.AsyncClient() as client,
                client.stream("GET", f"{base}/events") as response):
        assert response.headers["content-type"] == "text/event-stream"
        assert response.headers["transfer-encoding"] == "chunked"
        assert "content-length" not in response.headers
        lines = response.aiter_lines()
        assert await asyncio.wait_for(anext(lines), 5) == "data: first"
        assert app.waiting  # the first event arrived while the app still holds the response open
        app.release.set()
        rest = [line async for line in lines]
    assert [line for line in rest if line] == ["data: second"]
    assert app.received == [{"type": "http.request", "body": b"", "more_body": False}]


async def test_a_streamed_answer_opens_before_its_first_chunk() -> None:
    release = asyncio.Event()

    async def late_stream(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        await release.wait()
        await send({"type": "http.response.body", "body": b"data: late\n\n"})

    async with (serving(("/late", AsgiHandler, {"asgi_app": late_stream})) as base, httpx.AsyncClient() as client,
                asyncio.timeout(5), client.stream("GET", f"{base}/late") as response):
        assert response.status_code == 200 and not release.is_set()
        release.set()
        assert await response.aread() == b"data: late\n\n"


@pytest.mark.parametrize("behaviour", [{"listens": True}, {"keeps_writing": True}],
                         ids=["app-listening", "app-writing"])
async def test_a_client_that_goes_away_mid_stream_ends_the_app(behaviour: dict[str, bool]) -> None:
    app = EventStream(**behaviour)
    async with serving(("/events", AsgiHandler, {"asgi_app": app})) as base:
        reader, writer = await raw_exchange(base, "GET /events HTTP/1.1\nHost: test")
        await asyncio.wait_for(reader.readuntil(b"data: first\n\n"), 5)
        writer.close()
        await writer.wait_closed()
        await asyncio.wait_for(app.done.wait(), 5)
    if app.listens:
        assert app.received[-1] == {"type": "http.disconnect"}
    else:
        assert isinstance(app.send_error, OSError)


class BodyCounter:
    """An ASGI app that reads the request body, counting it, and answers 200."""

    def __init__(self) -> None:
        self.calls = 0
        self.received = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.calls += 1
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return
            self.received += len(message["body"])
            if not message["more_body"]:
                break
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})


async def test_a_body_over_the_limit_is_answered_413_and_never_reaches_the_app() -> None:
    limit = 64 * 1024
    app = BodyCounter()
    spec = ("/upload", AsgiHandler, {"asgi_app": app, "max_body_size": limit})
    async with serving(spec) as base, httpx.AsyncClient(base_url=base) as client:
        declared = await client.post("/upload", content=b"x" * MiB)
        assert declared.status_code == 413
        assert app.calls == 0  # refused on its Content-Length

        streamed = await client.post("/upload", content=chunks_of(b"x" * MiB, 16 * 1024))
        assert streamed.status_code == 413
        assert app.received <= limit

        app.received = 0
        within = await client.post("/upload", content=b"x" * limit)  # the connection is still good
        assert (within.status_code, within.text, app.received) == (200, "ok", limit)

        reader, writer = await raw_exchange(
            base, f"POST /upload HTTP/1.1\nHost: test\nContent-Length: {MiB}\nExpect: 100-continue")
        status_line = await asyncio.wait_for(reader.readline(), 5)
        writer.close()
        assert status_line.startswith(b"HTTP/1.1 413")  # at once, and no 100 Continue


class CallerHandler(AsgiHandler):
    """Puts the caller named by the X-Caller header into the scope's state; none named: 403."""

    async def enrich_scope(self, scope: dict[str, Any]) -> None:
        caller = self.request.headers.get("X-Caller")
        if caller is None:
            raise web.HTTPError(403)
        scope["state"]["caller"] = caller


async def test_the_scope_hook_hands_the_caller_to_the_app() -> None:
    calls = []

    async def whoami(request: Request) -> JSONResponse:
        calls.append(request.state.caller)
        return JSONResponse({"caller": request.state.caller})

    spec = ("/whoami", CallerHandler, {"asgi_app": Starlette(routes=[Route("/whoami", whoami)])})
    async with serving(spec) as base, httpx.AsyncClient(base_url=base) as client:
        known = await client.get("/whoami", headers={"X-Caller": "ann"})
        unknown = await client.get("/whoami")
    assert (known.status_code, known.json()) == (200, {"caller": "ann"})
    assert unknown.status_code == 403
    assert calls == ["ann"]


class JupyterAsgiHandler(AsgiHandler, APIHandler):
    """Mixed with a Jupyter handler, which authenticates the request before the application runs."""

    SUPPORTED_METHODS = ("GET",)
    get = web.authenticated(AsgiHandler.serve)

    def enrich_scope(self, scope: dict[str, Any]) -> None:
        scope["state"]["caller"] = self.current_user.username


async def test_mixed_with_a_jupyter_handler_the_app_sees_the_signed_in_user(jp_serverapp: Any, jp_fetch: Any) -> None:
    async def whoami(request: Request) -> JSONResponse:
        return JSONResponse({"caller": request.state.caller, "path": request.url.path})

    prefix = url_path_join(jp_serverapp.base_url, "services/asgi-test")  # the base URL has a %-escape
    app = Starlette(routes=[Route("/whoami", whoami)])
    jp_serverapp.web_app.add_handlers(".*$", [(prefix + "(?:/.*)?", JupyterAsgiHandler,
                                               {"asgi_app": app, "root_path": prefix})])
    signed_in = {"Authorization": "token tok-ann"}

    known = await jp_fetch("services", "asgi-test", "whoami", headers=signed_in)
    assert json.loads(known.body)["caller"] == "ann"

    # The application's own answer, untouched by APIHandler.finish() (which sets a JSON Content-Type).
    missing = await jp_fetch("services", "asgi-test", "nothing", headers=signed_in, raise_error=False)
    assert (missing.code, missing.headers["Content-Type"]) == (404, "text/plain; charset=utf-8")

    with pytest.raises(HTTPClientError) as refused:
        await jp_fetch("services", "asgi-test", "whoami")
    assert refused.value.code == 403


async def test_an_app_that_fails_before_answering_gives_a_500() -> None:
    async def failing(scope: dict[str, Any], receive: Any, send: Any) -> None:
        raise RuntimeError("broken")

    async def silent(scope: dict[str, Any], receive: Any, send: Any) -> None:
        return None

    specs = [("/failing", AsgiHandler, {"asgi_app": failing}), ("/silent", AsgiHandler, {"asgi_app": silent})]
    async with serving(*specs) as base, httpx.AsyncClient(base_url=base) as client:
        assert (await client.get("/failing")).status_code == 500
        assert (await client.post("/silent", content=b"body")).status_code == 500


async def test_the_holder_enters_and_exits_its_context_in_one_task_whoever_starts_and_stops_it() -> None:
    seen: dict[str, Any] = {}

    @contextlib.asynccontextmanager
    async def service() -> AsyncIterator[str]:
        async with anyio.create_task_group() as group:  # must be exited by the task that entered it
            seen["entered in"] = asyncio.current_task()
            group.start_soon(anyio.sleep_forever)
            yield "ready"
            seen["exited in"] = asyncio.current_task()
            group.cancel_scope.cancel()

    holder = AsyncContextHolder(service)
    assert await asyncio.create_task(holder.start()) == "ready"
    assert holder.running
    await asyncio.create_task(holder.stop())
    assert not holder.running
    assert seen["entered in"] is seen["exited in"]
    assert seen["entered in"] is not asyncio.current_task()


async def test_the_holder_raises_what_kept_its_context_from_opening() -> None:
    @contextlib.asynccontextmanager
    async def broken() -> AsyncIterator[None]:
        raise ConnectionError("no database")
        yield

    with pytest.raises(ConnectionError, match="no database"):
        await AsyncContextHolder(broken).start()


# ----- the MCP SDK's streamable HTTP transport, with the SDK's client -----

TOOLS = [
    {"name": "whoami", "description": "Who is calling.", "inputSchema": {"type": "object", "properties": {}}},
    {"name": "count", "description": "Counts to a number, reporting each step.",
     "inputSchema": {"type": "object", "properties": {"to": {"type": "integer", "minimum": 1}}, "required": ["to"]},
     "outputSchema": {"type": "object", "properties": {"counted": {"type": "integer"}}, "required": ["counted"]}},
    {"name": "fail", "description": "Always fails.", "inputSchema": {"type": "object", "properties": {}}},
]
TOKENS = {"tok-ann": "ann", "tok-bob": "bob"}


class McpHandler(AsgiHandler):
    """Names the caller from the bearer token, as the platform's MCP face will from its own authentication."""

    def enrich_scope(self, scope: dict[str, Any]) -> None:
        token = self.request.headers.get("Authorization", "").removeprefix("Bearer ")
        if token not in TOKENS:
            raise web.HTTPError(401)
        scope["state"]["caller"] = TOKENS[token]


def mcp_server() -> Any:
    import mcp_types as types
    from mcp.server.lowlevel import Server

    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        caller = ctx.request.state.caller
        offered = [tool for tool in TOOLS if caller == "ann" or tool["name"] == "whoami"]
        return types.ListToolsResult(tools=[types.Tool.model_validate(tool) for tool in offered])

    async def call_tool(ctx: Any, params: Any) -> types.CallToolResult:
        if params.name == "whoami":
            return types.CallToolResult(content=[types.TextContent(text=ctx.request.state.caller)])
        if params.name == "count":
            to = params.arguments["to"]
            for step in range(1, to + 1):
                await ctx.session.report_progress(step, to, f"step {step}")
            return types.CallToolResult(content=[types.TextContent(text=f"counted to {to}")],
                                        structured_content={"counted": to})
        return types.CallToolResult(content=[types.TextContent(text="it failed")], is_error=True)

    return Server("aitip-test", on_list_tools=list_tools, on_call_tool=call_tool)


@pytest.mark.parametrize("mode", ["auto", "legacy"], ids=["2026-07-28-single-exchange", "session-with-handshake"])
async def test_the_mcp_client_lists_and_calls_tools_through_the_bridge_with_progress(mode: str) -> None:
    pytest.importorskip("mcp")
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.server.streamable_http_manager import (
        StreamableHTTPASGIApp,
        StreamableHTTPSessionManager,
    )
    from mcp.shared._httpx_utils import create_mcp_http_client

    manager = StreamableHTTPSessionManager(app=mcp_server())
    holder = AsyncContextHolder(manager.run)
    await holder.start()
    url_path = "/services/aitip/mcp"
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append((done, total, message))

    @contextlib.asynccontextmanager
    async def client_of(base: str, token: str) -> AsyncIterator[Any]:
        async with create_mcp_http_client(headers={"Authorization": f"Bearer {token}"}) as http_client:
            transport = streamable_http_client(base + url_path, http_client=http_client)
            async with Client(transport, mode=mode) as client:
                yield client

    try:
        async with serving((url_path, McpHandler, {"asgi_app": StreamableHTTPASGIApp(manager)})) as base:
            async with client_of(base, "tok-ann") as client:
                assert client.protocol_version == ("2026-07-28" if mode == "auto" else "2025-11-25")
                listed = await client.list_tools()
                assert [tool.name for tool in listed.tools] == ["whoami", "count", "fail"]
                whoami = await client.call_tool("whoami", {})
                assert whoami.content[0].text == "ann"
                counting = client.call_tool("count", {"to": 3}, progress_callback=on_progress)
                counted = await asyncio.wait_for(counting, 10)
                assert counted.structured_content == {"counted": 3} and not counted.is_error
                assert progress == [(1, 3, "step 1"), (2, 3, "step 2"), (3, 3, "step 3")]
                failed = await client.call_tool("fail", {})
                assert failed.is_error and failed.content[0].text == "it failed"
            async with client_of(base, "tok-bob") as client:
                assert [tool.name for tool in (await client.list_tools()).tools] == ["whoami"]
                assert (await client.call_tool("whoami", {})).content[0].text == "bob"
            async with httpx.AsyncClient() as plain:
                refused = await plain.post(base + url_path, content=json.dumps({"jsonrpc": "2.0"}))
            assert refused.status_code == 401
    finally:
        await holder.stop()
