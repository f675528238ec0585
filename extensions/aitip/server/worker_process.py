"""``aitip worker``: a job worker process of its own, next to (or instead of) the one inside the
platform service. Any number may run against one catalog; leases keep each job on one worker. The
domains wire it as they wire the platform service (tracking, dataset inputs, GPUs, job-end notices), in
``worker`` mode: no REST services, no background delivery of webhooks (the platform service sends what
the worker queues)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from typing import Any

from traitlets.config import Config

from .. import settings
from ..catalog import Catalog
from ..identity.directory import IdentityProviderDirectory
from ..isolation.mode import isolation
from ..isolation.state import secure_home
from .app import AitipExtension
from .context import PlatformContext
from .domains import setup_domains, start_domains, stop_domains

log = logging.getLogger("aitip.worker")


def worker_config(slots: int, pool: int, tracking_uri: str | None, lease_seconds: float | None,
                  heartbeat_seconds: float | None, api_url: str) -> AitipExtension:
    """The extension's settings (the same traits and defaults as the platform service's) for a worker."""
    config = Config()
    config.LocalExecutor.max_concurrent_jobs = slots
    config.LocalExecutor.pool_sizes = {"aitip-python": pool}
    config.JobWorker.api_url = api_url
    if lease_seconds is not None:
        config.JobWorker.lease_seconds = lease_seconds
    if heartbeat_seconds is not None:
        config.JobWorker.heartbeat_seconds = heartbeat_seconds
    extension = AitipExtension(config=config)
    extension.run_jobs = True
    extension.mlflow_tracking_uri = tracking_uri or ""
    return extension


async def run_worker(config: AitipExtension) -> None:
    home = settings.aitip_home()
    os.umask(0o077)
    secure_home(home, separate_accounts=isolation().separate_accounts)
    catalog = Catalog(settings.catalog_url(home))
    catalog.migrate()
    context = PlatformContext(mode="worker", directory=IdentityProviderDirectory(parent=config),
                              max_body_bytes=config.max_body_bytes, catalog=catalog)
    setup_domains(context, config)
    worker = context.worker
    assert worker is not None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await start_domains(context, config)
    print(f"aitip worker {worker.worker_id}: {worker.executor.slots} slots, catalog {catalog.engine.url!r}",
          flush=True)
    await stop.wait()
    await stop_domains(context, log)


def main(args: Any) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(run_worker(worker_config(args.slots, args.pool, args.tracking_uri, args.lease_seconds,
                                         args.heartbeat_seconds, args.api_url)))
    return 0
