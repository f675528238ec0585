"""An HTTP chat endpoint under test, described as garak's REST generator describes one: a URI, headers, a JSON
request template whose string leaves hold ``$INPUT`` (replaced by the prompt) and the response field holding the
answer (a key, or a JSONPath-like ``$.choices[0].message.content``).

Inside the simulation sandbox the job has no network but a unix socket to the platform's egress proxy, named by
``AITIP_EGRESS_SOCKET``: every request then goes over that socket with its original URL, and the proxy forwards
only to the endpoint under test.
"""

from __future__ import annotations

import copy
import json
import os
import re
import socket
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import AitipError, InvalidInput

INPUT_MARKER = "$INPUT"
EGRESS_SOCKET_VARIABLE = "AITIP_EGRESS_SOCKET"
EGRESS_REFUSAL_HEADER = "x-aitip-egress"  # set by aitip.jobs.egress on what it answers itself
METHODS = ("POST", "PUT", "PATCH")  # the prompt travels in a JSON body
MAX_ANSWER_SHOWN = 300
_PATH_STEP = re.compile(r"""\.(?P<name>[A-Za-z_][\w-]*)|\[(?P<index>-?\d+)\]|\[(?P<quote>['"])(?P<key>.*?)(?P=quote)\]""")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


class EndpointError(AitipError):
    """The endpoint answered, but not with what the description says it answers."""

    status = 502
    code = "endpoint_error"


class EndpointUnreachable(EndpointError):
    """No answer came back at all: the connection was refused, the name did not resolve, or time ran out."""

    code = "endpoint_unreachable"


def parse_response_path(field: str) -> tuple[str | int, ...]:
    """The steps from the response's top to its answer: a plain key is one step; ``$`` starts a path of
    ``.name``, ``[index]`` and ``['key']`` steps. ValueError says what in the path is wrong."""
    if not field.startswith("$"):
        return (field,)
    steps: list[str | int] = []
    position = 1
    while position < len(field):
        step = _PATH_STEP.match(field, position)
        if step is None:
            raise ValueError(f"response_json_field {field!r} is not a path: at {field[position:]!r} expected "
                             "'.name', '[index]' or \"['key']\" (e.g. $.choices[0].message.content)")
        if step.group("name") is not None:
            steps.append(step.group("name"))
        elif step.group("index") is not None:
            steps.append(int(step.group("index")))
        else:
            steps.append(step.group("key"))
        position = step.end()
    if not steps:
        raise ValueError(f"response_json_field {field!r} names no field: a path goes on after '$', "
                         "e.g. $.choices[0].message.content")
    return tuple(steps)


def _holds_input(value: Any) -> bool:
    if isinstance(value, str):
        return INPUT_MARKER in value
    if isinstance(value, dict):
        return any(_holds_input(item) for item in value.values())
    if isinstance(value, list):
        return any(_holds_input(item) for item in value)
    return False


def _filled(value: Any, prompt: str) -> Any:
    """The template with every ``$INPUT`` in its string leaves replaced by the prompt; the body is serialized as
    JSON afterwards, so quotes and newlines in the prompt stay inside their string."""
    if isinstance(value, str):
        return value.replace(INPUT_MARKER, prompt)
    if isinstance(value, dict):
        return {key: _filled(item, prompt) for key, item in value.items()}
    if isinstance(value, list):
        return [_filled(item, prompt) for item in value]
    return copy.deepcopy(value)


def _shown(text: str) -> str:
    text = text.strip()
    return text if len(text) <= MAX_ANSWER_SHOWN else text[:MAX_ANSWER_SHOWN] + "…"


def _invalid(error: ValidationError) -> InvalidInput:
    """One 422 naming each wrong field of the endpoint and what to fix."""
    problems = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "endpoint"
        message = str(item["msg"]).removeprefix("Value error, ")
        problems.append(f"{where}: {message}")
    return InvalidInput("the endpoint description is not valid: {problems}", detail={"errors": problems},
                        code="invalid_endpoint", problems="; ".join(problems))


class HttpTarget(BaseModel):
    """A chat endpoint the probes talk to; :meth:`send` asks it one prompt and returns its answer's text."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    uri: str = Field(description="http(s) URL the request goes to")
    method: str = Field("POST", description="HTTP method: POST, PUT or PATCH (the prompt is in the body)")
    headers: dict[str, str] = Field(default_factory=dict, description="request headers, e.g. Authorization")
    req_template_json_object: dict[str, Any] = Field(
        default_factory=lambda: {"messages": [{"role": "user", "content": INPUT_MARKER}]},
        description="the JSON body; every string leaf's $INPUT is replaced by the prompt")
    response_json_field: str = Field("$.choices[0].message.content",
                                     description="the answer's key, or a path like $.choices[0].message.content")
    timeout_seconds: float = Field(30.0, gt=0, le=600, description="seconds to wait for a connection and answer")

    @classmethod
    def from_endpoint(cls, endpoint: dict[str, Any]) -> HttpTarget:
        """The target an ``endpoint`` parameter describes; InvalidInput (422) says what is wrong with it."""
        if not isinstance(endpoint, dict):
            raise InvalidInput("the endpoint must be an object with a uri, not {type}",
                               code="invalid_endpoint", type=type(endpoint).__name__)
        try:
            return cls.model_validate(endpoint)
        except ValidationError as error:
            raise _invalid(error) from None

    @field_validator("uri")
    @classmethod
    def _http_uri(cls, uri: str) -> str:
        parts = urlsplit(uri)
        if parts.scheme not in ("http", "https"):
            raise ValueError(f"{uri!r} is not an http:// or https:// URL")
        if not parts.hostname:
            raise ValueError(f"{uri!r} names no host")
        try:
            port_is_valid = parts.port is None or parts.port >= 0
        except ValueError:
            port_is_valid = False
        if not port_is_valid:
            raise ValueError(f"{uri!r} has a port that is not a number from 0 to 65535")
        return uri

    @field_validator("method")
    @classmethod
    def _known_method(cls, method: str) -> str:
        if method.upper() not in METHODS:
            raise ValueError(f"method {method!r} is not one of {', '.join(METHODS)} (the prompt travels in the body)")
        return method.upper()

    @field_validator("headers")
    @classmethod
    def _plain_headers(cls, headers: dict[str, str]) -> dict[str, str]:
        for name, value in headers.items():
            if not _HEADER_NAME.match(name):
                raise ValueError(f"header name {name!r} is not a valid HTTP header name")
            if "\r" in value or "\n" in value:
                raise ValueError(f"header {name!r} holds a line break")
        return headers

    @field_validator("req_template_json_object")
    @classmethod
    def _takes_the_prompt(cls, template: dict[str, Any]) -> dict[str, Any]:
        try:
            json.dumps(template, allow_nan=False)
        except (TypeError, ValueError) as error:
            raise ValueError(f"the request template is not plain JSON ({error})") from None
        if not _holds_input(template):
            raise ValueError(f"the request template has no {INPUT_MARKER} in any string, so the prompt would "
                             f"never be sent (e.g. {{\"messages\": [{{\"role\": \"user\", \"content\": "
                             f"\"{INPUT_MARKER}\"}}]}})")
        return template

    @field_validator("response_json_field")
    @classmethod
    def _readable_path(cls, field: str) -> str:
        if not field:
            raise ValueError("response_json_field is empty: name the key or path of the answer's text")
        parse_response_path(field)
        return field

    def request_body(self, prompt: str) -> dict[str, Any]:
        return _filled(self.req_template_json_object, prompt)

    def answer_in(self, document: Any) -> str:
        """The answer's text in a decoded response; EndpointError says what came back where it is missing."""
        value = document
        for step in parse_response_path(self.response_json_field):
            present = (isinstance(step, str) and isinstance(value, dict) and step in value) or \
                (isinstance(step, int) and isinstance(value, list) and -len(value) <= step < len(value))
            if not present:
                raise EndpointError("the answer of {uri} has no {response_json_field} (no {step!r} there); it was: "
                                    "{shown}", code="endpoint_answer_unread",
                                    uri=self.uri, response_json_field=self.response_json_field, step=step,
                                    shown=_shown(json.dumps(document)))
            value = value[step]
        if isinstance(value, str):
            return value
        if isinstance(value, bool | int | float):
            return json.dumps(value)
        raise EndpointError("{response_json_field} in the answer of {uri} is {value}, not text: {shown}",
                            code="endpoint_answer_unread",
                            response_json_field=self.response_json_field, uri=self.uri,
                            value='null' if value is None else type(value).__name__, shown=_shown(json.dumps(document)))

    def client(self) -> httpx.Client:
        """An HTTP client; over the egress proxy's unix socket where ``AITIP_EGRESS_SOCKET`` names one (the URL
        stays the endpoint's, so the proxy sees which host is asked for)."""
        socket_path = os.environ.get(EGRESS_SOCKET_VARIABLE)
        transport = httpx.HTTPTransport(uds=socket_path) if socket_path else None
        return httpx.Client(transport=transport, timeout=self.timeout_seconds, follow_redirects=False,
                            trust_env=not socket_path)

    def requested_uri(self) -> str:
        """The URL asked for. Over the egress socket an https endpoint is asked for in plain http with its port
        said (the platform's proxy speaks TLS to it: the allowed origin names the scheme)."""
        parts = urlsplit(self.uri)
        if parts.scheme != "https" or not os.environ.get(EGRESS_SOCKET_VARIABLE):
            return self.uri
        host = f"[{parts.hostname}]" if ":" in (parts.hostname or "") else parts.hostname
        return parts._replace(scheme="http", netloc=f"{host}:{parts.port or 443}").geturl()

    def send(self, prompt: str, client: httpx.Client | None = None) -> str:
        """The endpoint's answer to one prompt. EndpointUnreachable where nothing came back; EndpointError where
        the answer is an HTTP error or lacks the response field."""
        if client is None:
            with self.client() as own:
                return self.send(prompt, own)
        try:
            response = client.request(self.method, self.requested_uri(), headers=self.headers,
                                      json=self.request_body(prompt))
        except httpx.TransportError as error:
            raise EndpointUnreachable("the endpoint {uri} cannot be reached: {reason}",
                                      detail={"uri": self.uri}, uri=self.uri, reason=self._reason(error)) from error
        if response.headers.get(EGRESS_REFUSAL_HEADER) == "refused":  # the sandbox's proxy could not get through
            raise EndpointUnreachable("the endpoint {uri} cannot be reached: {shown}",
                                      detail={"uri": self.uri}, uri=self.uri, shown=_shown(response.text.strip()))
        if response.status_code >= 400:
            raise EndpointError("the endpoint {uri} answered HTTP {status_code}: {shown}",
                                detail={"uri": self.uri, "status": response.status_code},
                                uri=self.uri, status_code=response.status_code, shown=_shown(response.text))
        try:
            document = response.json()
        except ValueError:
            raise EndpointError("the answer of {uri} is not JSON: {shown!r}",
                                code="endpoint_answer_unread", uri=self.uri, shown=_shown(response.text)) from None
        return self.answer_in(document)

    def _reason(self, error: httpx.TransportError) -> str:
        """Why no answer came: the first cause a person recognises, not the transport's class name."""
        socket_path = os.environ.get(EGRESS_SOCKET_VARIABLE)
        through = f" (through the egress socket {socket_path})" if socket_path else ""
        if isinstance(error, httpx.TimeoutException):
            return f"no answer within {self.timeout_seconds:g} s ({type(error).__name__}){through}"
        cause: BaseException | None = error
        while cause is not None:
            if isinstance(cause, socket.gaierror):
                return f"the host name {urlsplit(self.uri).hostname!r} does not resolve (DNS: {cause.strerror})"
            if isinstance(cause, ConnectionRefusedError):
                return "connection refused" + through
            if isinstance(cause, FileNotFoundError) and socket_path:
                return f"the egress socket {socket_path} does not exist"
            cause = cause.__cause__ or cause.__context__
        text = str(error)
        if "Name or service not known" in text or "nodename nor servname" in text or "Temporary failure in name" in text:
            return f"the host name {urlsplit(self.uri).hostname!r} does not resolve (DNS: {text})"
        if "Connection refused" in text:
            return "connection refused" + through
        return f"{text or type(error).__name__}{through}"
