"""Request and response types of the resources API (monitoring and GPU accounting)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import Field, field_validator, model_validator

from ..errors import InvalidValue
from ..schema import ProjectName, RequestModel, ResponseModel


class SeriesQuery(RequestModel):
    since: float | None = Field(None, ge=0, description="Epoch seconds; default: all history kept")
    max_points: int | None = Field(None, ge=1, le=10_000,
                                   description="Average runs of points so each series has at most this many")


class GpuHoursQuery(RequestModel):
    by: Literal["user", "project"] = Field("user", description="Group GPU-hours by job owner or by project")
    project: ProjectName | None = Field(None, description="Only this project's jobs")
    since: datetime | None = Field(None, description="Window start (UTC when no zone is given)")
    until: datetime | None = Field(None, description="Window end (UTC when no zone is given); default: now")

    @field_validator("since", "until")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

    @model_validator(mode="after")
    def _ordered(self) -> GpuHoursQuery:
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise InvalidValue("'since' must be before 'until'")
        return self


class GpuHoursEntry(ResponseModel):
    name: str = Field(description="The user or the project")
    gpu_hours: float
    jobs: int = Field(description="Jobs that held GPUs inside the window")
    running_jobs: int = Field(description="Of those, jobs still running (counted up to now)")


class GpuHoursReport(ResponseModel):
    by: Literal["user", "project"]
    since: datetime | None
    until: datetime
    total_gpu_hours: float
    items: list[GpuHoursEntry]
