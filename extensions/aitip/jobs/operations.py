"""Jobs and sweeps: the jobs section of the operation table."""

from __future__ import annotations

from ..operations.table import Operation, Section
from .models import (
    EventList,
    EventsQuery,
    Job,
    JobInput,
    JobList,
    JobListQuery,
    JobRerun,
    JobSubmit,
    ShippedNotebookList,
    Sweep,
    SweepCreate,
    SweepList,
    SweepListQuery,
    TrackingFlush,
)

_HANDLERS = "aitip.server.handlers.jobs"
_JOB = {"job": "job_id"}
_SWEEP = {"sweep": "sweep_id"}
# Called by a job's own kernel, through its credential: no person's face offers them.
_KERNEL_ONLY = frozenset({"sdk", "cli", "mcp"})

SECTION = Section("jobs", "Jobs and sweeps", (
    Operation("jobs.list", "job.list", "GET", "jobs", "List jobs in your projects", query=JobListQuery,
              response=JobList, call="jobs.list"),
    Operation("notebooks.list", "notebook.list", "GET", "notebooks", "The notebooks the platform ships for jobs "
              "and sweeps (run one by its name, as `shipped`), with their parameters", response=ShippedNotebookList,
              call="jobs.shipped_notebooks"),
    Operation("jobs.submit", "job.submit", "POST", "jobs", "Run a notebook as a job", body=JobSubmit,
              response=Job, status=201, call="jobs.submit", location="id", long_running=True),
    Operation("jobs.get", "job.read", "GET", "jobs/{job}", "Read a job", response=Job, call="jobs.get",
              arguments=_JOB),
    Operation("jobs.cancel", "job.cancel", "POST", "jobs/{job}/cancel", "Cancel a job (its kernel is stopped)",
              response=Job, call="jobs.cancel", arguments=_JOB),
    Operation("jobs.retry", "job.retry", "POST", "jobs/{job}/retry", "Re-run a job's exact snapshot as a new job",
              response=Job, status=201, call="jobs.retry", arguments=_JOB, long_running=True),
    Operation("jobs.rerun", "job.rerun", "POST", "jobs/{job}/rerun",
              "Run a job's notebook again as your own new job, with parameters, dataset inputs or settings "
              "changed (the rest as that job had them)", body=JobRerun, response=Job, status=201,
              call="jobs.rerun", arguments=_JOB, long_running=True),
    Operation("jobs.events", "job.read", "GET", "jobs/{job}/events",
              "A job's events; text/event-stream for a live stream", query=EventsQuery, response=EventList,
              call="jobs.event_page", arguments=_JOB, handler=f"{_HANDLERS}:JobEventsHandler"),
    Operation("jobs.notebook", "job.read", "GET", "jobs/{job}/notebook", "The executed notebook (the job's report)",
              handler=f"{_HANDLERS}:JobNotebookHandler", not_in=frozenset({"mcp"})),
    Operation("jobs.record_input", "job.record_input", "POST", "jobs/{job}/inputs",
              "Record a dataset version the job read (its own credential only)", body=JobInput, response=Job,
              call="jobs.record_input", arguments=_JOB, not_in=_KERNEL_ONLY),
    Operation("jobs.track", "job.track", "POST", "jobs/{job}/tracking",
              "Store what the job's kernel spooled for MLflow now, and say what was refused (its own credential "
              "only)", response=TrackingFlush, handler=f"{_HANDLERS}:JobTrackingHandler", not_in=_KERNEL_ONLY),
    Operation("sweeps.list", "sweep.read", "GET", "sweeps", "A project's sweeps", query=SweepListQuery,
              response=SweepList, call="sweeps.list"),
    Operation("sweeps.create", "sweep.create", "POST", "sweeps", "Start a grid, random or TPE sweep",
              body=SweepCreate, response=Sweep, status=201, call="sweeps.create", location="id", long_running=True),
    Operation("sweeps.get", "sweep.read", "GET", "sweeps/{sweep}", "A sweep with its trials", response=Sweep,
              call="sweeps.get", arguments=_SWEEP),
    Operation("sweeps.cancel", "sweep.cancel", "POST", "sweeps/{sweep}/cancel", "Cancel a sweep and its running "
              "trials", response=Sweep, call="sweeps.cancel", arguments=_SWEEP),
))
