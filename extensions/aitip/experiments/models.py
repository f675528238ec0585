"""Request and response types of the experiments API: MLflow experiments, runs, metric curves, run
comparison and the model registry, as a project's members see them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field

from ..schema import MAX_ID, RequestModel, ResponseModel

RUN_ID_PATTERN = r"^[0-9a-f]{32}$"
RunId = Annotated[str, Field(pattern=RUN_ID_PATTERN, description="An MLflow run id (32 hex characters)")]
MetricKey = Annotated[str, Field(min_length=1, max_length=250)]
MAX_COMPARED_RUNS = 20


# ----- experiments -----

class ExperimentListQuery(RequestModel):
    include_deleted: bool = Field(False, description="Also list experiments deleted in MLflow")


class Experiment(ResponseModel):
    experiment_id: str
    name: str
    lifecycle_stage: str
    tags: dict[str, str]
    run_count: int = Field(description="Active runs in the experiment")


class ExperimentList(ResponseModel):
    experiments: list[Experiment]


# ----- runs -----

class RunListQuery(RequestModel):
    experiment_id: str | None = Field(None, max_length=32, pattern=r"^[0-9]+$",
                                      description="One of the project's experiments; default: all of them")
    filter: str = Field("", max_length=4000, description="MLflow search syntax, e.g. "
                        "\"metrics.accuracy > 0.9 and params.lr = '0.1'\"")
    order_by: list[str] = Field(default_factory=list, max_length=10,
                                description="MLflow order clauses, e.g. 'metrics.accuracy DESC' (repeat the "
                                "parameter for several); runs then follow start time (newest first)")
    max_results: int = Field(100, ge=1, le=1000, description="At most this many runs per page")
    page_token: str | None = Field(None, max_length=2000, description="next_page_token of the previous page")


class Run(ResponseModel):
    run_id: str
    run_name: str | None
    experiment_id: str
    status: str
    start_time: int | None = Field(description="Milliseconds since the epoch")
    end_time: int | None = Field(description="Milliseconds since the epoch; null while it runs")
    user: str | None
    job_id: int | None = Field(description="The AITIP job this run tracked, if any")
    params: dict[str, str]
    metrics: dict[str, float | None] = Field(description="Latest value of each metric (null for NaN/inf)")
    tags: dict[str, str]


class RunList(ResponseModel):
    runs: list[Run]
    next_page_token: str | None


class Artifact(ResponseModel):
    path: str
    is_dir: bool
    file_size: int | None


class JobSummary(ResponseModel):
    id: int
    project: str
    owner: str
    state: str
    notebook_name: str
    notebook_sha256: str
    kernel: str
    attempt: int
    submitted_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class RunDetail(Run):
    project: str
    artifacts: list[Artifact]
    artifacts_truncated: bool = Field(False, description="More artifacts exist than were listed")
    job: JobSummary | None
    metric_keys: list[str]


# ----- metric curves -----

class MetricHistoryQuery(RequestModel):
    key: MetricKey = Field(description="The metric's name, as the run logged it")
    max_points: int = Field(1000, ge=3, le=100_000,
                            description="Longer curves are downsampled (LTTB by step) to this many points")


class MetricPoint(ResponseModel):
    step: int
    timestamp: int
    value: float | None


class MetricHistory(ResponseModel):
    key: str
    total_points: int
    points: list[MetricPoint]


# ----- comparison -----

class CompareQuery(RequestModel):
    run: list[RunId] = Field(min_length=2, max_length=MAX_COMPARED_RUNS,
                             description="Run ids (repeat the parameter), all in the project")
    key: list[MetricKey] = Field(default_factory=list, max_length=50,
                                 description="Metrics to draw as curves (repeatable); default: every metric "
                                 "the runs logged, up to 50")
    max_points: int = Field(500, ge=3, le=10_000, description="Points per curve after downsampling")


class RunComparison(ResponseModel):
    runs: list[Run]
    params: dict[str, dict[str, str | None]] = Field(description="{param: {run_id: value}}; null where unset")
    differing_params: list[str]
    metrics: dict[str, dict[str, float | None]] = Field(description="{metric: {run_id: latest value}}")
    curves: dict[str, dict[str, list[MetricPoint]]] = Field(description="{metric: {run_id: points}}")


# ----- model registry -----

class ModelVersion(ResponseModel):
    version: int
    run_id: str | None
    job_id: int | None
    status: str | None
    creation_timestamp: int | None
    aliases: list[str]
    source: str | None


class RegisteredModel(ResponseModel):
    name: str
    description: str | None
    aliases: dict[str, int] = Field(description="{alias: version}, for this project's versions")
    versions: list[ModelVersion]


class AliasSet(RequestModel):
    version: int = Field(ge=1, le=MAX_ID, description="The model version the alias points at: one of this "
                         "project's")


class ModelList(ResponseModel):
    models: list[RegisteredModel]
