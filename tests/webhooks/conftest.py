"""Webhook fixtures: a project with members of every role, the service and its dispatcher, and a real HTTP
receiver on 127.0.0.1 (admitted by the allow-list, as an admin would configure it) whose answers a test
scripts."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_asyncio
from aitip.catalog import Catalog
from aitip.identity.directory import DirectoryEntry
from aitip.identity.principal import Principal
from aitip.identity.roles import Role
from aitip.projects.models import MemberAdd, ProjectCreate
from aitip.projects.service import ProjectService
from aitip.webhooks.delivery import WebhookDispatcher
from aitip.webhooks.service import WebhookService
from aitip.webhooks.targets import ALLOWED_NETWORKS_ENV
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application, RequestHandler

from tests.support.directories import FixedDirectory

ANN = Principal("ann")  # the project's admin
MAY = Principal("may")  # maintainer
DEV = Principal("dev")  # developer
VIC = Principal("vic")  # viewer
EVE = Principal("eve")  # no member
WAIT = 60.0  # seconds before a wait gives up: a failsafe, never a pace

HOLD = "hold"  # a scripted answer: keep the request open until the test releases it


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A webhook receiver: records each request, then answers the next scripted status (200 when the
    script is spent) or holds the request open."""

    port: int = 0
    script: list[int | str] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    _arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    async def wait_for(self, count: int) -> list[Received]:
        async with self._arrived:
            await asyncio.wait_for(self._arrived.wait_for(lambda: len(self.requests) >= count), WAIT)
        return self.requests[:count]


class _Hook(RequestHandler):
    def initialize(self, receiver: Receiver) -> None:
        self.receiver = receiver

    async def post(self, _path: str) -> None:
        receiver = self.receiver
        receiver.requests.append(Received(self.request.uri or "", dict(self.request.headers), self.request.body))
        async with receiver._arrived:
            receiver._arrived.notify_all()
        answer = receiver.script.pop(0) if receiver.script else 200
        if answer == HOLD:
            await receiver.release.wait()
            answer = 200
        self.set_status(int(answer))
        self.finish({"status": int(answer)})


@contextlib.asynccontextmanager
async def serve(ssl_options: ssl.SSLContext | None = None) -> AsyncIterator[Receiver]:
    """A receiver listening on 127.0.0.1 (plain HTTP, or TLS with ``ssl_options``) until the block ends."""
    receiver = Receiver()
    sockets = bind_sockets(0, "127.0.0.1")
    receiver.port = sockets[0].getsockname()[1]
    server = HTTPServer(Application([(r"(/.*)", _Hook, {"receiver": receiver})]), ssl_options=ssl_options)
    server.add_sockets(sockets)
    try:
        yield receiver
    finally:
        receiver.release.set()
        server.stop()
        await server.close_all_connections()


@pytest_asyncio.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with serve() as receiver:
        yield receiver


@pytest.fixture
def allow_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """The admin's configuration that admits the test's receiver (and nothing else private)."""
    monkeypatch.setenv(ALLOWED_NETWORKS_ENV, "127.0.0.1/32")


def make_dispatcher(catalog: Catalog, **config: Any) -> WebhookDispatcher:
    """Fast retries, so that a test of three attempts takes milliseconds, not minutes."""
    settings: dict[str, Any] = {"max_attempts": 3, "base_delay_seconds": 0.01, "max_delay_seconds": 0.05,
                                "poll_seconds": 1.0, "attempt_timeout_seconds": 30.0}
    settings.update(config)
    return WebhookDispatcher(catalog, **settings)


@pytest_asyncio.fixture
async def projects(catalog: Catalog) -> ProjectService:
    users = {p.name: DirectoryEntry(p.name, p.groups, p.is_admin) for p in (ANN, MAY, DEV, VIC, EVE)}
    service = ProjectService(catalog, FixedDirectory(users, set()))
    await service.create(ANN, ProjectCreate(name="alpha"))
    for principal, role in ((MAY, Role.maintainer), (DEV, Role.developer), (VIC, Role.viewer)):
        await service.add_member(ANN, "alpha", MemberAdd(user=principal.name, role=role))
    return service


@pytest_asyncio.fixture
async def webhooks(catalog: Catalog, projects: ProjectService, allow_loopback: None
                   ) -> AsyncIterator[WebhookService]:
    """The service with a running dispatcher, stopped after the test."""
    dispatcher = make_dispatcher(catalog)
    await dispatcher.start()
    yield WebhookService(catalog, dispatcher)
    await dispatcher.stop()
