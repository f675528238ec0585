"""Request and response types of the simulation API."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from ..errors import InvalidValue
from ..schema import DatasetName, RequestModel, ResponseModel

MAX_VERSION = 999_999_999
MAX_OFFSET = 10**9

TemplateName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]{0,63}$")]
# A template by name, or name@version.
TemplateRef = Annotated[str, Field(min_length=1, max_length=80, pattern=r"^[a-z][a-z0-9_]{0,63}(@[1-9][0-9]{0,8})?$")]
ModelName = Annotated[str, Field(min_length=1, max_length=256)]


class SimulationState(str, Enum):
    queued = "queued"
    running = "running"
    passed = "passed"
    failed = "failed"  # the verdict: a threshold was not met, or the metric fell beyond the tolerance
    error = "error"  # no verdict: the simulation could not be run to its end

    @property
    def finished(self) -> bool:
        return self in (SimulationState.passed, SimulationState.failed, SimulationState.error)


class Endpoint(RequestModel):
    """An HTTP chat endpoint under test, described as garak's REST generator describes one."""

    uri: str = Field(min_length=8, max_length=2048, pattern=r"^https?://[!-~]+$")
    method: Literal["POST", "PUT", "PATCH"] = "POST"
    headers: dict[Annotated[str, Field(max_length=200)], Annotated[str, Field(max_length=4000)]] = Field(
        default_factory=dict, max_length=32, description="Sent with every probe; their values are never shown back")
    req_template_json_object: dict[str, Any] = Field(
        default_factory=lambda: {"messages": [{"role": "user", "content": "$INPUT"}]},
        description="The request body, a JSON object; $INPUT in its strings is replaced by each probe's prompt "
        "(default: an OpenAI-style chat request)")
    response_json_field: str = Field("$.choices[0].message.content", min_length=1, max_length=500,
                                     description="The answer's field: a key, or a path like "
                                     "$.choices[0].message.content")
    timeout_seconds: float = Field(30.0, gt=0, le=600)


class TemplateSave(RequestModel):
    """A project template: written whole, or as a copy of another (``extends``) with what differs."""

    document: dict[str, Any] | None = Field(None, description="The template as a JSON object (the YAML's keys)")
    yaml: str | None = Field(None, max_length=256 * 1024, description="The template as YAML text")

    @model_validator(mode="after")
    def _one_template(self) -> TemplateSave:
        if (self.document is None) == (self.yaml is None):
            raise InvalidValue("give the template either as JSON (document) or as YAML text (yaml), not both")
        return self

    @field_validator("yaml")
    @classmethod
    def _a_yaml_mapping(cls, text: str | None) -> str | None:
        import yaml

        if text is None:
            return text
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise InvalidValue("not YAML: {error}", error=str(error).splitlines()[0]) from None
        if not isinstance(loaded, dict):
            raise InvalidValue("a template is a YAML mapping (name: ..., kind: ..., conditions: [...])")
        return text


class TemplateQuery(RequestModel):
    version: int | None = Field(None, ge=1, le=MAX_VERSION, description="Default: the latest")


class TemplateSummary(ResponseModel):
    name: str
    version: int
    source: Literal["library", "project"] = Field(description="'library': shipped with the platform, read-only; "
                                                  "'project': the project's own")
    kind: str
    title: str
    description: str
    metric: str
    conditions: list[str]
    thresholds: list[str]
    extends: str | None
    versions: list[int]
    created_by: str | None = None
    created_at: datetime | None = None


class Template(TemplateSummary):
    template: dict[str, Any] = Field(description="The template resolved: what a simulation runs")
    body: dict[str, Any] = Field(description="The template as written (with its extends)")
    yaml: str


class TemplateList(ResponseModel):
    templates: list[TemplateSummary]


class SimulationSettings(RequestModel):
    """What a simulation runs: a policy's settings, or a manual simulation's."""

    template: TemplateRef = Field(description="A template of the library or the project: name or name@version")
    dataset: DatasetName | None = Field(None, description="The project's dataset to attack and stress the model "
                                        "on (its test split); not for an endpoint")
    dataset_version: int | None = Field(None, ge=1, le=MAX_VERSION,
                                        description="Default: the dataset's latest version when it starts")
    reference_version: int | None = Field(None, ge=1, le=MAX_VERSION,
                                          description="The dataset version a drift condition compares with")
    endpoint: Endpoint | None = Field(None, description="An LLM endpoint under test (llm templates)")
    gallery_size: int = Field(12, ge=0, le=48, description="Adversarial examples kept for the gallery")

    @model_validator(mode="after")
    def _data_or_endpoint(self) -> SimulationSettings:
        if self.endpoint is not None and (self.dataset is not None or self.dataset_version is not None):
            raise InvalidValue("a dataset is attacked through a model, an endpoint is probed itself: give "
                               "one")
        return self


class PolicySet(SimulationSettings):
    automatic: bool = Field(True, description="Simulate each version of the model whose evaluation passes")


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


class SimulationCreate(SimulationSettings):
    """A manual simulation: a template against a model version (and a dataset version), or an endpoint."""

    template: TemplateRef | None = Field(None, description="Default: the model's policy's")  # type: ignore[assignment]
    model: ModelName | None = Field(None, description="The registered model to attack (its policy fills in what "
                                    "is not given)")
    version: int | None = Field(None, ge=1, le=MAX_VERSION, description="The registered model version")

    @model_validator(mode="after")
    def _model_with_version(self) -> SimulationCreate:
        if (self.model is None) != (self.version is None):
            raise InvalidValue("name both the model and its version")
        return self


class SimulationListQuery(RequestModel):
    model: ModelName | None = Field(None, description="Only simulations of this model")
    template: TemplateName | None = Field(None, description="Only simulations of this template")
    state: SimulationState | None = Field(None, description="Only simulations in this state")
    limit: int = Field(50, ge=1, le=500, description="At most this many, newest first")
    offset: int = Field(0, ge=0, le=MAX_OFFSET, description="Skip this many, newest first")


class Simulation(ResponseModel):
    id: int
    project: str
    template_name: str
    template_version: int
    template_source: str
    kind: str
    model: str | None
    model_version: int | None
    model_run_id: str | None
    endpoint: dict[str, Any] | None = Field(description="The endpoint under test (header values withheld)")
    dataset: str | None
    dataset_version: int | None
    dataset_md5: str
    job_id: int | None
    notebook_sha256: str
    state: SimulationState
    trigger: str = Field(description="'manual', or 'evaluation:<id>': the passed evaluation that started it")
    previous_id: int | None = Field(description="The previous version's simulation under the same template")
    clean: float | None
    metrics: dict[str, float] = Field(description="{condition or condition@value: metric}")
    verdict: dict[str, Any] | None = Field(description="{passed, checks, regressions, reasons}")
    error: dict[str, Any] | None
    reason: str
    has_report: bool
    created_by: str
    created_at: datetime
    finished_at: datetime | None


class SimulationDetail(Simulation):
    template: dict[str, Any]
    result: dict[str, Any] | None = Field(description="Per-condition metrics, examples, probes, as published")


class SimulationList(ResponseModel):
    simulations: list[Simulation]
    total: int = Field(description="How many the query finds, beyond this page")


class CompareQuery(RequestModel):
    other: int | None = Field(None, ge=1, le=MAX_VERSION, description="The simulation compared with; default: "
                              "the one it was judged against (the previous version's)")


class ConditionChange(ResponseModel):
    condition: str
    parameter: str | None
    value: float | None
    before: float | None
    after: float | None
    change: float | None


class Comparison(ResponseModel):
    before: Simulation
    after: Simulation
    metric: str
    tolerance: float | None
    changes: list[ConditionChange]
