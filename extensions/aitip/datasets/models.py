"""Request and response types of the dataset registry (REST, SDK, CLI and OpenAPI speak these)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, StringConstraints

from ..operations.inputs import InlineFile
from ..webhooks.models import WebhookUrl
from ..schema import (
    DATASET_NAME_PATTERN,
    DatasetName,
    RequestModel,
    ResponseModel,
    text,
)

__all__ = ["DATASET_NAME_PATTERN", "DatasetName"]  # the rule itself lives in aitip.schema
ColumnName = Annotated[str, StringConstraints(min_length=1, max_length=255)]
FORMATS = ("csv", "parquet", "jsonl", "images")
Format = Literal["csv", "parquet", "jsonl", "images"]
MAX_VERSION = 999_999_999  # version numbers in URLs have at most 9 digits
MaskMethod = Literal["hash", "redact"]


class DatasetSettings(RequestModel):
    description: str | None = text(10_000, default=None, description="The dataset's description; default: unchanged")
    sensitive_columns: dict[ColumnName, MaskMethod] | None = Field(
        None, max_length=1000, description="Columns masked for callers below maintainer: salted hash or redaction")
    quality_rules: dict[str, Any] | None = Field(
        None, description="The data-quality gate: thresholds a version must meet to be registered")


class RegisterQuery(RequestModel):
    """Query of a streaming upload (the body is the file's bytes)."""

    # Path separators are refused when the upload starts (422 bad_filename); the document says so too.
    filename: str = Field(..., min_length=1, max_length=255, json_schema_extra={"pattern": r"^[^/\\]+$"},
                          description="The uploaded file's name (for its format), without folders")
    format: Format | None = Field(None, description="csv, parquet, jsonl, or images (a zip of class folders)")
    message: str = text(2000, default="", description="What this version is (kept with it, like a commit message)")


class RegistrationQuery(RegisterQuery):
    """Query of a registration in the background: the upload's, and where to post its end."""

    callback_url: WebhookUrl | None = Field(None, description="Post the registration's end here, signed with a "
                                            "secret the platform makes and returns once in this answer")


RegistrationState = Literal["working", "registered", "rejected", "failed"]


class RegistrationListQuery(RequestModel):
    state: RegistrationState | None = Field(None, description="Only registrations in this state")
    limit: int = Field(50, ge=1, le=500, description="At most this many, newest first")


class InlineUpload(RequestModel):
    """A registration's file sent inline by a face that takes JSON only (an MCP tool), in place of the streamed
    body; bounded, since the message is held whole (larger files are streamed to the REST upload)."""

    content_base64: InlineFile = Field(description="The file's bytes, base64-encoded (standard alphabet, "
                                       "padded); its format from filename or format, as for an upload")


class Dataset(ResponseModel):
    project: str
    name: str
    description: str
    sensitive_columns: dict[str, str]
    quality_rules: dict[str, Any]
    created_by: str
    created_at: datetime
    latest_version: int | None
    versions: int


class DatasetVersion(ResponseModel):
    model_config = ConfigDict(extra="ignore", serialize_by_alias=True, validate_by_name=True, validate_by_alias=True)

    project: str
    dataset: str
    version: int
    format: str
    content_md5: str
    bytes: int
    rows: int | None
    files: int
    schema_: dict[str, Any] = Field(alias="schema", serialization_alias="schema")
    quality: dict[str, Any] = Field(description="The quality report; below maintainer, the value-carrying "
                                    "statistics of sensitive columns are masked (see masked_columns)")
    masked_columns: list[str] = Field(default_factory=list,
                                      description="Sensitive columns whose statistics are masked for this caller")
    message: str
    author: str
    parent_version: int | None
    restored_from: int | None
    derived_from: str | None = Field(None, description="<dataset>@<version> this version was made from")
    git_commit: str | None
    tag: str | None
    data_path: str
    created_at: datetime


class RegistrationError(ResponseModel):
    code: str
    message: str
    detail: Any = None


class Registration(ResponseModel):
    """A registration running in the background: read it back until its state is no longer ``working``."""

    id: int
    project: str
    dataset: str
    state: RegistrationState = Field(description="working, then registered (see version), rejected by the "
                                     "quality gate, or failed (see error)")
    step: str = Field(description="queued, unpack, quality, commit, or done")
    filename: str
    bytes: int
    message: str
    version: int | None = Field(description="The version it made, once registered")
    error: RegistrationError | None = Field(description="Why there is no version (rejected or failed)")
    created_by: str
    created_at: datetime
    finished_at: datetime | None
    callback_url: str | None = None
    callback_secret: str | None = Field(None, description="In the answer that started it only: the secret "
                                        "its callback is signed with")


class RegistrationList(ResponseModel):
    registrations: list[Registration]


class DatasetList(ResponseModel):
    datasets: list[Dataset]


class VersionList(ResponseModel):
    versions: list[DatasetVersion]


class SchemaChange(ResponseModel):
    column: str
    change: Literal["added", "removed", "type_changed"]
    before: str | None
    after: str | None


class VersionDiff(ResponseModel):
    dataset: str
    from_version: int
    to_version: int
    schema_changes: list[SchemaChange]
    rows_before: int | None
    rows_after: int | None
    row_delta: int | None
    bytes_delta: int
    content_changed: bool
    files_added: list[str]
    files_removed: list[str]
    files_modified: list[str]
    dvc_diff: str


class RestoreRequest(RequestModel):
    message: str = text(2000, default="",
                        description="The new version's message; default: 'restore of version <N>'")


class PreviewQuery(RequestModel):
    limit: int = Field(50, ge=1, le=1000,
                       description="At most this many rows from the start (an image folder's files, by path)")


class Preview(ResponseModel):
    dataset: str
    version: int
    columns: list[str]
    rows: list[list[Any]]
    masked_columns: list[str]


class LineageQuery(RequestModel):
    node: str = Field(..., min_length=3, max_length=400,
                      description="dataset:<project>/<name>@<version>, job:<id>, run:<mlflow run id>, "
                                  "model:<name>@<version>, or evaluation:<id>")
    depth: int = Field(4, ge=1, le=10, description="How many links away from the node the graph reaches")


class LineageNode(ResponseModel):
    id: str
    kind: str = Field(description="dataset, job, run, model, or another domain's kind (evaluation...)")
    label: str
    attributes: dict[str, Any] = Field(default_factory=dict)


class LineageEdge(ResponseModel):
    source: str
    target: str
    relation: str


class LineageGraph(ResponseModel):
    root: str
    nodes: list[LineageNode]
    edges: list[LineageEdge]


class DatasetInput(RequestModel):
    """A dataset version a job reads, declared at submission."""

    dataset: DatasetName
    version: int | None = Field(None, ge=1, le=MAX_VERSION, description="Default: the latest version")


class DiffQuery(RequestModel):
    """``?from=<version>&to=<version>`` (the same version twice is an empty diff)."""

    from_version: int = Field(..., alias="from", ge=1, le=MAX_VERSION, description="The older version")
    to_version: int = Field(..., alias="to", ge=1, le=MAX_VERSION, description="The newer version")
