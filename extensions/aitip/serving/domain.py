"""Serving: registered model versions as endpoints — worker processes run as the owner's account, behind a
router that splits traffic, measures each version and scales its replicas."""

from __future__ import annotations

from typing import Any

from ..domains.base import Domain, ServiceSpec, Stop


class ServingDomain(Domain):
    name = "serving"
    title = "Serving"
    after = ("experiments", "jobs")  # versions come from the model registry; Triton packaging is a job
    tables = ("aitip.serving.tables",)
    operations = "aitip.serving.operations"
    services = {"serving": ServiceSpec("aitip.serving.service:ServingService",
                                       "serving needs the model registry (MLflow tracking), which this platform "
                                       "does not run"),
                "optimizations": ServiceSpec("aitip.serving.optimizations:OptimizationService",
                                             "Triton packaging needs jobs and the model registry, which this "
                                             "platform does not run")}
    sdk = {"serving": "aitip.serving.sdk:ServingAPI"}

    def setup(self, context: Any, config: Any) -> None:
        from .. import settings
        from ..isolation.accounts import Accounts
        from ..isolation.mode import isolation
        from .deployments import LocalDeployments
        from .service import ServingService

        if context.mode == "worker" or context.experiments is None:
            return
        home = settings.aitip_home()
        accounts = Accounts.of_platform(home) if isolation().separate_accounts else None
        base_path = getattr(getattr(config, "serverapp", None), "base_url", "/") or "/"
        deployments = LocalDeployments(home / "serving", context.experiments, accounts)
        context.provide("serving", ServingService(context.catalog, context.experiments, deployments,
                                                  base_path=base_path,
                                                  flush_interval=config.serving_metrics_seconds))
        if context.jobs is not None:
            from .optimizations import OptimizationService

            context.provide("optimizations", OptimizationService(context.catalog, context.jobs, context.experiments,
                                                                 home / "serving" / "packages"))

    async def start(self, context: Any, config: Any) -> None:
        if context.serving is not None:
            await context.serving.start()

    def stops(self, context: Any) -> list[Stop]:
        return [("the served endpoints", context.serving.stop)] if context.serving is not None else []
