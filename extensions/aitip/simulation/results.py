"""What a simulation notebook hands the platform, and how the platform reads it back.

The notebook calls :func:`publish` once at its end (see :mod:`aitip.notebook_results`); the platform reads
the last published result after the job (:func:`read_published`), checks its shape and judges it itself
against the template: the verdict is never the notebook's word.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..notebook_results import display_result, plain, read_last

RESULT_MIME = "application/vnd.aitip.simulation+json"
MAX_EXAMPLES = 64
MAX_PROBES = 2000


def _finite(value: float | None, what: str) -> float | None:
    if value is not None and not math.isfinite(value):
        raise ValueError(f"{what} is {value}, not a finite number")
    return value


class ConditionResult(BaseModel):
    """The metric under one condition at one value of its parameter."""

    model_config = ConfigDict(extra="ignore")

    condition: str = Field(max_length=64)
    parameter: str | None = Field(None, max_length=64)
    value: float | None = None
    metric: float
    seconds: float = Field(0.0, ge=0)
    samples: int = Field(0, ge=0)
    details: dict[str, Any] = Field(default_factory=dict)

    @field_validator("metric", "value")
    @classmethod
    def _is_finite(cls, value: float | None) -> float | None:
        return _finite(value, "a condition's metric or value")


class Example(BaseModel):
    model_config = ConfigDict(extra="ignore")

    condition: str = Field(max_length=64)
    parameter: str | None = Field(None, max_length=64)
    value: float | None = None
    label: str | None = Field(None, max_length=200)
    clean_prediction: str | None = Field(None, max_length=200)
    prediction: str | None = Field(None, max_length=200)
    original_png: str = Field(max_length=512 * 1024)
    perturbed_png: str = Field(max_length=512 * 1024)


class ProbeResult(BaseModel):
    model_config = ConfigDict(extra="ignore")

    suite: str = Field(max_length=64)
    probe: str = Field(max_length=200)
    prompt: str = Field(max_length=20_000)
    response: str | None = Field(None, max_length=50_000)
    detector: str | None = Field(None, max_length=200)
    hit: bool
    seconds: float = Field(0.0, ge=0)
    error: str | None = Field(None, max_length=2000)


class DriftResult(BaseModel):
    model_config = ConfigDict(extra="ignore")

    feature: str = Field(max_length=255)
    psi: float | None = None
    ks: float | None = None


class PublishedResult(BaseModel):
    model_config = ConfigDict(extra="ignore")

    kind: Literal["image", "tabular", "llm", "custom"]
    metric: str = Field(max_length=64)
    rows: int = Field(0, ge=0)
    clean: float | None = None
    conditions: list[ConditionResult] = Field(max_length=5000)
    examples: list[Example] = Field(default_factory=list, max_length=MAX_EXAMPLES)
    probes: list[ProbeResult] = Field(default_factory=list, max_length=MAX_PROBES)
    drift: list[DriftResult] = Field(default_factory=list, max_length=5000)
    environment: dict[str, str] = Field(default_factory=dict)
    errors: list[str] = Field(default_factory=list, max_length=200)

    @field_validator("clean")
    @classmethod
    def _clean_is_finite(cls, value: float | None) -> float | None:
        return _finite(value, "the clean metric")


def publish(result: dict[str, Any]) -> dict[str, Any]:
    """In a simulation notebook: hand the platform the result, checked here first so that a malformed one fails
    this cell, not the platform's reading."""
    document = plain(result)
    PublishedResult.model_validate(document)
    display_result(RESULT_MIME, document, _summary(document))
    return document


def _summary(document: dict[str, Any]) -> str:
    shown = ", ".join(
        f"{row['condition']}{'' if row.get('value') is None else ' ' + format(row['value'], 'g')} {row['metric']:.3f}"
        for row in document["conditions"][:8])
    clean = "" if document.get("clean") is None else f"clean {document['clean']:.3f}; "
    return f"simulation result ({document['kind']}, {document['metric']}): {clean}{shown}"


def read_published(output_path: str | Path | None) -> PublishedResult | None:
    """The last result an executed notebook published, or None where it published none; a result not of the
    published shape raises ValueError (pydantic's) saying why."""
    found = read_last(output_path, RESULT_MIME)
    return None if found is None else PublishedResult.model_validate(found)
