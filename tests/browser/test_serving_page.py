"""The Serving page in a real browser, through the real hub. ann (a developer) deploys the digits model's version 1
as endpoint ``digits`` through the API — real worker processes, running as her account — with version 2 as a 20 %
canary, and version 1 alone as ``digits-next``; the digits endpoint is called some forty times (a few of them with
a malformed request). bob (a viewer) reads the endpoints, the weights bar and the live charts in English and
Chinese, has no weights form and is told why, and calls the endpoint from the try-it box (the split, then version 2
pinned). ann sees digits-next's empty charts say what to do, calls it from the page and sees the charts appear
without a reload, adds version 2 as a canary, is refused by the platform (422) for weights that do not sum to
100, and then splits the traffic 50/50."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.browser.conftest import MODEL, PAGE_TIMEOUT_MS, PROJECT, open_dashboard, screenshot, wait_drawn
from tests.support.platform import RunningPlatform

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

ENDPOINT, NEXT = "digits", "digits-next"
BLUE, ORANGE = (0x1F, 0x77, 0xB4), (0xFF, 0x7F, 0x0E)  # versions 1 and 2 (the pages' palette)
CALLS, BAD_CALLS = 40, 3


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def oip(rows: Any) -> dict[str, Any]:
    return {"inputs": [{"name": "input", "shape": list(rows.shape), "datatype": "FP64",
                        "data": rows.reshape(-1).tolist()}]}


@pytest.fixture(scope="module")
def deployed(platform: RunningPlatform, people: dict[str, str], trained: list[dict[str, Any]]
             ) -> Iterator[dict[str, Any]]:
    """Endpoints digits (version 1, version 2 as a 20 % canary) and digits-next (version 1 alone), deployed by ann
    through the API; digits called CALLS times (and BAD_CALLS times with a row of the wrong width) until the
    platform has written its first points. The digits endpoint as the API then answers it."""
    from sklearn.datasets import load_digits

    rows = load_digits().data[:4]
    with platform.api(people["ann"]) as ann:
        for name in (ENDPOINT, NEXT):
            made = ann.post(f"projects/{PROJECT}/endpoints", json={"name": name, "model": MODEL, "version": 1},
                            timeout=180)
            assert made.status_code == 201, made.text
        canary = ann.post(f"projects/{PROJECT}/endpoints/{ENDPOINT}/versions", json={"version": 2, "weight": 20},
                          timeout=180)
        assert canary.status_code == 200, canary.text
        url = f"{platform.url}/services/aitip/serve/{PROJECT}/{ENDPOINT}/v2/models/{ENDPOINT}/infer"
        with httpx.Client(headers={"Authorization": f"token {people['ann']}"}, timeout=30) as http:
            for index in range(CALLS):
                answered = http.post(url, json=oip(rows[index % 4:index % 4 + 1]))
                assert answered.status_code == 200, answered.text
            for _ in range(BAD_CALLS):
                assert http.post(url, json=oip(rows[:1, :63])).status_code == 400
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            metrics = ann.get(f"projects/{PROJECT}/endpoints/{ENDPOINT}/metrics").json()
            if {point["version"] for point in metrics["series"]} == {1, 2}:
                break
            time.sleep(1)
        assert {point["version"] for point in metrics["series"]} == {1, 2}, metrics
        yield ann.get(f"projects/{PROJECT}/endpoints/{ENDPOINT}").json()
        for name in (ENDPOINT, NEXT):
            assert ann.delete(f"projects/{PROJECT}/endpoints/{name}", timeout=60).status_code == 204


@pytest.fixture
def developer_page(browser: Any, platform: RunningPlatform, people: dict[str, str]) -> Iterator[Page]:
    """ann in a page of her own (her changes do not disturb the other tests' pages)."""
    from tests.browser.conftest import sign_in

    page = sign_in(browser, platform, "ann")
    yield page
    page.context.close()


def open_serving(page: Page, platform: RunningPlatform, arguments: str) -> Page:
    open_dashboard(page, platform, f"serving?project={PROJECT}&{arguments}")
    page.locator(".table-endpoints .tabulator-row").first.wait_for(state="visible")
    return page




def row(page: Page, name: str) -> Any:
    return page.locator(".table-endpoints .tabulator-row", has=page.locator(
        '[tabulator-field="endpoint"]', has_text=re.compile(f"^{re.escape(name)}$")))


def test_a_viewer_reads_the_endpoints_weights_and_live_charts_and_tries_the_endpoint(
        platform: RunningPlatform, deployed: dict[str, Any], bob_page: Page, screenshots: Path) -> None:
    page = open_serving(bob_page, platform, f"endpoint={ENDPOINT}&lang=en")
    expect(page.locator("#nav-serving")).to_have_text("Serving")
    expect(page.locator(".table-endpoints .tabulator-row")).to_have_count(2)
    listed = row(page, ENDPOINT)
    expect(listed.locator('[tabulator-field="model"]')).to_have_text(MODEL)
    expect(listed.locator(".endpoint-version[data-version='1']")).to_contain_text("v1 80 %")
    expect(listed.locator(".endpoint-version[data-version='2']")).to_contain_text("v2 20 %")
    expect(listed.locator(".variant-state[data-state='serving']")).to_have_count(2)
    expect(listed.locator('[tabulator-field="url"]')).to_have_text(
        f"{platform.url}/services/aitip/serve/{PROJECT}/{ENDPOINT}/")
    expect(page.locator("#endpoint-title")).to_contain_text(f"Endpoint {ENDPOINT}: model {MODEL}")
    expect(page.locator(".endpoint-versions tr[data-version='2']")).to_contain_text("canary")
    page.wait_for_url(lambda url: f"endpoint={ENDPOINT}" in url, timeout=PAGE_TIMEOUT_MS)
    # The weights bar: version 1's blue over four times the width of version 2's orange.
    weights = ".serving-weights.versions-2"
    assert wait_drawn(page, weights, BLUE) >= 4 * wait_drawn(page, weights, ORANGE) > 0
    # The live charts: a line per version, after the calls the fixture made.
    for chart in ("serving-requests", "serving-errors", "serving-latency"):
        expect(page.locator(f".{chart}.versions-2 canvas").first).to_be_visible()
    assert wait_drawn(page, ".serving-requests", BLUE) >= 20, "version 1's requests"
    assert wait_drawn(page, ".serving-latency", ORANGE) >= 10, "version 2's latency"
    assert wait_drawn(page, ".serving-errors", BLUE) >= 10, "version 1's bad requests"
    totals = page.locator(".endpoint-totals tbody tr")
    expect(totals).to_have_count(2)
    requests = sum(int(totals.nth(i).get_attribute("data-requests") or 0) for i in range(2))
    assert requests >= CALLS + BAD_CALLS, requests
    # A viewer has no weights form, and is told why.
    expect(page.locator(".traffic-form")).to_have_count(0)
    expect(page.locator(".traffic-refused")).to_contain_text("needs the developer role; you are viewer")
    # Try it: the example from the model's signature, sent through the split, then to version 2 alone.
    request = page.locator(".try-request textarea")
    expect(request).to_have_value(re.compile(r'"shape": \[1, 64\], "datatype": "FP64"'))
    page.locator(".try-send button").click()
    answer = page.locator(".try-answer[data-status='200']")
    expect(answer).to_be_visible()
    assert answer.get_attribute("data-version") in ("1", "2")
    expect(answer).to_contain_text('"model_name": "digits"')
    expect(answer.locator(".try-latency")).to_contain_text("ms through the platform")
    page.locator(".try-target select").select_option(label="version 2 only")
    page.locator(".try-send button").click()
    expect(page.locator(".try-answer[data-version='2']")).to_contain_text("answered by version 2")
    screenshot(page, screenshots, "serving")
    request.fill('{"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]}')
    page.locator(".try-send button").click()
    refused = page.locator(".try-answer[data-status='400']")
    expect(refused).to_contain_text("float64 tensor of shape (N, 64)")
    screenshot(page, screenshots, "serving-try-refused")


def test_the_page_reads_chinese_for_a_chinese_browser(platform: RunningPlatform, deployed: dict[str, Any],
                                                      chinese_sign_in: Any, screenshots: Path) -> None:
    page = open_serving(chinese_sign_in("bob"), platform, f"endpoint={ENDPOINT}")
    expect(page.locator("#nav-serving")).to_have_text("模型服务")
    assert page.title() == "AITIP · 模型服务"
    expect(page.locator(".table-endpoints .tabulator-col-title", has_text="版本：权重、状态、副本")).to_be_visible()
    expect(row(page, ENDPOINT).locator(".variant-state[data-state='serving']").first).to_have_text("服务中")
    expect(page.locator("#endpoint-title")).to_contain_text(f"端点 {ENDPOINT}：模型 {MODEL}")
    expect(page.locator(".endpoint-versions")).to_contain_text("金丝雀")
    expect(page.locator(".traffic-refused")).to_contain_text("需要开发者角色")
    expect(page.locator("h3", has_text="实时流量")).to_be_visible()
    expect(page.locator(".try-send button")).to_have_text("发送")
    assert wait_drawn(page, ".serving-requests", BLUE) >= 20
    page.locator(".try-send button").click()
    expect(page.locator(".try-answer[data-status='200'] .try-version")).to_contain_text("由版本")
    screenshot(page, screenshots, "serving-zh")
    page.locator(".try-request textarea").fill(
        '{"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]}')
    page.locator(".try-send button").click()  # the replica's refusal, in the page's language
    expect(page.locator(".try-answer[data-status='400']")).to_contain_text(
        "输入的形状为 [1, 3]；应为形状为 (N, 64) 的 float64 张量")
    screenshot(page, screenshots, "serving-zh-try-refused")


def test_a_developer_calls_a_new_endpoint_adds_a_canary_and_splits_the_traffic(
        platform: RunningPlatform, people: dict[str, str], deployed: dict[str, Any], developer_page: Page,
        screenshots: Path) -> None:
    page = open_serving(developer_page, platform, f"endpoint={NEXT}&lang=en")
    # No call yet: the charts say how to make one.
    empty = page.locator(".serving-charts-empty[data-state='none']")
    expect(empty).to_contain_text(
        f"No traffic yet: call the endpoint at {platform.url}/services/aitip/serve/{PROJECT}/{NEXT}/")
    expect(empty).to_contain_text(f"v2/models/{NEXT}/infer")
    screenshot(page, screenshots, "serving-no-traffic")
    # A call from the page; the charts appear without a reload (the page refreshes every 5 s).
    expect(page.locator(".try-request textarea")).to_have_value(re.compile('"FP64"'))
    page.locator(".try-send button").click()
    expect(page.locator(".try-answer[data-status='200'][data-version='1']")).to_be_visible()
    expect(page.locator(".serving-requests.versions-1 canvas").first).to_be_visible(timeout=30_000)
    assert wait_drawn(page, ".serving-requests", BLUE) >= 4

    # Version 2 as a 10 % canary, from the form.
    form = page.locator(".traffic-form")
    expect(form).to_be_visible()
    expect(page.locator(".canary-version select")).to_have_value("v2")
    canary_weight = page.locator(".canary-weight input")
    canary_weight.fill("10")
    canary_weight.press("Tab")
    page.locator(".add-canary button").click()
    expect(page.locator(".aitip-info")).to_contain_text(
        f"Version 2 serves 10 % of {NEXT}'s requests as a canary.", timeout=120_000)
    expect(page.locator(".weight-v1 input")).to_have_value("90")
    expect(page.locator(".weight-v2 input")).to_have_value("10")
    expect(row(page, NEXT).locator(".endpoint-version[data-version='2']")).to_contain_text("v2 10 %")
    expect(page.locator(".serving-weights.versions-2 canvas").first).to_be_visible()
    expect(page.locator(".canary-none")).to_contain_text("Every registered version of")

    # Weights that do not sum to 100: the platform's 422, said as it said it.
    first, second = page.locator(".weight-v1 input"), page.locator(".weight-v2 input")
    first.fill("70")
    first.press("Tab")
    expect(page.locator(".weights-total[data-total='80']")).to_contain_text("must sum to 100")
    page.locator(".set-traffic button").click()
    error = page.locator(".aitip-error")
    expect(error).to_contain_text(f"Could not set the weights of endpoint {NEXT}")
    expect(page.locator(".serving-problems")).to_contain_text("the weights sum to 80; they must sum to 100")
    screenshot(page, screenshots, "serving-refused")
    with platform.api(people["ann"]) as ann:
        unchanged = ann.get(f"projects/{PROJECT}/endpoints/{NEXT}").json()
    assert {v["version"]: v["weight"] for v in unchanged["variants"]} == {1: 90, 2: 10}

    # 50/50: the split changes, and the page says so everywhere.
    first.fill("50")
    first.press("Tab")
    second.fill("50")
    second.press("Tab")
    expect(page.locator(".weights-total[data-total='100']")).to_be_visible()
    page.locator(".set-traffic button").click()
    expect(page.locator(".aitip-info")).to_contain_text(f"The weights of {NEXT} are now v1 50 %, v2 50 %")
    expect(page.locator(".aitip-error")).to_have_count(0)
    expect(row(page, NEXT).locator(".endpoint-version[data-version='1']")).to_contain_text("v1 50 %")
    expect(page.locator(".endpoint-versions tr[data-version='2'][data-weight='50']")).to_be_visible()
    with platform.api(people["ann"]) as ann:
        changed = ann.get(f"projects/{PROJECT}/endpoints/{NEXT}").json()
    assert {v["version"]: v["weight"] for v in changed["variants"]} == {1: 50, 2: 50}
    weights = ".serving-weights.versions-2"
    blue, orange = wait_drawn(page, weights, BLUE), wait_drawn(page, weights, ORANGE)
    assert 0.7 < blue / orange < 1.4, (blue, orange)
    screenshot(page, screenshots, "serving-developer")
