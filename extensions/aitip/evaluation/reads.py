"""The evaluation domain's read API for other domains (a simulation policy starts after an evaluation passes):
plain answers, no tables handed out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from .tables import EvaluationRecord


@dataclass(frozen=True)
class PassedEvaluation:
    id: int
    project_id: int
    project: str
    model: str
    model_version: int
    created_by: str
    finished_at: datetime


def passed_since(session: Session, project_ids: set[int], since: datetime, *, exclude: Any) -> list[PassedEvaluation]:
    """Evaluations of these projects that passed after ``since``, oldest first, but those whose id ``exclude``
    (a subquery of ids) holds."""
    rows = session.scalars(select(EvaluationRecord).where(
        EvaluationRecord.project_id.in_(project_ids), EvaluationRecord.state == "passed",
        EvaluationRecord.finished_at >= since, EvaluationRecord.id.not_in(exclude)).order_by(EvaluationRecord.id))
    return [PassedEvaluation(row.id, row.project_id, row.project.name, row.model, row.model_version, row.created_by,
                             row.finished_at) for row in rows]


@dataclass(frozen=True)
class EvaluationOutcome:
    """An ended evaluation as a release's evidence gate reads it."""

    id: int
    state: str
    model: str
    model_version: int
    dataset: str
    dataset_version: int
    dataset_md5: str
    notebook_sha256: str
    job_id: int | None
    finished_at: datetime | None


def outcomes_for(session: Session, project_id: int, model: str, model_version: int, dataset: str
                 ) -> list[EvaluationOutcome]:
    """The ended evaluations of one model version on one dataset (any of its versions), newest first."""
    rows = session.scalars(select(EvaluationRecord).where(
        EvaluationRecord.project_id == project_id, EvaluationRecord.model == model,
        EvaluationRecord.model_version == model_version, EvaluationRecord.dataset == dataset,
        EvaluationRecord.state.in_(("passed", "failed", "error"))).order_by(EvaluationRecord.id.desc()))
    return [EvaluationOutcome(row.id, row.state, row.model, row.model_version, row.dataset, row.dataset_version,
                              row.dataset_md5, row.notebook_sha256, row.job_id, row.finished_at) for row in rows]
