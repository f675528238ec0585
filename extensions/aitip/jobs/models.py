"""Request and response types of the jobs API."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated, Any

from pydantic import Field, field_validator

from ..schema import ProjectName, RequestModel, ResponseModel


class JobState(str, Enum):
    queued = "queued"
    starting = "starting"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"
    timed_out = "timed_out"

    @property
    def finished(self) -> bool:
        return self in FINISHED_STATES


FINISHED_STATES = frozenset({JobState.succeeded, JobState.failed, JobState.cancelled, JobState.timed_out})

TagText = Annotated[str, Field(min_length=1, max_length=250)]


class Resources(RequestModel):
    cpus: float = Field(1.0, gt=0, le=256, description="CPU cores the job needs")
    gpus: int = Field(0, ge=0, le=64, description="GPUs the job needs; it waits until that many are free")
    memory_mb: int | None = Field(None, ge=64, le=4 * 1024 * 1024)


class JobSubmit(RequestModel):
    project: ProjectName
    notebook: dict[str, Any] = Field(description="The notebook document (nbformat 4 JSON)")
    notebook_name: str = Field("notebook.ipynb", min_length=7, max_length=255, pattern=r"^[^/\\\x00-\x1f]+\.ipynb$")
    parameters: dict[str, Any] = Field(default_factory=dict,
                                       description="JSON values for names the notebook's parameters cell declares")
    kernel: str | None = Field(None, max_length=255, pattern=r"^[A-Za-z0-9._-]+$",
                               description="Kernel spec; default: the notebook's, else aitip-python")
    resources: Resources | None = None
    priority: int = Field(50, ge=0, le=100, description="Higher runs first")
    timeout_seconds: int = Field(3600, ge=1, le=7 * 24 * 3600)
    max_attempts: int = Field(3, ge=1, le=10, description="Runs allowed when a worker is lost mid-job")
    tags: dict[TagText, TagText] = Field(default_factory=dict, max_length=32)
    code_version: str | None = Field(None, max_length=255)

    @field_validator("notebook")
    @classmethod
    def _looks_like_a_notebook(cls, value: dict[str, Any]) -> dict[str, Any]:
        if value.get("nbformat") != 4 or not isinstance(value.get("cells"), list):
            raise ValueError("not a Jupyter notebook (nbformat 4 with a cells list)")
        return value


class JobListQuery(RequestModel):
    project: ProjectName | None = None
    state: JobState | None = None
    owner: str | None = Field(None, max_length=255)
    limit: int = Field(50, ge=1, le=500)
    offset: int = Field(0, ge=0)


class FailedCell(ResponseModel):
    index: int
    source: str
    ename: str | None = None
    evalue: str | None = None
    traceback: str | None = None


class Job(ResponseModel):
    id: int
    project: str
    owner: str
    state: JobState
    notebook_name: str
    notebook_sha256: str
    parameters: dict[str, Any]
    kernel: str
    resources: dict[str, Any]
    priority: int
    timeout_seconds: int
    max_attempts: int
    attempt: int
    tags: dict[str, str]
    code_version: str | None
    retry_of: int | None
    cancel_requested: bool
    reason: str | None
    failed_cell: FailedCell | None
    mlflow_run_id: str | None
    mlflow_experiment_id: str | None
    submitted_at: datetime
    started_at: datetime | None
    first_cell_at: datetime | None
    finished_at: datetime | None


class JobList(ResponseModel):
    items: list[Job]
    total: int
    limit: int
    offset: int


class JobEvent(ResponseModel):
    id: int
    job_id: int
    attempt: int
    at: datetime
    kind: str
    data: dict[str, Any]
