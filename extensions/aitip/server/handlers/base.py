"""The base of every aitip handler: authentication, the declared permission, JSON in and out,
and errors as ``{"error": {"code", "message", "detail"}}``."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from http import HTTPStatus
from typing import Any, ClassVar, TypeVar

from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from pydantic import BaseModel, ValidationError
from tornado.web import HTTPError

from ...errors import (
    AitipError,
    BadRequest,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    UnsupportedMediaType,
)
from ...identity.permissions import PermissionScope, permission
from ...identity.principal import Principal
from ...schema import PROJECT_NAME_PATTERN
from ..context import PlatformContext
from ..job_identity import JobCredentialIdentity, JobCredentialUser, job_credential_allows
from ..routes import Operation

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


def _validation_detail(error: ValidationError) -> list[dict[str, Any]]:
    return [
        {"field": ".".join(str(part) for part in item["loc"]) or "(body)", "message": item["msg"],
         "type": item["type"]}
        for item in error.errors(include_url=False, include_input=False)
    ]


def _validation_message(where: str, detail: list[dict[str, Any]]) -> str:
    first = detail[0]
    more = f" (and {len(detail) - 1} more)" if len(detail) > 1 else ""
    return f"invalid {where}: {first['field']}: {first['message']}{more}"


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


class AitipHandler(ExtensionHandlerMixin, APIHandler):
    """Checks the declared operation before any handler code runs."""

    auth_resource = "aitip"
    operations: ClassVar[dict[str, Operation]] = {}
    principal: Principal | None = None

    @property
    def context(self) -> PlatformContext:
        return self.settings["aitip"]  # type: ignore[no-any-return]

    @property
    def identity_provider(self) -> Any:
        """The server's provider; in the platform, with job credentials checked ahead of it."""
        provider = super().identity_provider
        jobs = self.context.jobs
        return JobCredentialIdentity(provider, jobs.verify_credential) if jobs is not None else provider

    @property
    def operation(self) -> Operation:
        try:
            return self.operations[self.request.method or ""]
        except KeyError:
            raise HTTPError(405) from None

    async def prepare(self) -> None:  # type: ignore[override]
        operation = self.operation
        await super().prepare()
        if permission(operation.action).scope is PermissionScope.public:
            return
        user = self.current_user
        if user is None:
            raise HTTPError(403, "sign in to JupyterHub or send 'Authorization: token <api token>'")
        principal = await self.context.directory.principal(user.username, user)
        if principal is None:
            raise PermissionDenied(f"JupyterHub no longer knows user {user.username!r}")
        if isinstance(user, JobCredentialUser) and user.credential is not None:
            job = user.credential
            if not job_credential_allows(operation.action):
                raise PermissionDenied(f"job {job.job_id}'s credential acts only inside project {job.project!r}; "
                                       f"{operation.action} needs its owner's own sign-in",
                                       detail={"action": operation.action, "job_id": job.job_id})
            principal = dataclasses.replace(principal, job_id=job.job_id, project_scope=job.project)
        self.principal = principal

    # ----- input -----

    def json_body(self, model: type[M], *, limit: int | None = None) -> M:
        content_type = self.request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise UnsupportedMediaType(
                f"send the body as application/json (got {content_type or 'no Content-Type'})"
            )
        body = self.request.body
        limit = limit or self.context.max_body_bytes
        if len(body) > limit:
            raise PayloadTooLarge(f"the body is {len(body)} bytes; the limit is {limit}")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadRequest(f"the body is not valid UTF-8 (bad byte at offset {exc.start})",
                             code="invalid_encoding") from exc
        try:
            data = json.loads(text, parse_constant=_reject_constant)
        except json.JSONDecodeError as exc:
            raise BadRequest(f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}",
                             code="invalid_json") from exc
        except ValueError as exc:
            raise BadRequest(str(exc), code="invalid_json") from exc
        if not isinstance(data, dict):
            raise InvalidInput(f"the body must be a JSON object, not {type(data).__name__}")
        try:
            return model.model_validate_json(text)
        except ValidationError as exc:
            detail = _validation_detail(exc)
            raise InvalidInput(_validation_message("request body", detail), detail=detail) from exc

    def query(self, model: type[M]) -> M:
        raw: dict[str, str] = {}
        for name, values in self.request.query_arguments.items():
            if len(values) > 1:
                raise InvalidInput(f"query parameter {name!r} is given {len(values)} times; give it once")
            try:
                raw[name] = values[0].decode("utf-8")
            except UnicodeDecodeError as exc:
                raise BadRequest(f"query parameter {name!r} is not valid UTF-8", code="invalid_encoding") from exc
        try:
            return model.model_validate(raw, strict=False)
        except ValidationError as exc:
            detail = _validation_detail(exc)
            raise InvalidInput(_validation_message("query", detail), detail=detail) from exc

    @staticmethod
    def project_name(value: str) -> str:
        if not re.fullmatch(PROJECT_NAME_PATTERN, value):
            raise NotFound(f"project {value!r} does not exist (project names are DNS labels)")
        return value

    # ----- output -----

    def send(self, model: BaseModel | dict[str, Any] | None, status: int | None = None) -> None:
        self.set_status(status or self.operation.status)
        if model is None:
            self.finish()
            return
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        payload = model.model_dump(mode="json") if isinstance(model, BaseModel) else model
        self.finish(json.dumps(payload))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, AitipError):
            self.set_status(exc.status)
            body = exc.to_json()
        elif isinstance(exc, HTTPError):
            known = status_code in HTTPStatus._value2member_map_
            reason = exc.reason or (HTTPStatus(status_code).phrase if known else "error")
            body = {"error": {"code": _STATUS_CODES.get(status_code, "http_error"),
                              "message": exc.log_message or reason, "detail": None}}
        else:
            body = {"error": {"code": "internal_error",
                              "message": "the platform failed to handle this request; see its log",
                              "detail": None}}
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
