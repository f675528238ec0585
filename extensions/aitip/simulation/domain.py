"""Simulation: a model version (or an LLM endpoint) attacked and stressed in a sandboxed job from a scenario
template, judged against its thresholds and the previous version's simulation, and reported."""

from __future__ import annotations

from typing import Any

from ..domains.base import Domain, ServiceSpec, Stop


class SimulationDomain(Domain):
    name = "simulation"
    title = "Simulation"
    # A simulation is a job; policies follow evaluations; its end goes to the project's webhook subscribers.
    after = ("jobs", "experiments", "datasets", "evaluation", "webhooks")
    tables = ("aitip.simulation.tables",)
    operations = "aitip.simulation.operations"
    services = {"simulations": ServiceSpec("aitip.simulation.service:SimulationService",
                                           "simulations need jobs, experiment tracking and datasets, which this "
                                           "platform does not run")}
    parts = ("simulation_controller",)

    def setup(self, context: Any, config: Any) -> None:
        from .. import settings
        from .controller import SimulationController
        from .lineage import SimulationLineage
        from .notices import simulation_notices
        from .service import SimulationService

        if context.mode == "worker" or None in (context.jobs, context.experiments, context.datasets):
            return
        service = SimulationService(context.catalog, context.jobs, context.experiments,
                                    settings.aitip_home() / "simulations")
        context.provide("simulations", service)
        context.datasets.lineage_contributors.append(SimulationLineage())
        notices = simulation_notices(context.webhooks) if context.webhooks is not None else None
        context.provide("simulation_controller", SimulationController(service, context.jobs.signals, notices=notices))

    async def start(self, context: Any, config: Any) -> None:
        if context.simulation_controller is not None:
            await context.simulation_controller.start()

    def stops(self, context: Any) -> list[Stop]:
        controller = context.simulation_controller
        return [("the simulation controller", controller.stop)] if controller is not None else []
