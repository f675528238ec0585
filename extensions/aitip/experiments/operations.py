"""Experiments, runs and models (read from MLflow): the experiments section of the operation table."""

from __future__ import annotations

from ..operations.table import Operation, Section
from .models import (
    AliasSet,
    CompareQuery,
    ExperimentList,
    ExperimentListQuery,
    MetricHistory,
    MetricHistoryQuery,
    ModelList,
    RegisteredModel,
    RunComparison,
    RunDetail,
    RunList,
    RunListQuery,
)

_RUN = {"run": "run_id"}

SECTION = Section("experiments", "Experiments, runs and models", (
    Operation("experiments.list", "experiment.read", "GET", "projects/{project}/experiments",
              "The project's MLflow experiments with their run counts", query=ExperimentListQuery,
              response=ExperimentList, call="experiments.list_experiments"),
    Operation("runs.list", "experiment.read", "GET", "projects/{project}/runs",
              "Search the project's runs (MLflow filter syntax, order, pages)", query=RunListQuery,
              response=RunList, call="experiments.list_runs"),
    Operation("runs.compare", "experiment.read", "GET", "projects/{project}/compare",
              "Compare 2-20 runs: parameter diff, metrics, curves", query=CompareQuery, response=RunComparison,
              call="experiments.compare_runs"),
    Operation("runs.get", "experiment.read", "GET", "runs/{run}",
              "One run: params, latest metrics, tags, artifacts, its job", response=RunDetail,
              call="experiments.get_run", arguments=_RUN),
    Operation("runs.metric_history", "experiment.read", "GET", "runs/{run}/metric-history",
              "A metric's history, downsampled (LTTB) for charts", query=MetricHistoryQuery,
              response=MetricHistory, call="experiments.metric_history", arguments=_RUN),
    Operation("models.list", "model.read", "GET", "projects/{project}/models",
              "Registered models from the project's runs: versions, aliases, the run and job of each",
              response=ModelList, call="experiments.list_models"),
    Operation("models.set_alias", "model.manage", "PUT", "projects/{project}/models/{model}/aliases/{alias}",
              "Point an alias (champion, staging...) at one of the project's versions of the model",
              body=AliasSet, response=RegisteredModel, call="experiments.set_model_alias"),
    Operation("models.delete_alias", "model.manage", "DELETE", "projects/{project}/models/{model}/aliases/{alias}",
              "Remove an alias that points at one of the project's versions", response=RegisteredModel,
              call="experiments.delete_model_alias"),
))
