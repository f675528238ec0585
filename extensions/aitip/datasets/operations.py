"""Datasets, lineage and annotation: the datasets section of the operation table."""

from __future__ import annotations

from ..operations.table import Operation, Section
from .annotations import (
    AnnotationTask,
    Assignment,
    AssignmentList,
    ExportRequest,
    LabelSubmit,
    QueueQuery,
    ReviewSubmit,
    TaskCreate,
    TaskList,
)
from .models import (
    Dataset,
    DatasetList,
    DatasetSettings,
    DatasetVersion,
    DiffQuery,
    InlineUpload,
    LineageGraph,
    LineageQuery,
    Preview,
    PreviewQuery,
    RegisterQuery,
    RestoreRequest,
    VersionDiff,
    VersionList,
)

_HANDLERS = "aitip.server.handlers.datasets"
_DATASET = {"dataset": "name"}
_TASK = {"task": "task_id"}
_DATASETS = "projects/{project}/datasets/{dataset}"
_TASKS = "projects/{project}/annotations"

SECTION = Section("datasets", "Datasets, lineage and annotation", (
    Operation("datasets.list", "dataset.read", "GET", "projects/{project}/datasets", "List the project's datasets",
              response=DatasetList, call="datasets.list_datasets"),
    Operation("datasets.get", "dataset.read", "GET", _DATASETS, "A dataset and its latest version number",
              response=Dataset, call="datasets.get", arguments=_DATASET),
    Operation("datasets.update", "dataset.manage", "PATCH", _DATASETS,
              "Change masking, the quality gate or the description", body=DatasetSettings, response=Dataset,
              call="datasets.update_settings", arguments=_DATASET),
    Operation("datasets.versions", "dataset.read", "GET", f"{_DATASETS}/versions", "The dataset's versions",
              response=VersionList, call="datasets.versions", arguments=_DATASET),
    Operation("datasets.register", "dataset.write", "POST", f"{_DATASETS}/versions",
              "Register the body (the file's bytes) as the next version", query=RegisterQuery,
              response=DatasetVersion, status=201, handler=f"{_HANDLERS}:DatasetVersionsHandler",
              location="version", long_running=True, inline_body=InlineUpload, call="datasets.register_content",
              arguments={**_DATASET, "format": "fmt", "content_base64": "content"}),
    Operation("datasets.version", "dataset.read", "GET", f"{_DATASETS}/versions/{{version}}",
              "One version: schema, quality, Git tag", response=DatasetVersion, call="datasets.version",
              arguments=_DATASET),
    Operation("datasets.preview", "dataset.read", "GET", f"{_DATASETS}/versions/{{version}}/preview",
              "The first rows; sensitive columns masked below maintainer", query=PreviewQuery, response=Preview,
              call="datasets.preview", arguments=_DATASET),
    Operation("datasets.download", "dataset.read", "GET", f"{_DATASETS}/versions/{{version}}/download",
              "The version's file; sensitive columns masked below maintainer",
              handler=f"{_HANDLERS}:DatasetDownloadHandler", not_in=frozenset({"mcp"})),
    Operation("datasets.restore", "dataset.write", "POST", f"{_DATASETS}/versions/{{version}}/restore",
              "Register an old version's content as the next version", body=RestoreRequest,
              response=DatasetVersion, status=201, call="datasets.restore", arguments=_DATASET),
    Operation("datasets.diff", "dataset.read", "GET", f"{_DATASETS}/diff", "What changed between two versions",
              query=DiffQuery, response=VersionDiff, call="datasets.diff",
              arguments={**_DATASET, "from_version": "before", "to_version": "after"}),
    Operation("lineage.get", "lineage.read", "GET", "lineage",
              "The lineage graph around a dataset version, job, run or model", query=LineageQuery,
              response=LineageGraph, call="datasets.lineage"),
    Operation("annotations.list", "annotation.read", "GET", _TASKS, "The project's annotation tasks",
              response=TaskList, call="annotations.list"),
    Operation("annotations.create", "annotation.manage", "POST", _TASKS, "Create a task on a dataset version",
              body=TaskCreate, response=AnnotationTask, status=201, call="annotations.create", location="id"),
    Operation("annotations.get", "annotation.read", "GET", f"{_TASKS}/{{task}}", "A task's progress and agreement",
              response=AnnotationTask, call="annotations.get", arguments=_TASK),
    Operation("annotations.queue", "annotation.read", "GET", f"{_TASKS}/{{task}}/queue",
              "Your assigned items (reviewers: anyone's)", query=QueueQuery, response=AssignmentList,
              call="annotations.queue", arguments=_TASK),
    Operation("annotations.label", "annotation.label", "POST", f"{_TASKS}/{{task}}/items/{{item}}/label",
              "Label an item assigned to you", body=LabelSubmit, response=Assignment, call="annotations.label",
              arguments={**_TASK, "item": "item_id"}),
    Operation("annotations.review", "annotation.manage", "POST",
              f"{_TASKS}/{{task}}/assignments/{{assignment}}/review", "Accept or reject a label", body=ReviewSubmit,
              response=Assignment, call="annotations.review", arguments={**_TASK, "assignment": "assignment_id"}),
    Operation("annotations.export", "annotation.manage", "POST", f"{_TASKS}/{{task}}/export",
              "Export accepted labels as a new dataset version", body=ExportRequest, response=DatasetVersion,
              status=201, call="annotations.export", arguments=_TASK),
))
