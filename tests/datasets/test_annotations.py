"""An annotation task run to completion by two users on a real registry and catalog: assignment with
overlap, labelling, review, agreement figures checked against a hand computation, and the export as a new
dataset version whose lineage points at its source."""

from __future__ import annotations

from pathlib import Path

import pytest

from aitip.datasets.annotations import (
    AnnotationService,
    ExportRequest,
    LabelSubmit,
    ReviewSubmit,
    TaskCreate,
    percent_and_kappas,
)
from aitip.datasets.models import LineageQuery
from aitip.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from tests.datasets.test_registry_service import ANN, BOB, EVE, VIC, Registry, registry  # noqa: F401

ITEMS = b"review_id,text\n" + b"".join(f"r{i},review number {i}\n".encode() for i in range(6))
# What ann and bob will say about r0..r5: they agree on 4 of 6.
ANN_SAYS = ["pos", "neg", "pos", "pos", "neg", "neg"]
BOB_SAYS = ["pos", "neg", "neg", "pos", "neg", "pos"]


def test_two_annotators_label_review_and_export(registry: Registry, tmp_path: Path) -> None:  # noqa: F811
    run = registry.run
    service = AnnotationService(registry.service)
    registry.register(ANN, "reviews", "reviews.csv", ITEMS)

    with pytest.raises(InvalidInput, match="members"):
        run(service.create(ANN, "lab", TaskCreate(name="s", dataset="reviews", labels=["pos", "neg"],
                                                  annotators=["ann", "eve"], overlap=2)))
    with pytest.raises(PermissionDenied):  # viewers label, but do not create tasks
        run(service.create(VIC, "lab", TaskCreate(name="s", dataset="reviews", labels=["pos", "neg"],
                                                  annotators=["ann"], overlap=1)))
    task = run(service.create(BOB, "lab", TaskCreate(name="sentiment", dataset="reviews", labels=["pos", "neg"],
                                                     annotators=["ann", "vic"], overlap=2, item_column="review_id",
                                                     instructions="Is the review positive?")))
    assert (task.items, task.assignments, task.per_annotator["ann"]["assigned"]) == (6, 12, 6)

    # vic (a viewer) labels like bob would; ann labels her own way.
    for who, says in ((ANN, ANN_SAYS), (VIC, BOB_SAYS)):
        queue = run(service.assignments(who, "lab", task.id))
        assert [a.key for a in queue] == [f"r{i}" for i in range(6)]
        assert queue[0].content == {"review_id": "r0", "text": "review number 0"}
        for assignment, label in zip(queue, says, strict=True):
            run(service.label(who, "lab", task.id, assignment.item_id, LabelSubmit(label=label)))
    with pytest.raises(InvalidInput, match="not one of"):
        run(service.label(ANN, "lab", task.id, queue[0].item_id, LabelSubmit(label="meh")))
    with pytest.raises(NotFound):  # eve is not in the project
        run(service.label(EVE, "lab", task.id, queue[0].item_id, LabelSubmit(label="pos")))

    progress = run(service.get(VIC, "lab", task.id))
    assert progress.labelled == 12 and progress.agreement.items_compared == 6
    assert progress.agreement.percent_agreement == pytest.approx(4 / 6)
    # Cohen's kappa by hand: p_o = 4/6; ann says pos 3/6, vic pos 3/6 -> p_e = 0.5; kappa = (2/3 - 1/2) / (1/2)
    assert progress.agreement.cohen_kappa == pytest.approx(1 / 3)

    # bob reviews: accept both labels where they agree, and ann's where they do not.
    for who in ("ann", "vic"):
        for assignment in run(service.assignments(BOB, "lab", task.id, annotator=who)):
            agree = ANN_SAYS[assignment.position] == BOB_SAYS[assignment.position]
            decision = "accepted" if agree or who == "ann" else "rejected"
            run(service.review(BOB, "lab", task.id, assignment.id, ReviewSubmit(decision=decision)))
    with pytest.raises(PermissionDenied):
        own = run(service.assignments(ANN, "lab", task.id, only_open=False))[0]
        run(service.review(ANN, "lab", task.id, own.id, ReviewSubmit(decision="accepted")))
    done = run(service.get(ANN, "lab", task.id))
    assert (done.accepted, done.rejected) == (10, 2)

    exported = run(service.export(BOB, "lab", task.id, ExportRequest(message="sentiment labels")))
    assert (exported.dataset, exported.version, exported.rows, exported.derived_from) == \
        ("reviews-labels", 1, 6, "reviews@1")
    preview = run(registry.service.preview(ANN, "lab", "reviews-labels", 1, 10))
    assert [row[:2] for row in preview.rows] == [[f"r{i}", ANN_SAYS[i]] for i in range(6)]
    with pytest.raises(Conflict):
        run(service.export(BOB, "lab", task.id, ExportRequest()))
    assert run(service.get(ANN, "lab", task.id)).exported_version == 1

    graph = run(registry.service.lineage(ANN, LineageQuery(node="dataset:lab/reviews-labels@1")))
    assert {(e.source, e.relation, e.target) for e in graph.edges} == {
        ("dataset:lab/reviews@1", "annotated_as", "dataset:lab/reviews-labels@1")}

    from sqlalchemy import func, select

    from aitip.audit import AuditEventRecord

    with registry.service.catalog.session() as session:  # every write of the session, by whom
        trail = dict(session.execute(select(AuditEventRecord.action, func.count()).where(
            AuditEventRecord.target == f"annotation:lab/{task.id}").group_by(AuditEventRecord.action)).all())
        labels = session.scalars(select(AuditEventRecord.detail).where(
            AuditEventRecord.action == "annotation.label")).all()
    assert trail == {"annotation.manage": 1 + 12 + 1, "annotation.label": 12}  # created, 12 reviews, exported
    assert not any("label" in detail for detail in labels)  # the trail does not tell one annotator another's


@pytest.mark.parametrize(("labels", "percent", "cohen", "fleiss"), [
    ({1: ["a", "a"], 2: ["b", "b"]}, 1.0, 1.0, 1.0),
    ({1: ["a", "b"], 2: ["b", "a"]}, 0.0, -1.0, -1.0),
    ({1: ["a", "a", "a"], 2: ["a", "b", "b"]}, 4 / 6, None, 0.25),
    ({1: ["a"]}, None, None, None),
])
def test_agreement_table(labels: dict[int, list[str]], percent: float | None, cohen: float | None,
                         fleiss: float | None) -> None:
    agreement = percent_and_kappas(labels, ["a", "b"])
    for got, want in ((agreement.percent_agreement, percent), (agreement.cohen_kappa, cohen),
                      (agreement.fleiss_kappa, fleiss)):
        assert got == (pytest.approx(want) if want is not None else None)


PEOPLE = (b"email,ssn,text\n" + b"".join(f"user{i}@example.org,{900000000 + i},note {i}\n".encode() for i in range(4)))


@pytest.mark.parametrize("method", ["hash", "redact"])
def test_items_keys_and_exports_inherit_the_sources_masking(registry: Registry, method: str) -> None:  # noqa: F811
    """A developer keys a task by a sensitive column: below maintainer every answer shows the keys and rows
    masked as the preview masks them, and the export masks its item column for them too."""
    import json

    from aitip.datasets.models import DatasetSettings

    run = registry.run
    service = AnnotationService(registry.service)
    registry.register(ANN, "people", "people.csv", PEOPLE,
                      settings=DatasetSettings(sensitive_columns={"email": method, "ssn": "redact"}))
    raw_emails = [f"user{i}@example.org" for i in range(4)]
    shown = [row[0] for row in run(registry.service.preview(VIC, "lab", "people", 1, 10)).rows]
    assert shown != raw_emails

    def leaks(answer: object) -> bool:
        text = json.dumps(answer if isinstance(answer, dict | list) else answer.model_dump(mode="json"))
        return any(email in text for email in raw_emails) or "90000000" in text

    task = run(service.create(BOB, "lab", TaskCreate(name="who", dataset="people", labels=["a", "b"],
                                                     annotators=["ann", "vic"], overlap=2, item_column="email")))
    assert not leaks(task) and not leaks([t.model_dump(mode="json") for t in run(service.list(VIC, "lab"))])
    queue = run(service.assignments(VIC, "lab", task.id))
    assert [a.key for a in queue] == shown  # the preview's masked values, item for item
    assert [a.content for a in queue] == [{"email": s, "ssn": "[redacted]", "text": f"note {i}"}
                                          for i, s in enumerate(shown)]
    labelled = [run(service.label(VIC, "lab", task.id, a.item_id, LabelSubmit(label="a"))) for a in queue]
    assert not any(leaks(a) for a in labelled)
    for who in ("ann", "vic"):  # bob (developer) reviews: what he sees is masked as well
        reviewing = run(service.assignments(BOB, "lab", task.id, annotator=who))
        assert not any(leaks(a) for a in reviewing)
        if who == "vic":
            answers = [run(service.review(BOB, "lab", task.id, a.id, ReviewSubmit(decision="accepted")))
                       for a in reviewing]
            assert not any(leaks(a) for a in answers)
    mine = run(service.assignments(ANN, "lab", task.id))  # the project's admin sees the values
    assert [a.key for a in mine] == raw_emails and mine[0].content["ssn"] == 900000000
    assert not leaks(run(service.get(VIC, "lab", task.id)))

    exported = run(service.export(BOB, "lab", task.id, ExportRequest()))
    assert not leaks(exported)
    labels = run(registry.service.get(ANN, "lab", "people-labels"))
    assert labels.sensitive_columns == {"item": method}
    viewer = run(registry.service.preview(VIC, "lab", "people-labels", None, 10))
    assert viewer.masked_columns == ["item"] and [row[0] for row in viewer.rows] == shown
    assert [row[0] for row in run(registry.service.preview(ANN, "lab", "people-labels", None, 10)).rows] == raw_emails
    download = run(registry.service.export(VIC, "lab", "people-labels", 1))
    try:
        assert download.masked_columns == ["item"] and not leaks({"body": download.path.read_text()})
    finally:
        download.path.unlink()
