"""Labelling tasks as the CLI writes them for a person, from the API's own answers."""

from __future__ import annotations

from aitip.datasets.annotation_text import assignment_text, queue_text, task_text, tasks_text
from aitip.datasets.annotations import AnnotationTask, Assignment, AssignmentList, TaskList


def task(**changes: object) -> dict:
    answer = {"id": 2, "project": "vision", "name": "relabel", "dataset": "digits", "version": 3,
              "labels": ["cat", "dog"], "instructions": "", "overlap": 2, "state": "open", "created_by": "dave",
              "items": 10, "assignments": 20, "labelled": 5, "accepted": 2, "rejected": 1,
              "per_annotator": {"ann": {"assigned": 10, "labelled": 4, "accepted": 2},
                                "bob": {"assigned": 10, "labelled": 1, "accepted": 0}},
              "agreement": {"items_compared": 1, "percent_agreement": 1.0, "cohen_kappa": None, "fleiss_kappa": 1.0},
              "exported_version": None}
    answer.update(changes)
    return AnnotationTask.model_validate(answer).model_dump(mode="json")


def test_a_task_reads_as_its_progress_per_annotator_and_the_agreement() -> None:
    lines = task_text(task()).splitlines()
    assert lines[:6] == ["labelling task 2: relabel on digits v3 — open", "labels:     cat, dog",
                         "items:      10, each labelled by 2", "labelled:   5/20 (25 %)",
                         "reviewed:   2 accepted, 1 rejected", "created by: dave"]
    assert lines[7].split() == ["ANNOTATOR", "ASSIGNED", "LABELLED", "ACCEPTED"]
    assert lines[8].split() == ["ann", "10", "4/10", "(40", "%)", "2"]
    assert lines[-1] == ("agreement on 1 items labelled twice or more: 100.0 % of pairs agree; Cohen's κ -, "
                         "Fleiss' κ 1.00")
    listed = tasks_text(TaskList.model_validate({"tasks": [task(exported_version=4)]}).model_dump(mode="json"))
    assert listed.splitlines()[1].split() == ["2", "relabel", "digits", "v3", "open", "10", "5/20", "(25", "%)",
                                              "2/20", "(10", "%)", "ann,", "bob", "v4"]


def test_a_blind_queue_points_to_the_page_that_shows_the_images() -> None:
    assignment = {"id": 9, "item_id": 4, "position": 3, "key": "#4", "content": {}, "annotator": "ann",
                  "label": None, "review": "pending"}
    shown = queue_text(AssignmentList.model_validate({"assignments": [assignment]}).model_dump(mode="json"))
    assert shown.splitlines()[1].split() == ["4", "#4", "ann", "-", "pending", "-"]
    assert "images are shown on the Labelling page" in shown
    tabular = queue_text({"assignments": [{**assignment, "key": "row 4", "content": {"text": "hello"}}]})
    assert "text=hello" in tabular and "Labelling page" not in tabular
    labelled = Assignment.model_validate({**assignment, "label": "dog"}).model_dump(mode="json")
    assert assignment_text(labelled) == "item 4 (#4): labelled dog by ann — review pending"
