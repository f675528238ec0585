"""Pages that act: a notebook run from the Jobs page's form (made from its parameters cell), a model's alias
set and removed on the Models page; each within the viewer's role, the controls saying why not."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.browser.conftest import MODEL, PROJECT, open_dashboard, screenshot
from tests.support.platform import RunningPlatform

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

FORM_NOTEBOOK = {
    "nbformat": 4, "nbformat_minor": 5, "metadata": {"kernelspec": {"name": "aitip-python", "display_name": "AITIP",
                                                                    "language": "python"}},
    "cells": [
        {"cell_type": "code", "id": "p", "metadata": {"tags": ["parameters"]}, "execution_count": None,
         "outputs": [], "source": "epochs = 3  # passes over the data\nrate = 0.1\nlabel = 'base'\nfast = False\n"
                                  "layers = [8, 4]\n"},
        {"cell_type": "code", "id": "b", "metadata": {}, "execution_count": None, "outputs": [],
         "source": "print(epochs, rate, label, fast, layers)"},
    ],
}


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


@pytest.fixture
def chinese_ann(chinese_sign_in: Any) -> Page:
    return chinese_sign_in("ann")


FORM_PROJECT = "forms-ui"  # its own project: the job it runs must not change what other tests count in PROJECT


@pytest.fixture(scope="module")
def form_project(platform: RunningPlatform, people: dict[str, str]) -> str:
    with platform.api(people["ann"]) as ann:
        assert ann.post("projects", json={"name": FORM_PROJECT}).status_code == 201
        added = ann.post(f"projects/{FORM_PROJECT}/members", json={"user": "bob", "role": "viewer"})
        assert added.status_code == 201, added.text
    return FORM_PROJECT


def open_form(page: Page, platform: RunningPlatform) -> Page:
    page = open_dashboard(page, platform, f"jobs?project={FORM_PROJECT}")
    page.locator(".submit-form .card-header").first.click()
    return page


def choose_notebook(page: Page) -> None:
    page.locator(".notebook-file input[type=file]").set_input_files(files=[{
        "name": "form_demo.ipynb", "mimeType": "application/x-ipynb+json",
        "buffer": json.dumps(FORM_NOTEBOOK).encode()}])


def test_a_developer_runs_a_notebook_from_the_form_its_parameters_make(
        platform: RunningPlatform, people: dict[str, str], form_project: str, ann_page: Page,
        screenshots: Path) -> None:
    page = open_form(ann_page, platform)
    submit = page.locator(".submit-job button")
    expect(submit).to_be_disabled()  # no notebook yet
    choose_notebook(page)
    epochs = page.locator(".parameter-epochs input")
    expect(epochs).to_have_value("3")
    expect(page.locator(".parameter-layers input")).to_have_value("[8, 4]")
    expect(page.locator(".parameter-epochs")).to_contain_text("passes over the data")
    epochs.fill("5")
    epochs.press("Enter")
    page.locator(".parameter-layers input").fill("[16]")
    page.locator(".parameter-layers input").press("Enter")
    expect(submit).to_be_enabled()
    screenshot(page, screenshots, "jobs-run-form")
    submit.click()
    expect(page.locator(".aitip-info")).to_contain_text("form_demo.ipynb submitted as job")
    with platform.api(people["ann"]) as api:
        newest = api.get("jobs", params={"project": form_project, "limit": 1}).json()["items"][0]
    assert newest["notebook_name"] == "form_demo.ipynb" and newest["owner"] == "ann"
    assert newest["parameters"] == {"epochs": 5, "layers": [16]}  # only what differs from the notebook's defaults
    expect(page.locator("#job-state .job-state")).to_be_visible()  # the new job's page opened
    done = platform.wait_for_job(people["ann"], newest["id"], {"succeeded", "failed", "cancelled", "timed_out"})
    assert done["state"] == "succeeded", done.get("reason")


def test_a_developer_runs_a_notebook_the_platform_ships_from_the_form(
        platform: RunningPlatform, people: dict[str, str], form_project: str, ann_page: Page,
        screenshots: Path) -> None:
    """Nothing uploaded: the shipped training notebook chosen by its title, its form from what the platform says
    of its parameters, and the job runs the shipped document under the file's name."""
    page = open_form(ann_page, platform)
    page.locator(".shipped-notebook select").select_option(label="Digits classifier (scikit-learn) "
                                                                  "(train/digits_sklearn)")
    expect(page.locator(".shipped-about")).to_contain_text("Trains a small multi-layer perceptron")
    epochs = page.locator(".parameter-epochs input")
    expect(epochs).to_have_value("10")
    expect(page.locator(".parameter-epochs")).to_contain_text("passes over the training set")
    for name, value in (("epochs", "2"), ("classifier", "logistic"), ("model_name", "")):
        page.locator(f".parameter-{name} input").fill(value)
        page.locator(f".parameter-{name} input").press("Enter")
    submit = page.locator(".submit-job button")
    expect(submit).to_be_enabled()
    screenshot(page, screenshots, "jobs-run-shipped")
    submit.click()
    expect(page.locator(".aitip-info")).to_contain_text("digits_sklearn.ipynb submitted as job")
    with platform.api(people["ann"]) as api:
        newest = api.get("jobs", params={"project": form_project, "limit": 1}).json()["items"][0]
    assert newest["notebook_name"] == "digits_sklearn.ipynb"
    assert newest["parameters"] == {"epochs": 2, "classifier": "logistic", "model_name": ""}
    done = platform.wait_for_job(people["ann"], newest["id"], {"succeeded", "failed", "cancelled", "timed_out"})
    assert done["state"] == "succeeded", done.get("reason")


def test_a_viewer_sees_why_the_form_will_not_run(platform: RunningPlatform, people: dict[str, str],
                                                 form_project: str, bob_page: Page) -> None:
    page = open_form(bob_page, platform)
    choose_notebook(page)
    expect(page.locator(".submit-job button")).to_be_disabled()
    expect(page.locator(".submit-refused")).to_contain_text(
        f"Running a notebook in {form_project} needs the developer role; you are viewer.")


def test_the_form_in_chinese_refuses_a_parameter_that_is_not_json(platform: RunningPlatform,
                                                                  people: dict[str, str], form_project: str,
                                                                  chinese_ann: Page) -> None:
    page = open_form(chinese_ann, platform)
    expect(page.locator(".submit-form .card-header")).to_contain_text("运行笔记本")
    choose_notebook(page)
    page.locator(".parameter-layers input").fill("[16,")
    page.locator(".parameter-layers input").press("Enter")
    page.locator(".submit-job button").click()
    expect(page.locator(".submit-refused")).to_contain_text("layers 不是有效的 JSON")


def test_a_maintainer_sets_and_removes_an_alias_on_the_models_page(
        platform: RunningPlatform, people: dict[str, str], trained: list[dict[str, Any]], ann_page: Page,
        screenshots: Path) -> None:
    page = open_dashboard(ann_page, platform, f"models?project={PROJECT}&model={MODEL}")
    page.locator(".alias-name input").fill("champion")
    page.locator(".alias-name input").press("Enter")
    page.locator(".set-alias button").click()
    expect(page.locator(".aitip-info")).to_contain_text(f"set alias champion of {MODEL}")
    with platform.api(people["ann"]) as api:
        (model,) = [m for m in api.get(f"projects/{PROJECT}/models").json()["models"] if m["name"] == MODEL]
    latest = max(version["version"] for version in model["versions"])
    assert model["aliases"] == {"champion": latest}
    expect(page.locator("#models-summary")).to_contain_text(f"@champion → v{latest}")
    screenshot(page, screenshots, "models-alias")
    page.locator(".remove-alias button").click()
    expect(page.locator(".aitip-info")).to_contain_text(f"remove alias champion of {MODEL}")
    with platform.api(people["ann"]) as api:
        (model,) = [m for m in api.get(f"projects/{PROJECT}/models").json()["models"] if m["name"] == MODEL]
    assert model["aliases"] == {}


def test_a_viewer_sees_why_aliases_are_not_theirs_to_set(platform: RunningPlatform, people: dict[str, str],
                                                         trained: list[dict[str, Any]], bob_page: Page) -> None:
    page = open_dashboard(bob_page, platform, f"models?project={PROJECT}&model={MODEL}")
    expect(page.locator(".set-alias button")).to_be_disabled()
    expect(page.locator(".alias-refused")).to_contain_text(
        f"Setting an alias needs the maintainer role in {PROJECT}; you are viewer.")


def test_aliases_in_chinese(platform: RunningPlatform, people: dict[str, str], trained: list[dict[str, Any]],
                            chinese_ann: Page, screenshots: Path) -> None:
    page = open_dashboard(chinese_ann, platform, f"models?project={PROJECT}&model={MODEL}")
    expect(page.locator(".set-alias button")).to_have_text("设置别名")
    page.locator(".alias-name input").fill("latest")
    page.locator(".alias-name input").press("Enter")
    page.locator(".set-alias button").click()
    expect(page.locator(".alias-refused")).to_contain_text("“latest”是保留名")
    page.locator(".alias-name input").fill("staging")
    page.locator(".alias-name input").press("Enter")
    page.locator(".set-alias button").click()
    expect(page.locator(".aitip-info")).to_contain_text(f"已完成：设置 {MODEL} 的别名 staging。")
    screenshot(page, screenshots, "models-alias-zh")
    page.locator(".remove-alias button").click()
    expect(page.locator(".aitip-info")).to_contain_text(f"移除 {MODEL} 的别名 staging")
    with platform.api(people["ann"]) as api:
        (model,) = [m for m in api.get(f"projects/{PROJECT}/models").json()["models"] if m["name"] == MODEL]
    assert "staging" not in model["aliases"]
