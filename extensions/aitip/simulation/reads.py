"""The simulation domain's read API for other domains (a release's evidence gates): plain answers, no tables
handed out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from .tables import SimulationRecord


@dataclass(frozen=True)
class SimulationOutcome:
    id: int
    state: str
    template_name: str
    template_version: int
    model: str
    model_version: int
    dataset: str
    dataset_version: int
    dataset_md5: str
    notebook_sha256: str
    job_id: int | None
    finished_at: datetime | None


def outcomes_for(session: Session, project_id: int, model: str, model_version: int, dataset: str
                 ) -> list[SimulationOutcome]:
    """The ended simulations of one model version on one dataset (any of its versions), newest first."""
    rows = session.scalars(select(SimulationRecord).where(
        SimulationRecord.project_id == project_id, SimulationRecord.model == model,
        SimulationRecord.model_version == model_version, SimulationRecord.dataset == dataset,
        SimulationRecord.state.in_(("passed", "failed", "error"))).order_by(SimulationRecord.id.desc()))
    return [SimulationOutcome(row.id, row.state, row.template_name, row.template_version, row.model or "",
                              row.model_version or 0, row.dataset or "", row.dataset_version or 0, row.dataset_md5,
                              row.notebook_sha256, row.job_id, row.finished_at) for row in rows]
