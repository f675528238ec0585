"""Release windows: the weekly times in which a project lets a release reach production."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Window(Protocol):
    days: list[str]
    start: time
    end: time
    timezone: str


def _open_on(window: Window, moment: datetime) -> bool:
    local = moment.astimezone(ZoneInfo(window.timezone))
    clock = local.time().replace(tzinfo=None)
    if window.start <= window.end:
        return DAYS[local.weekday()] in window.days and window.start <= clock < window.end
    # Across midnight: the evening belongs to its own day, the early morning to the day before.
    if clock >= window.start:
        return DAYS[local.weekday()] in window.days
    return clock < window.end and DAYS[(local.weekday() - 1) % 7] in window.days


def open_now(windows: list[Any], moment: datetime) -> bool:
    """No windows: any time."""
    return not windows or any(_open_on(window, moment) for window in windows)


def next_opening(windows: list[Any], moment: datetime) -> datetime | None:
    """When the next window opens after ``moment`` (to the minute, within a week), in UTC."""
    if not windows:
        return None
    probe = moment.replace(second=0, microsecond=0) + timedelta(minutes=1)
    for _ in range(8 * 24 * 60):
        if open_now(windows, probe):
            return probe
        probe += timedelta(minutes=1)
    return None
