"""Annotation tasks over REST: create, the caller's queue, label, review, progress and agreement, export."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from pydantic import Field
from tornado import web

from ...datasets.annotations import (
    AnnotationService,
    AnnotationTask,
    Assignment,
    AssignmentList,
    ExportRequest,
    LabelSubmit,
    ReviewSubmit,
    TaskCreate,
)
from ...datasets.models import DatasetVersion
from ...errors import ServiceUnavailable
from ...schema import RequestModel, ResponseModel
from ..routes import Operation
from .base import AitipHandler


class QueueQuery(RequestModel):
    annotator: str | None = Field(None, max_length=255, description="Reviewers: someone else's queue")
    all: bool = Field(False, description="Include accepted labels")


class TaskList(ResponseModel):
    tasks: list[AnnotationTask]


class AnnotationsBase(AitipHandler):
    @property
    def service(self) -> AnnotationService:
        if self.context.annotations is None:
            raise ServiceUnavailable("the dataset registry is not configured on this platform")
        return self.context.annotations


class AnnotationTasksHandler(AnnotationsBase):
    operations = {
        "GET": Operation("annotation.read", "The project's annotation tasks", response=TaskList),
        "POST": Operation("annotation.manage", "Create a task on a dataset version", body=TaskCreate,
                          response=AnnotationTask, status=201),
    }

    @web.authenticated
    @authorized
    async def get(self, project: str) -> None:
        self.send(TaskList(tasks=await self.service.list(self.principal, self.project_name(project))))

    @web.authenticated
    @authorized
    async def post(self, project: str) -> None:
        body = self.json_body(TaskCreate)
        self.send(await self.service.create(self.principal, self.project_name(project), body))


class AnnotationTaskHandler(AnnotationsBase):
    operations = {"GET": Operation("annotation.read", "A task's progress and agreement", response=AnnotationTask)}

    @web.authenticated
    @authorized
    async def get(self, project: str, task: str) -> None:
        self.send(await self.service.get(self.principal, self.project_name(project), int(task)))


class AnnotationQueueHandler(AnnotationsBase):
    operations = {"GET": Operation("annotation.read", "Your assigned items (reviewers: anyone's)",
                                   query=QueueQuery, response=AssignmentList)}

    @web.authenticated
    @authorized
    async def get(self, project: str, task: str) -> None:
        query = self.query(QueueQuery)
        assignments = await self.service.assignments(self.principal, self.project_name(project), int(task),
                                                     annotator=query.annotator, only_open=not query.all)
        self.send(AssignmentList(assignments=assignments))


class AnnotationLabelHandler(AnnotationsBase):
    operations = {"POST": Operation("annotation.label", "Label an item assigned to you", body=LabelSubmit,
                                    response=Assignment)}

    @web.authenticated
    @authorized
    async def post(self, project: str, task: str, item: str) -> None:
        body = self.json_body(LabelSubmit)
        self.send(await self.service.label(self.principal, self.project_name(project), int(task), int(item), body))


class AnnotationReviewHandler(AnnotationsBase):
    operations = {"POST": Operation("annotation.manage", "Accept or reject a label", body=ReviewSubmit,
                                    response=Assignment)}

    @web.authenticated
    @authorized
    async def post(self, project: str, task: str, assignment: str) -> None:
        body = self.json_body(ReviewSubmit)
        self.send(await self.service.review(self.principal, self.project_name(project), int(task),
                                            int(assignment), body))


class AnnotationExportHandler(AnnotationsBase):
    operations = {"POST": Operation("annotation.manage", "Export accepted labels as a new dataset version",
                                    body=ExportRequest, response=DatasetVersion, status=201)}

    @web.authenticated
    @authorized
    async def post(self, project: str, task: str) -> None:
        body = self.json_body(ExportRequest)
        self.send(await self.service.export(self.principal, self.project_name(project), int(task), body))
