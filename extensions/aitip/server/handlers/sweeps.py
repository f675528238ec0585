"""Sweeps over REST: start one, read it with its trials, list a project's, cancel."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ...jobs.models import Sweep, SweepCreate, SweepList
from ...jobs.sweeps import SweepService
from ...schema import ProjectName, RequestModel
from ..routes import Operation
from .base import AitipHandler
from .jobs import MAX_NOTEBOOK_BYTES


class SweepListQuery(RequestModel):
    project: ProjectName


class SweepsBase(AitipHandler):
    @property
    def service(self) -> SweepService:
        assert self.context.sweeps is not None
        return self.context.sweeps


class SweepsHandler(SweepsBase):
    operations = {
        "GET": Operation("sweep.read", "A project's sweeps", query=SweepListQuery, response=SweepList),
        "POST": Operation("sweep.create", "Start a grid, random or TPE sweep", body=SweepCreate, response=Sweep,
                          status=201),
    }

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.send(await self.service.list(self.principal, self.query(SweepListQuery).project))

    @web.authenticated
    @authorized
    async def post(self) -> None:
        sweep = await self.service.create(self.principal, self.json_body(SweepCreate, limit=MAX_NOTEBOOK_BYTES))
        self.set_header("Location", f"{self.request.path.rstrip('/')}/{sweep.id}")
        self.send(sweep)


class SweepHandler(SweepsBase):
    operations = {"GET": Operation("sweep.read", "A sweep with its trials", response=Sweep)}

    @web.authenticated
    @authorized
    async def get(self, sweep: str) -> None:
        self.send(await self.service.get(self.principal, int(sweep)))


class SweepCancelHandler(SweepsBase):
    operations = {"POST": Operation("sweep.cancel", "Cancel a sweep and its running trials", response=Sweep)}

    @web.authenticated
    @authorized
    async def post(self, sweep: str) -> None:
        self.send(await self.service.cancel(self.principal, int(sweep)))
