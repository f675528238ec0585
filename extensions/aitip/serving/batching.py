"""Batching of concurrent requests in a replica: each request's rows wait in a queue, and one ``predict`` runs
over everything queued once the event loop has read what arrived together. When idle a request runs at once
(no wait); under load, when the previous batch held several requests, the next waits up to ``max_wait_ms``
for more, never beyond ``max_batch_size`` rows."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import numpy as np

from .loading import as_array


class Batcher:
    def __init__(self, predict: Callable[[Any], Any], *, max_batch_size: int = 64, max_wait_ms: float = 0.0) -> None:
        self.predict = predict
        self.max_batch_size = max(1, max_batch_size)
        self.max_wait = max(0.0, max_wait_ms) / 1000
        self._queue: list[tuple[Any, asyncio.Future[Any]]] = []
        self._rows = 0
        self._scheduled: asyncio.Handle | asyncio.TimerHandle | None = None
        self._last_batch_requests = 1
        self.batches = 0
        self.requests = 0

    def submit(self, rows: Any) -> asyncio.Future[Any]:
        """The future of ``rows``' predictions (an array of as many rows)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.append((rows, future))
        self._rows += len(rows)
        if self._rows >= self.max_batch_size:
            self._cancel_scheduled()
            self._scheduled = loop.call_soon(self._run)
        elif self._scheduled is None:
            wait = self.max_wait if self._last_batch_requests > 1 else 0.0
            self._scheduled = loop.call_later(wait, self._run) if wait else loop.call_soon(self._run)
        return future

    def _cancel_scheduled(self) -> None:
        if self._scheduled is not None:
            self._scheduled.cancel()
            self._scheduled = None

    def _take(self) -> list[tuple[Any, asyncio.Future[Any]]]:
        taken, rows = [], 0
        while self._queue and (not taken or rows + len(self._queue[0][0]) <= self.max_batch_size):
            entry = self._queue.pop(0)
            rows += len(entry[0])
            taken.append(entry)
        self._rows -= rows
        return taken

    def _run(self) -> None:
        self._scheduled = None
        taken = self._take()
        if self._queue:  # more than one batch's worth: the rest goes next, at once
            self._scheduled = asyncio.get_running_loop().call_soon(self._run)
        if not taken:
            return
        self._last_batch_requests = len(taken)
        self.batches += 1
        self.requests += len(taken)
        live = [(rows, future) for rows, future in taken if not future.done()]
        if not live:
            return
        try:
            predictions = as_array(self.predict(_concatenate([rows for rows, _ in live])))
        except Exception as error:  # the model failed on this batch: each request gets the error
            for _, future in live:
                future.set_exception(error)
            return
        start = 0
        for rows, future in live:
            future.set_result(predictions[start:start + len(rows)])
            start += len(rows)


def _concatenate(parts: list[Any]) -> Any:
    if len(parts) == 1:
        return parts[0]
    if isinstance(parts[0], np.ndarray):
        return np.concatenate(parts)
    import pandas

    return pandas.concat(parts, ignore_index=True)
