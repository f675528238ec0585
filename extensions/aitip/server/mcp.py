"""The MCP face: the operation table's tools for agents, at ``/services/aitip/mcp`` (streamable HTTP).

The caller is authenticated as for REST (a hub API token or a job's token, ``Authorization: Bearer ...``),
by the Jupyter handler the ASGI bridge is mixed with; the MCP SDK's server then sees it in the request's
state. ``tools/list`` offers what the caller's roles allow somewhere; every call is checked again by the
service, on the project it names. Stateless: each POST stands alone, so any platform process can answer it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web

from .. import __version__
from ..errors import AitipError, PermissionDenied
from ..identity.principal import Principal
from ..identity.roles import Role
from ..operations import tools
from ..operations.inputs import encoded_length, max_inline_bytes
from .asgi import AsgiHandler, AsyncContextHolder
from .context import PlatformContext
from .handlers.base import NOTEBOOK_BODY_BYTES, PlatformRequestMixin
from .job_identity import JOB_CREDENTIAL_ACTIONS, platform_principal
from .routes import RouteOperation

MCP_PATH = "mcp"
INSTRUCTIONS = ("AITIP runs the model lifecycle: projects, datasets, notebook jobs and sweeps, experiments and runs "
                "(MLflow), annotation, resources and webhooks. notebooks_list shows the notebooks the platform "
                "ships (training, tests) with their parameters: jobs_submit and sweeps_create run one by its name "
                "(shipped), and jobs_rerun runs a job's notebook again. Tools are named <group>_<verb>; "
                "long-running ones (jobs_submit, sweeps_create, registrations_create) return a handle at once and "
                "take wait_seconds to wait with progress, and post their end to a callback URL; "
                "registrations_create takes the file inline, base64-encoded.")


async def caller_roles(context: PlatformContext, principal: Principal) -> list[Role]:
    """The caller's role in each project it belongs to (a hub admin: admin anywhere)."""
    if principal.is_admin and principal.project_scope is None:
        return [Role.admin]
    assert context.projects is not None
    me = await context.projects.me(principal)
    return [project.role for project in me.projects
            if principal.project_scope is None or project.project == principal.project_scope]


def mcp_server(context: PlatformContext) -> Any:
    import mcp_types as types
    from mcp.server.lowlevel import Server

    catalog = tools.by_name()

    async def visible(principal: Principal) -> list[tools.Tool]:
        roles = await caller_roles(context, principal)
        return [tool for tool in catalog.values()
                if tools.may_use(tool.row, roles, principal.job_id is not None, JOB_CREDENTIAL_ACTIONS)]

    async def list_tools(ctx: Any, params: Any) -> Any:
        offered = await visible(ctx.request.state.principal)
        return types.ListToolsResult(tools=[
            types.Tool(name=tool.name, description=tool.description, input_schema=tool.input_schema,
                       output_schema=tool.output_schema) for tool in offered])

    def input_schema(name: str) -> dict[str, Any] | None:
        tool = catalog.get(name)
        return tool.input_schema if tool is not None else None

    async def call_tool(ctx: Any, params: Any) -> Any:
        principal: Principal = ctx.request.state.principal
        tool = catalog.get(params.name)
        try:
            if tool is None:
                raise PermissionDenied("no tool is named {name!r}; tools/list shows what you may use",
                                       name=params.name)

            async def progress(done: float, total: float | None, message: str) -> None:
                await ctx.session.report_progress(done, total, message)

            result = await tools.call_tool(context, principal, tool, dict(params.arguments or {}), progress)
        except AitipError as error:
            return types.CallToolResult(content=[types.TextContent(text=tools.error_content(error))],
                                        structured_content=None, is_error=True)
        text, values = tools.answer_content(result)
        # Handed over in its wire form (the SDK accepts a mapping): a model would be dumped once more, walking
        # every value of a large answer, before the SDK's own check of the result walks it again.
        answer: dict[str, Any] = {"content": [{"type": "text", "text": text}], "isError": False,
                                  "resultType": "complete"}
        if isinstance(values, dict) and tool.output_schema is not None:
            answer["structuredContent"] = values
        return answer

    return Server("aitip", version=__version__, instructions=INSTRUCTIONS, get_tool_input_schema=input_schema,
                  on_list_tools=list_tools, on_call_tool=call_tool)


# A request body up to this size is read whole before it is answered, to see whether it asks for progress.
LOOK_AHEAD_BYTES = 64 * 1024


def progress_token(body: bytes) -> Any:
    """The progress token a JSON-RPC request asks with (``params._meta.progressToken``), or None; a body that
    is not one request (a batch, not JSON) counts as asking (the streaming app answers it as the SDK does)."""
    try:
        message = json.loads(body)
    except ValueError:
        return True
    if not isinstance(message, dict):
        return True
    params = message.get("params")
    meta = params.get("_meta") if isinstance(params, dict) else None
    return meta.get("progressToken") if isinstance(meta, dict) else None


class ProgressRouter:
    """An ASGI app that answers a request asking for no progress with plain JSON (the SDK's ``json_response``
    mode: no event stream to set up, frame and parse) and any other over Server-Sent Events, where progress
    notifications can go before the answer. A body larger than ``LOOK_AHEAD_BYTES`` (a file inline) is not
    read ahead: it streams on to the SSE app."""

    def __init__(self, plain: Any, streaming: Any) -> None:
        self.plain = plain
        self.streaming = streaming

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") != "http" or scope.get("method") != "POST":
            await self.streaming(scope, receive, send)
            return
        read: list[dict[str, Any]] = []
        size, more = 0, True
        while more and size <= LOOK_AHEAD_BYTES:
            message = await receive()
            read.append(message)
            if message.get("type") != "http.request":
                break
            size += len(message.get("body", b""))
            more = bool(message.get("more_body", False))
        whole = not more and all(message.get("type") == "http.request" for message in read)
        asks = not whole or progress_token(b"".join(message.get("body", b"") for message in read)) is not None

        async def replay() -> dict[str, Any]:
            return read.pop(0) if read else await receive()

        await (self.streaming if asks else self.plain)(scope, replay, send)


class McpFace:
    """The SDK's session managers for the platform (one answering in plain JSON, one streaming progress): made
    and opened by the first MCP request, so that a service no agent calls never imports the SDK or builds the
    tools' schemas (about a tenth of its start), and closed with the extension."""

    def __init__(self, context: PlatformContext) -> None:
        self.context = context
        self.managers: list[Any] = []
        self._app: ProgressRouter | None = None
        self._holder = AsyncContextHolder(self._run_managers)
        self._starting: asyncio.Lock | None = None

    def _make(self) -> ProgressRouter:
        from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager

        # A call carries at most a notebook (jobs_submit, as REST takes one) or a file inline, and its other
        # arguments; the SDK's own default (4 MiB) would refuse both.
        largest = max(NOTEBOOK_BODY_BYTES, encoded_length(max_inline_bytes())) + self.context.max_body_bytes
        server = mcp_server(self.context)
        self.managers = [StreamableHTTPSessionManager(app=server, stateless=True, json_response=plain,
                                                      max_request_body_size=largest) for plain in (True, False)]
        return ProgressRouter(*(StreamableHTTPASGIApp(manager) for manager in self.managers))

    @property
    def app(self) -> ProgressRouter:
        if self._app is None:
            raise RuntimeError("the MCP face answers once started")
        return self._app

    @contextlib.asynccontextmanager
    async def _run_managers(self) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            for manager in self.managers:
                await stack.enter_async_context(manager.run())
            yield

    async def start(self) -> None:
        """Make (off the event loop: the SDK's import and the schemas take a while) and open the session
        managers, once."""
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self._app is None:
                self._app = await asyncio.to_thread(self._make)
            if not self._holder.running:
                await self._holder.start()

    async def stop(self) -> None:
        if self._holder.running:
            await self._holder.stop()


class McpHandler(AsgiHandler, PlatformRequestMixin, ExtensionHandlerMixin, APIHandler):
    """Authenticates like every platform handler (job tokens first), then hands the request to the MCP app."""

    SUPPORTED_METHODS = ("POST",)  # stateless: no standing GET stream, no session to DELETE
    auth_resource = "aitip"
    operations = {"POST": RouteOperation("platform.mcp", "MCP (streamable HTTP): the operations as tools")}
    post = web.authenticated(AsgiHandler.serve)
    get = put = patch = delete = head = options = web.RequestHandler._unimplemented_method

    def get_asgi_app(self) -> Any:
        face = self.settings.get("aitip_mcp")
        if face is None:
            raise web.HTTPError(503, "the MCP face is not running on this platform")
        return face.app

    async def enrich_scope(self, scope: dict[str, Any]) -> None:
        user = self.current_user
        if user is None:  # answered before the application runs (web.authenticated on post() comes later)
            raise web.HTTPError(403, "send 'Authorization: Bearer <hub API token or job token>'")
        await self.settings["aitip_mcp"].start()
        try:
            scope["state"]["principal"] = await platform_principal(self.context.directory, user)
        except PermissionDenied as refused:
            raise web.HTTPError(403, refused.message) from refused
