"""Registrations in the background: a version registered after the answer, followed by its handle.

A registration that answers when it is done keeps its caller waiting through unpacking, the quality gate
and the commit (seconds for a gigabyte). Started here instead, the file is staged as before (a REST
upload streams it; an agent sends it inline), the answer is a handle (``working``, with the step it is at),
and the version is made by a task of the platform service. Its end — ``registered`` with the version,
``rejected`` by the quality gate, or ``failed`` — is recorded, published to the project's subscribers
(as every registration's is) and posted to its ``callback_url``, in the transaction that records it.

A platform that stops mid-registration leaves the handle ``working``; the next start marks it ``failed``
(the staged file went with the stopped process), so no caller waits for ever.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..audit import record as audit_record
from ..catalog.base import utcnow
from ..catalog.service import CatalogService
from ..errors import AitipError, NotFound, ServiceUnavailable
from ..identity.principal import Principal
from ..operations.actions import performs
from ..projects.access import authorize, refuse_if_archived
from ..webhooks.models import CallbackRequest
from .models import Registration, RegistrationError, RegistrationListQuery
from .registry import tag_name
from .service import DatasetService
from .staging import StagedUpload
from .tables import DatasetRegistrationRecord

log = logging.getLogger("aitip.datasets")

FINISHED_STATES = ("registered", "rejected", "failed")
INTERRUPTED = ("registration_interrupted",
               "the platform stopped while registering this version; send the file again")


def registration_payload(record: DatasetRegistrationRecord) -> dict[str, Any]:
    """What subscribers and the callback are told of a registration's end."""
    outcome = f"v{record.version}" if record.version is not None else (record.error or {}).get("message", "")
    return {"summary": f"registration {record.id} of {record.project.name}/{record.dataset} {record.state}: "
                       f"{outcome}"[:300],
            "registration_id": record.id, "project": record.project.name, "dataset": record.dataset,
            "state": record.state, "version": record.version, "error": record.error,
            "filename": record.filename, "author": record.created_by,
            "finished_at": record.finished_at.isoformat() if record.finished_at else None}


def _answer(record: DatasetRegistrationRecord) -> Registration:
    return Registration(id=record.id, project=record.project.name, dataset=record.dataset, state=record.state,
                        step=record.step, filename=record.filename, bytes=record.bytes, message=record.message,
                        version=record.version,
                        error=RegistrationError(**record.error) if record.error else None,
                        created_by=record.created_by, created_at=record.created_at,
                        finished_at=record.finished_at, callback_url=record.callback_url)


class RegistrationService(CatalogService):
    """Starts registrations as tasks of this process, records their steps and ends, and wakes who waits."""

    def __init__(self, datasets: DatasetService) -> None:
        super().__init__(datasets.catalog)
        self.datasets = datasets
        self._tasks: set[asyncio.Task[None]] = set()
        self._changed: dict[int, asyncio.Event] = {}

    # ----- operations -----

    @performs
    async def start_content(self, principal: Principal | None, project: str, name: str, content: bytes, *,
                            filename: str, fmt: str | None = None, message: str = "",
                            callback_url: str | None = None, action: str) -> Registration:
        """Start registering a file sent inline (an agent's): staged first, so a refusal keeps nothing."""
        await self.datasets.check_can_write(principal, project, action=action)
        upload = await self.datasets.stage_content(content, filename, fmt)
        return await self.start(principal, project, name, upload, fmt=fmt, message=message,
                                callback_url=callback_url, action=action)

    async def start(self, principal: Principal | None, project: str, name: str, upload: StagedUpload, *,
                    fmt: str | None = None, message: str = "", callback_url: str | None = None,
                    action: str) -> Registration:
        """Record the handle and start the work; ``upload`` (complete) is the task's from here on, discarded
        when it ends. A refusal here (the name, the project, the callback target) keeps nothing."""
        principal = self._signed_in(principal)
        try:
            tag_name(project, name, version=1)  # the dataset name rule (a 422)
            callback = await self._prepare_callback(callback_url)
            answer = await self._in_transaction(lambda s: _answer(self._create(s, principal, project, name, upload,
                                                                               message, callback, action)))
        except BaseException:
            upload.discard()
            raise
        upload.on_step = lambda step: self._step(answer.id, step)
        task = asyncio.create_task(self._run(answer.id, principal, project, name, upload, fmt, message, action),
                                   name=f"aitip-registration-{answer.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if callback is not None and callback.generated:
            answer.callback_secret = callback.secret  # shown once
        return answer

    @performs
    async def get(self, principal: Principal | None, project: str, name: str, registration_id: int, *,
                  action: str) -> Registration:
        principal = self._signed_in(principal)
        return await self._in_transaction(lambda s: _answer(self._load(s, principal, project, name,
                                                                       registration_id, action)))

    @performs
    async def recent(self, principal: Principal | None, project: str, name: str, query: RegistrationListQuery, *,
                   action: str) -> list[Registration]:
        principal = self._signed_in(principal)

        def read(session: Session) -> list[Registration]:
            record, _ = authorize(session, principal, action, project)
            statement = (select(DatasetRegistrationRecord)
                         .where(DatasetRegistrationRecord.project_id == record.id,
                                DatasetRegistrationRecord.dataset == name)
                         .order_by(DatasetRegistrationRecord.id.desc()).limit(query.limit))
            if query.state is not None:
                statement = statement.where(DatasetRegistrationRecord.state == query.state)
            return [_answer(row) for row in session.scalars(statement)]

        return await self._in_transaction(read)

    async def wait_changed(self, registration_id: int, timeout: float) -> None:
        """Until the registration's step or state may have changed (in this process), or ``timeout``."""
        event = self._changed.setdefault(registration_id, asyncio.Event())
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            pass

    # ----- the platform's start and stop -----

    async def recover(self) -> int:
        """Mark registrations a stopped platform left ``working`` as failed (their files went with it),
        telling their callbacks; how many."""

        def interrupted(session: Session) -> int:
            rows = session.scalars(select(DatasetRegistrationRecord)
                                   .where(DatasetRegistrationRecord.state == "working")).all()
            for record in rows:
                self._finish(session, record, "failed", None, {"code": INTERRUPTED[0], "message": INTERRUPTED[1],
                                                               "detail": None})
            return len(rows)

        count = await self._in_transaction(interrupted)
        if count:
            self._sent()
            log.warning("%d dataset registration(s) were interrupted by the last stop; marked failed", count)
        return count

    async def stop(self) -> None:
        """Cancel what still works (each undoes itself); the next start marks them failed."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # ----- the work -----

    async def _run(self, registration_id: int, principal: Principal, project: str, name: str,
                   upload: StagedUpload, fmt: str | None, message: str, action: str) -> None:
        try:
            version = await self.datasets.register(principal, project, name, upload, fmt=fmt, message=message,
                                                   action=action)
        except asyncio.CancelledError:
            raise
        except AitipError as refused:
            state = "rejected" if refused.code == "quality_gate_failed" else "failed"
            error = {"code": refused.code, "message": refused.message, "detail": refused.detail}
            await self._end(registration_id, state, None, error)
        except Exception as failure:  # noqa: BLE001 - recorded on the handle; the platform goes on
            log.exception("dataset registration %d failed", registration_id)
            await self._end(registration_id, "failed", None, {"code": "internal_error",
                                                              "message": f"the registration failed: {failure}",
                                                              "detail": None})
        else:
            await self._end(registration_id, "registered", version.version, None)

    async def _end(self, registration_id: int, state: str, version: int | None,
                   error: dict[str, Any] | None) -> None:
        def finish(session: Session) -> None:
            record = session.get(DatasetRegistrationRecord, registration_id)
            if record is not None and record.state == "working":
                self._finish(session, record, state, version, error)

        try:
            await self._in_transaction(finish)
        except Exception:  # noqa: BLE001 - the next start marks it failed
            log.exception("the end of dataset registration %d could not be recorded", registration_id)
        self._sent()
        self._wake(registration_id)

    def _finish(self, session: Session, record: DatasetRegistrationRecord, state: str, version: int | None,
                error: dict[str, Any] | None) -> None:
        """Record the end, and queue it for the callback in the same transaction (sent if it commits).
        Subscribers hear ``dataset.registered`` / ``dataset.rejected`` from the registration itself; a
        failure is this handle's own news, for its callback only."""
        record.state, record.version, record.error = state, version, error
        record.step, record.finished_at = "done", utcnow()
        session.flush()
        events = self.datasets.events
        if events is not None and record.callback_url and record.callback_secret:
            events.callback_in(session, record.callback_url, record.callback_secret, f"dataset.{state}",
                               registration_payload(record), project=record.project.name)

    def _step(self, registration_id: int, step: str) -> None:
        """Record the step the registration starts (in the background: the work does not wait for it)."""

        def write(session: Session) -> None:
            record = session.get(DatasetRegistrationRecord, registration_id)
            if record is not None and record.state == "working":
                record.step = step

        async def record_step() -> None:
            try:
                await self._in_transaction(write)
            except Exception:  # noqa: BLE001 - only the step shown is stale
                log.debug("the step of dataset registration %d was not recorded", registration_id, exc_info=True)
            self._wake(registration_id)

        task = asyncio.get_running_loop().create_task(record_step())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ----- helpers -----

    async def _prepare_callback(self, callback_url: str | None) -> Any:
        if callback_url is None:
            return None
        events = self.datasets.events
        if events is None:
            raise ServiceUnavailable("this platform delivers no callbacks (webhooks are not running)")
        return await events.prepare_callback(CallbackRequest(url=callback_url))

    def _create(self, session: Session, principal: Principal, project: str, name: str, upload: StagedUpload,
                message: str, callback: Any, action: str) -> DatasetRegistrationRecord:
        record, _ = authorize(session, principal, action, project)
        refuse_if_archived(record)
        registration = DatasetRegistrationRecord(
            project_id=record.id, project=record, dataset=name, state="working", step="queued",
            filename=upload.filename, bytes=upload.size, message=message, created_by=principal.name,
            created_at=utcnow(), callback_url=callback.url if callback else None,
            callback_secret=callback.secret if callback else None)
        session.add(registration)
        session.flush()
        audit_record(session, principal.name, action, f"dataset:{project}/{name}",
                     {"registration": registration.id, "filename": upload.filename, "bytes": upload.size})
        return registration

    def _load(self, session: Session, principal: Principal, project: str, name: str, registration_id: int,
              action: str) -> DatasetRegistrationRecord:
        record, _ = authorize(session, principal, action, project)
        registration = session.get(DatasetRegistrationRecord, registration_id)
        if registration is None or registration.project_id != record.id or registration.dataset != name:
            raise NotFound("dataset {name!r} in project {project!r} has no registration {registration_id}",
                           name=name, project=project, registration_id=registration_id)
        return registration

    def _sent(self) -> None:
        if self.datasets.events is not None:
            self.datasets.events.notify()

    def _wake(self, registration_id: int) -> None:
        event = self._changed.pop(registration_id, None)
        if event is not None:
            event.set()

