"""Annotation tasks: label a dataset version's items, review the labels, measure how much annotators
agree, and export the accepted labels as a new dataset version whose lineage points at its source.

Items are the version's rows (keyed by a column, or by row number) or its image files (in an order shuffled
per task, so that a run of items is no hint of their folder). Each item goes to ``overlap`` different
annotators (round robin); double-labelled items give the agreement figures (percent agreement, Cohen's kappa
for two annotators, Fleiss' kappa for any number).

An annotator's own items come blind: an image item without its path or folder (the folder is its class) and a
row without the dataset's label column; reviewers reading someone's queue, and the export, keep them.
"""

from __future__ import annotations

import asyncio
import csv
import io
import random
from collections import Counter, defaultdict
from itertools import cycle
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..audit import record as audit_record
from ..catalog.base import utcnow
from ..catalog.service import CatalogService
from ..operations.actions import action_of, performs
from ..errors import Conflict, InvalidInput, NotFound, PermissionDenied
from ..identity.principal import Principal
from ..identity.roles import Role
from ..projects.access import authorize, refuse_if_archived, user_members
from ..schema import MAX_ID, DatasetName, RequestModel, ResponseModel, text
from .masking import mask_row, mask_value
from .models import MAX_VERSION, DatasetVersion
from .service import DatasetService
from .tables import (
    AnnotationAssignmentRecord,
    AnnotationItemRecord,
    AnnotationTaskRecord,
    DatasetVersionRecord,
)
from .tabular import DatasetFormatError, masked_preview
from .thumbnails import shrink

MAX_ITEMS = 100_000
# The longest side of an item's image as the labelling page shows it.
ITEM_IMAGE_SIZE = 384


Label = Annotated[str, Field(min_length=1, max_length=255, pattern=r"\S",
                             description="A label: 1-255 characters, not only whitespace")]


class TaskCreate(RequestModel):
    name: str = Field(..., pattern=r"^[a-z0-9][a-z0-9._-]{0,99}$", description="The task's name, unique in the project")
    dataset: DatasetName = Field(description="The project's dataset whose items are labelled")
    version: int | None = Field(None, ge=1, le=MAX_VERSION, description="The dataset version; default: the latest")
    labels: list[Label] = Field(..., min_length=2, max_length=100,
                                description="The labels annotators choose from, each once")
    instructions: str = text(20_000, default="", description="Guidance for the annotators, shown with the task")
    annotators: list[str] = Field(..., min_length=1, max_length=100,
                                  description="The project members who label the items (round robin)")
    overlap: int = Field(1, ge=1, le=10, description="How many different annotators label each item")
    item_column: str | None = Field(None, max_length=255, description="Tabular: the column naming each item")
    max_items: int = Field(1000, ge=1, le=MAX_ITEMS, description="At most this many items: the first rows, or an "
                           "image folder's first files by path")

    @field_validator("labels")
    @classmethod
    def _distinct_labels(cls, labels: list[str]) -> list[str]:
        if len(set(labels)) != len(labels):
            raise ValueError("labels must be distinct")
        return labels


class LabelSubmit(RequestModel):
    label: str = Field(..., min_length=1, max_length=255, description="One of the task's labels")


class ReviewSubmit(RequestModel):
    decision: Literal["accepted", "rejected"] = Field(
        description="An accepted label goes into the export and can no longer change")


class ExportRequest(RequestModel):
    dataset: DatasetName | None = Field(None, description="Target dataset (default: <source>-labels)")
    message: str = text(2000, default="",
                        description="The new version's message; default: 'accepted labels of task <id>'")


class Assignment(ResponseModel):
    id: int
    item_id: int
    position: int
    key: str
    content: dict[str, Any]
    annotator: str
    label: str | None
    review: str


class Agreement(ResponseModel):
    items_compared: int
    percent_agreement: float | None
    cohen_kappa: float | None
    fleiss_kappa: float | None


class AnnotationTask(ResponseModel):
    id: int
    project: str
    name: str
    dataset: str
    version: int
    labels: list[str]
    instructions: str
    overlap: int
    state: str
    created_by: str
    items: int
    assignments: int
    labelled: int
    accepted: int
    rejected: int
    per_annotator: dict[str, dict[str, int]]
    agreement: Agreement
    exported_version: int | None


class AssignmentList(ResponseModel):
    assignments: list[Assignment]


class TaskList(ResponseModel):
    tasks: list[AnnotationTask]


class QueueQuery(RequestModel):
    annotator: str | None = Field(None, max_length=255, description="Reviewers: someone else's queue")
    all: bool = Field(False, description="Include accepted labels")
    item: int | None = Field(None, ge=1, le=MAX_ID, description="Only this item's assignment; an image item's "
                             "picture comes with it (content.image, a data URL)")


def percent_and_kappas(labels_by_item: dict[int, list[str]], categories: list[str]) -> Agreement:
    """Agreement over items with at least two labels."""
    rated = {item: labels for item, labels in labels_by_item.items() if len(labels) >= 2}
    if not rated:
        return Agreement(items_compared=0, percent_agreement=None, cohen_kappa=None, fleiss_kappa=None)
    pair_agree = pair_total = 0
    for labels in rated.values():
        for i in range(len(labels)):
            for j in range(i + 1, len(labels)):
                pair_total += 1
                pair_agree += labels[i] == labels[j]
    percent = pair_agree / pair_total
    cohen = None
    pairs = [labels for labels in rated.values() if len(labels) == 2]
    if len(pairs) == len(rated):
        first = Counter(labels[0] for labels in pairs)
        second = Counter(labels[1] for labels in pairs)
        n = len(pairs)
        observed = sum(a == b for a, b in pairs) / n
        expected = sum(first[c] * second[c] for c in categories) / (n * n)
        cohen = 1.0 if expected == 1 else (observed - expected) / (1 - expected)
    fleiss = None
    sizes = {len(labels) for labels in rated.values()}
    if len(sizes) == 1:
        raters = sizes.pop()
        n = len(rated)
        proportions = Counter(label for labels in rated.values() for label in labels)
        p_e = sum((proportions[c] / (n * raters)) ** 2 for c in categories)
        p_i = [(sum(count * count for count in Counter(labels).values()) - raters) / (raters * (raters - 1))
               for labels in rated.values()]
        p_bar = sum(p_i) / n
        fleiss = 1.0 if p_e == 1 else (p_bar - p_e) / (1 - p_e)
    return Agreement(items_compared=len(rated), percent_agreement=percent, cohen_kappa=cohen, fleiss_kappa=fleiss)


class AnnotationService(CatalogService):
    def __init__(self, datasets: DatasetService) -> None:
        super().__init__(datasets.catalog)
        self.datasets = datasets

    # ----- tasks -----

    @performs
    async def create(self, principal: Principal | None, project: str, request: TaskCreate, *, action: str) -> AnnotationTask:
        principal = self._signed_in(principal)
        source = await self.datasets.version(principal, project, request.dataset, request.version)
        items = await asyncio.to_thread(self._items, source, request)
        unknown = sorted(set(request.annotators) - await self._members(project))
        if unknown:
            raise InvalidInput("annotators must be members of project {project!r}: {unknown}",
                               code="unknown_annotator", project=project, unknown=', '.join(unknown))
        if request.overlap > len(set(request.annotators)):
            raise InvalidInput("overlap {overlap} needs at least that many different annotators",
                               overlap=request.overlap)

        def work(session: Session) -> AnnotationTask:
            record, _ = authorize(session, principal, action, project)
            refuse_if_archived(record)
            if session.scalar(select(AnnotationTaskRecord).where(AnnotationTaskRecord.project_id == record.id,
                                                                 AnnotationTaskRecord.name == request.name)):
                raise Conflict("annotation task {name!r} already exists in {project!r}",
                               name=request.name, project=project)
            version_id = session.scalar(select(DatasetVersionRecord.id).where(
                DatasetVersionRecord.tag == source.tag))
            task = AnnotationTaskRecord(project_id=record.id, dataset_version_id=version_id, name=request.name,
                                        instructions=request.instructions, labels=list(request.labels),
                                        item_column=request.item_column, overlap=request.overlap,
                                        created_by=principal.name)
            task.project = record
            session.add(task)
            session.flush()
            annotators = cycle(sorted(set(request.annotators)))
            for position, (key, content) in enumerate(items):
                item = AnnotationItemRecord(task_id=task.id, position=position, key=key, content=content)
                session.add(item)
                session.flush()
                chosen: list[str] = []
                while len(chosen) < request.overlap:
                    name = next(annotators)
                    if name not in chosen:
                        chosen.append(name)
                session.add_all(AnnotationAssignmentRecord(task_id=task.id, item_id=item.id, annotator=name)
                                for name in chosen)
            session.flush()
            audit_record(session, principal.name, action, f"annotation:{project}/{task.id}",
                         {"name": task.name, "dataset": source.tag, "items": len(items)})
            return self._task_model(session, task)

        return await self._in_transaction(work)

    def _items(self, source: DatasetVersion, request: TaskCreate) -> list[tuple[str, dict[str, Any]]]:
        if source.format == "images":
            paths = sorted(self.datasets.registry.dir_manifest(source.content_md5))[:request.max_items]
            random.Random(f"{source.tag}/{request.name}").shuffle(paths)
            return [(path, {"path": path, "class": path.split("/", 1)[0]}) for path in paths]
        path = self.datasets.local_path(source)
        try:
            columns, rows, _ = masked_preview(path, source.format, request.max_items, {}, "")
        except DatasetFormatError as error:
            raise InvalidInput(str(error)) from None
        if request.item_column is not None and request.item_column not in columns:
            raise InvalidInput("column {item_column!r} is not in {dataset} v{version}",
                               item_column=request.item_column, dataset=source.dataset, version=source.version)
        key_index = columns.index(request.item_column) if request.item_column else None
        return [(str(row[key_index]) if key_index is not None else str(number),
                 dict(zip(columns, row, strict=True))) for number, row in enumerate(rows)]

    async def _members(self, project: str) -> set[str]:
        def work(session: Session) -> set[str]:
            return set(user_members(session, project))

        return await self._in_transaction(work)

    def _load(self, session: Session, principal: Principal, action: str, project: str,
              task_id: int) -> tuple[AnnotationTaskRecord, Role]:
        record, role = authorize(session, principal, action, project)
        task = session.get(AnnotationTaskRecord, task_id)
        if task is None or task.project_id != record.id:
            raise NotFound("annotation task {task_id} does not exist in project {project!r}",
                           task_id=task_id, project=project)
        return task, role

    def _task_model(self, session: Session, task: AnnotationTaskRecord) -> AnnotationTask:
        assignments = session.scalars(select(AnnotationAssignmentRecord)
                                      .where(AnnotationAssignmentRecord.task_id == task.id)).all()
        items = session.scalar(select(func.count()).where(AnnotationItemRecord.task_id == task.id)) or 0
        per_annotator: dict[str, dict[str, int]] = defaultdict(lambda: {"assigned": 0, "labelled": 0, "accepted": 0})
        labels_by_item: dict[int, list[str]] = defaultdict(list)
        for a in assignments:
            per_annotator[a.annotator]["assigned"] += 1
            if a.label is not None:
                per_annotator[a.annotator]["labelled"] += 1
                labels_by_item[a.item_id].append(a.label)
            if a.review == "accepted":
                per_annotator[a.annotator]["accepted"] += 1
        exported = session.get(DatasetVersionRecord, task.exported_version_id) if task.exported_version_id else None
        return AnnotationTask(
            id=task.id, project=task.project.name, name=task.name, dataset=task.dataset_version.dataset.name,
            version=task.dataset_version.version, labels=list(task.labels), instructions=task.instructions,
            overlap=task.overlap, state=task.state, created_by=task.created_by, items=items,
            assignments=len(assignments), labelled=sum(a.label is not None for a in assignments),
            accepted=sum(a.review == "accepted" for a in assignments),
            rejected=sum(a.review == "rejected" for a in assignments), per_annotator=dict(per_annotator),
            agreement=percent_and_kappas(labels_by_item, list(task.labels)),
            exported_version=exported.version if exported else None)

    @performs
    async def get(self, principal: Principal | None, project: str, task_id: int, *, action: str) -> AnnotationTask:
        principal = self._signed_in(principal)
        return await self._in_transaction(
            lambda s: self._task_model(s, self._load(s, principal, action, project, task_id)[0]))

    @performs
    async def list(self, principal: Principal | None, project: str, *, action: str) -> list[AnnotationTask]:
        principal = self._signed_in(principal)

        def work(session: Session) -> list[AnnotationTask]:
            record, _ = authorize(session, principal, action, project)
            tasks = session.scalars(select(AnnotationTaskRecord).where(AnnotationTaskRecord.project_id == record.id)
                                    .order_by(AnnotationTaskRecord.id)).all()
            return [self._task_model(session, task) for task in tasks]

        return await self._in_transaction(work)

    # ----- labelling and review -----

    @performs
    async def queue(self, principal: Principal | None, project: str, task_id: int,
                    query: QueueQuery, *, action: str) -> AssignmentList:
        """The caller's open items (``query.all``: accepted ones too; a reviewer: ``query.annotator``'s;
        ``query.item``: that item only, with its image)."""
        return AssignmentList(assignments=await self.assignments(principal, project, task_id, action=action,
                                                                 annotator=query.annotator, only_open=not query.all,
                                                                 item=query.item))

    async def assignments(self, principal: Principal | None, project: str, task_id: int, *,
                          annotator: str | None = None, only_open: bool = True, item: int | None = None,
                          action: str | None = None) -> list[Assignment]:
        """The caller's queue (or, for a reviewer, anyone's); ``action``: ``annotations.queue``'s by default.
        With ``item``, that item's assignment (whatever its review), an image item's picture in its content."""
        principal = self._signed_in(principal)
        action = action or action_of("annotations.queue")

        def work(session: Session) -> tuple[list[Assignment], tuple[str, str] | None]:
            task, role = self._load(session, principal, action, project, task_id)
            who = annotator or principal.name
            if who != principal.name and not role.at_least(Role.developer):
                raise PermissionDenied("only reviewers (developers and up) see other annotators' queues")
            query = select(AnnotationAssignmentRecord).where(AnnotationAssignmentRecord.task_id == task.id,
                                                             AnnotationAssignmentRecord.annotator == who)
            if item is not None:
                query = query.where(AnnotationAssignmentRecord.item_id == item)
            elif only_open:
                query = query.where(AnnotationAssignmentRecord.review != "accepted")
            rows = session.scalars(query.order_by(AnnotationAssignmentRecord.item_id)).all()
            picture = None
            if item is not None and rows and task.dataset_version.format == "images":
                picture = (task.dataset_version.content_md5, rows[0].item.key)
            return [self._assignment_model(a, task, role, blind=who == principal.name) for a in rows], picture

        found, picture = await self._in_transaction(work)
        if picture is not None:
            image = await asyncio.to_thread(self._item_image, *picture)
            found = [a.model_copy(update={"content": {**a.content, "image": image}}) for a in found]
        return found

    def _item_image(self, content_md5: str, path: str) -> str | None:
        """An image item's picture as a data URL, or None when the file is not an image Pillow reads."""
        md5 = self.datasets.registry.dir_manifest(content_md5).get(path)
        made = shrink(self.datasets.registry.object_path(md5), ITEM_IMAGE_SIZE) if md5 else None
        return made[0] if made else None

    @staticmethod
    def _assignment_model(a: AnnotationAssignmentRecord, task: AnnotationTaskRecord, role: Role, *,
                          blind: bool) -> Assignment:
        """An assigned item as ``role`` may see it: below maintainer, the source's sensitive columns masked
        in its row and in its key (when the key is a sensitive column's value), as previews mask them.
        ``blind`` (one's own item, to label): no hint of the answer, i.e. an image item's path and folder
        (its class) and the dataset's label column are left out; the item is named by its position."""
        content, key = dict(a.item.content or {}), a.item.key
        dataset = task.dataset_version.dataset
        if not role.at_least(Role.maintainer):
            masks = dict(dataset.sensitive_columns or {})
            column = task.item_column
            if column is not None and column in masks:
                value = content.get(column, key)
                key = key if value is None else str(mask_value(value, masks[column], dataset.mask_salt))
            content = mask_row(content, masks, dataset.mask_salt)
        if blind and task.dataset_version.format == "images":
            key, content = f"#{a.item.position + 1}", {}
        elif blind:
            label_column = (dataset.quality_rules or {}).get("label_column")
            content.pop(label_column, None)
            if label_column is not None and label_column == task.item_column:
                key = f"#{a.item.position + 1}"
        return Assignment(id=a.id, item_id=a.item_id, position=a.item.position, key=key, content=content,
                          annotator=a.annotator, label=a.label, review=a.review)

    @performs
    async def label(self, principal: Principal | None, project: str, task_id: int, item_id: int,
                    request: LabelSubmit, *, action: str) -> Assignment:
        principal = self._signed_in(principal)

        def work(session: Session) -> Assignment:
            task, role = self._load(session, principal, action, project, task_id)
            if task.state != "open":
                raise Conflict("the task has been exported; it takes no more labels")
            if request.label not in task.labels:
                raise InvalidInput("{label!r} is not one of the task's labels: {labels}",
                                   label=request.label, labels=', '.join(task.labels))
            assignment = session.scalar(select(AnnotationAssignmentRecord).where(
                AnnotationAssignmentRecord.task_id == task.id, AnnotationAssignmentRecord.item_id == item_id,
                AnnotationAssignmentRecord.annotator == principal.name))
            if assignment is None:
                raise NotFound("item {item_id} is not assigned to you in task {name!r}",
                               item_id=item_id, name=task.name)
            if assignment.review == "accepted":
                raise Conflict("this label was accepted in review; it can no longer change")
            assignment.label = request.label
            assignment.labelled_at = utcnow()
            assignment.review = "pending"
            session.flush()
            audit_record(session, principal.name, action, f"annotation:{project}/{task.id}",
                         {"assignment": assignment.id, "item": item_id})  # not the label: reviewers read that
            return self._assignment_model(assignment, task, role, blind=True)

        return await self._in_transaction(work)

    @performs
    async def review(self, principal: Principal | None, project: str, task_id: int, assignment_id: int,
                     request: ReviewSubmit, *, action: str) -> Assignment:
        principal = self._signed_in(principal)

        def work(session: Session) -> Assignment:
            task, role = self._load(session, principal, action, project, task_id)
            assignment = session.get(AnnotationAssignmentRecord, assignment_id)
            if assignment is None or assignment.task_id != task.id:
                raise NotFound("assignment {assignment_id} is not part of task {name!r}",
                               assignment_id=assignment_id, name=task.name)
            if assignment.label is None:
                raise Conflict("nothing to review: the item has not been labelled yet")
            if assignment.annotator == principal.name:
                raise PermissionDenied("annotators do not review their own labels")
            assignment.review = request.decision
            assignment.reviewed_by = principal.name
            assignment.reviewed_at = utcnow()
            session.flush()
            audit_record(session, principal.name, action, f"annotation:{project}/{task.id}",
                         {"assignment": assignment.id, "decision": request.decision})
            return self._assignment_model(assignment, task, role, blind=False)

        return await self._in_transaction(work)

    # ----- export -----

    @performs
    async def export(self, principal: Principal | None, project: str, task_id: int,
                     request: ExportRequest, *, action: str) -> DatasetVersion:
        """Accepted labels (majority per item; ties left out) as a new CSV version, derived from the source."""
        principal = self._signed_in(principal)

        def collect(session: Session) -> tuple[str, int, list[tuple[str, str, int]], int, dict[str, str], str]:
            task, _ = self._load(session, principal, action, project, task_id)
            if task.state == "exported":
                raise Conflict("task {name!r} was already exported", name=task.name)
            rows = session.execute(
                select(AnnotationItemRecord.key, AnnotationAssignmentRecord.label, AnnotationItemRecord.position)
                .join(AnnotationAssignmentRecord, AnnotationAssignmentRecord.item_id == AnnotationItemRecord.id)
                .where(AnnotationItemRecord.task_id == task.id, AnnotationAssignmentRecord.review == "accepted")
                .order_by(AnnotationItemRecord.position)).all()
            source = task.dataset_version.dataset
            source_masks = dict(source.sensitive_columns or {})
            # The export's "item" column holds the item column's values: it is masked as that column is.
            masks = ({"item": source_masks[task.item_column]}
                     if task.item_column is not None and task.item_column in source_masks else {})
            return (request.dataset or f"{source.name}-labels", task.dataset_version_id,
                    [(r[0], r[1], r[2]) for r in rows], task.id, masks, source.mask_salt)

        target, source_id, accepted, _, masks, salt = await self._in_transaction(collect)
        by_item: dict[tuple[int, str], Counter[str]] = defaultdict(Counter)
        for key, label, position in accepted:
            by_item[(position, key)][label] += 1
        lines = io.StringIO()
        writer = csv.writer(lines)
        writer.writerow(["item", "label", "votes"])
        written = 0
        for (_, key), votes in sorted(by_item.items()):
            (top, count), *rest = votes.most_common()
            if rest and rest[0][1] == count:
                continue
            writer.writerow([key, top, count])
            written += 1
        if not written:
            raise Conflict("no item has an accepted label yet: review labels before exporting")
        upload = self.datasets.start_upload(f"{target}.csv")
        try:
            upload.write(lines.getvalue().encode())
            upload.finish()
        except BaseException:
            upload.discard()
            raise
        version = await self.datasets.register(principal, project, target, upload, fmt="csv",
                                               message=request.message or f"accepted labels of task {task_id}",
                                               derived_from=source_id, inherited_masks=(masks, salt))

        def mark(session: Session) -> None:
            task = session.get(AnnotationTaskRecord, task_id)
            assert task is not None
            task.state = "exported"
            task.exported_version_id = session.scalar(select(DatasetVersionRecord.id).where(
                DatasetVersionRecord.tag == version.tag))
            audit_record(session, principal.name, action, f"annotation:{project}/{task_id}",
                         {"exported": version.tag})

        await self._in_transaction(mark)
        return version
