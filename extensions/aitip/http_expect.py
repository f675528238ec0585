"""Uploads that ask before they send: ``Expect: 100-continue`` on one HTTP/1.1 connection (h11).

httpx sends a request's body right behind its headers. An upload the platform refuses (a viewer, an unknown
project, a file over the limit) would then be sent whole only to be told no. Here the headers go first,
with ``Expect: 100-continue``, and the body follows the server's ``100 Continue`` — or, from a server that
ignores the expectation, ``continue_timeout`` seconds of silence. A final answer that comes first is the
answer: the body is never sent. One that comes while the body is being sent (behind configurable-http-proxy,
whose node server answers ``100 Continue`` itself at once, the platform's refusal arrives that way) stops it.
Either way the connection is closed afterwards, since the server may still be expecting the rest.

The body is sent as it is read (an iterator of chunks, with its length given up front as Content-Length),
each chunk handed to the socket without a copy. Where an HTTP proxy from the environment applies
(``HTTP_PROXY`` ...), the request goes through the caller's httpx client instead, as before.
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import time
import urllib.request
from collections.abc import Iterable
from typing import Any

import h11
import httpx

CONTINUE_TIMEOUT = 2.0  # seconds to wait for "100 Continue" (or a refusal) before sending the body anyway
_READ = 1 << 16
_NOT_FORWARDED = {"content-length", "transfer-encoding", "expect", "connection", "accept-encoding", "te",
                  "keep-alive", "upgrade"}


def send_expecting_continue(http: httpx.Client, request: httpx.Request, body: Iterable[bytes], length: int, *,
                            timeout: httpx.Timeout, continue_timeout: float = CONTINUE_TIMEOUT) -> httpx.Response:
    """Send ``request`` (built without content by ``http``) with ``body``, ``length`` bytes, asking first.

    Returns the server's answer (its body read whole); raises :class:`httpx.TransportError` subclasses as
    httpx would (``ConnectError``, ``WriteError``, ``ReadTimeout``, ``RemoteProtocolError``)."""
    if _through_proxy(request.url):
        headers = [(name, value) for name, value in request.headers.multi_items()
                   if name.lower() not in ("content-length", "transfer-encoding")]
        plain = http.build_request(request.method, request.url, content=body, timeout=timeout,
                                   headers=[*headers, ("Content-Length", str(length))])
        return http.send(plain)
    iterator = iter(body)
    response = _exchange(request, iterator, length, timeout, continue_timeout, expect=True)
    if response.status_code == 417 and response.extensions.get("aitip_body_sent") == 0:
        # The server does not do expectations (RFC 9110 10.1.1): the same request, plainly.
        response = _exchange(request, iterator, length, timeout, continue_timeout, expect=False)
    return response


def _through_proxy(url: httpx.URL) -> bool:
    proxies = urllib.request.getproxies_environment()
    if not (proxies.get(url.scheme) or proxies.get("all")):
        return False
    return not urllib.request.proxy_bypass_environment(url.host, proxies)


def _exchange(request: httpx.Request, body: Any, length: int, timeout: httpx.Timeout, continue_timeout: float, *,
              expect: bool) -> httpx.Response:
    with _Connection(request, timeout) as connection:
        headers = [(name, value) for name, value in request.headers.multi_items()
                   if name.lower() not in _NOT_FORWARDED]
        headers += [("Content-Length", str(length)), ("Accept-Encoding", "identity"), ("Connection", "close")]
        if expect:
            headers.append(("Expect", "100-continue"))
        target = request.url.raw_path
        connection.send(h11.Request(method=request.method, target=target, headers=headers))
        answer = connection.wait_for_head(continue_timeout) if expect else None
        if isinstance(answer, h11.Response):  # answered before the body: it is not sent
            return connection.read_answer(answer)
        try:
            while True:
                chunk = _next_chunk(body)
                answer = connection.answer_arrived()
                if answer is not None:
                    return connection.read_answer(answer)
                if chunk is None:
                    connection.send(h11.EndOfMessage())
                    break
                if chunk:
                    connection.send(h11.Data(data=chunk))
        except _SourceFailed as failed:  # reading the body failed (a file changed): that error, as it is
            raise failed.error from None
        except h11.LocalProtocolError as error:  # the body is longer or shorter than its length
            raise httpx.LocalProtocolError(f"the upload's body does not match its length {length}: {error}",
                                           request=request) from error
        except OSError as error:  # reset or closed under the body: an answer may have come before
            answer = connection.answer_after_failure()
            if answer is None:
                raise httpx.WriteError(f"the connection failed while sending the body: {error}",
                                       request=request) from error
            return connection.read_answer(answer)
        return connection.read_answer(connection.wait_for_head(_seconds(timeout.read), final=True))


def _seconds(timeout: float | None) -> float:
    """httpx's None (no limit) as a number of seconds."""
    return timeout if timeout is not None else 1e9


class _SourceFailed(Exception):
    def __init__(self, error: BaseException) -> None:
        self.error = error


def _next_chunk(body: Any) -> bytes | None:
    """The body's next chunk (None at its end); its source's own errors kept apart from the socket's."""
    try:
        return next(body, None)  # type: ignore[no-any-return]
    except Exception as error:  # noqa: BLE001 - re-raised as it is by the caller
        raise _SourceFailed(error) from error


class _Connection:
    """A socket to the request's host and the h11 state of the one exchange on it."""

    def __init__(self, request: httpx.Request, timeout: httpx.Timeout) -> None:
        self.request = request
        self.timeout = timeout
        url = request.url
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            sock = socket.create_connection((url.host, port), timeout=timeout.connect)
        except OSError as error:
            raise httpx.ConnectError(str(error), request=request) from error
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if url.scheme == "https":
            try:
                sock = httpx.create_ssl_context().wrap_socket(sock, server_hostname=url.host)
            except (OSError, ssl.SSLError) as error:
                sock.close()
                raise httpx.ConnectError(str(error), request=request) from error
        sock.settimeout(timeout.write)
        self.sock = sock
        self.h11 = h11.Connection(h11.CLIENT)
        self.sent = 0  # body bytes
        self.closed = False  # by the server

    def __enter__(self) -> _Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def send(self, event: Any) -> None:
        for piece in self.h11.send_with_data_passthrough(event):
            self.sock.sendall(piece)
        if isinstance(event, h11.Data):
            self.sent += len(event.data)

    def _receive(self, wait: float | None) -> bool:
        """Read what the server sent into h11: waiting up to ``wait`` seconds (None: not at all). False when
        nothing came."""
        if wait is None:
            pending = isinstance(self.sock, ssl.SSLSocket) and self.sock.pending()
            if not pending and not select.select([self.sock], [], [], 0)[0]:
                return False
            self.sock.setblocking(False)
        else:
            self.sock.settimeout(max(wait, 0.0))
        try:
            data = self.sock.recv(_READ)
        except (BlockingIOError, ssl.SSLWantReadError, TimeoutError):
            return False
        except OSError:  # reset: what was read is all there is
            data = b""
        finally:
            with contextlib.suppress(OSError):
                self.sock.settimeout(self.timeout.write)
        if data or not self.closed:
            self.closed = not data
            self.h11.receive_data(data)  # b"": the server closed its side
        return True

    def _event(self, wait: float | None) -> Any:
        """The next event, waiting up to ``wait`` seconds; None if there is none yet."""
        deadline = None if wait is None else time.monotonic() + wait
        while True:
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as error:
                raise httpx.RemoteProtocolError(f"the server's answer is not valid HTTP: {error}",
                                                request=self.request) from error
            if event is not h11.NEED_DATA:
                if isinstance(event, h11.ConnectionClosed):
                    raise httpx.RemoteProtocolError("the server closed the connection without answering",
                                                    request=self.request)
                return event
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return None
            if not self._receive(remaining):
                return None

    def wait_for_head(self, wait: float, *, final: bool = False) -> h11.Response | h11.InformationalResponse | None:
        """The first answer head within ``wait`` seconds: ``100 Continue`` or a final answer (with ``final``,
        informational ones are skipped, and none within ``wait`` is a read timeout)."""
        deadline = time.monotonic() + wait
        while True:
            event = self._event(max(deadline - time.monotonic(), 0.0))
            if event is None:
                if final:
                    raise httpx.ReadTimeout(f"no answer within {wait} s", request=self.request)
                return None
            if isinstance(event, h11.Response) or not final:
                return event  # type: ignore[no-any-return]

    def answer_arrived(self) -> h11.Response | None:
        """A final answer that has arrived while the body is being sent (1xx heads are dropped)."""
        while True:
            event = self._event(None)
            if event is None or isinstance(event, h11.Response):
                return event  # type: ignore[no-any-return]

    def answer_after_failure(self) -> h11.Response | None:
        """After the connection failed under the body: an answer the server sent before, if any."""
        try:
            event = self.wait_for_head(_seconds(self.timeout.read), final=True)
        except (httpx.TransportError, OSError):
            return None
        return event if isinstance(event, h11.Response) else None

    def read_answer(self, head: Any) -> httpx.Response:
        assert isinstance(head, h11.Response), head
        content = bytearray()
        while True:
            event = self._event(_seconds(self.timeout.read))
            if event is None:
                raise httpx.ReadTimeout(f"the answer's body did not come within {self.timeout.read} s",
                                        request=self.request)
            if isinstance(event, h11.EndOfMessage):
                break
            if isinstance(event, h11.Data):
                content += event.data
        return httpx.Response(head.status_code, headers=[(k.decode("latin-1"), v.decode("latin-1"))
                                                         for k, v in head.headers],
                              content=bytes(content), request=self.request,
                              extensions={"reason_phrase": head.reason, "http_version": b"HTTP/1.1",
                                          "aitip_body_sent": self.sent})
