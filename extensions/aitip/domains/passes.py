"""A domain's background part that works in passes (evaluations and simulations: start what policies call
for, judge what ended, and tell the project's subscribers of each end): one pass after every change of the job
queue and every few seconds, never two at once, a failed pass logged and tried again at the next wake-up."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from sqlalchemy.orm import Session

from .end_notices import EndNotices


class PassLoop:
    """Subclasses say what one pass does (:meth:`one_pass`); ``signals`` is the jobs' ``JobSignals``."""

    task_name = "aitip-passes"
    log = logging.getLogger("aitip.domains")

    def __init__(self, signals: Any, *, poll_seconds: float = 5.0, notices: EndNotices | None = None) -> None:
        self.signals = signals
        self.poll_seconds = poll_seconds
        self.notices = notices  # tells the project's webhook subscribers of each end, where the platform has them
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    def tell(self, session: Session, record: Any) -> None:
        """Queue the news of ``record``'s end in the transaction that ends it."""
        if self.notices is not None:
            self.notices.queue(session, record)

    def send_told(self) -> None:
        """After that transaction committed: send what it queued at once."""
        if self.notices is not None:
            self.notices.sent()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=self.task_name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        changed = self.signals.subscribe_queue()  # a job that ends during a pass wakes the next one at once
        while True:
            changed.clear()
            try:
                await self.advance()
            except asyncio.CancelledError:
                raise
            except Exception:
                self.log.exception("%s: a pass failed; trying again", self.task_name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), self.poll_seconds)

    async def advance(self) -> None:
        """One pass, unless one is running already."""
        if self._lock.locked():
            return
        async with self._lock:
            await self.one_pass()

    async def one_pass(self) -> None:
        raise NotImplementedError
