"""The Evaluation page in a real browser, through the real hub: a project with the digits dataset and an
evaluation policy, two real training jobs (the second version evaluated by itself against the first, and
failing its F1 gate), read in English and in Chinese by a viewer who may not evaluate, and a developer who
evaluates version 1 from the page's form and sees it judged."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.browser.conftest import PAGE_TIMEOUT_MS, open_dashboard, screenshot
from tests.evaluation.conftest import digits_csv, training_notebook
from tests.support.platform import RunningPlatform

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

EVALUATION_PROJECT = "evaluations-ui"  # its own project: its jobs and evaluations must not change other tests' counts
MODEL = "digits-judged"
THRESHOLDS = {"accuracy_score": {"threshold": 0.8, "greater_is_better": True},
              "f1_score": {"min_absolute_change": 0.0001, "greater_is_better": True}}
JUDGED_MS = 240_000


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def wait_for_evaluation(platform: RunningPlatform, token: str, version: int, timeout: float = 300) -> dict[str, Any]:
    """The evaluation of ``version`` once judged and reported (the platform must have started it by itself)."""
    deadline = time.monotonic() + timeout
    with platform.api(token) as api:
        while time.monotonic() < deadline:
            listed = api.get(f"projects/{EVALUATION_PROJECT}/evaluations", params={"model": MODEL})
            assert listed.status_code == 200, listed.text
            found = [e for e in listed.json()["evaluations"] if e["model_version"] == version]
            if found and found[0]["state"] in ("passed", "failed", "error") and found[0]["has_report"]:
                return found[0]
            time.sleep(1)
    raise AssertionError(f"version {version} of {MODEL} was not evaluated: {listed.json()}")


@pytest.fixture(scope="module")
def evaluated(platform: RunningPlatform, people: dict[str, str]) -> list[dict[str, Any]]:
    """ann's project with the digits dataset and a policy on MODEL; two training jobs register versions 1 (three
    epochs) and 2 (one); each is evaluated by itself, version 2 against version 1. Their evaluations, oldest first."""
    with platform.api(people["ann"]) as ann:
        assert ann.post("projects", json={"name": EVALUATION_PROJECT}).status_code == 201
        added = ann.post(f"projects/{EVALUATION_PROJECT}/members", json={"user": "bob", "role": "viewer"})
        assert added.status_code == 201, added.text
        uploaded = ann.post(f"projects/{EVALUATION_PROJECT}/datasets/digits/versions", content=digits_csv(),
                            params={"filename": "digits.csv"}, timeout=120)
        assert uploaded.status_code == 201, uploaded.text
        policy = ann.put(f"projects/{EVALUATION_PROJECT}/evaluation-policies/{MODEL}", json={
            "dataset": "digits", "label_column": "label", "thresholds": THRESHOLDS, "baseline": "previous"})
        assert policy.status_code == 200, policy.text
        evaluations = []
        for version, epochs in ((1, 3), (2, 1)):
            job = ann.post("jobs", json={"project": EVALUATION_PROJECT, "notebook": training_notebook(),
                                         "notebook_name": "digits_sklearn.ipynb", "inputs": [{"dataset": "digits"}],
                                         "parameters": {"epochs": epochs, "model_name": MODEL, "dataset": "digits"}})
            assert job.status_code == 201, job.text
            finished = platform.wait_for_job(people["ann"], job.json()["id"],
                                             {"succeeded", "failed", "cancelled", "timed_out"})
            assert finished["state"] == "succeeded", finished.get("reason")
            evaluations.append(wait_for_evaluation(platform, people["ann"], version))
    first, second = evaluations
    assert first["state"] == "passed" and second["state"] == "failed", second["verdict"]
    assert second["baseline_version"] == 1
    return evaluations


@pytest.fixture
def chinese_bob(chinese_sign_in: Any) -> Page:
    return chinese_sign_in("bob")


def rows(page: Page) -> Any:
    return page.locator(".table-evaluations .tabulator-row")


def test_a_viewer_reads_the_evaluations_the_verdict_the_charts_and_the_trend(
        platform: RunningPlatform, evaluated: list[dict[str, Any]], bob_page: Page, screenshots: Path) -> None:
    first, second = evaluated
    page = open_dashboard(bob_page, platform, f"evaluations?project={EVALUATION_PROJECT}&lang=en")
    expect(page.locator("#nav-evaluations")).to_have_text("Evaluations")
    expect(rows(page)).to_have_count(2)
    expect(rows(page).nth(0).locator(".evaluation-state[data-state='failed']")).to_be_visible()
    expect(rows(page).nth(1).locator(".evaluation-state[data-state='passed']")).to_be_visible()
    expect(rows(page).nth(0).locator('[tabulator-field="baseline"]')).to_have_text("v1")
    # The newest judged evaluation is shown: version 2, failed on F1 against version 1, said in English.
    expect(page.locator("#evaluation-title")).to_contain_text(f"Evaluation {second['id']}: {MODEL} version 2")
    expect(page.locator(".evaluation-verdict")).to_contain_text("Failed: a check did not hold.")
    failed = page.locator(".verdict-reasons li[data-outcome='failed']")
    expect(failed).to_have_count(1)
    expect(failed).to_contain_text("f1_score is")
    expect(failed).to_contain_text("above the baseline")
    expect(page.locator(".evaluation-facts")).to_contain_text(second["dataset_md5"])
    expect(page.locator(".evaluation-facts")).to_contain_text(second["notebook_sha256"])
    page.wait_for_url(lambda url: f"evaluation={second['id']}" in url, timeout=PAGE_TIMEOUT_MS)
    # Two points on the trend, the second marked failed.
    expect(page.locator(".trend-chart.points-2 canvas").first).to_be_visible()
    # A viewer may not evaluate, and is told why.
    expect(page.locator(".evaluate button")).to_be_disabled()
    expect(page.locator(".evaluate-refused")).to_contain_text("needs the developer role; you are viewer")
    expect(page.locator(".evaluation-policy")).to_contain_text("Only a maintainer")
    screenshot(page, screenshots, "evaluations")
    # The report, as the platform stored it, in the page's language.
    with page.expect_download() as download:
        page.locator(".report-pdf button").click()
    assert download.value.suggested_filename == f"evaluation-{second['id']}.en.pdf"
    assert Path(download.value.path()).read_bytes().startswith(b"%PDF")

    page.locator(".evaluation-tabs .bk-tab", has_text="Compared with the baseline").click()
    expect(page.locator(".comparison-chart canvas").first).to_be_visible()
    expect(page.locator(".evaluation-metrics tr[data-metric='f1_score']")).to_be_visible()
    screenshot(page, screenshots, "evaluations-baseline")
    page.locator(".evaluation-tabs .bk-tab", has_text="Confusion matrix and curves").click()
    for chart in (".confusion-chart.classes-10", ".roc-chart.curves-10", ".pr-chart.curves-10"):
        expect(page.locator(f"{chart} canvas").first).to_be_visible()
    screenshot(page, screenshots, "evaluations-charts")

    # Another evaluation from the table: the address follows.
    rows(page).nth(1).locator('[tabulator-field="id"]').click()
    expect(page.locator("#evaluation-title")).to_contain_text(f"Evaluation {first['id']}: {MODEL} version 1")
    page.wait_for_url(lambda url: f"evaluation={first['id']}" in url, timeout=PAGE_TIMEOUT_MS)


def test_the_page_reads_chinese_for_a_chinese_browser(platform: RunningPlatform, evaluated: list[dict[str, Any]],
                                                      chinese_bob: Page, screenshots: Path) -> None:
    page = open_dashboard(chinese_bob, platform, f"evaluations?project={EVALUATION_PROJECT}")
    expect(page.locator("#nav-evaluations")).to_have_text("评估")
    expect(rows(page)).to_have_count(2)
    expect(page.locator(".table-evaluations .tabulator-col-title", has_text="主要指标")).to_be_visible()
    expect(page.locator(".evaluation-verdict")).to_contain_text("未通过：有检查未满足。")
    expect(page.locator(".verdict-reasons li[data-outcome='failed']")).to_contain_text("f1_score 为")
    expect(page.locator(".evaluate-refused")).to_contain_text("需要开发者角色")
    expect(page.locator("#trend-title")).to_contain_text(f"{MODEL} 各版本的")
    assert page.title() == "AITIP · 评估"
    screenshot(page, screenshots, "evaluations-verdict-zh")
    page.locator(".evaluation-tabs .bk-tab", has_text="混淆矩阵与曲线").click()
    for chart in (".confusion-chart", ".roc-chart", ".pr-chart"):
        expect(page.locator(f"{chart} canvas").first).to_be_visible()
    screenshot(page, screenshots, "evaluations-charts-zh")


def test_a_developer_evaluates_a_version_from_the_form_and_sees_it_judged(
        platform: RunningPlatform, evaluated: list[dict[str, Any]], ann_page: Page, screenshots: Path) -> None:
    page = open_dashboard(ann_page, platform, f"evaluations?project={EVALUATION_PROJECT}&model={MODEL}&lang=en")
    expect(rows(page)).to_have_count(2)
    expect(page.locator(".evaluation-policy")).to_contain_text(f"Policy of {MODEL}: dataset digits")
    evaluate = page.locator(".evaluate button")
    expect(evaluate).to_be_enabled()
    page.locator(".evaluate-version select").select_option(label="v1")
    evaluate.click()
    expect(page.locator(".aitip-info")).to_contain_text(f"of {MODEL} version 1 started")
    expect(rows(page)).to_have_count(3)
    newest = rows(page).nth(0)
    expect(newest.locator('[tabulator-field="model"]')).to_have_text(f"{MODEL} v1")
    expect(newest.locator('[tabulator-field="trigger"]')).to_have_text("started by hand")
    # The page polls while it runs: its verdict appears without a reload (version 1 has no previous version,
    # so its change check is skipped and it passes on its accuracy).
    expect(page.locator(".evaluation-verdict[data-state='passed']")).to_be_visible(timeout=JUDGED_MS)
    expect(newest.locator(".evaluation-state[data-state='passed']")).to_be_visible()
    expect(page.locator(".report-html button")).to_be_enabled(timeout=JUDGED_MS)  # once its report is written
    screenshot(page, screenshots, "evaluations-evaluated")
