"""The browser suite's world, built once per session: one real platform (``aitip up``: hub, proxy,
platform service, dashboards service), ann (a developer, the project's owner) and bob (a viewer),
two finished training jobs with MLflow runs and registered model versions, and one headless Chromium
(Debian's binary, driven by Playwright for Python; no browser download) with one signed-in page per
person.

Screenshots are written under the session's pytest temporary directory; with
``AITIP_SCREENSHOT_DIR`` set they are also copied there (for example
``AITIP_SCREENSHOT_DIR=benchmarks/results/screenshots``)."""

from __future__ import annotations

import io
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.support.platform import RunningPlatform, start_platform
from tests.support.requirements import require

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
PASSWORDS = {"ann": "ann-pass-1234", "bob": "bob-pass-1234"}
PROJECT = "vision-ui"
MODEL = "digits-ui"
TRAINING = Path(__file__).resolve().parents[2] / "notebooks" / "train" / "digits_sklearn.ipynb"
TRAINING_PARAMETERS = [{"epochs": 2, "learning_rate": 0.01, "model_name": MODEL},
                       {"epochs": 3, "learning_rate": 0.003, "model_name": MODEL}]
PAGE_TIMEOUT_MS = 60_000


@pytest.fixture(autouse=True)
def jp_asyncio_loop() -> None:
    """Replaces pytest-jupyter's per-test event loop here: between sync calls Playwright marks its own
    loop as the running one, which that fixture would adopt and then fail to close. This suite uses
    no Jupyter server fixtures."""
    return None


@pytest.fixture(autouse=True)
def jp_server_cleanup() -> None:
    """No Jupyter server runs in this process (see :func:`jp_asyncio_loop`)."""
    return None


def browser_unavailable() -> str | None:
    """Why no browser test can run here, or None."""
    if shutil.which("chromium") is None:
        return "Debian's chromium is not installed (apt-get install -y chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright Python package is not installed (pip install playwright; no browser download)"
    return None


# Package scope, not session: Playwright's sync API keeps an event loop running in the main thread while
# its browser is open; it must be closed before the rest of the suite, whose async fixtures close loops.
@pytest.fixture(scope="package")
def chromium_path() -> str:
    require(browser_unavailable(), "the browser tests must run")
    return str(shutil.which("chromium"))


@pytest.fixture(scope="package")
def platform(chromium_path: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    running = start_platform(tmp_path_factory.mktemp("aitip-browser-home"), timeout=180)
    yield running
    code, left = running.stop()
    assert code == 0, running.log()[-3000:]
    assert left == [], f"processes left after shutdown: {left}"


@pytest.fixture(scope="package")
def people(platform: RunningPlatform) -> dict[str, str]:
    """ann and bob signed up and approved; ann owns PROJECT, bob is its viewer. Their API tokens."""
    tokens = {}
    for name, password in PASSWORDS.items():
        assert platform.signup(name, password).status_code == 200
        platform.approve(name)
        tokens[name] = platform.token(name, password)
    with platform.api(tokens["ann"]) as ann:
        assert ann.post("projects", json={"name": PROJECT, "display_name": "Vision UI"}).status_code == 201
        added = ann.post(f"projects/{PROJECT}/members", json={"user": "bob", "role": "viewer"})
        assert added.status_code == 201, added.text
    return tokens


@pytest.fixture(scope="package")
def trained(platform: RunningPlatform, people: dict[str, str]) -> list[dict[str, Any]]:
    """Two real training jobs (the digits example) run through the platform by ann, finished."""
    notebook = json.loads(TRAINING.read_text())
    with platform.api(people["ann"]) as ann:
        submitted = []
        for parameters in TRAINING_PARAMETERS:
            response = ann.post("jobs", json={"project": PROJECT, "notebook": notebook,
                                              "notebook_name": TRAINING.name, "parameters": parameters})
            assert response.status_code == 201, response.text
            submitted.append(response.json()["id"])
    jobs = [platform.wait_for_job(people["ann"], job_id, {"succeeded", "failed", "cancelled", "timed_out"})
            for job_id in submitted]
    assert [job["state"] for job in jobs] == ["succeeded"] * len(jobs), [job.get("reason") for job in jobs]
    return jobs


@pytest.fixture(scope="package")
def browser(chromium_path: str) -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def sign_in(browser: Browser, platform: RunningPlatform, user: str, **context_options: Any) -> Page:
    """A fresh browser context signed in through the hub's login form, as a person would (options of
    the context, e.g. the ``Accept-Language`` its requests send, as Playwright takes them)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, **context_options)
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    page = context.new_page()
    page.goto(f"{platform.url}/hub/login")
    page.fill("#username_input", user)
    page.fill("input[name=password]", PASSWORDS[user])
    page.click("#login_submit")
    page.wait_for_url(lambda url: "/hub/login" not in url)
    return page


CHINESE = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"}  # a browser that asks for Chinese first


@pytest.fixture
def chinese_sign_in(browser: Browser, platform: RunningPlatform, people: dict[str, str]) -> Iterator[Any]:
    """``chinese_sign_in(user)``: a page of ``user`` signed in from a browser that asks for Chinese first,
    closed after the test."""
    opened: list[Page] = []

    def open_as(user: str) -> Page:
        opened.append(sign_in(browser, platform, user, extra_http_headers=CHINESE))
        return opened[-1]

    yield open_as
    for page in opened:
        page.context.close()


@pytest.fixture(scope="package")
def ann_page(browser: Browser, platform: RunningPlatform, people: dict[str, str]) -> Iterator[Page]:
    page = sign_in(browser, platform, "ann")
    yield page
    page.context.close()


@pytest.fixture(scope="package")
def bob_page(browser: Browser, platform: RunningPlatform, people: dict[str, str]) -> Iterator[Page]:
    page = sign_in(browser, platform, "bob")
    yield page
    page.context.close()


@pytest.fixture(scope="package")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    directory = tmp_path_factory.mktemp("screenshots")
    yield directory
    target = os.environ.get("AITIP_SCREENSHOT_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        for shot in sorted(directory.glob("*.png")):
            shutil.copy2(shot, Path(target) / shot.name)


def open_dashboard(page: Page, platform: RunningPlatform, path: str) -> Page:
    """Navigate to a dashboard page and wait until Bokeh has drawn a chart."""
    page.goto(f"{platform.dashboards_url}/{path}")
    page.wait_for_selector("canvas:visible", timeout=PAGE_TIMEOUT_MS)  # a hidden section's chart is no sign
    return page


def screenshot(page: Page, directory: Path, name: str) -> Path:
    path = directory / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def coloured_pixels(page: Page, selector: str, colour: tuple[int, int, int], tolerance: int = 40) -> int:
    """How many pixels of the chart's canvas are close to ``colour``."""
    from PIL import Image

    picture = Image.open(io.BytesIO(page.locator(f"{selector} canvas").first.screenshot())).convert("RGB")
    return sum(1 for pixel in picture.getdata() if all(abs(a - b) <= tolerance for a, b in zip(pixel, colour)))


def wait_drawn(page: Page, selector: str, colour: tuple[int, int, int], least: int = 40) -> int:
    """The chart's pixels of ``colour`` once Bokeh has painted them (the canvas exists before). A chart the page
    redraws while it is being photographed (a refresh replaced it) is photographed again."""
    from playwright.sync_api import Error

    deadline = time.monotonic() + PAGE_TIMEOUT_MS / 1000
    while True:
        try:
            found = coloured_pixels(page, selector, colour)
        except Error as error:
            if "not attached" not in str(error) or time.monotonic() > deadline:
                raise
            found = 0
        if found >= least or time.monotonic() > deadline:
            return found
        page.wait_for_timeout(250)
