"""What an evaluation notebook hands the platform, and how the platform finds it.

The notebook calls :func:`publish` once at its end: the result is displayed as a cell output of its own
MIME type, so it lands in the executed notebook that the platform's executor writes (a file of the
platform's, not the kernel's), and its metrics are logged to the evaluation's MLflow run. The platform then
reads the last such output (:func:`read_published`), checks its shape, and judges it itself: the verdict is
never the notebook's word.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..notebook_results import display_result, plain, read_last

RESULT_MIME = "application/vnd.aitip.evaluation+json"


class TaskResult(BaseModel):
    """One model's metrics on the test data, with the tables and plots behind them."""

    model_config = ConfigDict(extra="ignore")

    task: str = Field(max_length=32)
    metrics: dict[str, float]
    tables: dict[str, Any] = Field(default_factory=dict)
    plots: dict[str, Any] = Field(default_factory=dict)

    @field_validator("metrics")
    @classmethod
    def _finite(cls, metrics: dict[str, float]) -> dict[str, float]:
        for name, value in metrics.items():
            if len(name) > 250:
                raise ValueError(f"metric name {name[:40]!r}... is longer than 250 characters")
            if not math.isfinite(value):
                raise ValueError(f"metric {name!r} is {value}, not a finite number")
        return metrics


class PublishedResult(BaseModel):
    model_config = ConfigDict(extra="ignore")

    candidate: TaskResult
    baseline: TaskResult | None = None
    profile: dict[str, Any] | None = None
    data: dict[str, Any] = Field(default_factory=dict, description="rows evaluated, the split used")


def publish(candidate: dict[str, Any], *, baseline: dict[str, Any] | None = None,
            profile: dict[str, Any] | None = None, data: dict[str, Any] | None = None) -> dict[str, Any]:
    """In an evaluation notebook: hand the platform the candidate's result (and the baseline's, measured on the
    same rows), checked here first so a malformed result fails this cell, not the platform's reading."""
    document = plain({"candidate": candidate, "baseline": baseline, "profile": profile, "data": data or {}})
    PublishedResult.model_validate(document)
    try:
        import mlflow

        if mlflow.active_run() is not None or _in_job():
            mlflow.log_metrics(document["candidate"]["metrics"])
            if baseline is not None:
                mlflow.log_metrics({f"baseline_{name}": value for name, value in document["baseline"]["metrics"].items()
                                    if len(name) <= 240})
    except ImportError:
        pass
    display_result(RESULT_MIME, document, _summary(document))
    return document


def _in_job() -> bool:
    import os

    return bool(os.environ.get("AITIP_JOB_ID"))


def _summary(document: dict[str, Any]) -> str:
    metrics = document["candidate"]["metrics"]
    shown = ", ".join(f"{name} {value:.4g}" for name, value in list(metrics.items())[:8])
    return f"evaluation result ({document['candidate']['task']}): {shown}"


def read_published(output_path: str | Path | None) -> PublishedResult | None:
    """The last result an executed notebook published, or None where it published none. A result that is not
    of the published shape raises ValueError saying why."""
    found = read_last(output_path, RESULT_MIME)
    if found is None:
        return None
    return PublishedResult.model_validate(found)
