"""Releases: evidence-gated, signed, approved and promoted releases of model versions and configurations."""

from __future__ import annotations

from typing import Any

from ..domains.base import Domain, ServiceSpec


class ReleasesDomain(Domain):
    name = "releases"
    title = "Releases"
    after = ("experiments", "evaluation", "simulation")  # evidence comes from evaluations and simulations
    tables = ("aitip.releases.tables",)
    operations = "aitip.releases.operations"
    services = {"releases": ServiceSpec("aitip.releases.service:ReleasesService",
                                        "releases need the model registry (MLflow tracking), which this platform "
                                        "does not run")}

    def setup(self, context: Any, config: Any) -> None:
        from .. import settings
        from .service import ReleasesService
        from .signing import ReleaseSigner

        if context.mode == "worker" or context.experiments is None:
            return
        signer = ReleaseSigner(settings.aitip_home() / "releases" / "signing")
        context.provide("releases", ReleasesService(context.catalog, context.experiments, signer))
