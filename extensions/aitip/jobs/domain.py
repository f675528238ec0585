"""Jobs and sweeps: the service that takes submissions, and the worker that runs them (in the platform
service, or in ``aitip worker`` processes of their own). Other domains plug in what jobs need of them:
tracking (experiments), dataset inputs (datasets), the GPUs to offer (resources)."""

from __future__ import annotations

from typing import Any

from ..domains.base import Domain, ServiceSpec, Stop


class JobsDomain(Domain):
    name = "jobs"
    title = "Jobs"
    after = ("webhooks",)  # a job's end is published to its project's subscribers and its callback
    tables = ("aitip.jobs.tables",)
    operations = "aitip.jobs.operations"
    services = {
        "jobs": ServiceSpec("aitip.jobs.service:JobService", "jobs are not run on this platform"),
        "sweeps": ServiceSpec("aitip.jobs.sweeps:SweepService", "sweeps are not run on this platform"),
    }
    parts = ("worker",)

    def setup(self, context: Any, config: Any) -> None:
        from .. import settings
        from ..isolation.accounts import Accounts
        from ..isolation.mode import isolation
        from .events import JobSignals
        from .notebook_store import NotebookStore
        from .notices import JobNotices
        from .service import JobService
        from .sweeps import SweepController, SweepService
        from .tracking import Tracker
        from .worker import JobWorker

        home = settings.aitip_home()
        store = NotebookStore(home / "notebooks")
        signals = JobSignals()
        jobs = JobService(context.catalog, store, signals)
        context.provide("jobs", jobs)
        context.provide("sweeps", SweepService(context.catalog, jobs))
        notices = JobNotices(context.webhooks) if context.webhooks is not None else None
        jobs.notices = notices
        if config.run_jobs:
            separate = isolation().separate_accounts
            worker = JobWorker(context.catalog, config.executor_class(parent=config), store, signals, Tracker(),
                               home / "jobs", parent=config, accounts=Accounts.of_platform(home) if separate else None)
            worker.notices = notices
            worker.sweeps = SweepController(context.catalog, jobs, worker.tracker)
            context.provide("worker", worker)

    async def start(self, context: Any, config: Any) -> None:
        worker = context.worker
        if worker is None:
            return
        own_url = getattr(getattr(config, "serverapp", None), "connection_url", "")
        if not worker.api_url and own_url.startswith(("http://", "https://")):
            worker.api_url = own_url  # job kernels reach the platform straight, not through the hub
        await worker.start()

    def stops(self, context: Any) -> list[Stop]:
        return [("the job worker", context.worker.stop)] if context.worker is not None else []
