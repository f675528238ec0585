"""Serving an ASGI application (HTTP only) from tornado, and keeping its background context open.

The platform service is a tornado (Jupyter) server, while some protocols come as ASGI applications, such as
the MCP SDK's streamable HTTP transport. :class:`AsgiHandler` answers a request by running the application
as a task on tornado's own asyncio loop: the request body reaches it as it streams in, its response goes out
as it writes it (each chunk flushed, so Server-Sent Events arrive at once), and a client that goes away
reaches it as ``http.disconnect``. :class:`AsyncContextHolder` keeps open the context such an application
needs for the life of the server (the MCP SDK's ``StreamableHTTPSessionManager.run()``).

Mounting one at a path, here the MCP endpoint of the Jupyter server::

    class McpHandler(AsgiHandler):
        async def enrich_scope(self, scope):
            scope["state"]["caller"] = ...  # who the request is from, once tornado has authenticated it

    mcp_app = StreamableHTTPASGIApp(session_manager)  # answers on any path
    handlers.append((url_path_join(base_url, "services/aitip/mcp"), McpHandler, {"asgi_app": mcp_app}))

An application that routes on paths (a Starlette app) is mounted under a prefix with ``root_path``: the
pattern matches the prefix and what follows it, and the application sees ``path`` (the whole path) and
``root_path`` (the prefix) as ASGI servers pass them::

    prefix = url_path_join(base_url, "services/aitip")
    handlers.append((prefix + "(?:/.*)?", AsgiHandler, {"asgi_app": starlette_app, "root_path": prefix}))
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from contextlib import AbstractAsyncContextManager
from typing import Any, ClassVar
from urllib.parse import unquote

from tornado import iostream, web

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_log = logging.getLogger(__name__)

# Headers about this connection rather than the response: tornado frames the response itself (chunked when
# the application gives no Content-Length) and decides whether the connection stays open.
_CONNECTION_HEADERS = frozenset({"connection", "keep-alive", "transfer-encoding", "upgrade"})

# How much of the request body waits for the application before tornado stops reading the socket.
_BODY_BUFFER_BYTES = 256 * 1024

# Tasks of applications still running, so that none is garbage-collected while it waits (the event loop
# holds only weak references to tasks).
_running_apps: set[asyncio.Task[None]] = set()


class ClientDisconnected(OSError):
    """Raised by ``send()`` once the client has gone (as ASGI servers of spec version 2.4 do)."""


class _RequestBody:
    """The request body on its way from tornado to the application: tornado adds chunks as they arrive and
    ``receive()`` takes them. While more than ``capacity`` bytes wait, adding waits too, so tornado stops
    reading the socket of a client that sends faster than the application reads."""

    def __init__(self, capacity: int = _BODY_BUFFER_BYTES) -> None:
        self._capacity = capacity
        self._chunks: deque[bytes] = deque()
        self._waiting_bytes = 0
        self.complete = False
        self.abandoned = False
        self._changed = asyncio.Event()

    def _signal(self) -> None:
        """Wake whoever waits for a change (each waits on the event that was current when it began)."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def add(self, chunk: bytes) -> None:
        if self.abandoned:
            return
        self._chunks.append(chunk)
        self._waiting_bytes += len(chunk)
        self._signal()
        while self._waiting_bytes > self._capacity and not self.abandoned:
            await self._changed.wait()

    def end(self) -> None:
        """All of the body has arrived."""
        self.complete = True
        self._signal()

    def abandon(self) -> None:
        """Nobody will take the rest (the application ended, or hears that the client went): what waits is
        dropped, and tornado reads on without waiting."""
        self.abandoned = True
        self._chunks.clear()
        self._waiting_bytes = 0
        self._signal()

    async def take(self) -> tuple[bytes, bool] | None:
        """The next chunk and whether more follows; None once abandoned."""
        while not self.abandoned:
            if self._chunks:
                chunk = self._chunks.popleft()
                self._waiting_bytes -= len(chunk)
                self._signal()
                return chunk, bool(self._chunks) or not self.complete
            if self.complete:
                return b"", False
            await self._changed.wait()
        return None


@web.stream_request_body
class AsgiHandler(web.RequestHandler):
    """Answers each request with the ASGI 3 application ``asgi_app`` (HTTP requests; not websockets).

    Override, in a subclass or through the URL spec's keyword arguments (``initialize``):

    * ``asgi_app``: the application (or override :meth:`get_asgi_app`, e.g. to look it up in the settings);
    * ``root_path``: the prefix the application is mounted under, as in the URL (``scope["root_path"]``);
    * ``max_body_size``: the largest request body passed on, in bytes (None: only tornado's own limit, which
      answers a bare 400 and closes the connection). A larger one never reaches the application: it is read
      and thrown away, then answered 413; at once, without ``100 Continue``, when the client waits for one;

    and :meth:`enrich_scope` to add to the scope, e.g. the authenticated caller to ``scope["state"]``.
    ``prepare()`` runs the class's other ``prepare()`` first, so a mixed-in Jupyter handler authenticates
    the request before the application sees it.
    """

    asgi_app: ClassVar[AsgiApp | None] = None
    root_path: ClassVar[str] = ""
    max_body_size: ClassVar[int | None] = None

    _body: _RequestBody | None = None
    _disconnect: asyncio.Event  # set once receive() answers http.disconnect (made with _body)
    _app_task: asyncio.Task[None] | None = None
    _received_bytes = 0
    _request_delivered = False  # the last http.request message has gone to the application
    _body_refused = False
    _response_started = False
    _response_complete = False
    _length_given = False  # the application sent a Content-Length
    _client_gone = False
    _app_failed = False

    def initialize(self, asgi_app: AsgiApp | None = None, root_path: str | None = None,
                   max_body_size: int | None = None, **kwargs: Any) -> None:
        if asgi_app is not None:
            self.asgi_app = asgi_app  # type: ignore[misc]
        if root_path is not None:
            self.root_path = root_path  # type: ignore[misc]
        if max_body_size is not None:
            self.max_body_size = max_body_size  # type: ignore[misc]
        super().initialize(**kwargs)

    def get_asgi_app(self) -> AsgiApp:
        """The application to run: the one given to ``initialize``, else the class's (read off the class, so
        that a plain function assigned there is not bound as a method)."""
        app = vars(self).get("asgi_app") or type(self).asgi_app
        if app is None:
            raise RuntimeError(f"{type(self).__name__} has no asgi_app to serve")
        return app

    def enrich_scope(self, scope: Scope) -> Awaitable[None] | None:
        """Called with each request's scope before the application runs; may be a coroutine. Raising
        ``tornado.web.HTTPError`` here answers the request without running the application."""
        return None

    def build_scope(self) -> Scope:
        """The ASGI ``http`` scope of this request."""
        request = self.request
        address = getattr(request.connection, "context", None)
        address = getattr(address, "address", None)
        client_port = address[1] if isinstance(address, tuple) and len(address) >= 2 else 0
        return {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": request.version.removeprefix("HTTP/"),
            "method": request.method,
            "scheme": request.protocol,
            "path": unquote(request.path),
            "raw_path": request.path.encode("latin-1"),
            "root_path": unquote(self.root_path),  # decoded, as is the path it prefixes
            "query_string": request.query.encode("latin-1"),
            "headers": [(name.lower().encode("latin-1"), value.encode("latin-1"))
                        for name, value in request.headers.get_all()],
            "client": (request.remote_ip, client_port) if request.remote_ip else None,
            "server": self._server_address(),
            "state": {},
        }

    def _server_address(self) -> tuple[str, int | None] | None:
        try:
            address = self.request.connection.stream.socket.getsockname()  # type: ignore[union-attr]
        except (AttributeError, OSError):
            return None
        if isinstance(address, tuple):
            return address[0], address[1]
        return str(address), None

    # ----- the request -----

    async def prepare(self) -> None:  # type: ignore[override]
        inherited = super().prepare()
        if inherited is not None:
            await inherited
        if self._finished:
            return
        self._body = _RequestBody()
        self._disconnect = asyncio.Event()
        if self._client_gone:
            return
        declared = self._declared_length()
        if self.max_body_size is not None and declared is not None and declared > self.max_body_size:
            if self.request.headers.get("Expect", "").lower() == "100-continue":
                raise web.HTTPError(413, "the body is %d bytes; the limit is %d", declared, self.max_body_size)
            self._body_refused = True
            return
        scope = self.build_scope()
        enriching = self.enrich_scope(scope)
        if inspect.isawaitable(enriching):
            await enriching
        if self._finished or self._client_gone:
            return
        task = asyncio.get_running_loop().create_task(self._run_app(self.get_asgi_app(), scope))
        _running_apps.add(task)
        task.add_done_callback(_running_apps.discard)
        self._app_task = task

    def _declared_length(self) -> int | None:
        value = self.request.headers.get("Content-Length", "").strip()
        return int(value) if value.isdigit() else None

    async def data_received(self, chunk: bytes) -> None:  # type: ignore[override]
        if self._body_refused or self._body is None or self._body.abandoned:
            return  # thrown away: refused, or nobody takes it any more
        self._received_bytes += len(chunk)
        if self.max_body_size is not None and self._received_bytes > self.max_body_size:
            self._refuse_body()
            return
        await self._body.add(chunk)

    def _refuse_body(self) -> None:
        """The body grew past the limit while streaming in: the application, which must not get it, hears
        that the client went and is stopped. Had it begun its answer, that cannot become a 413: the
        connection is closed instead."""
        self._body_refused = True
        self._client_is_gone()
        if self._app_task is not None:
            self._app_task.cancel()
        if self._response_started:
            self.request.connection.close()  # type: ignore[union-attr]

    async def serve(self, *args: Any, **kwargs: Any) -> None:
        """What tornado calls, for every HTTP method, once the whole body has arrived (the application has been
        running since ``prepare()``). The response ends here, after the body has been read, whenever the
        application ended it: a connection closed under an unread body is reset, and a proxy that reuses
        connections (the hub's) answers the next request on it with its own 503. A subclass mixed with a
        Jupyter handler declares it authenticated: ``get = post = web.authenticated(AsgiHandler.serve)``."""
        if self._body_refused:
            raise web.HTTPError(413, "the body is over %d bytes", self.max_body_size)
        assert self._body is not None and self._app_task is not None
        self._body.end()
        await self._app_task
        if self._finished:
            return
        if not self._client_gone:
            if self._app_failed and not self._response_started:
                raise web.HTTPError(500)
            if not self._response_complete:
                # The application stopped part way through its answer: the client learns that from the closed
                # connection (once closed, finishing writes nothing, not even the end of a chunked body).
                self.request.connection.close()  # type: ignore[union-attr]
        self.finish()

    get = post = put = patch = delete = head = options = serve

    def on_connection_close(self) -> None:
        super().on_connection_close()
        self._client_is_gone()

    def _client_is_gone(self) -> None:
        self._client_gone = True
        if self._body is not None:
            self._body.abandon()
            self._disconnect.set()

    # ----- the application -----

    async def _run_app(self, app: AsgiApp, scope: Scope) -> None:
        try:
            await app(scope, self._receive, self._send)
        except ClientDisconnected:
            _log.debug("%s %s: the client went before the answer was complete", self.request.method,
                       self.request.path)
        except Exception:  # noqa: BLE001 - whatever the failure, it is logged and answered (500 or a closed connection)
            if self._client_gone:
                _log.debug("%s %s failed after the client went", self.request.method, self.request.path,
                           exc_info=True)
            else:
                _log.exception("%s %s: the ASGI application failed", self.request.method, self.request.path)
            self._app_failed = True
        else:
            if not self._response_complete and not self._client_gone:
                _log.error("%s %s: the ASGI application returned without completing its answer",
                           self.request.method, self.request.path)
                self._app_failed = True
        finally:
            assert self._body is not None
            self._body.abandon()

    async def _receive(self) -> Message:
        assert self._body is not None
        if not self._request_delivered and not self._disconnect.is_set():
            taken = await self._body.take()
            if taken is not None:
                chunk, more = taken
                self._request_delivered = not more
                return {"type": "http.request", "body": chunk, "more_body": more}
        await self._disconnect.wait()
        return {"type": "http.disconnect"}

    async def _send(self, message: Message) -> None:
        kind = message["type"]
        if self._client_gone:
            raise ClientDisconnected(f"{self.request.method} {self.request.path}: the client went")
        if kind == "http.response.start":
            if self._response_started:
                raise RuntimeError("http.response.start sent twice")
            self._response_started = True
            self._start_response(message)
            if not self._length_given:
                # A response of unknown length streams (chunked): its status and headers go out now, not with
                # its first chunk, which may be long in coming (an event stream's first event).
                await self._flush()
        elif kind == "http.response.body":
            if not self._response_started or self._response_complete:
                raise RuntimeError("http.response.body sent before http.response.start or after the last body")
            await self._write_body(message.get("body", b""), more=message.get("more_body", False))
        else:
            raise RuntimeError(f"unexpected ASGI message {kind!r} for an http request")

    def _start_response(self, message: Message) -> None:
        self.set_status(message["status"])
        self.clear_header("Content-Type")  # tornado's default, text/html
        replaced: set[str] = set()
        for raw_name, raw_value in message.get("headers", []):
            name = raw_name.decode("latin-1")
            key = name.lower()
            if key in _CONNECTION_HEADERS:
                continue
            if key not in replaced:
                self.clear_header(name)  # the application's value replaces a default of tornado's
                replaced.add(key)
            if key == "content-length":
                self._length_given = True
            self.add_header(name, raw_value.decode("latin-1"))

    async def _write_body(self, body: bytes, *, more: bool) -> None:
        assert self._body is not None
        if not more:
            self._response_complete = True
        if body:
            self.write(body)
        await self._flush()
        if more:
            return
        if self._body.complete:
            # Finished now, so that the client has its whole answer while the application goes on (e.g. to a
            # background task).
            await self._deliver(self.finish)
        else:
            # The rest of the body is thrown away as it arrives; the response ends once it has (``serve``).
            self._body.abandon()
        self._disconnect.set()

    async def _flush(self) -> None:
        """Sends what the application wrote. The response is always flushed before finish(), so that what
        goes out is what the application sent: finish() would add tornado's ETag (and answer a matching
        If-None-Match with a 304 of its own), or a Jupyter APIHandler's Content-Type."""
        await self._deliver(self.flush)

    async def _deliver(self, write: Callable[[], Awaitable[None]]) -> None:
        try:
            await write()
        except iostream.StreamClosedError as error:
            self._client_is_gone()
            raise ClientDisconnected(f"{self.request.method} {self.request.path}: the client went") from error
        except Exception:
            # Tornado refused the write (more or less than the application's Content-Length, a header value
            # it cannot send): the response cannot be put right.
            self.request.connection.close()  # type: ignore[union-attr]
            raise


class AsyncContextHolder:
    """Holds an async context manager open from :meth:`start` to :meth:`stop`, e.g. the MCP SDK's
    ``StreamableHTTPSessionManager.run()``, which the manager's requests need entered for the life of the
    server.

    The context is entered and exited in a task of its own on the running loop, whatever tasks call
    ``start()`` and ``stop()`` (a Jupyter extension starts and stops in different ones): an anyio task
    group, as such a context opens, must be exited by the task that entered it. The task also keeps the
    context open between requests. ``start()`` returns what the context manager yielded."""

    def __init__(self, open_context: Callable[[], AbstractAsyncContextManager[Any]]) -> None:
        self._open_context = open_context
        self._task: asyncio.Task[None] | None = None
        self._stop_requested = asyncio.Event()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> Any:
        """Enters the context (in its own task) and returns what it yielded; an error entering it is raised
        here."""
        if self._task is not None:
            raise RuntimeError("already started")
        loop = asyncio.get_running_loop()
        entered: asyncio.Future[Any] = loop.create_future()
        self._stop_requested = asyncio.Event()
        task = loop.create_task(self._hold(entered))
        try:
            await asyncio.wait({entered, task}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            task.cancel()
            raise
        if not entered.done():
            entered.cancel()
            task.result()  # raises what kept the context from being entered
            raise RuntimeError("the context ended before it was entered")
        self._task = task
        task.add_done_callback(self._report_early_end)
        return entered.result()

    async def stop(self) -> None:
        """Exits the context (in its task) and waits for that; an error from inside it is raised here."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stop_requested.set()
        await asyncio.wait({task})
        if not task.cancelled():
            task.result()

    async def _hold(self, entered: asyncio.Future[Any]) -> None:
        async with self._open_context() as value:
            entered.set_result(value)
            await self._stop_requested.wait()

    def _report_early_end(self, task: asyncio.Task[None]) -> None:
        """The context should last until stop(): if it ends before (a task in its task group failed), the
        server goes on without it, so it is logged."""
        if self._stop_requested.is_set() or task.cancelled():
            return
        error = task.exception()
        _log.error("the context held open for the server ended before it was stopped", exc_info=error)
