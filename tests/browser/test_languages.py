"""The dashboards in the browser's language: English by default, Chinese for ``Accept-Language: zh-CN``,
and the English / 中文 switch, whose choice the next pages remember (the ``aitip_lang`` cookie)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.browser.conftest import PAGE_TIMEOUT_MS, PROJECT, open_dashboard, screenshot, sign_in
from tests.support.platform import RunningPlatform

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


@pytest.fixture(scope="module")
def a_dataset(platform: RunningPlatform, people: dict[str, str]) -> None:
    """The Datasets page draws its charts of a dataset: the project holds one whatever ran before this module
    (under pytest-xdist, the modules that register theirs may run in another worker's platform)."""
    with platform.api(people["ann"]) as api:
        if api.get(f"projects/{PROJECT}/datasets").json()["datasets"]:
            return
        response = api.post(f"projects/{PROJECT}/datasets/zh-sample/versions", params={"filename": "sample.csv"},
                            content=b"id,score,label\n1,0.5,a\n2,0.7,b\n3,0.9,a\n", timeout=120)
        assert response.status_code == 201, response.text


@pytest.fixture
def chinese_page(chinese_sign_in: Any) -> Page:
    """bob, whose browser asks for Chinese first."""
    return chinese_sign_in("bob")


@pytest.fixture
def english_page(browser: Browser, platform: RunningPlatform, people: dict[str, str]) -> Iterator[Page]:
    """bob, whose browser asks for English."""
    page = sign_in(browser, platform, "bob", extra_http_headers={"Accept-Language": "en-US,en;q=0.9"})
    yield page
    page.context.close()


def test_the_browsers_chinese_is_the_default(platform: RunningPlatform, chinese_page: Page,
                                             trained: list[dict[str, Any]], screenshots: Path,
                                             a_dataset: None) -> None:
    page = open_dashboard(chinese_page, platform, f"jobs?project={PROJECT}")
    expect(page.locator("#nav-jobs")).to_have_text("作业")
    expect(page.locator("#nav-overview")).to_have_text("概览")
    expect(page.locator("#viewer")).to_have_text("已登录：bob")
    expect(page.get_by_text("各状态的作业")).to_be_visible()
    expect(page.locator("button", has_text="刷新")).to_be_visible()
    expect(page.locator(".table-jobs .tabulator-col-title", has_text="状态")).to_be_visible()
    expect(page.locator(".table-jobs .tabulator-cell[tabulator-field=state]", has_text="已成功").first).to_be_visible()
    assert page.title() == "AITIP · 作业"
    screenshot(page, screenshots, "jobs-zh")
    page = open_dashboard(chinese_page, platform, f"jobs?project={PROJECT}&job={trained[0]['id']}")
    badge = page.locator("#job-state .job-state")
    expect(badge).to_have_text("已成功")  # the API's word stays in data-state
    expect(badge).to_have_attribute("data-state", "succeeded")
    page = open_dashboard(chinese_page, platform, f"datasets?project={PROJECT}")
    expect(page.get_by_text("所选版本的数据质量")).to_be_visible()
    screenshot(page, screenshots, "datasets-zh")


def test_english_stays_the_default_and_the_switch_is_remembered(platform: RunningPlatform, english_page: Page,
                                                                screenshots: Path) -> None:
    page = open_dashboard(english_page, platform, "overview")
    expect(page.locator("#nav-overview")).to_have_text("Overview")
    expect(page.locator("#viewer")).to_have_text("signed in as bob")
    expect(page.get_by_text("Recent activity")).to_be_visible()

    page.locator("#lang-zh_CN").click()
    page.wait_for_url(lambda url: "lang=zh_CN" in url, timeout=PAGE_TIMEOUT_MS)
    page.wait_for_selector("canvas", timeout=PAGE_TIMEOUT_MS)
    expect(page.locator("#nav-overview")).to_have_text("概览")
    expect(page.get_by_text("最近动态")).to_be_visible()
    screenshot(page, screenshots, "overview-zh")

    # Another page, with no ?lang= in its address: the cookie the switch set wins over Accept-Language.
    page = open_dashboard(english_page, platform, f"models?project={PROJECT}")
    expect(page.locator("#nav-models")).to_have_text("模型")
    expect(page.get_by_text("血缘：作业 → 运行 → 版本")).to_be_visible()
    assert any(cookie["name"] == "aitip_lang" and cookie["value"] == "zh_CN" and cookie["path"] == "/"
               for cookie in page.context.cookies())

    page.locator("#lang-en").click()
    page.wait_for_url(lambda url: "lang=en" in url, timeout=PAGE_TIMEOUT_MS)
    page.wait_for_selector("canvas", timeout=PAGE_TIMEOUT_MS)
    expect(page.locator("#nav-models")).to_have_text("Models")
    assert "project=" + PROJECT in page.url, "the switch keeps the page's other arguments"


@pytest.mark.parametrize("accept, heading, button", [("zh-CN,zh;q=0.9", "登录", "登录"),
                                                     ("en-US,en;q=0.9", "Sign in", "Sign in")])
def test_the_hubs_login_page_speaks_the_browsers_language(browser: Browser, platform: RunningPlatform,
                                                          screenshots: Path, accept: str, heading: str,
                                                          button: str) -> None:
    context = browser.new_context(extra_http_headers={"Accept-Language": accept})
    try:
        page = context.new_page()
        page.goto(f"{platform.url}/hub/login")
        expect(page.locator(".auth-form-header")).to_have_text(heading)
        expect(page.locator("#login_submit")).to_have_value(button)
        screenshot(page, screenshots, f"hub-login-{accept[:2]}")
    finally:
        context.close()


@pytest.mark.parametrize("path", ["overview", f"jobs?project={PROJECT}", f"experiments?project={PROJECT}",
                                  f"models?project={PROJECT}", f"evaluations?project={PROJECT}",
                                  f"simulations?project={PROJECT}", f"releases?project={PROJECT}",
                                  f"datasets?project={PROJECT}", f"annotate?project={PROJECT}"],
                         ids=["overview", "jobs", "experiments", "models", "evaluations", "simulations", "releases",
                              "datasets", "annotate"])
def test_every_page_reads_chinese_for_a_chinese_browser(platform: RunningPlatform, chinese_page: Page,
                                                        trained: list[dict[str, Any]], screenshots: Path,
                                                        a_dataset: None, path: str) -> None:
    """The navigation, the sign-in line and the page's title in Chinese on each page (its screenshot kept)."""
    name = path.split("?")[0]
    if name == "annotate":  # no chart on the labelling page: its task list or item is drawn
        chinese_page.goto(f"{platform.dashboards_url}/{path}")
        chinese_page.wait_for_selector("#nav-overview", timeout=PAGE_TIMEOUT_MS)
        page = chinese_page
    else:
        page = open_dashboard(chinese_page, platform, path)
    expect(page.locator("#nav-overview")).to_have_text("概览")
    expect(page.locator("#viewer")).to_have_text("已登录：bob")
    assert page.title().startswith("AITIP · ") and not page.title().isascii(), page.title()
    screenshot(page, screenshots, f"{name}-zh")


def test_the_platforms_own_refusal_reads_chinese_in_a_chinese_page(platform: RunningPlatform, chinese_page: Page,
                                                                    screenshots: Path) -> None:
    """The page sends its language with each call, so the API's message in the banner is Chinese too, after
    the page's own sentence; the MLflow parser's words it quotes stay as MLflow wrote them."""
    page = open_dashboard(chinese_page, platform, f"experiments?project={PROJECT}&filter=metrics.loss%20%3E%3E%201")
    banner = page.locator(".aitip-error")
    expect(banner).to_contain_text("筛选条件无效")
    assert "invalid filter" not in banner.inner_text()
    screenshot(page, screenshots, "experiments-bad-filter-zh")
