"""``aitip worker``: a job worker process of its own, next to (or instead of) the one inside the
platform service. Any number may run against one catalog; leases keep each job on one worker."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from typing import Any

from .. import settings
from ..catalog import Catalog
from ..isolation.accounts import Accounts
from ..isolation.mode import isolation
from ..isolation.state import secure_home
from .events import JobSignals
from .executor import LocalExecutor
from .notebook_store import NotebookStore
from .tracking import MlflowTracker, Tracker
from .tracking_spool import JobSpools
from .worker import JobWorker


async def run_worker(slots: int = 0, pool: int = 2, tracking_uri: str | None = None,
                     lease_seconds: float | None = None, heartbeat_seconds: float | None = None,
                     api_url: str = "") -> None:
    home = settings.aitip_home()
    os.umask(0o077)
    separate = isolation().separate_accounts
    secure_home(home, separate_accounts=separate)
    catalog = Catalog(settings.catalog_url(home))
    catalog.migrate()
    store = NotebookStore(home / "notebooks")
    executor = LocalExecutor(max_concurrent_jobs=slots, pool_sizes={"aitip-python": pool})
    tracker: Tracker = MlflowTracker(tracking_uri, home / "mlartifacts") if tracking_uri else Tracker()
    options: dict[str, Any] = {}
    if lease_seconds is not None:
        options["lease_seconds"] = lease_seconds
    if heartbeat_seconds is not None:
        options["heartbeat_seconds"] = heartbeat_seconds
    worker = JobWorker(catalog, executor, store, JobSignals(), tracker, home / "jobs",
                       accounts=Accounts.of_platform(home) if separate else None, api_url=api_url, **options)
    if isinstance(tracker, MlflowTracker):
        worker.spools = JobSpools(catalog, lambda: tracker.store, worker.workspaces, home / "jobs")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    warm_up = getattr(tracker, "warm_up", None)
    if warm_up is not None:
        await asyncio.to_thread(warm_up)  # the tracking store is created (crash-safely) before any job
    await worker.start()
    print(f"aitip worker {worker.worker_id}: {executor.slots} slots, catalog {catalog.engine.url!r}", flush=True)
    await stop.wait()
    await worker.stop()
    catalog.dispose()


def main(args: Any) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(run_worker(args.slots, args.pool, args.tracking_uri, args.lease_seconds, args.heartbeat_seconds,
                           args.api_url))
    return 0
