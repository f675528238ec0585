"""In-process wake-ups for job changes: the worker waits for new jobs, SSE streams for new events.

The catalog is the source of truth; this only saves polling latency when writer and reader share a
process. Readers in other processes poll the catalog.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict


class JobSignals:
    def __init__(self) -> None:
        self._job_waiters: dict[int, set[asyncio.Event]] = defaultdict(set)
        self._queue_waiters: set[asyncio.Event] = set()
        self._queue_subscribers: list[asyncio.Event] = []

    def job_changed(self, job_id: int) -> None:
        for event in list(self._job_waiters.get(job_id, ())):
            event.set()

    def queue_changed(self) -> None:
        for event in [*self._queue_waiters, *self._queue_subscribers]:
            event.set()

    def subscribe_queue(self) -> asyncio.Event:
        """An event set by every queue change until its holder clears it: a change while the holder is busy
        (not waiting) is kept for its next wait, not lost."""
        event = asyncio.Event()
        self._queue_subscribers.append(event)
        return event

    async def wait_job(self, job_id: int, timeout: float) -> None:
        event = asyncio.Event()
        self._job_waiters[job_id].add(event)
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            pass
        finally:
            self._job_waiters[job_id].discard(event)
            if not self._job_waiters[job_id]:
                self._job_waiters.pop(job_id, None)

    async def wait_queue(self, timeout: float) -> None:
        event = asyncio.Event()
        self._queue_waiters.add(event)
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            pass
        finally:
            self._queue_waiters.discard(event)
