"""HTTP/1.1 to a replica's Unix socket, kept alive: the router's side of the hop. Each new connection is
checked with ``SO_PEERCRED`` — the peer must be the expected account (the deployment's owner), so a socket
its owner swapped for a link to someone else's replica is refused."""

from __future__ import annotations

import asyncio
import socket
import struct
from dataclasses import dataclass, field


class UpstreamError(ConnectionError):
    """The replica could not be reached, or broke off before answering: the request may go to another."""


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter


@dataclass
class UpstreamPool:
    """Idle connections to one replica's socket."""

    path: str
    uid: int | None = None  # the account the replica must run as (None: not checked)
    idle: list[_Connection] = field(default_factory=list)
    limit: int = 64

    async def _connect(self) -> _Connection:
        try:
            reader, writer = await asyncio.open_unix_connection(self.path, limit=1 << 24)
        except OSError as error:
            raise UpstreamError(f"cannot reach the replica at {self.path}: {error}") from None
        if self.uid is not None:
            raw = writer.get_extra_info("socket")
            pid, uid, gid = struct.unpack("3i", raw.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                               struct.calcsize("3i")))
            if uid != self.uid:
                writer.close()
                raise UpstreamError(f"the socket {self.path} is held by uid {uid}, not the deployment's owner")
        return _Connection(reader, writer)

    async def request(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> Answer:
        """One request; a reused connection that turns out closed is retried once on a fresh one."""
        reused = bool(self.idle)
        connection = self.idle.pop() if reused else await self._connect()
        try:
            answer = await self._exchange(connection, method, path, body, headers)
        except (OSError, asyncio.IncompleteReadError, UpstreamError) as error:
            connection.writer.close()
            if not reused:
                raise UpstreamError(f"the replica at {self.path} broke off: {error}") from None
            connection = await self._connect()
            try:
                answer = await self._exchange(connection, method, path, body, headers)
            except (OSError, asyncio.IncompleteReadError, UpstreamError) as again:
                connection.writer.close()
                raise UpstreamError(f"the replica at {self.path} broke off: {again}") from None
        if len(self.idle) < self.limit and answer.headers.get("connection", "").lower() != "close":
            self.idle.append(connection)
        else:
            connection.writer.close()
        return answer

    @staticmethod
    async def _exchange(connection: _Connection, method: str, path: str, body: bytes,
                        headers: dict[str, str]) -> Answer:
        head = [f"{method} {path} HTTP/1.1", "Host: replica", f"Content-Length: {len(body)}"]
        head += [f"{name}: {value}" for name, value in headers.items()]
        connection.writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        status_line = await connection.reader.readline()
        if not status_line:
            raise UpstreamError("closed before answering")
        parts = status_line.split(b" ", 2)
        if len(parts) < 2 or not parts[1].isdigit():
            raise UpstreamError(f"not an HTTP answer: {status_line[:80]!r}")
        answer_headers: dict[str, str] = {}
        while True:
            line = await connection.reader.readline()
            if line in (b"\r\n", b"\n"):
                break
            if not line:
                raise UpstreamError("closed in the headers")
            name, _, value = line.decode("latin-1").partition(":")
            answer_headers[name.strip().lower()] = value.strip()
        if answer_headers.get("transfer-encoding", "").lower() == "chunked":
            data = await _read_chunked(connection.reader)
        else:
            data = await connection.reader.readexactly(int(answer_headers.get("content-length", "0")))
        return Answer(int(parts[1]), answer_headers, data)

    def close(self) -> None:
        for connection in self.idle:
            connection.writer.close()
        self.idle.clear()


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    data = bytearray()
    while True:
        size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
        if size == 0:
            await reader.readline()
            return bytes(data)
        data += await reader.readexactly(size)
        await reader.readline()
