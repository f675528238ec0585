"""The tracking gateway over HTTP (:mod:`aitip.experiments.gateway`): a job kernel's MLflow client calls
``api/aitip/v1/tracking/api/2.0/mlflow/...`` with the job's credential. The caller is checked on the
request's headers, before its body; an artifact's body is written to disk as it arrives."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from jupyter_server.auth.decorator import authorized
from tornado import web

from ...errors import AitipError, BadRequest, NotFound, PayloadTooLarge, PermissionDenied, ServiceUnavailable
from ...experiments.gateway import ARTIFACTS_API, ArtifactUpload, GatewayRequest, JobCaller, Refused, TrackingGateway
from ..routes import RouteOperation
from .base import AitipHandler

SUMMARY = "MLflow's REST API for a running job's kernel (its own credential): its project's runs, models, artifacts"
CHUNK = 1 << 20
MLFLOW_BODY_BYTES = 16 * 1024 * 1024  # MLflow's JSON requests (a log-batch, logged inputs); artifacts stream


def _as_error(refused: Refused) -> AitipError:
    kind = {403: PermissionDenied, 404: NotFound, 413: PayloadTooLarge}.get(refused.status, BadRequest)
    return kind(refused.message, code=refused.code.lower())


class TrackingGatewayHandler(AitipHandler):
    operations = {method: RouteOperation("tracking.gateway", SUMMARY) for method in ("GET", "POST", "PATCH", "PUT", "DELETE")}
    caller: JobCaller | None = None
    upload: ArtifactUpload | None = None

    @property
    def gateway(self) -> TrackingGateway:
        if self.context.tracking_gateway is None:
            raise ServiceUnavailable("MLflow tracking is off on this platform")
        return self.context.tracking_gateway

    @property
    def buffered_body_limit(self) -> int:
        return max(self.context.max_body_bytes, MLFLOW_BODY_BYTES)

    async def before_body(self) -> None:
        await super().before_body()
        if self.context.jobs is None:
            raise ServiceUnavailable("jobs are off on this platform")
        job_id, project, owner = await self.context.jobs.job_scope(self.principal, None, "tracking.gateway")
        self.caller = JobCaller(job_id, project, owner)
        path = self.path_kwargs["mlflow_path"]
        if self.request.method == "PUT" and path.startswith(ARTIFACTS_API + "/"):
            try:
                self.upload = self.gateway.artifact_upload(self.caller, path)
            except Refused as refused:
                raise _as_error(refused) from None

    def receive_body(self, chunk: bytes) -> Awaitable[None] | None:
        if self.upload is None:
            return super().receive_body(chunk)
        try:
            self.upload.write(chunk)
        except Refused as refused:
            raise _as_error(refused) from None
        return None

    def on_finish(self) -> None:
        if self.upload is not None:
            self.upload.discard()  # nothing once committed; the partial file of a refused or broken upload
        super().on_finish()

    def on_connection_close(self) -> None:
        if self.upload is not None:
            self.upload.discard()
        super().on_connection_close()

    async def _serve(self, mlflow_path: str) -> None:
        assert self.caller is not None, "before_body identified the job"
        try:
            query = {name: [value.decode("utf-8") for value in values]
                     for name, values in self.request.query_arguments.items()}
        except UnicodeDecodeError:
            raise BadRequest("the query is not valid UTF-8", code="invalid_encoding") from None
        request = GatewayRequest(self.request.method or "GET", mlflow_path, query, self.request.body,
                                 self.request.headers.get("Content-Type", ""), upload=self.upload)
        response = await asyncio.to_thread(self.gateway.handle, self.caller, request)
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
