"""Request and response types of the evaluation API."""

from __future__ import annotations

import json
from datetime import datetime
from enum import Enum
from typing import Annotated, Any

from pydantic import Field, ValidationError, field_validator

from ..errors import InvalidInput, InvalidValue
from ..schema import DatasetName, RequestModel, ResponseModel
from .gates import MetricThreshold

MAX_VERSION = 999_999_999
MAX_OFFSET = 10**9

MetricName = Annotated[str, Field(min_length=1, max_length=250)]
ColumnName = Annotated[str, Field(min_length=1, max_length=255)]
# A notebook of notebooks/evaluate/, by its name without ".ipynb".
NotebookName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")]
BASELINE_PATTERN = r"^(champion|previous|none|[1-9][0-9]{0,8})$"


class Task(str, Enum):
    classification = "classification"
    regression = "regression"
    text_generation = "text_generation"
    ranking = "ranking"


class EvaluationState(str, Enum):
    queued = "queued"
    running = "running"
    passed = "passed"
    failed = "failed"  # the verdict: a threshold was not met
    error = "error"  # no verdict: the evaluation could not be run to its end

    @property
    def finished(self) -> bool:
        return self in (EvaluationState.passed, EvaluationState.failed, EvaluationState.error)


class EvaluationSettings(RequestModel):
    """What an evaluation runs and how it is judged: a policy's settings, or a manual evaluation's."""

    dataset: DatasetName = Field(description="The project's dataset to evaluate on (its test split)")
    dataset_version: int | None = Field(None, ge=1, le=MAX_VERSION,
                                        description="Default: the dataset's latest version when it starts")
    task: Task = Field(Task.classification, description="The model's task: it picks the default notebook")
    notebook: NotebookName | None = Field(None, description="An evaluation notebook of notebooks/evaluate/; "
                                          "default: the task's")
    notebook_document: dict[str, Any] | None = Field(
        None, description="A notebook of your own (nbformat 4 JSON) run instead: its parameters cell takes what it "
        "needs of model_uri, baseline_model_uri, dataset, label_column, split_column, test_split, profile, "
        "training_data, and it hands its metrics (a dict) to aitip.evaluation.publish")
    label_column: ColumnName = Field("label", description="The column holding the true label (tabular data)")
    split_column: ColumnName | None = Field("split", description="The column naming each row's split; rows "
                                            "whose value is test_split are evaluated (all rows if it is absent)")
    test_split: Annotated[str, Field(min_length=1, max_length=100)] = Field(
        "test", description="The split_column value of the rows evaluated")
    thresholds: dict[MetricName, MetricThreshold] = Field(default_factory=dict, max_length=50,
                                                          description="MLflow MetricThreshold per metric")
    baseline: str = Field("champion", pattern=BASELINE_PATTERN,
                          description="The version compared with: 'champion' (that alias, else the previous "
                          "version), 'previous', 'none', or a version number")
    profile: bool = Field(True, description="Measure latency, throughput, memory and size as well")
    parameters: dict[str, Any] = Field(default_factory=dict, max_length=50,
                                       description="More parameters for the notebook")
    timeout_seconds: int = Field(1800, ge=10, le=24 * 3600,
                                 description="Seconds the evaluation's job may run before it times out")

    @field_validator("notebook_document")
    @classmethod
    def _looks_like_a_notebook(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return _notebook_shape(value)


def _notebook_shape(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is not None and (value.get("nbformat") != 4 or not isinstance(value.get("cells"), list)):
        raise InvalidValue("not a Jupyter notebook (nbformat 4 with a cells list)")
    return value


def settings_from_json(values: dict[str, Any]) -> EvaluationSettings:
    """Settings kept as JSON (a policy's, an evaluation's), checked again as a caller's would be: in JSON mode,
    where an enum's value is its string. A problem is the caller's 422, naming the field."""
    known = {key: value for key, value in values.items() if key in EvaluationSettings.model_fields}
    try:
        return EvaluationSettings.model_validate_json(json.dumps(known))
    except ValidationError as error:
        detail = [{"field": ".".join(str(part) for part in problem["loc"]), "message": problem["msg"],
                   "type": problem["type"]} for problem in error.errors()]
        raise InvalidInput("invalid evaluation settings: {field}: {message_text}",
                           detail=detail, field=detail[0]['field'], message_text=detail[0]['message']) from None


class PolicySet(EvaluationSettings):
    automatic: bool = Field(True, description="Evaluate every version a training job registers, at once")


class Policy(ResponseModel):
    project: str
    model: str
    automatic: bool
    settings: dict[str, Any]
    updated_by: str
    created_at: datetime
    updated_at: datetime


class PolicyList(ResponseModel):
    policies: list[Policy]


class EvaluationCreate(RequestModel):
    """A manual evaluation: the model's policy, with any setting given here instead."""

    model: Annotated[str, Field(min_length=1, max_length=256)] = Field(
        description="The registered model to evaluate (its policy fills in what is not given)")
    version: int = Field(ge=1, le=MAX_VERSION, description="The registered model version to evaluate")
    dataset: DatasetName | None = Field(None, description="The project's dataset to evaluate on (its test split)")
    dataset_version: int | None = Field(None, ge=1, le=MAX_VERSION, description="Default: the policy's, else the "
                                        "dataset's latest version when it starts")
    task: Task | None = Field(None, description="The model's task: it picks the default notebook")
    notebook: NotebookName | None = Field(None, description="An evaluation notebook of notebooks/evaluate/; "
                                          "default: the policy's, else the task's")
    notebook_document: dict[str, Any] | None = Field(None, description="A notebook of your own, as in a policy")
    label_column: ColumnName | None = Field(None, description="The column holding the true label (tabular data)")
    split_column: ColumnName | None = Field(None, description="The column naming each row's split; rows "
                                            "whose value is test_split are evaluated (all rows if it is absent)")
    test_split: Annotated[str, Field(min_length=1, max_length=100)] | None = Field(
        None, description="The split_column value of the rows evaluated")
    thresholds: dict[MetricName, MetricThreshold] | None = Field(None, max_length=50,
                                                                 description="MLflow MetricThreshold per metric")
    baseline: str | None = Field(None, pattern=BASELINE_PATTERN,
                                 description="The version compared with: 'champion' (that alias, else the previous "
                                 "version), 'previous', 'none', or a version number")
    profile: bool | None = Field(None, description="Measure latency, throughput, memory and size as well")
    timeout_seconds: int | None = Field(None, ge=10, le=24 * 3600,
                                        description="Seconds the evaluation's job may run before it times out")

    @field_validator("notebook_document")
    @classmethod
    def _looks_like_a_notebook(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return _notebook_shape(value)


class EvaluationListQuery(RequestModel):
    model: Annotated[str, Field(min_length=1, max_length=256)] | None = Field(
        None, description="Only evaluations of this model")
    state: EvaluationState | None = Field(None, description="Only evaluations in this state")
    limit: int = Field(50, ge=1, le=500, description="At most this many, newest first")
    offset: int = Field(0, ge=0, le=MAX_OFFSET, description="Skip this many, newest first")


class Evaluation(ResponseModel):
    id: int
    project: str
    model: str
    model_version: int
    model_run_id: str | None
    baseline_version: int | None
    dataset: str
    dataset_version: int
    dataset_md5: str
    job_id: int | None
    notebook_sha256: str
    state: EvaluationState
    trigger: str = Field(description="'manual', or 'job:<id>': the training job whose version started it")
    settings: dict[str, Any]
    metrics: dict[str, float] | None
    baseline_metrics: dict[str, float] | None
    verdict: dict[str, Any] | None = Field(description="{passed, reasons: [...]} against the thresholds")
    error: dict[str, Any] | None
    reason: str
    warnings: list[str] = Field(description="What a reader of the verdict should know, e.g. that the data "
                                "evaluated is data the model was trained on")
    has_report: bool
    created_by: str
    created_at: datetime
    finished_at: datetime | None


class EvaluationDetail(Evaluation):
    result: dict[str, Any] | None = Field(description="Tables, plots and the profile, as the notebook found them")


class EvaluationList(ResponseModel):
    evaluations: list[Evaluation]
