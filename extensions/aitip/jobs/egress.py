"""The one way out of a sandboxed kernel's network: an HTTP forwarder on a Unix socket in the job's workspace
that sends each request on to the endpoint under test, and nowhere else.

The kernel's network namespace has only a loopback device (:mod:`aitip.isolation.network`); its HTTP client
(``aitip.simulation.http_target``) sends requests over ``$AITIP_EGRESS_SOCKET`` with the endpoint's own URL.
A request whose ``Host`` is not one of the allowed origins is answered 403 here and never leaves the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import httpx

log = logging.getLogger("aitip.jobs.egress")

MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 16 * 1024 * 1024
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
              "transfer-encoding", "upgrade", "content-length", "host"}


def origin_of(url: str) -> tuple[str, str]:
    """(scheme, host:port) of an http(s) URL, with the port made explicit."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an http(s) URL")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return parts.scheme, f"{host}:{port}".lower()


class EgressProxy:
    """Forwards HTTP/1.1 requests arriving on ``socket_path`` to ``allowed`` origins only (one per job)."""

    def __init__(self, allowed: list[str], *, owner: tuple[int, int] | None = None, timeout: float = 120.0) -> None:
        self.socket_path = Path()
        self.allowed = {host: scheme for scheme, host in map(origin_of, allowed)}
        self.owner = owner
        self.timeout = timeout
        self.forwarded = 0
        self.refused: list[str] = []
        self._server: asyncio.AbstractServer | None = None
        self._client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        """Listen in a directory of its own with a short path (a Unix socket path holds ~107 bytes at most),
        which anyone may pass through but only the platform can change."""
        directory = Path(tempfile.mkdtemp(prefix="aitip-e"))
        os.chmod(directory, 0o711)
        self.socket_path = directory / "egress.sock"
        self._client = httpx.AsyncClient(timeout=self.timeout, follow_redirects=False, trust_env=False)
        self._server = await asyncio.start_unix_server(self._serve, path=str(self.socket_path))
        if self.owner is not None:  # the kernel runs as its owner: it may connect, nobody else may
            os.chown(self.socket_path, self.owner[0], self.owner[1])
        os.chmod(self.socket_path, 0o600)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
        if self._client is not None:
            await self._client.aclose()
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        with contextlib.suppress(OSError):
            self.socket_path.parent.rmdir()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await self._one_request(reader, writer):
                pass
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _one_request(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        head = await reader.readuntil(b"\r\n\r\n")
        if len(head) > MAX_HEAD_BYTES:
            await self._answer(writer, 431, "request head too large")
            return False
        lines = head.decode("latin-1").split("\r\n")
        method, target, _version = (lines[0].split(" ", 2) + ["", ""])[:3]
        headers: list[tuple[str, str]] = []
        for line in lines[1:]:
            if ":" in line:
                name, _, value = line.partition(":")
                headers.append((name.strip(), value.strip()))
        named = {name.lower(): value for name, value in headers}
        if "chunked" in named.get("transfer-encoding", "").lower():
            await self._answer(writer, 411, "send a Content-Length")
            return False
        length = int(named.get("content-length") or 0)
        if length > MAX_BODY_BYTES:
            await self._answer(writer, 413, "request body too large")
            return False
        body = await reader.readexactly(length) if length else b""
        if target.startswith(("http://", "https://")):
            scheme, host = origin_of(target)
            path = urlsplit(target).path or "/"
            query = urlsplit(target).query
            path += f"?{query}" if query else ""
        else:
            host, path = named.get("host", "").lower(), target
            scheme = self.allowed.get(host) or self.allowed.get(f"{host}:80") or ""
            host = host if host in self.allowed else f"{host}:80"
        if host not in self.allowed or (scheme and scheme != self.allowed[host]):
            self.refused.append(host)
            await self._answer(writer, 403, f"this sandbox may reach only {', '.join(sorted(self.allowed))}; "
                                            f"not {host or 'a request without a Host'}")
            return False
        url = f"{self.allowed[host]}://{host}{path}"
        forwarded = [(name, value) for name, value in headers if name.lower() not in HOP_BY_HOP]
        assert self._client is not None
        try:
            response = await self._client.request(method, url, headers=forwarded, content=body)
        except httpx.HTTPError as error:
            await self._answer(writer, 502, f"the endpoint {url} could not be reached: {type(error).__name__}: "
                                            f"{error}")
            return False
        self.forwarded += 1
        keep = named.get("connection", "").lower() != "close"
        out = [f"HTTP/1.1 {response.status_code} {response.reason_phrase}"]
        out += [f"{name}: {value}" for name, value in response.headers.multi_items()
                if name.lower() not in HOP_BY_HOP and name.lower() != "content-encoding"]
        out += [f"Content-Length: {len(response.content)}", f"Connection: {'keep-alive' if keep else 'close'}"]
        writer.write(("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + response.content)
        await writer.drain()
        return keep

    @staticmethod
    async def _answer(writer: asyncio.StreamWriter, status: int, message: str) -> None:
        body = (message + "\n").encode()
        reasons = {403: "Forbidden", 411: "Length Required", 413: "Payload Too Large",
                   431: "Request Header Fields Too Large", 502: "Bad Gateway"}
        writer.write(f"HTTP/1.1 {status} {reasons.get(status, 'Error')}\r\nContent-Type: text/plain; charset=utf-8"
                     f"\r\nX-Aitip-Egress: refused\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
                     .encode() + body)
        await writer.drain()
