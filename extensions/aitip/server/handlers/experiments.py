"""Experiments over REST: a project's MLflow experiments and runs (MLflow search syntax), one run with
its artifacts and job, downsampled metric curves, run comparison, and the project's registered models."""

from __future__ import annotations

from typing import Any, TypeVar

from jupyter_server.auth.decorator import authorized
from pydantic import BaseModel, ValidationError
from tornado import web

from ...errors import BadRequest, InvalidInput, ServiceUnavailable
from ...experiments.models import (
    CompareQuery,
    ExperimentList,
    ExperimentListQuery,
    MetricHistory,
    MetricHistoryQuery,
    ModelList,
    RunComparison,
    RunDetail,
    RunList,
    RunListQuery,
)
from ...experiments.service import ExperimentService
from ..routes import Operation
from .base import AitipHandler, _validation_detail, _validation_message

M = TypeVar("M", bound=BaseModel)


class ExperimentsBase(AitipHandler):
    @property
    def service(self) -> ExperimentService:
        if self.context.experiments is None:
            raise ServiceUnavailable("experiment tracking is switched off on this platform")
        return self.context.experiments

    def query_with_lists(self, model: type[M], repeatable: frozenset[str]) -> M:
        """Like :meth:`query`, but the ``repeatable`` parameters may be given several times (a list)."""
        raw: dict[str, Any] = {}
        for name, values in self.request.query_arguments.items():
            try:
                decoded = [value.decode("utf-8") for value in values]
            except UnicodeDecodeError as exc:
                raise BadRequest(f"query parameter {name!r} is not valid UTF-8", code="invalid_encoding") from exc
            if name in repeatable:
                raw[name] = decoded
            elif len(decoded) > 1:
                raise InvalidInput(f"query parameter {name!r} is given {len(decoded)} times; give it once")
            else:
                raw[name] = decoded[0]
        try:
            return model.model_validate(raw, strict=False)
        except ValidationError as exc:
            detail = _validation_detail(exc)
            raise InvalidInput(_validation_message("query", detail), detail=detail) from exc

    def send_model(self, model: BaseModel) -> None:
        """Serialize in pydantic's core (a page of 100 runs: ~0.2 ms instead of ~1 ms through dicts)."""
        self.set_status(self.operation.status)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(model.model_dump_json())


class ExperimentsHandler(ExperimentsBase):
    operations = {"GET": Operation("experiment.read", "The project's MLflow experiments with their run counts",
                                   query=ExperimentListQuery, response=ExperimentList)}

    @web.authenticated
    @authorized
    async def get(self, project: str) -> None:
        self.send_model(await self.service.list_experiments(self.principal, self.project_name(project),
                                                            self.query(ExperimentListQuery)))


class RunsHandler(ExperimentsBase):
    operations = {"GET": Operation("experiment.read", "Search the project's runs (MLflow filter syntax, order, "
                                   "pages)", query=RunListQuery, response=RunList)}

    @web.authenticated
    @authorized
    async def get(self, project: str) -> None:
        query = self.query_with_lists(RunListQuery, frozenset({"order_by"}))
        self.send_model(await self.service.list_runs(self.principal, self.project_name(project), query))


class RunHandler(ExperimentsBase):
    operations = {"GET": Operation("experiment.read", "One run: params, latest metrics, tags, artifacts, its job",
                                   response=RunDetail)}

    @web.authenticated
    @authorized
    async def get(self, run: str) -> None:
        self.send_model(await self.service.get_run(self.principal, run))


class MetricHistoryHandler(ExperimentsBase):
    operations = {"GET": Operation("experiment.read", "A metric's history, downsampled (LTTB) for charts",
                                   query=MetricHistoryQuery, response=MetricHistory)}

    @web.authenticated
    @authorized
    async def get(self, run: str) -> None:
        self.send_model(await self.service.metric_history(self.principal, run, self.query(MetricHistoryQuery)))


class RunCompareHandler(ExperimentsBase):
    operations = {"GET": Operation("experiment.read", "Compare 2-20 runs: parameter diff, metrics, curves",
                                   query=CompareQuery, response=RunComparison)}

    @web.authenticated
    @authorized
    async def get(self, project: str) -> None:
        query = self.query_with_lists(CompareQuery, frozenset({"run", "key"}))
        self.send_model(await self.service.compare_runs(self.principal, self.project_name(project), query))


class ModelsHandler(ExperimentsBase):
    operations = {"GET": Operation("model.read", "Registered models from the project's runs: versions, aliases, "
                                   "the run and job of each", response=ModelList)}

    @web.authenticated
    @authorized
    async def get(self, project: str) -> None:
        self.send_model(await self.service.list_models(self.principal, self.project_name(project)))
