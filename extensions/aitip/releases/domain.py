"""Releases: evidence-gated, signed, approved and promoted releases of model versions, firmware and configurations."""

from __future__ import annotations

from typing import Any

from ..domains.base import Domain, ServiceSpec, Stop


class ReleasesDomain(Domain):
    name = "releases"
    title = "Releases"
    # Evidence comes from evaluations and simulations; rollouts move an endpoint's traffic.
    after = ("experiments", "evaluation", "simulation", "serving", "webhooks")  # events go to webhooks
    tables = ("aitip.releases.tables",)
    operations = "aitip.releases.operations"
    services = {"releases": ServiceSpec("aitip.releases.service:ReleasesService",
                                        "releases need the model registry (MLflow tracking), which this platform "
                                        "does not run"),
                "rollouts": ServiceSpec("aitip.releases.rollouts:RolloutService",
                                        "rollouts need the serving domain, which this platform does not run")}

    def setup(self, context: Any, config: Any) -> None:
        from .. import settings
        from .firmware import FirmwareStore
        from .notices import ReleaseNotices
        from .service import ReleasesService
        from .signing import ReleaseSigner

        if context.mode == "worker" or context.experiments is None:
            return
        home = settings.aitip_home() / "releases"
        signer = ReleaseSigner(home / "signing")
        notices = ReleaseNotices(context.webhooks)
        context.provide("releases", ReleasesService(context.catalog, context.experiments, signer, notices=notices,
                                                    firmware=FirmwareStore(home / "firmware")))
        if context.serving is not None:
            from .rollouts import RolloutService

            context.provide("rollouts", RolloutService(context.catalog, context.serving, signer, notices=notices))

    async def start(self, context: Any, config: Any) -> None:
        if context.rollouts is not None:
            await context.rollouts.start()

    def stops(self, context: Any) -> list[Stop]:
        return [("the rollout controller", context.rollouts.stop)] if context.rollouts is not None else []
