"""Datasets over REST. A version is registered by streaming the file as the request body (never held in
memory: hashed and written by a worker thread as it arrives, a zip of images unpacked on the way); the
caller's right to write, and the file's format, are checked before the first byte is accepted."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from pathlib import Path

from jupyter_server.auth.decorator import authorized
from pydantic import Field
from tornado import web

from ...datasets.models import (
    MAX_VERSION,
    Dataset,
    DatasetList,
    DatasetSettings,
    DatasetVersion,
    LineageGraph,
    LineageQuery,
    Preview,
    PreviewQuery,
    RegisterQuery,
    RestoreRequest,
    VersionDiff,
    VersionList,
)
from ...datasets.service import DatasetService
from ...datasets.staging import StagedUpload
from ...errors import AitipError, InvalidInput, NotFound, PayloadTooLarge, ServiceUnavailable
from ...schema import RequestModel, dataset_name_error
from ..routes import Operation
from .base import AitipHandler


class DiffQuery(RequestModel):
    """``?from=<version>&to=<version>`` (the same version twice is an empty diff)."""

    from_version: int = Field(..., alias="from", ge=1, le=MAX_VERSION, description="The older version")
    to_version: int = Field(..., alias="to", ge=1, le=MAX_VERSION, description="The newer version")


class DatasetsBase(AitipHandler):
    async def prepare(self) -> None:  # type: ignore[override]
        """The dataset name in the path is held to the dataset name rule (the router's pattern has no
        length): a name that can never exist is a 422 saying why, before anything else is done."""
        await super().prepare()
        name = self.path_kwargs.get("dataset")
        if name is not None:
            problem = dataset_name_error(name)
            if problem is not None:
                raise InvalidInput(f"invalid path: dataset: {problem}",
                                   detail=[{"field": "dataset", "message": problem, "type": "dataset_name"}])

    @property
    def service(self) -> DatasetService:
        if self.context.datasets is None:
            raise ServiceUnavailable("the dataset registry is not configured on this platform")
        return self.context.datasets

    @staticmethod
    def version_number(value: str) -> int:
        number = int(value)
        if number < 1:
            raise NotFound("dataset versions start at 1")
        return number


class DatasetsHandler(DatasetsBase):
    operations = {"GET": Operation("dataset.read", "List the project's datasets", response=DatasetList)}

    @web.authenticated
    @authorized
    async def get(self, project: str) -> None:
        datasets = await self.service.list_datasets(self.principal, self.project_name(project))
        self.send(DatasetList(datasets=datasets))


class DatasetHandler(DatasetsBase):
    operations = {
        "GET": Operation("dataset.read", "A dataset and its latest version number", response=Dataset),
        "PATCH": Operation("dataset.manage", "Change masking, the quality gate or the description",
                           body=DatasetSettings, response=Dataset),
    }

    @web.authenticated
    @authorized
    async def get(self, project: str, dataset: str) -> None:
        self.send(await self.service.get(self.principal, self.project_name(project), dataset))

    @web.authenticated
    @authorized
    async def patch(self, project: str, dataset: str) -> None:
        settings = self.json_body(DatasetSettings)
        self.send(await self.service.update_settings(self.principal, self.project_name(project), dataset, settings))


@web.stream_request_body
class DatasetVersionsHandler(DatasetsBase):
    """``POST`` streams a file (CSV, Parquet, JSONL, or a zip of class folders) as the next version.

    Who may write, the file's name and format, and its declared size are checked on the headers (a client
    that sent ``Expect: 100-continue`` is refused before it sends the body); a refusal while the body streams
    in (over the limit, an unsafe archive) is answered once the rest has been read (see handlers/base.py)."""

    operations = {
        "GET": Operation("dataset.read", "The dataset's versions", response=VersionList),
        "POST": Operation("dataset.write", "Register the body (the file's bytes) as the next version",
                          query=RegisterQuery, response=DatasetVersion, status=201),
    }
    upload: StagedUpload | None = None

    async def before_body(self) -> None:
        await super().before_body()
        if self.request.method != "POST":
            return
        project = self.project_name(self.path_kwargs["project"])
        self.register_query = self.query(RegisterQuery)
        await self.service.check_can_write(self.principal, project)
        limit = self.service.max_upload_bytes
        declared = self.declared_length
        if declared is not None and declared > limit:
            raise PayloadTooLarge(f"the upload is {declared} bytes; the limit is {limit}",
                                  detail={"limit_bytes": limit})
        self.upload = self.service.start_upload(self.register_query.filename, self.register_query.format)

    def receive_body(self, chunk: bytes) -> Awaitable[None] | None:
        """Queued for the upload's worker; the awaitable it may return pauses reading the body."""
        if self.upload is None:
            return super().receive_body(chunk)
        try:
            return self.upload.feed(chunk)
        except AitipError:  # over the limit, or an archive refused mid-stream: the rest is read, then answered
            self.upload.discard()
            raise

    def on_connection_close(self) -> None:
        if self.upload is not None:
            self.upload.discard()
        super().on_connection_close()

    def on_finish(self) -> None:
        if self.upload is not None:
            self.upload.discard()
        super().on_finish()

    @web.authenticated
    @authorized
    async def get(self, project: str, dataset: str) -> None:
        versions = await self.service.versions(self.principal, self.project_name(project), dataset)
        self.send(VersionList(versions=versions))

    @web.authenticated
    @authorized
    async def post(self, project: str, dataset: str) -> None:
        assert self.upload is not None
        await self.upload.complete()
        query = self.register_query
        version = await self.service.register(self.principal, project, dataset, self.upload, fmt=query.format,
                                              message=query.message)
        self.set_header("Location", f"{self.request.path.rstrip('/')}/{version.version}")
        self.set_header("Server-Timing", ", ".join(f"{step};dur={seconds * 1000:.0f}"
                                                   for step, seconds in self.upload.timings.items()))
        self.send(version)


class DatasetVersionHandler(DatasetsBase):
    operations = {"GET": Operation("dataset.read", "One version: schema, quality, Git tag", response=DatasetVersion)}

    @web.authenticated
    @authorized
    async def get(self, project: str, dataset: str, version: str) -> None:
        self.send(await self.service.version(self.principal, self.project_name(project), dataset,
                                             self.version_number(version)))


class DatasetPreviewHandler(DatasetsBase):
    operations = {"GET": Operation("dataset.read", "The first rows; sensitive columns masked below maintainer",
                                   query=PreviewQuery, response=Preview)}

    @web.authenticated
    @authorized
    async def get(self, project: str, dataset: str, version: str) -> None:
        query = self.query(PreviewQuery)
        self.send(await self.service.preview(self.principal, self.project_name(project), dataset,
                                             self.version_number(version), query.limit))


class DatasetDownloadHandler(DatasetsBase):
    operations = {"GET": Operation("dataset.read", "The version's file; sensitive columns masked below maintainer")}

    @web.authenticated
    @authorized
    async def get(self, project: str, dataset: str, version: str) -> None:
        export = await self.service.export(self.principal, self.project_name(project), dataset,
                                           self.version_number(version))
        try:
            self.set_header("Content-Type", export.media_type)
            self.set_header("Content-Disposition", f'attachment; filename="{export.filename}"')
            self.set_header("X-AITIP-Masked-Columns", ",".join(export.masked_columns))
            with open(export.path, "rb") as data:
                while chunk := await asyncio.to_thread(data.read, 1 << 20):
                    self.write(chunk)
                    await self.flush()
            self.finish()
        finally:
            if export.temporary:
                with contextlib.suppress(FileNotFoundError):
                    Path(export.path).unlink()


class DatasetRestoreHandler(DatasetsBase):
    operations = {"POST": Operation("dataset.write", "Register an old version's content as the next version",
                                    body=RestoreRequest, response=DatasetVersion, status=201)}

    @web.authenticated
    @authorized
    async def post(self, project: str, dataset: str, version: str) -> None:
        body = self.json_body(RestoreRequest)
        self.send(await self.service.restore(self.principal, self.project_name(project), dataset,
                                             self.version_number(version), body.message))


class DatasetDiffHandler(DatasetsBase):
    operations = {"GET": Operation("dataset.read", "What changed between two versions", query=DiffQuery,
                                   response=VersionDiff)}

    @web.authenticated
    @authorized
    async def get(self, project: str, dataset: str) -> None:
        query = self.query(DiffQuery)
        self.send(await self.service.diff(self.principal, self.project_name(project), dataset,
                                          query.from_version, query.to_version))


class LineageHandler(DatasetsBase):
    operations = {"GET": Operation("lineage.read", "The lineage graph around a dataset version, job, run or model",
                                   query=LineageQuery, response=LineageGraph)}

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.send(await self.service.lineage(self.principal, self.query(LineageQuery)))
