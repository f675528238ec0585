"""The Datasets page's data, masking, quality gate, charts and thumbnails, and a labelling session, in a real
browser through the real hub: bob (a viewer) sees masked values and disabled settings that say why, ann (the
project's admin) sees the values and changes masking and a quality rule on the page; bob labels an image task
with the keyboard (skip and undo too) without any hint of the answer, ann accepts his labels and exports them
as a dataset version, in English and in Chinese."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.browser.conftest import PAGE_TIMEOUT_MS, PROJECT, open_dashboard, screenshot, sign_in
from tests.support.platform import RunningPlatform

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

PEOPLE = b"id,email,score,city\n" + b"".join(
    f"{i},user{i}@example.org,{'' if i == 3 else i * 1.5},city{i % 3}\n".encode() for i in range(12))


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def register(platform: RunningPlatform, token: str, name: str, filename: str, content: bytes) -> dict[str, Any]:
    response = httpx.post(f"{platform.url}/services/aitip/api/aitip/v1/projects/{PROJECT}/datasets/{name}/versions",
                          params={"filename": filename}, content=content, timeout=120,
                          headers={"Authorization": f"token {token}"})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def pets_zip() -> bytes:
    from PIL import Image

    sink = io.BytesIO()
    with zipfile.ZipFile(sink, "w") as archive:
        for name, colour in (("cat/1.png", "orange"), ("cat/2.png", "darkorange"), ("cat/3.png", "gold"),
                             ("dog/1.png", "saddlebrown"), ("dog/2.png", "sienna")):
            picture = io.BytesIO()
            Image.new("RGB", (160, 120), colour).save(picture, format="PNG")
            archive.writestr(name, picture.getvalue())
    return sink.getvalue()


@pytest.fixture(scope="module")
def data(platform: RunningPlatform, people: dict[str, str]) -> dict[str, str]:
    register(platform, people["ann"], "people", "people.csv", PEOPLE)
    register(platform, people["ann"], "pets", "pets.zip", pets_zip())
    return {"people": "people", "pets": "pets"}


@pytest.fixture
def chinese(chinese_sign_in: Any) -> dict[str, Page]:
    return {who: chinese_sign_in(who) for who in ("ann", "bob")}


def histogram_select(page: Page) -> Any:
    """The histogram's column picker: the select offering the numeric columns (not email)."""
    return page.locator("select", has=page.locator("option", has_text=re.compile("^score$"))).filter(
        has_not=page.locator("option", has_text=re.compile("^email$")))


def test_a_viewer_sees_masked_data_and_a_maintainer_changes_masking_and_the_gate(
        platform: RunningPlatform, people: dict[str, str], data: dict[str, str], ann_page: Page, bob_page: Page,
        screenshots: Path) -> None:
    page = open_dashboard(ann_page, platform, f"datasets?project={PROJECT}&dataset=people")
    expect(page.locator("#dataset-preview")).to_contain_text("user0@example.org")
    expect(page.locator("#preview-masking")).to_contain_text("No column is masked")
    expect(histogram_select(page)).to_have_value("score")  # not id
    expect(page.locator("#settings-note")).to_contain_text("You may change masking")

    page.locator(".mask-hash .choices__input--cloned").fill("email")
    page.locator(".mask-hash .choices__item--choice", has_text="email").first.click()
    page.locator(".save-masking button").click()
    expect(page.locator(".aitip-info")).to_contain_text("masking email (hash)")
    expect(page.locator("#preview-masking")).to_contain_text("email (hash)")  # the maintainer still sees values
    expect(page.locator("#dataset-preview")).to_contain_text("user0@example.org")
    page.locator(".rule-min-rows input").fill("10")
    page.locator(".rule-min-rows input").press("Enter")
    page.locator(".save-quality button").click()
    expect(page.locator(".aitip-info")).to_contain_text("min_rows=10")
    with platform.api(people["ann"]) as api:
        settings = api.get(f"projects/{PROJECT}/datasets/people").json()
    assert (settings["sensitive_columns"], settings["quality_rules"]) == ({"email": "hash"}, {"min_rows": 10})
    expect(page.locator("#balance-note")).to_contain_text("label_column")
    screenshot(page, screenshots, "datasets")

    page = open_dashboard(bob_page, platform, f"datasets?project={PROJECT}&dataset=people")
    expect(page.locator("#preview-masking")).to_contain_text("Masked for your role")
    expect(page.locator("#dataset-preview th.masked")).to_contain_text("email")
    assert "user0@example.org" not in page.locator("#dataset-preview").inner_text()
    expect(page.locator("#settings-note")).to_contain_text("your role is viewer")
    for button in (".save-masking button", ".save-quality button"):
        expect(page.locator(button)).to_be_disabled()
        expect(page.locator(button)).to_contain_text("maintainers only")
    expect(page.locator(".mask-hash .choices__input--cloned")).to_be_disabled()
    screenshot(page, screenshots, "datasets-viewer")


def test_an_image_dataset_shows_thumbnails_by_class(platform: RunningPlatform, data: dict[str, str],
                                                    bob_page: Page, chinese: dict[str, Page], screenshots: Path) -> None:
    page = open_dashboard(bob_page, platform, f"datasets?project={PROJECT}&dataset=pets")
    expect(page.locator(".thumbnail-class[data-class='cat'] img")).to_have_count(3)
    expect(page.locator(".thumbnail-class[data-class='dog'] img")).to_have_count(2)
    expect(page.locator(".thumbnail-class[data-class='cat']")).to_contain_text("3 files")
    screenshot(page, screenshots, "datasets-images")
    page = open_dashboard(chinese["ann"], platform, f"datasets?project={PROJECT}&dataset=people")
    expect(page.get_by_text("所选版本的数据", exact=True)).to_be_visible()
    expect(page.locator("#preview-masking")).to_contain_text("你能看到全部原值")
    screenshot(page, screenshots, "datasets-zh")


def open_labelling(page: Page, platform: RunningPlatform, task: int) -> Page:
    page.goto(f"{platform.dashboards_url}/annotate?project={PROJECT}&task={task}")
    page.wait_for_selector("#annotate-progress, #annotate-item-empty", timeout=PAGE_TIMEOUT_MS)
    return page


WORDS = {"en": {"done": "{done} / 3 labelled", "accept": "Accept selected", "accepted": "Accepted 3 labels",
                "exported": "Exported 3 accepted labels", "refused": "developers and up"},
         "zh_CN": {"done": "已标注 {done} / 3", "accept": "接受所选", "accepted": "已接受 3 个标注",
                   "exported": "已将 3 条已接受的标注导出", "refused": "仅限开发者及以上"}}


@pytest.mark.parametrize("language", ["en", "zh_CN"])
def test_a_labelling_session_from_keys_to_export(platform: RunningPlatform, people: dict[str, str],
                                                 data: dict[str, str], browser: Browser, screenshots: Path,
                                                 language: str) -> None:
    words = WORDS[language]
    with platform.api(people["ann"]) as api:
        created = api.post(f"projects/{PROJECT}/annotations", json={
            "name": f"species-{language.lower().replace('_', '-')}", "dataset": "pets", "labels": ["cat", "dog"],
            "annotators": ["bob"], "max_items": 3, "instructions": "Which animal is it?"})
        assert created.status_code == 201, created.text
    task = created.json()["id"]
    accept = "zh-CN,zh;q=0.9" if language == "zh_CN" else "en-US,en;q=0.9"
    bob = sign_in(browser, platform, "bob", extra_http_headers={"Accept-Language": accept})
    ann = sign_in(browser, platform, "ann", extra_http_headers={"Accept-Language": accept})
    try:
        page = open_labelling(bob, platform, task)
        progress, item = page.locator("#annotate-progress"), page.locator("#annotate-item")
        expect(page.locator("#annotate-image")).to_be_visible()
        expect(progress).to_contain_text(words["done"].format(done=0))
        html = page.content()
        assert not re.search(r"(cat|dog)/\d\.png", html), "no path or folder of the item reaches the annotator"
        expect(page.locator(".review-accept button")).to_contain_text(words["refused"])

        first = item.get_attribute("data-item")
        page.keyboard.press("1")  # cat
        expect(progress).to_have_attribute("data-done", "1")
        expect(item).not_to_have_attribute("data-item", str(first))
        second = str(item.get_attribute("data-item"))
        page.keyboard.press(" ")  # skip
        expect(item).not_to_have_attribute("data-item", second)
        page.keyboard.press("Backspace")  # undo the skip: back to the second item
        expect(item).to_have_attribute("data-item", second)
        page.keyboard.press("d")  # dog
        expect(progress).to_have_attribute("data-done", "2")
        page.keyboard.press("Backspace")  # undo: the second item again, its label shown, to change
        expect(item).to_have_attribute("data-item", second)
        expect(page.locator("#annotate-current")).to_contain_text("dog")
        page.keyboard.press("c")
        expect(progress).to_have_attribute("data-done", "2")
        screenshot(page, screenshots, "annotate" if language == "en" else "annotate-zh")
        page.keyboard.press("2")
        expect(progress).to_have_attribute("data-done", "3")
        expect(page.locator("#annotate-done")).to_be_visible()
        with platform.api(people["bob"]) as api:
            mine = api.get(f"projects/{PROJECT}/annotations/{task}/queue", params={"all": "true"}).json()
        assert sorted((a["item_id"] == int(second), a["label"]) for a in mine["assignments"]) == [
            (False, "cat"), (False, "dog"), (True, "cat")]

        page = open_labelling(ann, platform, task)
        rows = page.locator(".table-annotate-review .tabulator-row")
        expect(rows).to_have_count(3)
        for row in rows.all():
            row.locator("input[type=checkbox]").click()
        page.locator(".review-accept button").click()
        expect(page.locator(".aitip-info")).to_contain_text(words["accepted"])
        page.locator(".review-export button").click()
        expect(page.locator("#export-result")).to_contain_text(words["exported"])
        if language == "en":
            screenshot(page, screenshots, "annotate-review")
        with platform.api(people["ann"]) as api:
            done = api.get(f"projects/{PROJECT}/annotations/{task}").json()
            assert (done["accepted"], done["state"]) == (3, "exported")
            version = api.get(f"projects/{PROJECT}/datasets/pets-labels/versions/{done['exported_version']}").json()
        assert (version["rows"], version["derived_from"]) == (3, "pets@1")
    finally:
        bob.context.close()
        ann.context.close()
