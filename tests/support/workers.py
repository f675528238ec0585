"""The job worker of a pytest-jupyter platform server, started on demand (tests that run jobs)."""

from __future__ import annotations

from typing import Any


async def start_worker(jp_serverapp: Any) -> None:
    context = jp_serverapp.web_app.settings["aitip"]
    if context.worker._loop_task is None:
        await jp_serverapp.extension_manager.start_all_extensions()
