"""The base of every aitip handler: authentication, the declared permission, JSON in and out,
and errors as ``{"error": {"code", "message", "detail"}}``.

Every handler receives its request body as a stream, so that a request is judged on its headers before
its body is read, and a refusal reaches the client whole whatever the body's size:

* a request refused on its headers (no token, no right, an unknown path or project, a body too large or of
  the wrong type) that sends ``Expect: 100-continue`` is answered at once, without ``100 Continue``;
* otherwise its body is read and thrown away, up to ``discard_body_bytes`` (``AitipExtension``), before the
  refusal is answered, and the connection stays usable. Closing a connection under an unread body makes the
  kernel reset it, and configurable-http-proxy then replaces the answer with its own 503 page;
* a body larger than that bound is answered at once with ``Connection: close``, read for a few more seconds
  (time for the answer to get through), and its connection closed;
* a body refused while it streams in (over a limit, a bad archive) is likewise read to its end, up to the
  bound, and then answered.

A JSON body is collected in memory up to ``buffered_body_limit`` and handed to the handler's method as
``self.request.body``, as tornado does for handlers that do not stream; limits are enforced here rather than
by tornado's ``max_body_size``, which answers a bare ``400`` and closes the connection.
"""

from __future__ import annotations

import functools
import json
import logging
import typing
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any, ClassVar, TypeVar

from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from pydantic import BaseModel, ValidationError
from tornado import web
from tornado.ioloop import IOLoop
from tornado.web import HTTPError

from ...errors import (
    AitipError,
    BadRequest,
    InvalidInput,
    PayloadTooLarge,
    PermissionDenied,
    UnsupportedMediaType,
)
from ...i18n import COOKIE as LANGUAGE_COOKIE
from ...i18n import N_, negotiate
from ...identity.permissions import PermissionScope, permission
from ...identity.principal import Principal
from ..context import PlatformContext
from ..job_identity import JobCredentialIdentity, job_credential_allows, platform_principal
from ...operations.parameters import PATH_PARAMETERS
from ...operations.table import Operation
from ...operations.inputs import encoded_length
from ...releases.models import MAX_FIRMWARE_BYTES
from ..routes import RouteOperation
from ...validation_messages import refusal

M = TypeVar("M", bound=BaseModel)

_STATUS_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    503: "service_unavailable",
}
_log = logging.getLogger("aitip.server")

# Job and sweep submissions, and evaluations and their policies (a notebook of one's own), carry a notebook, up to
# 16 MiB (``buffered_body_limit`` collects their bodies that far); every other JSON body stops at ``max_body_bytes``.
NOTEBOOK_ACTIONS = frozenset({"job.submit", "sweep.create", "evaluation.run", "evaluation.manage"})
NOTEBOOK_BODY_BYTES = 16 * 1024 * 1024
# A release request may carry a firmware image (16 MiB, base64) with its changelog and labels.
FIRMWARE_ACTIONS = frozenset({"release.request"})
FIRMWARE_BODY_BYTES = encoded_length(MAX_FIRMWARE_BYTES) + 256 * 1024
# A refused body that stops arriving for this long (a client that honoured ``Expect`` and keeps the
# connection open) ends with the connection closed.
REFUSED_BODY_IDLE_SECONDS = 30.0
# After answering a body beyond the discard bound: how long to keep reading before closing, so the answer
# reaches the client (and passes a proxy) before the kernel resets the connection.
LINGER_SECONDS = 5.0
# Tornado's own body limit, set per request out of the way (the limits above and the handlers' apply).
_NO_TORNADO_LIMIT = 1 << 62


@functools.cache
def repeatable_parameters(model: type[BaseModel]) -> frozenset[str]:
    """The query parameters (by alias) that ``model`` holds as lists."""
    return frozenset(info.alias or name for name, info in model.model_fields.items()
                     if typing.get_origin(info.annotation) is list
                     or any(typing.get_origin(option) is list for option in typing.get_args(info.annotation)))


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


class PlatformRequestMixin:
    """What every platform handler reads: the platform's context, and the server's identity provider with
    job tokens checked ahead of it."""

    settings: dict[str, Any]

    @property
    def context(self) -> PlatformContext:
        return self.settings["aitip"]  # type: ignore[no-any-return]

    @property
    def identity_provider(self) -> Any:
        provider = super().identity_provider  # type: ignore[misc]
        jobs = self.context.jobs
        return JobCredentialIdentity(provider, jobs.verify_credential) if jobs is not None else provider

    @property
    def language(self) -> str:
        """The language the caller reads: the ``aitip_lang`` cookie the pages set, else ``Accept-Language``
        (a program that sends neither reads English)."""
        return negotiate(self.request.headers.get("Accept-Language"),  # type: ignore[attr-defined]
                         self.get_cookie(LANGUAGE_COOKIE))  # type: ignore[attr-defined]


@web.stream_request_body
class AitipHandler(PlatformRequestMixin, ExtensionHandlerMixin, APIHandler):
    """Checks the declared operation before any handler code runs, and before the body is read."""

    auth_resource = "aitip"
    operations: ClassVar[dict[str, Operation | RouteOperation]] = {}
    principal: Principal | None = None

    _chunks: list[bytes]
    _received = 0  # bytes of the body so far
    _refusal: BaseException | None = None  # the answer, once the request is refused
    _answered = False  # the refusal went out before the body was read
    _closing = False  # ... and the connection closes after a linger
    _last_data = 0.0
    _timer: object | None = None

    @property
    def operation(self) -> Operation | RouteOperation:
        try:
            return self.operations[self.request.method or ""]
        except KeyError:
            raise HTTPError(405) from None

    async def prepare(self) -> None:  # type: ignore[override]
        self._chunks = []
        try:
            await self._authenticate()
            if not self._finished:  # else answered by the server's own checks (a redirect to the login page)
                await self.before_body()
        except Exception as error:
            if self._finished:
                raise
            if not self.body_announced:
                # Answered from the method, once tornado has finished reading the request: a stream handler
                # that answers from prepare() makes tornado close the connection unannounced, and the hub's
                # proxy, reusing it for the next request, answers that one with a 503.
                self._refusal = error
                self._call_after_body()
                return
            self._refuse_before_body(error)
        if self.body_announced and not self._finished:
            self.request.connection.set_max_body_size(_NO_TORNADO_LIMIT)  # type: ignore[union-attr]
            self._call_after_body()

    async def before_body(self) -> None:
        """Checks on the request's headers, run before its body is read (a refusal raised here is answered
        without reading it). Subclasses extend it; here: a JSON route refuses a wrong content type, or a
        declared body over its limit, as ``json_body`` would once the body is read."""
        if self.operation.body is None or not self.body_announced:
            return
        self._check_json_content_type()
        declared, limit = self.declared_length, self.buffered_body_limit
        if declared is not None and declared > limit:
            raise PayloadTooLarge("the body is {declared} bytes; the limit is {limit}",
                                  detail={"limit_bytes": limit}, declared=declared, limit=limit)

    async def _authenticate(self) -> None:
        operation = self.operation
        await super().prepare()
        if permission(operation.action).scope is PermissionScope.public:
            return
        user = self.current_user
        if user is None:
            raise HTTPError(403, "sign in to JupyterHub or send 'Authorization: token <api token>'")
        principal = await platform_principal(self.context.directory, user)
        if principal.job_id is not None and not job_credential_allows(operation.action):
            raise PermissionDenied("job {job_id}'s credential acts only inside project {project_scope!r}; {action} "
                                   "needs its owner's own sign-in",
                                   detail={"action": operation.action, "job_id": principal.job_id},
                                   job_id=principal.job_id, project_scope=principal.project_scope,
                                   action=operation.action)
        self.principal = principal

    # ----- the body -----

    @property
    def declared_length(self) -> int | None:
        """The body's length as its ``Content-Length`` gives it (None: chunked, or none given)."""
        value = self.request.headers.get("Content-Length", "").strip()
        return int(value) if value.isdigit() else None

    @property
    def body_announced(self) -> bool:
        """Whether a body follows the headers."""
        if "chunked" in self.request.headers.get("Transfer-Encoding", "").lower():
            return True
        return bool(self.declared_length)

    @property
    def buffered_body_limit(self) -> int:
        """The largest body collected in memory for the handler (``self.request.body``): the JSON limit of
        this route. In a user's server the relay passes bodies on whole, as large as the server accepts
        (``ServerApp.max_body_size``)."""
        if self.context.mode == "workspace":
            return int(self.serverapp.max_body_size)
        if self.operation.action in NOTEBOOK_ACTIONS:
            return max(self.context.max_body_bytes, NOTEBOOK_BODY_BYTES)
        if self.operation.action in FIRMWARE_ACTIONS:
            return max(self.context.max_body_bytes, FIRMWARE_BODY_BYTES)
        return self.context.max_body_bytes

    def receive_body(self, chunk: bytes) -> Awaitable[None] | None:
        """One chunk of an accepted body. Here: collected for the handler's method. Raising an
        :class:`AitipError` refuses the request: the rest of the body is read and thrown away, then the
        error is answered. A subclass that streams the body elsewhere overrides this."""
        if self._received > self.buffered_body_limit:
            raise PayloadTooLarge("the body is larger than {buffered_body_limit} bytes",
                                  detail={"limit_bytes": self.buffered_body_limit},
                                  buffered_body_limit=self.buffered_body_limit)
        self._chunks.append(chunk)
        return None

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        self._received += len(chunk)
        if self._refusal is not None:
            self._discard()
            return None
        try:
            return self.receive_body(chunk)
        except AitipError as error:
            self._chunks = []
            self._refusal = error
            self._last_data = IOLoop.current().time()
            self._watch(REFUSED_BODY_IDLE_SECONDS)
            self._discard()
            return None

    def _refuse_before_body(self, error: BaseException) -> None:
        """Refused on its headers: answer now if the client waits for ``100 Continue`` or the body is too
        large to read; otherwise once the body has been read (``_call_after_body``)."""
        self._refusal = error
        self._last_data = IOLoop.current().time()
        declared = self.declared_length
        beyond = declared is not None and declared > self.context.discard_body_bytes
        if beyond or self.request.headers.get("Expect", "").lower() == "100-continue":
            self._answer_now(close=beyond)
        if not self._closing:
            self._watch(REFUSED_BODY_IDLE_SECONDS)

    def _discard(self) -> None:
        self._last_data = IOLoop.current().time()
        if not self._closing and self._received > self.context.discard_body_bytes:
            self._answer_now(close=True)

    def _answer_now(self, *, close: bool) -> None:
        """Send the refusal before (the rest of) the body is read: complete, with its Content-Length, while
        the connection goes on reading the body (and, with ``close``, stops after a linger)."""
        error = self._refusal
        assert error is not None
        if not self._answered:
            self._answered = True
            self.log_exception(type(error), error, error.__traceback__)
            status, payload = self._error_answer(500, error)
            data = json.dumps(payload).encode()
            self.clear()
            self.set_status(status)
            self.set_header("Content-Type", "application/json; charset=UTF-8")
            self.set_header("Content-Length", str(len(data)))
            if close:
                self.set_header("Connection", "close")
            # Tornado writes "100 Continue" after prepare() for a request that expects it, unless the answer
            # is finished; this one is sent but not finished (the body is still read), so the expectation goes.
            self.request.headers.pop("Expect", None)
            self.write(data)
            self.flush()
        if close and not self._closing:
            self._closing = True
            self._watch(LINGER_SECONDS)

    def _watch(self, seconds: float) -> None:
        """Close the connection when the refused body stops coming (or, closing, when the linger ends)."""
        loop = IOLoop.current()
        if self._timer is not None:
            loop.remove_timeout(self._timer)
        self._timer = loop.call_later(seconds, self._on_watch)

    def _on_watch(self) -> None:
        self._timer = None
        if self._finished or self._refusal is None:
            return
        idle = IOLoop.current().time() - self._last_data
        if not self._closing and idle < REFUSED_BODY_IDLE_SECONDS:
            self._watch(REFUSED_BODY_IDLE_SECONDS - idle)
            return
        _log.info("%s %s: closing the connection under a refused body (%d bytes read)", self.request.method,
                  self.request.path, self._received)
        self.request.connection.close()  # type: ignore[union-attr]

    def _stop_watching(self) -> None:
        if self._timer is not None:
            IOLoop.current().remove_timeout(self._timer)
            self._timer = None

    def _call_after_body(self) -> None:
        """Tornado calls the method for this request once the body has been read: for this request (this
        instance) it first answers a refusal, or hands over the collected body."""
        name = (self.request.method or "").lower()
        method: Callable[..., Any] = getattr(self, name)

        async def after_body(*args: Any, **kwargs: Any) -> None:
            if self._answered:  # the answer went out already; the body has now been read
                self.finish()
                if self._closing:
                    self.request.connection.close()  # type: ignore[union-attr]
                return
            if self._refusal is not None:
                raise self._refusal
            self.request.body = b"".join(self._chunks)
            self._chunks = []
            result = method(*args, **kwargs)
            if result is not None:
                await result

        setattr(self, name, after_body)

    def on_finish(self) -> None:
        self._stop_watching()
        super().on_finish()

    def on_connection_close(self) -> None:
        self._stop_watching()
        super().on_connection_close()

    # ----- input -----

    def _check_json_content_type(self) -> None:
        content_type = self.request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise UnsupportedMediaType(
                "send the body as application/json (got {content_type})"
            , content_type=content_type or 'no Content-Type')

    def json_body(self, model: type[M], *, limit: int | None = None) -> M:
        self._check_json_content_type()
        body = self.request.body
        limit = limit or self.context.max_body_bytes
        if len(body) > limit:
            raise PayloadTooLarge("the body is {body_count} bytes; the limit is {limit}",
                                  body_count=len(body), limit=limit)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadRequest("the body is not valid UTF-8 (bad byte at offset {start})",
                             code="invalid_encoding", start=exc.start) from exc
        try:
            data = json.loads(text, parse_constant=_reject_constant)
        except json.JSONDecodeError as exc:
            raise BadRequest("malformed JSON at line {lineno} column {colno}: {msg}",
                             code="invalid_json", lineno=exc.lineno, colno=exc.colno, msg=exc.msg) from exc
        except ValueError as exc:
            raise BadRequest(str(exc), code="invalid_json") from exc
        if not isinstance(data, dict):
            raise InvalidInput("the body must be a JSON object, not {type}", type=type(data).__name__)
        try:
            return model.model_validate_json(text)
        except ValidationError as exc:
            raise refusal(exc, N_("request body"), unnamed="(body)") from exc

    def query(self, model: type[M]) -> M:
        """The query string as ``model``; a parameter is given once, but one the model holds as a list
        (``?run=a&run=b``) as often as wanted."""
        repeatable = repeatable_parameters(model)
        raw: dict[str, Any] = {}
        for name, values in self.request.query_arguments.items():
            try:
                decoded = [value.decode("utf-8") for value in values]
            except UnicodeDecodeError as exc:
                raise BadRequest("query parameter {name!r} is not valid UTF-8",
                                 code="invalid_encoding", name=name) from exc
            if name in repeatable:
                raw[name] = decoded
            elif len(decoded) > 1:
                raise InvalidInput("query parameter {name!r} is given {decoded_count} times; give it once",
                                   name=name, decoded_count=len(decoded))
            else:
                raw[name] = decoded[0]
        try:
            return model.model_validate(raw, strict=False)
        except ValidationError as exc:
            raise refusal(exc, N_("query"), unnamed="(body)") from exc

    @staticmethod
    def project_name(value: str) -> str:
        return PATH_PARAMETERS["project"].convert(value)  # type: ignore[no-any-return]

    # ----- output -----

    def send(self, model: BaseModel | dict[str, Any] | None, status: int | None = None) -> None:
        self.set_status(status or self.operation.status)
        if model is None:
            self.finish()
            return
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        # A model is serialized in pydantic's core, several times faster than through dicts for a page of runs.
        self.finish(model.model_dump_json() if isinstance(model, BaseModel) else json.dumps(model))

    def _error_answer(self, status_code: int, exc: BaseException | None) -> tuple[int, dict[str, Any]]:
        """The status and JSON body that answer ``exc``, its message in the caller's language."""
        if isinstance(exc, AitipError):
            return exc.status, exc.to_json(self.language)
        if isinstance(exc, HTTPError):
            status_code = exc.status_code
            known = status_code in HTTPStatus._value2member_map_
            reason = exc.reason or (HTTPStatus(status_code).phrase if known else "error")
            return status_code, {"error": {"code": _STATUS_CODES.get(status_code, "http_error"),
                                           "message": exc.log_message or reason, "detail": None}}
        return status_code, {"error": {"code": "internal_error",
                                       "message": "the platform failed to handle this request; see its log",
                                       "detail": None}}

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        status, body = self._error_answer(status_code, exc)
        if isinstance(exc, AitipError):
            self.set_status(status)
        self.clear_header("Content-Type")
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps(body))

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, AitipError):
            _log.info("%s %s -> %s %s", self.request.method, self.request.path, value.status, value.message)
            return
        super().log_exception(typ, value, tb)

    def _handle_request_exception(self, e: BaseException) -> None:
        if isinstance(e, AitipError) and not self._finished:
            self.log_exception(type(e), e, e.__traceback__)
            self.send_error(e.status, exc_info=(type(e), e, e.__traceback__))
            return
        super()._handle_request_exception(e)
