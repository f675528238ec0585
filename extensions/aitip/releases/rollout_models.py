"""Request and response types of service rollouts: the steps (Argo Rollouts' set_weight, pause and analysis) and
a rollout's state."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from ..errors import InvalidValue
from ..schema import PROJECT_NAME_PATTERN, RequestModel, ResponseModel


class Pause(RequestModel):
    seconds: float | None = Field(None, gt=0, le=7 * 24 * 3600,
                                  description="How long to wait; none: until someone promotes the rollout")


class Condition(RequestModel):
    """One thing an analysis run measures on the canary, and the bound it must keep."""

    metric: Literal["error_rate", "latency_p99_ms", "accuracy"] = Field(
        description="error_rate: the canary's failed requests (5xx, unreachable) over its requests; "
                    "latency_p99_ms: its 99th percentile latency; accuracy: the share of its answered rows whose "
                    "true label, sent to the endpoint's feedback by request id, it predicted")
    max: float | None = Field(None, ge=0, description="error_rate, latency_p99_ms: the run fails above this")
    min: float | None = Field(None, ge=0, le=1, description="accuracy: the run fails below this")
    min_labelled: int = Field(1, ge=1, le=1_000_000,
                              description="accuracy: fewer labelled rows than this in a run: inconclusive")

    @model_validator(mode="after")
    def _bound(self) -> Condition:
        if self.metric == "accuracy":
            if self.min is None or self.max is not None:
                raise InvalidValue("accuracy is bounded below: give min (such as 0.9), not max")
        elif self.max is None or self.min is not None:
            raise InvalidValue("{metric} is bounded above: give max, not min", metric=self.metric)
        return self


class Analysis(RequestModel):
    interval_seconds: float = Field(10.0, ge=1, le=3600, description="Time between runs (each run measures the "
                                                                     "canary since the one before)")
    count: int = Field(3, ge=1, le=1000, description="Runs to make before the next step")
    failure_limit: int = Field(0, ge=0, le=1000, description="Failed runs tolerated; one more aborts the rollout")
    min_requests: int = Field(1, ge=1, le=1_000_000,
                              description="Fewer canary requests than this in a run: inconclusive, and the rollout "
                                          "pauses for a person to promote or abort it")
    conditions: list[Condition] = Field(
        default_factory=lambda: [Condition(metric="error_rate", max=0.01)], min_length=1, max_length=10,
        description="What each run checks (default: an error rate of at most 1 %)")


class Step(RequestModel):
    """One step, of one kind: set_weight, pause or analysis (Argo Rollouts' canary steps)."""

    set_weight: int | None = Field(None, ge=0, le=100, description="The canary's percent of the endpoint's traffic")
    pause: Pause | None = Field(None, description="Wait a while, or until promoted")
    analysis: Analysis | None = Field(None, description="Measure the canary; abort when it fails")

    @model_validator(mode="after")
    def _one_kind(self) -> Step:
        given = [name for name in STEP_KINDS if getattr(self, name) is not None]
        if len(given) != 1:
            if given:
                raise InvalidValue("a step is one of set_weight, pause or analysis, not {given} together",
                                   given=" and ".join(given))
            raise InvalidValue("a step is one of set_weight, pause or analysis")
        return self


STEP_KINDS = ("set_weight", "pause", "analysis")


def default_steps() -> list[Step]:
    """5, 20, 50 and 100 %, with an analysis after each of the first three."""
    steps: list[Step] = []
    for weight in (5, 20, 50):
        steps += [Step(set_weight=weight), Step(analysis=Analysis())]
    return [*steps, Step(set_weight=100)]


class RolloutStart(RequestModel):
    endpoint: str = Field(min_length=1, max_length=63, pattern=PROJECT_NAME_PATTERN,
                          description="The endpoint whose traffic moves to the release's model version")
    steps: list[Step] = Field(default_factory=default_steps, min_length=1, max_length=50,
                              description="set_weight, pause and analysis steps; the weights never go back and "
                                          "the last is 100 (default: 5, 20, 50, 100 % with analyses between)")

    @field_validator("steps")
    @classmethod
    def _reaches_100(cls, steps: list[Step]) -> list[Step]:
        weights = [step.set_weight for step in steps if step.set_weight is not None]
        if not weights:
            raise InvalidValue("no set_weight step: the canary would never take traffic")
        for before, after in zip(weights, weights[1:]):
            if after < before:
                raise InvalidValue("the weights go back from {before} to {after} %",
                                   before=before, after=after)
        if weights[-1] != 100:
            raise InvalidValue("the weights stop at {weights} %: the last set_weight must be 100",
                               weights=weights[-1])
        return steps


class RolloutState(str, Enum):
    progressing = "progressing"
    paused = "paused"  # a pause without a duration, or an inconclusive analysis: waiting for a person
    degraded = "degraded"  # aborted (by an analysis or a person): the canary takes no traffic
    completed = "completed"  # the canary takes all the traffic
    rolled_back = "rolled_back"  # back on the stable version by hand


class PromoteBody(RequestModel):
    full: bool = Field(False, description="Skip the remaining steps: the canary takes all the traffic now")


class AnalysisRun(ResponseModel):
    step: int
    at: datetime
    requests: int
    errors: int
    error_rate: float | None
    latency_p99_ms: float | None
    labelled: int = Field(0, description="The canary's answered rows whose true label arrived in the run")
    accuracy: float | None = None
    outcome: Literal["passed", "failed", "inconclusive"]
    failures: list[str] = Field(description="The conditions broken, in words")


class Rollout(ResponseModel):
    id: int
    project: str
    release_id: int
    release: str = Field(description="name version")
    endpoint: str
    model: str
    stable_version: int
    canary_version: int
    steps: list[dict[str, Any]]
    step: int = Field(description="The current step (from 0; the number of steps once done)")
    weight: int = Field(description="The canary's current percent")
    state: RolloutState
    message: str
    analysis_runs: list[AnalysisRun]
    created_by: str
    created_at: datetime
    updated_at: datetime


class RolloutList(ResponseModel):
    rollouts: list[Rollout]


class RolloutListQuery(RequestModel):
    state: RolloutState | None = Field(None, description="Only rollouts in this state")
    limit: int = Field(100, ge=1, le=1000, description="At most this many, newest first")
