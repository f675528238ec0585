"""The Experiments page as W&B users expect it, in a real browser through the real hub: curves of the
best runs on first load, ticking a run adds its curve, log scale and smoothing redraw the chart, the
column picker, grouping, the scatter and parallel coordinates, and the address that keeps all of it —
in English and in Chinese. The chart's classes say what the server drew (``curves-N``, ``y-log``,
``smoothed``, ``grouped``); the canvas's pixels say that the browser drew something else."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urlparse

import pytest

from tests.browser.conftest import PROJECT, open_dashboard, screenshot
from tests.support.platform import RunningPlatform

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


@pytest.fixture(scope="module")
def runs(platform: RunningPlatform, people: dict[str, str], trained: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The two training runs, in the order of their jobs."""
    with platform.api(people["ann"]) as api:
        listed = {run["job_id"]: run for run in api.get(f"projects/{PROJECT}/runs").json()["runs"]}
    return [listed[job["id"]] for job in trained]


@pytest.fixture
def chinese_page(chinese_sign_in: Any) -> Page:
    return chinese_sign_in("ann")


def runs_row(page: Page, run_name: str) -> Any:
    exact = re.compile(rf"^\s*{re.escape(run_name)}\s*$")
    return page.locator(".table-runs .tabulator-row").filter(
        has=page.locator('[tabulator-field="run"]', has_text=exact))


def query(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlparse(url).query, keep_blank_values=True).items()}


def query_value(page: Page, name: str) -> str:
    """The page's address's ``name`` parameter, once the page has written it there (just after the change that
    sets it is shown)."""
    page.wait_for_url(lambda url: name in query(url))
    return query(page.url)[name]


def chart_pixels(page: Page, attempts: int = 20) -> bytes:
    """The chart's pixels once it holds still: a chart redrawn while it is taken (each key press of the smoothing
    slider redraws it) detaches its canvas, and the newest one is taken instead."""
    from playwright.sync_api import Error

    for attempt in range(attempts):
        try:
            return bytes(page.locator(".runs-chart canvas").first.screenshot())
        except Error as error:
            if "not attached" not in str(error) or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def open_experiments(page: Page, platform: RunningPlatform, **arguments: str) -> Page:
    open_dashboard(page, platform, "experiments?" + urlencode({"project": PROJECT, **arguments}))
    page.locator(".table-runs .tabulator-row").first.wait_for(state="visible")
    return page


def test_curves_show_on_first_load_and_ticking_a_run_adds_its_curve(platform: RunningPlatform, ann_page: Page,
                                                                    runs: list[dict[str, Any]]) -> None:
    page = open_experiments(ann_page, platform)
    page.wait_for_selector(".runs-chart canvas")
    assert page.locator(".runs-chart.empty").count() == 0, "the best runs are ticked and drawn"

    page = open_experiments(ann_page, platform, compare=runs[0]["run_id"], metric="loss")
    page.wait_for_selector(".runs-chart.curves-1")
    assert runs_row(page, runs[0]["run_name"]).locator("input[type=checkbox]").is_checked()
    runs_row(page, runs[1]["run_name"]).locator("input[type=checkbox]").click()
    page.wait_for_selector(".runs-chart.curves-2")
    page.wait_for_function("() => new URLSearchParams(location.search).get('compare')?.split(',').length === 2")
    assert set(query_value(page, "compare").split(",")) == {run["run_id"] for run in runs}


def test_log_scale_and_smoothing_change_the_chart(platform: RunningPlatform, ann_page: Page,
                                                  runs: list[dict[str, Any]]) -> None:
    page = open_experiments(ann_page, platform, compare=",".join(run["run_id"] for run in runs), metric="loss")
    page.wait_for_selector(".runs-chart.curves-2 canvas")
    plain = chart_pixels(page)
    page.locator(".log-scale input[type=checkbox]").check()
    page.wait_for_selector(".runs-chart.y-log canvas")
    logged = chart_pixels(page)
    assert logged != plain, "the log scale redrew the chart"
    assert query_value(page, "log") == "1"
    handle = page.locator(".smoothing .noUi-handle")
    handle.focus()
    for _ in range(60):
        handle.press("ArrowRight")
    page.wait_for_selector(".runs-chart.smoothed canvas")
    assert chart_pixels(page) != logged, "smoothing redrew the chart"
    assert float(query_value(page, "smooth")) > 0
    page.locator(".x-axis button", has_text="Wall time").click()
    page.wait_for_selector(".runs-chart.x-wall")


def test_columns_grouping_scatter_and_parallel_coordinates(platform: RunningPlatform, ann_page: Page,
                                                           runs: list[dict[str, Any]], screenshots: Path) -> None:
    page = open_experiments(ann_page, platform, compare=",".join(run["run_id"] for run in runs), metric="loss")
    header = page.locator('.table-runs .tabulator-col[tabulator-field="param.hidden"]')
    expect(header).to_have_count(0)
    page.locator(".column-picker .choices__input--cloned").fill("param.hidden")
    page.locator(".column-picker .choices__item--choice", has_text="param.hidden").first.click()
    expect(header).to_have_count(1)
    page.wait_for_url(lambda url: "param.hidden" in query(url).get("columns", "").split(","))
    page.keyboard.press("Escape")
    page.locator(".group-by select").select_option("param.epochs")
    page.wait_for_selector(".runs-chart.grouped")
    page.locator(".table-groups .tabulator-row").first.wait_for(state="visible")
    assert page.locator(".table-groups .tabulator-row").count() >= len({run["params"]["epochs"] for run in runs})
    assert query_value(page, "group") == "param.epochs"
    screenshot(page, screenshots, "experiments-grouped")
    page.locator(".experiment-tabs .bk-tab", has_text="Parameter vs metric").click()
    page.wait_for_selector(".param-scatter canvas")
    page.locator(".experiment-tabs .bk-tab", has_text="Parallel coordinates").click()
    page.wait_for_selector(".param-parallel canvas")


def test_the_address_restores_the_view_in_chinese(platform: RunningPlatform, chinese_page: Page,
                                                  runs: list[dict[str, Any]], screenshots: Path) -> None:
    view = {"compare": ",".join(run["run_id"] for run in runs), "metric": "test_accuracy", "x": "relative",
            "smooth": "0.5", "log": "1", "group": "param.epochs", "columns": "job,metric.test_accuracy,param.epochs"}
    page = open_experiments(chinese_page, platform, **view)
    page.wait_for_selector(".runs-chart.curves-2.x-relative.y-log.smoothed.grouped canvas")
    for run in runs:
        assert runs_row(page, run["run_name"]).locator("input[type=checkbox]").is_checked()
    titles = page.locator(".table-runs .tabulator-col-title").all_inner_texts()
    assert [title.strip() for title in titles if title.strip()][:4] == ["运行", "作业", "metric.test_accuracy",
                                                                        "param.epochs"]
    expect(page.locator(".group-by select")).to_have_value("param.epochs")
    expect(page.locator(".curve-metric select")).to_have_value("test_accuracy")
    expect(page.locator(".experiment-tabs .bk-tab", has_text="曲线")).to_be_visible()
    expect(page.locator(".x-axis button", has_text="相对时间")).to_have_class(re.compile("bk-active"))
    assert {name: query(page.url).get(name) for name in view} == view, "the address is kept as it was shared"
    screenshot(page, screenshots, "experiments-zh")
