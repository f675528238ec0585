"""Experiments: MLflow runs, metrics and models read for project members, and the tracking of every job
(a run per job, kernels' spools drained into it, the tracking gateway for kernels run as their owners)."""

from __future__ import annotations

import asyncio
from typing import Any

from ..domains.base import Domain, ServiceSpec, Stop


class ExperimentsDomain(Domain):
    name = "experiments"
    title = "Experiments"
    after = ("jobs",)  # it tracks the jobs' runs
    operations = "aitip.experiments.operations"
    services = {"experiments": ServiceSpec("aitip.experiments.service:ExperimentService",
                                           "experiment tracking is switched off on this platform")}
    parts = ("spools", "tracking_gateway")

    def setup(self, context: Any, config: Any) -> None:
        from .. import settings
        from ..isolation.state import WORKSPACES_DIR
        from ..isolation.workspaces import Workspaces
        from ..isolation.mode import isolation
        from .gateway import TrackingGateway
        from .job_spools import JobSpools
        from .job_tracker import MlflowTracker
        from .sandbox_models import RegistrySandboxModels
        from .service import ExperimentService

        uri = config.mlflow_tracking_uri
        if context.mode != "worker":
            context.provide("experiments", ExperimentService(context.catalog, uri))
        if not uri:
            return
        home = settings.aitip_home()
        tracker = MlflowTracker(uri, home / "mlartifacts")
        if context.jobs is not None:
            context.jobs.sandbox_models = RegistrySandboxModels(context.experiments)
        if context.worker is not None:
            context.worker.sandbox_models = RegistrySandboxModels(tracker=tracker)
        # Kernels run as their owners reach MLflow through the spool and the gateway (a token, no file).
        workspaces = Workspaces(home / WORKSPACES_DIR, separate_accounts=isolation().separate_accounts)
        spools = JobSpools(context.catalog, lambda: tracker.store, workspaces, home / "jobs")
        context.provide("spools", spools)
        if context.mode != "worker":
            context.provide("tracking_gateway", TrackingGateway(uri, home / "mlartifacts",
                                                                drain=lambda job_id: spools.drain(job_id)))
        if context.worker is not None:
            context.worker.use_tracking(tracker, spools)
        if context.mode == "worker":
            tracker.warm_up()  # a worker process makes the store (crash-safely) before it takes any job

    async def start(self, context: Any, config: Any) -> None:
        """MLflow imported and the store opened before the first request or job needs them (``import mlflow``
        alone takes seconds), one warm-up after the other: two threads importing MLflow at once can see it
        half-initialized."""
        from ..isolation.mode import isolation

        if context.mode == "worker":
            return
        worker = context.worker
        tracker_warm_up = getattr(worker.tracker, "warm_up", None) if worker is not None else None
        gateway = context.tracking_gateway if isolation().separate_accounts else None
        if gateway is not None and tracker_warm_up is not None:
            def warm_tracker_then_gateway(warm_tracker: Any = tracker_warm_up) -> None:
                warm_tracker()
                gateway.warm_up()  # MLflow's server code, imported before the first job kernel calls it
            tracker_warm_up = warm_tracker_then_gateway
        loop = asyncio.get_running_loop()
        if context.experiments is not None:
            loop.run_in_executor(None, context.experiments.warm_up, tracker_warm_up)
        elif tracker_warm_up is not None:
            loop.run_in_executor(None, tracker_warm_up)

    def closes(self, context: Any) -> list[Stop]:
        return [("experiment tracking", context.experiments.close)] if context.experiments is not None else []
