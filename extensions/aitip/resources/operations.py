"""GPUs, CPU and memory, and GPU-hours: the resources section of the operation table."""

from __future__ import annotations

from ..operations.table import Operation, Section
from .models import GpuHoursQuery, GpuHoursReport, SeriesQuery

SECTION = Section("resources", "Resources", (
    Operation("resources.now", "resource.read", "GET", "resources/now",
              "GPUs (or CPU and memory without a GPU) now, with their jobs", call="resources.snapshot"),
    Operation("resources.history", "resource.read", "GET", "resources/history",
              "The sampled time series (bounded, downsampled on request)", query=SeriesQuery,
              call="resources.series"),
    Operation("resources.inventory", "resource.read", "GET", "resources/inventory",
              "The GPUs the scheduler hands out, and where the count comes from", call="resources.inventory"),
    Operation("resources.usage", "resource.usage", "GET", "resources/usage", "GPU-hours per user or project",
              query=GpuHoursQuery, response=GpuHoursReport, call="resources.gpu_hours"),
))
