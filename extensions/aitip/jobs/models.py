"""Request and response types of the jobs API."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from ..errors import InvalidValue
from ..schema import MAX_ID, DatasetName, ProjectName, RequestModel, ResponseModel
from ..webhooks.models import CallbackRequest
from . import library
from .library import MAX_SHIPPED_NAME, SHIPPED_NAME_PATTERN

MAX_DATASET_VERSION = 999_999_999  # as version numbers in URLs: at most 9 digits
MAX_OFFSET = 10**9  # a page offset beyond any catalog (SQLite refuses integers past 2**63)


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
NOTEBOOK_NAME_PATTERN = r"^[^/\\\x00-\x1f]+\.ipynb$"


class Resources(RequestModel):
    cpus: float = Field(1.0, gt=0, le=256, description="CPU cores the job needs")
    gpus: int = Field(0, ge=0, le=64, description="GPUs the job needs; it waits until that many are free")
    memory_mb: int | None = Field(None, ge=64, le=4 * 1024 * 1024)


class JobInput(RequestModel):
    """A dataset version a job reads, declared at submission (its lineage)."""

    dataset: DatasetName
    version: int | None = Field(None, ge=1, le=MAX_DATASET_VERSION, description="Default: the latest version")


class JobInputRef(ResponseModel):
    dataset: str
    version: int
    how: str


class SandboxModel(RequestModel):
    """A registered model version the sandboxed job reads: staged read-only into its inputs before it starts."""

    name: str = Field(min_length=1, max_length=256, description="A registered model of the job's project")
    version: int = Field(ge=1, le=MAX_DATASET_VERSION)


class Sandbox(RequestModel):
    """Run the notebook isolated: a network of its own (nothing but the egress origins, through the platform),
    no platform credential, the named model versions and declared inputs staged read-only, and limits."""

    egress: list[Annotated[str, Field(max_length=2048, pattern=r"^https?://[^/?#\s\x00-\x1f\x7f-\x9f]+/?$")]] = Field(
        default_factory=list, max_length=4,
        description="Origins (scheme://host:port) the job may reach over HTTP, through the platform's egress "
                    "proxy ($AITIP_EGRESS_SOCKET); nothing else is reachable")
    memory_mb: int | None = Field(4096, ge=256, le=262144, description="Address space the kernel may use "
                                  "(none: no limit, as a GPU kernel needs: CUDA reserves far more than it uses)")
    cpu_seconds: int = Field(1800, ge=10, le=604800, description="CPU time the kernel may use")
    cpus: int = Field(2, ge=1, le=256, description="Cores the kernel's threads may run on")
    models: list[SandboxModel] = Field(default_factory=list, max_length=8,
                                       description="Model versions staged for the job ($AITIP_MODELS)")


SHIPPED_DESCRIPTION = ("A notebook the platform ships, by name (notebooks_list: 'train/digits_sklearn'), run instead "
                       "of a document sent; its name is the file's ('digits_sklearn.ipynb') unless notebook_name says")


def _known_shipped(value: Any) -> Any:
    """A name the library lacks, refused with the names there are (one too long is left to ``max_length``)."""
    return library.known(value) if isinstance(value, str) and len(value) <= MAX_SHIPPED_NAME else value


def _read_shipped(request: JobSubmit | SweepCreate) -> None:
    """The shipped notebook a request names, read into its ``notebook`` (so that what follows always has the
    document), and the file's name as the job's unless the request gives one."""
    if request.shipped is not None:
        request.notebook = library.document(request.shipped)
        if "notebook_name" not in request.model_fields_set:
            request.notebook_name = library.file_name(request.shipped)


class JobSubmit(RequestModel):
    project: ProjectName
    notebook: dict[str, Any] | None = Field(None, description="The notebook document (nbformat 4 JSON); or `shipped`")
    shipped: str | None = Field(None, max_length=MAX_SHIPPED_NAME, pattern=SHIPPED_NAME_PATTERN,
                                description=SHIPPED_DESCRIPTION, examples=library.names())
    notebook_name: str = Field("notebook.ipynb", min_length=7, max_length=255, pattern=NOTEBOOK_NAME_PATTERN)
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
    inputs: list[JobInput] = Field(default_factory=list, max_length=50,
                                   description="Dataset versions the job reads (recorded as lineage)")
    callback: CallbackRequest | None = Field(None, description="Post the job's final state here, signed "
                                             "(X-Aitip-Signature), when it ends")
    sandbox: Sandbox | None = Field(None, description="Run isolated (see Sandbox): how simulations run")

    _shipped_is_known = field_validator("shipped", mode="before")(_known_shipped)

    @field_validator("notebook")
    @classmethod
    def _looks_like_a_notebook(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and (value.get("nbformat") != 4 or not isinstance(value.get("cells"), list)):
            raise InvalidValue("not a Jupyter notebook (nbformat 4 with a cells list)")
        return value

    @model_validator(mode="after")
    def _one_notebook(self) -> JobSubmit:
        if self.notebook is None and self.shipped is None:
            raise InvalidValue("give the notebook document, or the name of a notebook the platform ships (shipped)")
        if self.notebook is not None and self.shipped is not None:
            raise InvalidValue("give the notebook document or a shipped notebook's name, not both")
        _read_shipped(self)
        return self


class JobRerun(RequestModel):
    """What changes when an earlier job's notebook runs again as the caller's own job (as ClearML clones a task
    and enqueues it): every field left out keeps the earlier job's value."""

    parameters: dict[str, Any] = Field(default_factory=dict, description="Parameters to change, by name; the "
                                       "others keep the earlier job's values")
    inputs: list[JobInput] | None = Field(None, max_length=50, description="The dataset versions to read instead "
                                          "of the earlier job's declared ones (a dataset without a version: its "
                                          "latest); default: the same versions")
    resources: Resources | None = Field(None, description="The resources to change; the others as the earlier "
                                        "job had them")
    priority: int | None = Field(None, ge=0, le=100, description="Higher runs first")
    timeout_seconds: int | None = Field(None, ge=1, le=7 * 24 * 3600)
    tags: dict[TagText, TagText] = Field(default_factory=dict, max_length=32,
                                         description="Tags to add or change; the earlier job's others are kept")
    callback: CallbackRequest | None = Field(None, description="Post the job's final state here, signed "
                                             "(X-Aitip-Signature), when it ends")


class JobListQuery(RequestModel):
    project: ProjectName | None = None
    state: JobState | None = None
    owner: str | None = Field(None, max_length=255)
    limit: int = Field(50, ge=1, le=500)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)


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
    rerun_of: int | None = Field(None, description="The job whose notebook this one runs again, with changes")
    cancel_requested: bool
    reason: str | None
    failed_cell: FailedCell | None
    mlflow_run_id: str | None
    mlflow_experiment_id: str | None
    inputs: list[JobInputRef] = Field(default_factory=list)
    callback_url: str | None = None
    sandbox: dict[str, Any] | None = Field(None, description="How the job is isolated, where it is sandboxed")
    callback_secret: str | None = Field(None, description="In the submission's answer only, when the platform "
                                        "made the callback's secret")
    submitted_at: datetime
    started_at: datetime | None
    first_cell_at: datetime | None
    finished_at: datetime | None


class JobList(ResponseModel):
    items: list[Job]
    total: int
    limit: int
    offset: int


class TrackingFlush(ResponseModel):
    """What draining a job's tracking spool did: points, params and tags stored, and what was refused."""

    stored: int
    errors: list[str]
    pending_bytes: int = Field(0, description="An incomplete last line, left for the next drain")


class JobEvent(ResponseModel):
    id: int
    job_id: int
    attempt: int
    at: datetime
    kind: str
    data: dict[str, Any]


Scalar = str | int | float | bool | None


class Dimension(RequestModel):
    """One searched parameter: a finite set (grid, choice) or a range (uniform, loguniform, int)."""

    type: Literal["grid", "choice", "uniform", "loguniform", "int"]
    values: list[Scalar] | None = Field(None, min_length=1, max_length=100)
    low: float | None = None
    high: float | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Dimension:
        if self.type in ("grid", "choice"):
            if not self.values or self.low is not None or self.high is not None:
                raise InvalidValue("a {type} dimension takes 'values' only", type=self.type)
        else:
            if self.values is not None or self.low is None or self.high is None or self.low >= self.high:
                raise InvalidValue("a {type} dimension takes 'low' < 'high' only", type=self.type)
            if self.type == "loguniform" and self.low <= 0:
                raise InvalidValue("a loguniform dimension needs low > 0")
            if self.type == "int" and (self.low != int(self.low) or self.high != int(self.high)):
                raise InvalidValue("an int dimension needs whole-number bounds")
        return self


class SweepCreate(RequestModel):
    project: ProjectName
    notebook: dict[str, Any] | None = Field(None, description="The notebook document (nbformat 4 JSON); or `shipped` "
                                            "or `job`")
    shipped: str | None = Field(None, max_length=MAX_SHIPPED_NAME, pattern=SHIPPED_NAME_PATTERN,
                                description=SHIPPED_DESCRIPTION, examples=library.names())
    job: int | None = Field(None, ge=1, le=MAX_ID, description="Search this job's notebook instead (a job of the "
                            "project): its parameters, name, kernel and declared dataset versions are the trials' "
                            "unless given here; the searched parameters are left out of the fixed ones")
    notebook_name: str = Field("notebook.ipynb", min_length=7, max_length=255, pattern=NOTEBOOK_NAME_PATTERN)
    parameters: dict[str, Any] = Field(default_factory=dict, description="Fixed parameters of every trial")
    inputs: list[JobInput] | None = Field(None, max_length=50, description="Dataset versions every trial reads, "
                                          "pinned when the sweep starts (a dataset without a version: its latest "
                                          "then); default: none, or the job's")
    space: dict[str, Dimension] = Field(min_length=1, max_length=20)
    strategy: Literal["grid", "random", "tpe"] = "tpe"
    trials: int | None = Field(None, ge=1, le=1000, description="Trial count (grid: every combination by default)")
    parallelism: int = Field(2, ge=1, le=64)
    objective: str = Field(min_length=1, max_length=250, description="MLflow metric each trial logs")
    direction: Literal["minimize", "maximize"] = "maximize"
    seed: int = Field(0, ge=0, le=2**31)
    kernel: str | None = Field(None, max_length=255, pattern=r"^[A-Za-z0-9._-]+$")
    resources: Resources | None = None
    priority: int = Field(50, ge=0, le=100)
    timeout_seconds: int = Field(3600, ge=1, le=7 * 24 * 3600)
    tags: dict[TagText, TagText] = Field(default_factory=dict, max_length=32)
    callback: CallbackRequest | None = Field(None, description="Post the sweep's final state (its best trial) "
                                             "here, signed (X-Aitip-Signature), when it ends")

    _shipped_is_known = field_validator("shipped", mode="before")(_known_shipped)

    @field_validator("notebook")
    @classmethod
    def _looks_like_a_notebook(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if value is None else JobSubmit._looks_like_a_notebook(value)

    @model_validator(mode="after")
    def _one_notebook(self) -> SweepCreate:
        given = sum(value is not None for value in (self.notebook, self.shipped, self.job))
        if given == 0:
            raise InvalidValue("give the notebook to search, the name of a notebook the platform ships (shipped), or "
                               "a job whose notebook to search")
        if given > 1:
            raise InvalidValue("give one of the notebook, a shipped notebook's name and a job, not more")
        _read_shipped(self)
        return self


class Trial(ResponseModel):
    job_id: int
    index: int
    parameters: dict[str, Any]
    state: JobState
    value: float | None


class Sweep(ResponseModel):
    id: int
    project: str
    owner: str
    state: Literal["running", "succeeded", "failed", "cancelled"]
    strategy: str
    space: dict[str, Any]
    parameters: dict[str, Any]
    trials: int
    parallelism: int
    objective: str
    direction: str
    created_trials: int
    best_job_id: int | None
    best_value: float | None
    best_parameters: dict[str, Any] | None
    mlflow_run_id: str | None
    reason: str | None
    created_at: datetime
    finished_at: datetime | None
    trial_jobs: list[Trial] = Field(default_factory=list)
    job: int | None = Field(None, description="The job whose notebook the sweep searches")
    inputs: list[JobInputRef] = Field(default_factory=list, description="The dataset versions every trial reads")
    callback_url: str | None = None
    callback_secret: str | None = Field(None, description="In the creation's answer only, when the platform made "
                                        "the callback's secret")


class SweepList(ResponseModel):
    items: list[Sweep]
    total: int


class EventsQuery(RequestModel):
    after: int = Field(0, ge=0, le=10**18, description="Only events with a larger id (as Last-Event-ID)")
    limit: int = Field(1000, ge=1, le=10_000)


class EventList(ResponseModel):
    items: list[JobEvent]
    state: str


class SweepListQuery(RequestModel):
    project: ProjectName


class ShippedNotebookParameter(ResponseModel):
    name: str
    type: str = Field(description="The default's type: int, float, str, bool, list, dict, NoneType; any when the "
                      "default is not a literal")
    default: Any
    help: str = Field(description="The comment beside it in the parameters cell")


class ShippedNotebook(ResponseModel):
    name: str = Field(description="What a job's or a sweep's `shipped` names it by")
    file_name: str
    title: str
    summary: str
    kernel: str | None
    parameters: list[ShippedNotebookParameter]


class ShippedNotebookList(ResponseModel):
    notebooks: list[ShippedNotebook]
