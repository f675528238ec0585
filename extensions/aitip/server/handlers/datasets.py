"""The dataset operations REST serves with a handler of its own (the rest are generated from the operation
table). A version is registered by streaming the file as the request body (never held in memory: hashed and
written by a worker thread as it arrives, a zip of images unpacked on the way); the caller's right to write,
and the file's format, are checked before the first byte is accepted. A version's file is downloaded in
chunks."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from pathlib import Path

from jupyter_server.auth.decorator import authorized
from tornado import web

from ...datasets.models import RegisterQuery, RegistrationQuery
from ...datasets.service import DatasetService
from ...datasets.staging import StagedUpload
from ...errors import AitipError, PayloadTooLarge
from ...operations.binding import convert_path, running_service
from .base import AitipHandler


class DatasetsBase(AitipHandler):
    async def prepare(self) -> None:  # type: ignore[override]
        """The path's values are held to their rules (a dataset name that can never exist is a 422 saying why)
        before anything else is done; the handler's methods get them converted in ``self.path_values``."""
        await super().prepare()
        if not self._finished:
            self.path_values = convert_path(self.operation, self.path_kwargs)  # type: ignore[arg-type]

    @property
    def service(self) -> DatasetService:
        return running_service(self.context, "datasets")  # type: ignore[no-any-return]


@web.stream_request_body
class DatasetVersionsHandler(DatasetsBase):
    """``POST`` streams a file (CSV, Parquet, JSONL, or a zip of class folders) as the next version.

    Who may write, the file's name and format, and its declared size are checked on the headers (a client
    that sent ``Expect: 100-continue`` is refused before it sends the body); a refusal while the body streams
    in (over the limit, an unsafe archive) is answered once the rest has been read (see handlers/base.py)."""

    upload: StagedUpload | None = None
    query_model: type[RegisterQuery] = RegisterQuery

    async def before_body(self) -> None:
        await super().before_body()
        if self.request.method != "POST":
            return
        project = self.project_name(self.path_kwargs["project"])
        self.register_query = self.query(self.query_model)
        await self.service.check_can_write(self.principal, project, action=self.operation.action)
        limit = self.service.max_upload_bytes
        declared = self.declared_length
        if declared is not None and declared > limit:
            raise PayloadTooLarge("the upload is {declared} bytes; the limit is {limit}",
                                  detail={"limit_bytes": limit}, declared=declared, limit=limit)
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
    async def post(self, project: str, dataset: str) -> None:
        assert self.upload is not None
        await self.upload.complete()
        query = self.register_query
        version = await self.service.register(self.principal, project, dataset, self.upload, fmt=query.format,
                                              message=query.message, action=self.operation.action)
        self.set_header("Location", f"{self.request.path.rstrip('/')}/{version.version}")
        self.set_header("Server-Timing", ", ".join(f"{step};dur={seconds * 1000:.0f}"
                                                   for step, seconds in self.upload.timings.items()))
        self.send(version)


@web.stream_request_body
class DatasetRegistrationsHandler(DatasetVersionsHandler):
    """``POST`` streams a file as :class:`DatasetVersionsHandler` does, then answers 202 with a handle at once:
    the version is made in the background (``GET .../registrations/<id>`` follows it)."""

    query_model = RegistrationQuery

    @web.authenticated
    @authorized
    async def post(self, project: str, dataset: str) -> None:
        assert self.upload is not None
        await self.upload.complete()
        query = self.register_query
        assert isinstance(query, RegistrationQuery)
        upload, self.upload = self.upload, None  # the registration's from here on, discarded when it ends
        registrations = running_service(self.context, "registrations")
        handle = await registrations.start(self.principal, project, dataset, upload, fmt=query.format,
                                           message=query.message, callback_url=query.callback_url,
                                           action=self.operation.action)
        self.set_header("Location", f"{self.request.path.rstrip('/')}/{handle.id}")
        self.send(handle)


class DatasetDownloadHandler(DatasetsBase):
    @web.authenticated
    @authorized
    async def get(self, project: str, dataset: str, version: str) -> None:
        export = await self.service.export(self.principal, project, dataset, self.path_values["version"],
                                           action=self.operation.action)
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
