"""The tracking gateway over HTTP (:mod:`aitip.experiments.gateway`): a job kernel's MLflow client calls
``api/aitip/v1/tracking/api/2.0/mlflow/...`` with the job's credential."""

from __future__ import annotations

import asyncio

from jupyter_server.auth.decorator import authorized
from tornado import web

from ...errors import BadRequest, ServiceUnavailable
from ...experiments.gateway import GatewayRequest, JobCaller
from ..routes import Operation
from .base import AitipHandler

SUMMARY = "MLflow's REST API for a running job's kernel (its own credential): its project's runs, models, artifacts"
CHUNK = 1 << 20


class TrackingGatewayHandler(AitipHandler):
    operations = {method: Operation("tracking.gateway", SUMMARY) for method in ("GET", "POST", "PATCH", "PUT", "DELETE")}

    async def _serve(self, mlflow_path: str) -> None:
        if self.context.jobs is None:
            raise ServiceUnavailable("jobs are off on this platform")
        job_id, project, owner = await self.context.jobs.job_scope(self.principal, None, "tracking.gateway")
        gateway = self.context.tracking_gateway
        if gateway is None:
            raise ServiceUnavailable("MLflow tracking is off on this platform")
        try:
            query = {name: [value.decode("utf-8") for value in values]
                     for name, values in self.request.query_arguments.items()}
        except UnicodeDecodeError:
            raise BadRequest("the query is not valid UTF-8", code="invalid_encoding") from None
        request = GatewayRequest(self.request.method or "GET", mlflow_path, query, self.request.body,
                                 self.request.headers.get("Content-Type", ""))
        response = await asyncio.to_thread(gateway.handle, JobCaller(job_id, project, owner), request)
        self.set_status(response.status)
        for name, value in response.headers.items():
            self.set_header(name, value)
        if response.file is None:
            self.finish(response.body)
            return
        with open(response.file, "rb") as data:
            while chunk := await asyncio.to_thread(data.read, CHUNK):
                self.write(chunk)
                await self.flush()
        self.finish()

    @web.authenticated
    @authorized
    async def get(self, mlflow_path: str) -> None:
        await self._serve(mlflow_path)

    @web.authenticated
    @authorized
    async def post(self, mlflow_path: str) -> None:
        await self._serve(mlflow_path)

    @web.authenticated
    @authorized
    async def patch(self, mlflow_path: str) -> None:
        await self._serve(mlflow_path)

    @web.authenticated
    @authorized
    async def put(self, mlflow_path: str) -> None:
        await self._serve(mlflow_path)

    @web.authenticated
    @authorized
    async def delete(self, mlflow_path: str) -> None:
        await self._serve(mlflow_path)
