"""Thumbnails of an image-folder version (a few per class, shrunk, unreadable files counted) and the blind
item an annotator labels: no path, folder or label column in their own queue, while a reviewer and the export
keep them."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from aitip.datasets.annotations import AnnotationService, ExportRequest, LabelSubmit, QueueQuery, ReviewSubmit, TaskCreate
from aitip.datasets.models import DatasetSettings
from aitip.datasets.thumbnails import ThumbnailQuery, class_of, files_by_class
from aitip.errors import InvalidInput, NotFound
from tests.datasets.test_registry_service import ANN, BOB, EVE, VIC, Registry, registry, zip_bytes  # noqa: F401


def png(colour: str, size: tuple[int, int] = (300, 200)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


PETS = {**{f"cat/{i}.png": png("orange") for i in range(5)}, **{f"dog/{i}.png": png("brown") for i in range(3)},
        "dog/broken.png": b"\x89PNG-not-really"}


def test_files_group_by_their_top_folder() -> None:
    assert files_by_class(["dog/b.png", "cat/a.png", "dog/a.png", "top.png"]) == {
        "": ["top.png"], "cat": ["cat/a.png"], "dog": ["dog/a.png", "dog/b.png"]}
    assert class_of("cat/sub/a.png") == "cat"


def test_a_few_thumbnails_per_class_shrunk(registry: Registry) -> None:  # noqa: F811
    registry.register(ANN, "pets", "pets.zip", zip_bytes(PETS))
    shown = registry.run(registry.service.thumbnails(VIC, "lab", "pets", None, ThumbnailQuery(per_class=4, size=64)))
    assert [(c.name, c.files, len(c.thumbnails), c.unreadable) for c in shown.classes] == [("cat", 5, 4, 0),
                                                                                           ("dog", 4, 3, 1)]
    first = shown.classes[0].thumbnails[0]
    assert (first.path, first.width, first.height) == ("cat/0.png", 64, 43)
    assert first.data_url.startswith("data:image/png;base64,") and shown.more_classes == 0
    fewer = registry.run(registry.service.thumbnails(VIC, "lab", "pets", 1, ThumbnailQuery(max_classes=1)))
    assert [c.name for c in fewer.classes] == ["cat"] and fewer.more_classes == 1


def test_thumbnails_of_a_table_or_for_a_stranger_are_refused(registry: Registry) -> None:  # noqa: F811
    registry.register(ANN, "rows", "rows.csv", b"a,b\n1,2\n")
    with pytest.raises(InvalidInput, match="not an image folder"):
        registry.run(registry.service.thumbnails(VIC, "lab", "rows", None, ThumbnailQuery()))
    registry.register(ANN, "pets", "pets.zip", zip_bytes(PETS))
    with pytest.raises(NotFound):
        registry.run(registry.service.thumbnails(EVE, "lab", "pets", None, ThumbnailQuery()))


def hints(answer: object, words: list[str]) -> list[str]:
    text = json.dumps([a.model_dump(mode="json") for a in answer] if isinstance(answer, list)
                      else answer.model_dump(mode="json"))
    return [word for word in words if word in text]


def test_an_annotators_image_items_carry_no_class(registry: Registry) -> None:  # noqa: F811
    run = registry.run
    service = AnnotationService(registry.service)
    registry.register(ANN, "pets", "pets.zip", zip_bytes(PETS))
    task = run(service.create(BOB, "lab", TaskCreate(name="species", dataset="pets", labels=["cat", "dog"],
                                                     annotators=["vic", "bob"], overlap=2)))
    for who in (VIC, BOB):  # a viewer and a developer alike, labelling their own items
        queue = run(service.assignments(who, "lab", task.id))
        assert len(queue) == 9 and hints(queue, ["cat/", "dog/", "class", ".png"]) == []
        assert sorted(a.key for a in queue) == sorted(f"#{n}" for n in range(1, 10))
        assert {tuple(a.content) for a in queue} == {()}
    positions = [a.key for a in sorted(run(service.assignments(ANN, "lab", task.id, annotator="vic")),
                                       key=lambda a: a.position)]
    assert positions != sorted(PETS), "items come shuffled, so their order is no hint"

    singles = [run(service.queue(VIC, "lab", task.id, QueueQuery(item=a.item_id), action="annotation.read"))
               .assignments for a in run(service.assignments(VIC, "lab", task.id))]
    assert [len(one) for one in singles] == [1] * 9 and hints(sum(singles, []), ["cat/", "dog/", "class"]) == []
    images = [one[0].content["image"] for one in singles]
    assert sum(image is None for image in images) == 1  # dog/broken.png: no picture, the item still there
    assert all(image.startswith("data:image/png;base64,") for image in images if image is not None)
    first = next(one[0] for one in singles if one[0].content["image"] is not None)
    labelled = run(service.label(VIC, "lab", task.id, first.item_id, LabelSubmit(label="cat")))
    assert hints(labelled, ["cat/", "dog/", "class"]) == []

    reviewing = run(service.assignments(BOB, "lab", task.id, annotator="vic"))  # a reviewer sees the folder
    mine = next(a for a in reviewing if a.item_id == first.item_id)
    assert mine.key in PETS and mine.content == {"path": mine.key, "class": mine.key.split("/")[0]}
    run(service.review(BOB, "lab", task.id, mine.id, ReviewSubmit(decision="accepted")))
    exported = run(service.export(BOB, "lab", task.id, ExportRequest(dataset="pets-labels")))
    rows = run(registry.service.preview(ANN, "lab", "pets-labels", exported.version, 10)).rows
    assert rows == [[mine.key, "cat", 1]]


def test_a_row_item_leaves_out_the_datasets_label_column(registry: Registry) -> None:  # noqa: F811
    run = registry.run
    service = AnnotationService(registry.service)
    registry.register(ANN, "notes", "notes.csv", b"id,text,truth\n1,fine,good\n2,awful,bad\n",
                      settings=DatasetSettings(quality_rules={"label_column": "truth"}))
    task = run(service.create(BOB, "lab", TaskCreate(name="tone", dataset="notes", labels=["good", "bad"],
                                                     annotators=["vic"], item_column="id")))
    queue = run(service.assignments(VIC, "lab", task.id))
    assert [a.content for a in queue] == [{"id": 1, "text": "fine"}, {"id": 2, "text": "awful"}]
    reviewing = run(service.assignments(BOB, "lab", task.id, annotator="vic"))
    assert [a.content["truth"] for a in reviewing] == ["good", "bad"]
