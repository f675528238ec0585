"""Evaluation: every registered model version judged on a dataset version by an evaluation notebook run as a
job, compared with its baseline under thresholds, profiled and reported."""

from __future__ import annotations

from typing import Any

from ..domains.base import Domain, ServiceSpec, Stop


class EvaluationDomain(Domain):
    name = "evaluation"
    title = "Evaluation"
    # An evaluation is a job on a model version and a dataset; its end goes to the project's webhook subscribers.
    after = ("jobs", "experiments", "datasets", "webhooks")
    tables = ("aitip.evaluation.tables",)
    operations = "aitip.evaluation.operations"
    services = {"evaluations": ServiceSpec("aitip.evaluation.service:EvaluationService",
                                           "evaluations need jobs, experiment tracking and datasets, which this "
                                           "platform does not run")}
    parts = ("evaluation_controller",)

    def setup(self, context: Any, config: Any) -> None:
        from .. import settings
        from .controller import EvaluationController
        from .lineage import EvaluationLineage
        from .notices import evaluation_notices
        from .service import EvaluationService

        if context.mode == "worker" or None in (context.jobs, context.experiments, context.datasets):
            return  # without tracking, no model has versions: evaluations are refused as unknown versions
        service = EvaluationService(context.catalog, context.jobs, context.experiments,
                                    settings.aitip_home() / "evaluations")
        context.provide("evaluations", service)
        context.datasets.lineage_contributors.append(EvaluationLineage())
        notices = evaluation_notices(context.webhooks) if context.webhooks is not None else None
        context.provide("evaluation_controller", EvaluationController(service, context.jobs.signals,
                                                                      reports=service, notices=notices))

    async def start(self, context: Any, config: Any) -> None:
        if context.evaluation_controller is not None:
            await context.evaluation_controller.start()

    def stops(self, context: Any) -> list[Stop]:
        controller = context.evaluation_controller
        return [("the evaluation controller", controller.stop)] if controller is not None else []
