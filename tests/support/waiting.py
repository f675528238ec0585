"""Waiting on what a test cannot be told of: polled until it holds, with a deadline sized for a loaded machine.

A quiet machine answers in well under a second; the 2-core CI machine, busy with the other test worker, has taken
tens of seconds to start a kernel or a replica. The deadline only bounds a failure, so it is generous."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

Seen = TypeVar("Seen")

LOADED_MACHINE_SECONDS = 90.0


async def eventually(probe: Callable[[], Awaitable[Seen]], holds: Callable[[Seen], bool],
                     timeout: float = LOADED_MACHINE_SECONDS, interval: float = 0.1) -> Seen:
    """What ``probe`` answered once ``holds`` is true of it, or its last answer at the deadline (the caller's
    assertion then says what was wrong)."""
    deadline = time.monotonic() + timeout
    while True:
        seen = await probe()
        if holds(seen) or time.monotonic() >= deadline:
            return seen
        await asyncio.sleep(interval)
