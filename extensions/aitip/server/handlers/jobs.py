"""The job operations REST serves with a handler of its own (the rest are generated from the operation
table): a live Server-Sent Events stream of a job's events (resumable with ``Last-Event-ID``), the executed
notebook as a file, and a job kernel's request to store what it spooled for MLflow."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from jupyter_server.auth.decorator import authorized
from tornado import web
from tornado.iostream import StreamClosedError

from ...errors import InvalidInput, ServiceUnavailable
from ...jobs.models import EventsQuery, TrackingFlush
from ...jobs.service import JobService
from ...operations.binding import running_service
from .base import AitipHandler


class JobsBase(AitipHandler):
    @property
    def service(self) -> JobService:
        return running_service(self.context, "jobs")  # type: ignore[no-any-return]

    @staticmethod
    def job_id(value: str) -> int:
        return int(value)


class JobTrackingHandler(JobsBase):
    @web.authenticated
    @authorized
    async def post(self, job: str) -> None:
        job_id, project, _ = await self.service.job_scope(self.principal, self.job_id(job), self.operation.action)
        spools = self.context.spools
        if spools is None:
            raise ServiceUnavailable("MLflow tracking is off on this platform")
        result = await asyncio.to_thread(spools.drain, job_id, None, project)
        self.send(TrackingFlush(stored=result.stored, errors=spools.take_errors(job_id),
                                pending_bytes=result.pending_bytes))


class JobNotebookHandler(JobsBase):
    @web.authenticated
    @authorized
    async def get(self, job: str) -> None:
        path = Path(await self.service.output_notebook_path(self.principal, self.job_id(job),
                                                            action=self.operation.action))
        data = await asyncio.to_thread(path.read_bytes)
        self.set_header("Content-Type", "application/x-ipynb+json")
        self.set_header("Content-Disposition", f'inline; filename="job-{job}.ipynb"')
        self.finish(data)


class JobEventsHandler(JobsBase):
    """JSON pages by default; ``Accept: text/event-stream`` streams until the job finishes."""

    keepalive_seconds = 15.0
    _closed = False

    def on_connection_close(self) -> None:
        self._closed = True

    @web.authenticated
    @authorized
    async def get(self, job: str) -> None:
        job_id = self.job_id(job)
        query = self.query(EventsQuery)
        after = query.after
        last_event_id = self.request.headers.get("Last-Event-ID")
        if last_event_id:
            if not last_event_id.isdigit() or len(last_event_id) > 18:
                raise InvalidInput("Last-Event-ID must be an event id (a number of at most 18 digits)")
            after = int(last_event_id)
        if "text/event-stream" not in self.request.headers.get("Accept", ""):
            page = EventsQuery(after=after, limit=query.limit)
            self.send(await self.service.event_page(self.principal, job_id, page))
            return
        await self._stream(job_id, after)

    async def _stream(self, job_id: int, after: int) -> None:
        events, state = await self.service.events(self.principal, job_id, after,  # checks access first
                                                  action=self.operation.action)
        self.set_header("Content-Type", "text/event-stream; charset=UTF-8")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Accel-Buffering", "no")
        self.write("retry: 2000\n\n")
        last_sent = time.monotonic()
        try:
            while not self._closed:
                for event in events:
                    payload = json.dumps(event.model_dump(mode="json"))
                    self.write(f"id: {event.id}\nevent: {event.kind}\ndata: {payload}\n\n")
                    after = event.id
                if events:
                    await self.flush()
                    last_sent = time.monotonic()
                if state.finished and not events:
                    self.write(f"event: end\ndata: {json.dumps({'state': state.value})}\n\n")
                    await self.flush()
                    break
                if not events:
                    await self.service.signals.wait_job(job_id, 0.5)
                    if time.monotonic() - last_sent > self.keepalive_seconds:
                        self.write(": keep-alive\n\n")
                        await self.flush()
                        last_sent = time.monotonic()
                events, state = await self.service.events(self.principal, job_id, after,
                                                          action=self.operation.action)
        except StreamClosedError:
            return
        self.finish()
