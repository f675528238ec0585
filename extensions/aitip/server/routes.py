"""Route and operation declarations: one table from which URL patterns, permission checks and the
OpenAPI description are all derived."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic import BaseModel

from ..schema import DATASET_NAME_REGEX

API_PREFIX = "api/aitip/v1/"

PARAMETER_PATTERNS = {
    "project": r"[^/]+",
    "kind": r"users|groups",
    "member": r"[^/]+",
    "job": r"[0-9]{1,18}",
    "sweep": r"[0-9]{1,18}",
    "run": r"[0-9a-f]{32}",
    "path": r".*",
    "mlflow_path": r"api/2\.0/mlflow(?:-artifacts)?/[^?#]*",
    "dataset": DATASET_NAME_REGEX,  # its length is checked by the handler (422), the same rule as the models'
    "version": r"[0-9]{1,9}",
    "task": r"[0-9]{1,18}",
    "item": r"[0-9]{1,18}",
    "assignment": r"[0-9]{1,18}",
}


@dataclass(frozen=True)
class Operation:
    """One HTTP method of one route: the permission it needs and the types it speaks."""

    action: str
    summary: str
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200


@dataclass(frozen=True)
class Route:
    template: str
    handler: type
    prefix: str = API_PREFIX
    # Another API reached through the platform (the tracking gateway serves MLflow's REST API, documented by
    # MLflow): its permission is declared here, its paths and bodies are not described in our OpenAPI.
    foreign_api: bool = False

    @property
    def pattern(self) -> str:
        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            return f"(?P<{name}>{PARAMETER_PATTERNS[name]})"

        return self.prefix + re.sub(r"\{(\w+)\}", replace, self.template)

    @property
    def parameters(self) -> list[str]:
        return re.findall(r"\{(\w+)\}", self.template)

    @property
    def operations(self) -> dict[str, Operation]:
        return self.handler.operations  # type: ignore[attr-defined, no-any-return]


def platform_routes() -> list[Route]:
    from .handlers.jobs import (
        JobCancelHandler,
        JobEventsHandler,
        JobHandler,
        JobInputsHandler,
        JobNotebookHandler,
        JobRetryHandler,
        JobsHandler,
        JobTrackingHandler,
    )
    from .handlers.tracking import TrackingGatewayHandler
    from .handlers.experiments import (
        ExperimentsHandler,
        MetricHistoryHandler,
        ModelsHandler,
        RunCompareHandler,
        RunHandler,
        RunsHandler,
    )
    from .handlers.annotations import (
        AnnotationExportHandler,
        AnnotationLabelHandler,
        AnnotationQueueHandler,
        AnnotationReviewHandler,
        AnnotationTaskHandler,
        AnnotationTasksHandler,
    )
    from .handlers.datasets import (
        DatasetDiffHandler,
        DatasetDownloadHandler,
        DatasetHandler,
        DatasetPreviewHandler,
        DatasetRestoreHandler,
        DatasetsHandler,
        DatasetVersionHandler,
        DatasetVersionsHandler,
        LineageHandler,
    )
    from .handlers.meta import HealthHandler, MeHandler, NotFoundHandler, OpenAPIHandler
    from .handlers.pages import PlatformHomeHandler
    from .handlers.resources import (
        ResourcesHistoryHandler,
        ResourcesInventoryHandler,
        ResourcesNowHandler,
        ResourcesUsageHandler,
    )
    from .handlers.projects import (
        MemberHandler,
        MembersHandler,
        ProjectArchiveHandler,
        ProjectHandler,
        ProjectsHandler,
        ProjectUnarchiveHandler,
    )
    from .handlers.sweeps import SweepCancelHandler, SweepHandler, SweepsHandler

    return [
        Route("health", HealthHandler),
        Route("me", MeHandler),
        Route("openapi.json", OpenAPIHandler),
        Route("projects", ProjectsHandler),
        Route("projects/{project}", ProjectHandler),
        Route("projects/{project}/archive", ProjectArchiveHandler),
        Route("projects/{project}/unarchive", ProjectUnarchiveHandler),
        Route("projects/{project}/members", MembersHandler),
        Route("projects/{project}/members/{kind}/{member}", MemberHandler),
        Route("jobs", JobsHandler),
        Route("jobs/{job}", JobHandler),
        Route("jobs/{job}/cancel", JobCancelHandler),
        Route("jobs/{job}/retry", JobRetryHandler),
        Route("jobs/{job}/events", JobEventsHandler),
        Route("jobs/{job}/inputs", JobInputsHandler),
        Route("jobs/{job}/notebook", JobNotebookHandler),
        Route("jobs/{job}/tracking", JobTrackingHandler),
        Route("tracking/{mlflow_path}", TrackingGatewayHandler, foreign_api=True),
        Route("sweeps", SweepsHandler),
        Route("sweeps/{sweep}", SweepHandler),
        Route("sweeps/{sweep}/cancel", SweepCancelHandler),
        Route("projects/{project}/experiments", ExperimentsHandler),
        Route("projects/{project}/runs", RunsHandler),
        Route("projects/{project}/compare", RunCompareHandler),
        Route("projects/{project}/models", ModelsHandler),
        Route("runs/{run}", RunHandler),
        Route("runs/{run}/metric-history", MetricHistoryHandler),
        Route("projects/{project}/datasets", DatasetsHandler),
        Route("projects/{project}/datasets/{dataset}", DatasetHandler),
        Route("projects/{project}/datasets/{dataset}/versions", DatasetVersionsHandler),
        Route("projects/{project}/datasets/{dataset}/versions/{version}", DatasetVersionHandler),
        Route("projects/{project}/datasets/{dataset}/versions/{version}/preview", DatasetPreviewHandler),
        Route("projects/{project}/datasets/{dataset}/versions/{version}/download", DatasetDownloadHandler),
        Route("projects/{project}/datasets/{dataset}/versions/{version}/restore", DatasetRestoreHandler),
        Route("projects/{project}/datasets/{dataset}/diff", DatasetDiffHandler),
        Route("lineage", LineageHandler),
        Route("projects/{project}/annotations", AnnotationTasksHandler),
        Route("projects/{project}/annotations/{task}", AnnotationTaskHandler),
        Route("projects/{project}/annotations/{task}/queue", AnnotationQueueHandler),
        Route("projects/{project}/annotations/{task}/items/{item}/label", AnnotationLabelHandler),
        Route("projects/{project}/annotations/{task}/assignments/{assignment}/review", AnnotationReviewHandler),
        Route("projects/{project}/annotations/{task}/export", AnnotationExportHandler),
        Route("resources/now", ResourcesNowHandler),
        Route("resources/history", ResourcesHistoryHandler),
        Route("resources/inventory", ResourcesInventoryHandler),
        Route("resources/usage", ResourcesUsageHandler),
        Route("{path}", NotFoundHandler),
        Route("home", PlatformHomeHandler, prefix=""),
    ]


def workspace_routes() -> list[Route]:
    from .handlers.meta import WorkspaceHealthHandler
    from .handlers.workspace import WorkspaceJobSubmitHandler, WorkspaceRelayHandler

    return [
        Route("health", WorkspaceHealthHandler),
        Route("jobs", WorkspaceJobSubmitHandler),
        Route("{path}", WorkspaceRelayHandler),
    ]
