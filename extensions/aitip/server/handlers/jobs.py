"""Jobs over REST: submit, read, cancel, retry, the executed notebook, and a live Server-Sent Events
stream of a job's events (resumable with ``Last-Event-ID``)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from jupyter_server.auth.decorator import authorized
from pydantic import Field
from tornado import web
from tornado.iostream import StreamClosedError

from ...errors import InvalidInput, ServiceUnavailable
from ...jobs.models import Job, JobEvent, JobInput, JobList, JobListQuery, JobSubmit, TrackingFlush
from ...jobs.service import JobService
from ...schema import RequestModel, ResponseModel
from ..routes import Operation
from .base import AitipHandler

MAX_NOTEBOOK_BYTES = 16 * 1024 * 1024


class EventsQuery(RequestModel):
    after: int = Field(0, ge=0, le=10**18, description="Only events with a larger id (as Last-Event-ID)")
    limit: int = Field(1000, ge=1, le=10_000)


class EventList(ResponseModel):
    items: list[JobEvent]
    state: str


class JobsBase(AitipHandler):
    @property
    def service(self) -> JobService:
        assert self.context.jobs is not None
        return self.context.jobs

    @staticmethod
    def job_id(value: str) -> int:
        return int(value)


class JobsHandler(JobsBase):
    operations = {
        "GET": Operation("job.list", "List jobs in your projects", query=JobListQuery, response=JobList),
        "POST": Operation("job.submit", "Run a notebook as a job", body=JobSubmit, response=Job, status=201),
    }

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.send(await self.service.list(self.principal, self.query(JobListQuery)))

    @web.authenticated
    @authorized
    async def post(self) -> None:
        job = await self.service.submit(self.principal, self.json_body(JobSubmit, limit=MAX_NOTEBOOK_BYTES))
        self.set_header("Location", f"{self.request.path.rstrip('/')}/{job.id}")
        self.send(job)


class JobHandler(JobsBase):
    operations = {"GET": Operation("job.read", "Read a job", response=Job)}

    @web.authenticated
    @authorized
    async def get(self, job: str) -> None:
        self.send(await self.service.get(self.principal, self.job_id(job)))


class JobCancelHandler(JobsBase):
    operations = {"POST": Operation("job.cancel", "Cancel a job (its kernel is stopped)", response=Job)}

    @web.authenticated
    @authorized
    async def post(self, job: str) -> None:
        self.send(await self.service.cancel(self.principal, self.job_id(job)))


class JobRetryHandler(JobsBase):
    operations = {"POST": Operation("job.retry", "Re-run a job's exact snapshot as a new job", response=Job,
                                    status=201)}

    @web.authenticated
    @authorized
    async def post(self, job: str) -> None:
        self.send(await self.service.retry(self.principal, self.job_id(job)))


class JobInputsHandler(JobsBase):
    operations = {"POST": Operation("job.record_input",
                                    "Record a dataset version the job read (its own credential only)",
                                    body=JobInput, response=Job)}

    @web.authenticated
    @authorized
    async def post(self, job: str) -> None:
        self.send(await self.service.record_input(self.principal, self.job_id(job), self.json_body(JobInput)))


class JobTrackingHandler(JobsBase):
    operations = {"POST": Operation("job.track", "Store what the job's kernel spooled for MLflow now, and say what "
                                    "was refused (its own credential only)", response=TrackingFlush)}

    @web.authenticated
    @authorized
    async def post(self, job: str) -> None:
        job_id, project, _ = await self.service.job_scope(self.principal, self.job_id(job), "job.track")
        spools = self.context.spools
        if spools is None:
            raise ServiceUnavailable("MLflow tracking is off on this platform")
        result = await asyncio.to_thread(spools.drain, job_id, None, project)
        self.send(TrackingFlush(stored=result.stored, errors=spools.take_errors(job_id),
                                pending_bytes=result.pending_bytes))


class JobNotebookHandler(JobsBase):
    operations = {"GET": Operation("job.read", "The executed notebook (the job's report)")}

    @web.authenticated
    @authorized
    async def get(self, job: str) -> None:
        path = Path(await self.service.output_notebook_path(self.principal, self.job_id(job)))
        data = await asyncio.to_thread(path.read_bytes)
        self.set_header("Content-Type", "application/x-ipynb+json")
        self.set_header("Content-Disposition", f'inline; filename="job-{job}.ipynb"')
        self.finish(data)


class JobEventsHandler(JobsBase):
    """JSON pages by default; ``Accept: text/event-stream`` streams until the job finishes."""

    operations = {"GET": Operation("job.read", "A job's events; text/event-stream for a live stream",
                                   query=EventsQuery, response=EventList)}
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
            events, state = await self.service.events(self.principal, job_id, after, query.limit)
            self.send(EventList(items=events, state=state.value))
            return
        await self._stream(job_id, after)

    async def _stream(self, job_id: int, after: int) -> None:
        events, state = await self.service.events(self.principal, job_id, after)  # checks access first
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
                events, state = await self.service.events(self.principal, job_id, after)
        except StreamClosedError:
            return
        self.finish()
