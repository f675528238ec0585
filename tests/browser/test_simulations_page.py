"""The Simulation page in a real browser, through the real hub. ann's project holds the digits table, a project
template extending the library's custom one (Gaussian noise and FGSM, computed in its sandbox on the model
itself) and two real training jobs of a logistic regression: version 1 on the digits table, version 2 on a second
version of it that keeps ten training images per digit (the same test split). Each version is simulated in its
sandboxed job on the table's first version, version 2 judged against version 1; the shipped LLM template probes
the shipped weak test endpoint; and, where the image template's notebook is in the checkout, the image template
attacks version 1 for the gallery. A viewer reads them in English and Chinese, and a developer is refused by the
platform (422) and then simulates from the page's form and sees the verdict arrive."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from aitip.simulation.test_endpoints import running_endpoint
from tests.browser.conftest import PAGE_TIMEOUT_MS, coloured_pixels, open_dashboard, screenshot, wait_drawn
from tests.evaluation.conftest import digits_csv, training_notebook
from tests.support.platform import RunningPlatform

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1500)]

PROJECT = "simulations-ui"  # its own project: its jobs must not change other tests' counts
MODEL = "digits-logistic"
TEMPLATE = "digits_noise_fgsm"
IMAGE_NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "simulate" / "image_robustness.ipynb"
JUDGED_MS = 300_000
# A project template: the library's custom scenario with code of its own, run in the sandbox on the model under
# test. FGSM is computed in closed form: the sign of the logistic regression's loss gradient on the raw pixels.
TEMPLATE_YAML = """\
extends: custom
title: Digits under noise and FGSM
description: Gaussian noise and FGSM, both in fractions of the pixel range (0..16), on a logistic regression.
conditions:
  - condition: custom
    options:
      code: |
        import numpy as np

        def simulate(model, features, labels):
            span, rows = 16.0, []
            generator = np.random.default_rng(0)
            for sigma in (0.1, 0.2, 0.3):
                noisy = np.clip(features + generator.normal(0, sigma * span, features.shape), 0, span)
                rows.append({"condition": "gaussian_noise", "parameter": "sigma", "value": sigma,
                             "metric": float(np.mean(model.predict(noisy) == labels))})
            classes = list(model.classes_)
            truth = np.eye(len(classes))[[classes.index(label) for label in labels]]
            gradient = (model.predict_proba(features) - truth) @ model.coef_
            for eps in (0.05, 0.1, 0.2):
                adversarial = np.clip(features + eps * span * np.sign(gradient), 0, span)
                rows.append({"condition": "fgsm", "parameter": "eps", "value": eps,
                             "metric": float(np.mean(model.predict(adversarial) == labels))})
            return rows
thresholds:
  - accuracy under clean >= 0.90
  - accuracy under gaussian_noise sigma=0.1 >= 0.85
  - accuracy under fgsm eps=0.05 >= 0.75
regression:
  tolerance: 0.02
"""
CURVE_BLUE, THRESHOLD_COLOURS = (0x1F, 0x77, 0xB4), ((0x1A, 0x7F, 0x37), (0xCF, 0x22, 0x2E))


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def wait_judged(api: Any, simulation_id: int, timeout: float = 400) -> dict[str, Any]:
    """The simulation once judged and reported (or in error), with its result."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = api.get(f"projects/{PROJECT}/simulations/{simulation_id}")
        assert found.status_code == 200, found.text
        simulation = found.json()
        if simulation["state"] == "error" or (simulation["state"] in ("passed", "failed") and simulation["has_report"]):
            return simulation
        time.sleep(1)
    raise AssertionError(f"simulation {simulation_id} was not judged: {simulation}")


def simulate(api: Any, body: dict[str, Any]) -> dict[str, Any]:
    started = api.post(f"projects/{PROJECT}/simulations", json=body)
    assert started.status_code == 202, started.text
    return wait_judged(api, started.json()["id"])


def few_training_images(per_digit: int = 10) -> bytes:
    """The digits table with only ``per_digit`` training images of each digit, the test split whole."""
    import pandas

    frame = pandas.read_csv(io.BytesIO(digits_csv()))
    kept = frame[frame["split"] == "test"].index.union(
        frame[frame["split"] == "train"].groupby("label").head(per_digit).index)
    sink = io.StringIO()
    frame.loc[kept].to_csv(sink, index=False)
    return sink.getvalue().encode()


@pytest.fixture(scope="module")
def simulated(platform: RunningPlatform, people: dict[str, str]) -> dict[str, dict[str, Any]]:
    """ann's project: the digits table (version 1, and version 2 with ten training images per digit), the project
    template, model versions 1 and 2 trained on them and each simulated on the table's version 1, the LLM template
    against the weak endpoint, and the image template against version 1 where its notebook is in the checkout.
    The simulations by name."""
    with platform.api(people["ann"]) as ann:
        assert ann.post("projects", json={"name": PROJECT}).status_code == 201
        added = ann.post(f"projects/{PROJECT}/members", json={"user": "bob", "role": "viewer"})
        assert added.status_code == 201, added.text
        saved = ann.put(f"projects/{PROJECT}/simulation-templates/{TEMPLATE}", json={"yaml": TEMPLATE_YAML})
        assert saved.status_code == 200, saved.text
        for table in (digits_csv(), few_training_images()):
            uploaded = ann.post(f"projects/{PROJECT}/datasets/digits/versions", content=table,
                                params={"filename": "digits.csv"}, timeout=120)
            assert uploaded.status_code == 201, uploaded.text
            job = ann.post("jobs", json={"project": PROJECT, "notebook": training_notebook(),
                                         "notebook_name": "digits_sklearn.ipynb", "inputs": [{"dataset": "digits"}],
                                         "parameters": {"model_name": MODEL, "dataset": "digits",
                                                        "classifier": "logistic"}})
            assert job.status_code == 201, job.text
            finished = platform.wait_for_job(people["ann"], job.json()["id"],
                                             {"succeeded", "failed", "cancelled", "timed_out"})
            assert finished["state"] == "succeeded", finished.get("reason")
        found = {}
        for version in (1, 2):
            found[f"v{version}"] = simulate(ann, {"template": f"{TEMPLATE}@1", "model": MODEL, "version": version,
                                                  "dataset": "digits", "dataset_version": 1})
        with running_endpoint("weak") as url:
            found["llm"] = simulate(ann, {"template": "llm_safety", "endpoint": {"uri": url}})
        if IMAGE_NOTEBOOK.is_file():
            found["image"] = simulate(ann, {"template": "image_robustness", "model": MODEL, "version": 1,
                                            "dataset": "digits", "dataset_version": 1, "gallery_size": 8})
    assert found["v1"]["state"] == "passed", found["v1"]["reason"]
    assert found["v2"]["state"] == "failed" and found["v2"]["previous_id"] == found["v1"]["id"], found["v2"]
    assert found["llm"]["state"] == "failed", found["llm"]["reason"]
    return found


@pytest.fixture
def chinese_bob(chinese_sign_in: Any) -> Page:
    return chinese_sign_in("bob")


@pytest.fixture
def developer_page(browser: Any, platform: RunningPlatform, people: dict[str, str]) -> Iterator[Page]:
    """ann in a page of her own: the form's test reloads and polls without disturbing other tests' pages."""
    from tests.browser.conftest import sign_in

    page = sign_in(browser, platform, "ann")
    yield page
    page.context.close()


def rows(page: Page) -> Any:
    return page.locator(".table-simulations .tabulator-row")


def open_simulations(page: Page, platform: RunningPlatform, arguments: str) -> Page:
    open_dashboard(page, platform, f"simulations?project={PROJECT}&{arguments}")
    rows(page).first.wait_for(state="visible")
    return page




def test_a_viewer_reads_the_verdict_the_curves_the_comparison_and_the_probes(
        platform: RunningPlatform, simulated: dict[str, dict[str, Any]], bob_page: Page, screenshots: Path) -> None:
    first, second, probed = simulated["v1"], simulated["v2"], simulated["llm"]
    page = open_simulations(bob_page, platform, f"template={TEMPLATE}&lang=en")
    expect(page.locator("#nav-simulations")).to_have_text("Simulations")
    expect(rows(page)).to_have_count(2)
    expect(rows(page).nth(0).locator(".simulation-state[data-state='failed']")).to_be_visible()
    expect(rows(page).nth(1).locator(".simulation-state[data-state='passed']")).to_be_visible()
    expect(rows(page).nth(0).locator('[tabulator-field="target"]')).to_have_text(f"{MODEL} v2")
    # The newest judged simulation of the template: version 2, failed, its reasons first.
    expect(page.locator("#simulation-title")).to_contain_text(
        f"Simulation {second['id']}: {TEMPLATE}@1 against {MODEL} v2")
    verdict = page.locator(".simulation-verdict")
    expect(verdict).to_contain_text("Failed: a threshold or a regression check did not hold.")
    for reason in second["verdict"]["reasons"]:
        expect(verdict.locator(".verdict-reasons")).to_contain_text(reason)
    checks = second["verdict"]["checks"]
    expect(page.locator(".simulation-checks tbody tr")).to_have_count(len(checks))
    expect(page.locator(".simulation-checks tr[data-passed='false']")).to_have_count(
        sum(1 for check in checks if not check["passed"]))
    expect(page.locator(".simulation-regressions")).to_be_visible()
    expect(page.locator(".simulation-regressions tr[data-passed='false']").first).to_be_visible()
    page.wait_for_url(lambda url: f"simulation={second['id']}" in url, timeout=PAGE_TIMEOUT_MS)
    # The curves: FGSM on the ε chart and the noise on its own, from the clean value, with the thresholds.
    attacks, noise = ".simulation-curves.family-epsilon", ".simulation-curves.family-gaussian_noise"
    expect(page.locator(f"{attacks}.thresholds-1 canvas").first).to_be_visible()
    expect(page.locator(f"{noise}.thresholds-1 canvas").first).to_be_visible()
    assert wait_drawn(page, attacks, CURVE_BLUE) >= 40, "the FGSM curve is drawn"
    assert wait_drawn(page, noise, CURVE_BLUE) >= 40, "the noise curve is drawn"
    assert max(coloured_pixels(page, noise, colour) for colour in THRESHOLD_COLOURS) >= 10, "its threshold"
    # A viewer may not simulate, and is told why.
    expect(page.locator(".simulate button")).to_be_disabled()
    expect(page.locator(".simulate-refused")).to_contain_text("needs the developer role; you are viewer")
    screenshot(page, screenshots, "simulations")
    with page.expect_download() as download:
        page.locator(".report-pdf button").click()
    assert download.value.suggested_filename == f"simulation-{second['id']}.en.pdf"
    assert Path(download.value.path()).read_bytes().startswith(b"%PDF")

    page.locator(".simulation-tabs .bk-tab", has_text="Compared with another version").click()
    table = page.locator(".simulation-comparison")
    expect(table.locator("tr[data-condition='clean']")).to_be_visible()
    expect(table).to_contain_text(f"#{first['id']} {MODEL} v1")
    expect(table.locator("tr[data-tone='worse']", has_text="beyond the tolerance").first).to_be_visible()
    expect(page.locator(".comparison-curves.family-epsilon.sides-2 canvas").first).to_be_visible()
    assert wait_drawn(page, ".comparison-curves.family-epsilon", CURVE_BLUE) >= 40
    screenshot(page, screenshots, "simulations-comparison")

    # The LLM simulation: each suite's attack success rate and the probes that hit.
    page = open_simulations(page, platform, f"simulation={probed['id']}&lang=en")
    expect(page.locator("#simulation-title")).to_contain_text(f"Simulation {probed['id']}: llm_safety@1 against http")
    page.locator(".simulation-tabs .bk-tab", has_text="Probes").click()
    expect(page.locator(".probe-suites tbody tr")).to_have_count(3)
    hits = sum(1 for probe in probed["result"]["probes"] if probe["hit"])
    expect(page.locator(".probe-hit")).to_have_count(min(hits, 40))
    screenshot(page, screenshots, "simulations-probes")

    # The templates: the library's and the project's, a template's YAML on selection.
    page.locator(".simulation-page-tabs .bk-tab", has_text="Scenario templates").click()
    templates = page.locator(".table-simulation-templates .tabulator-row")
    expect(templates.filter(has_text="image_robustness")).to_have_count(2)  # and its black-box variant
    templates.filter(has_text=TEMPLATE).locator('[tabulator-field="template"]').click()
    expect(page.locator(".template-yaml")).to_contain_text("def simulate(model, features, labels)")
    expect(page.locator(".template-detail")).to_contain_text("extends custom")
    screenshot(page, screenshots, "simulations-templates")


def test_the_gallery_shows_the_adversarial_examples(platform: RunningPlatform, simulated: dict[str, dict[str, Any]],
                                                    bob_page: Page, screenshots: Path) -> None:
    if "image" not in simulated:
        pytest.skip("notebooks/simulate/image_robustness.ipynb is not in this checkout: no image simulation ran")
    image = simulated["image"]
    page = open_simulations(bob_page, platform, f"simulation={image['id']}&lang=en")
    expect(page.locator(".simulation-curves.family-epsilon.series-2 canvas").first).to_be_visible()
    assert wait_drawn(page, ".simulation-curves.family-epsilon", CURVE_BLUE) >= 40, "FGSM, beside PGD"
    for corruption in ("gaussian_noise", "blur", "brightness", "contrast", "jpeg"):
        expect(page.locator(f".simulation-curves.family-{corruption} canvas").first).to_be_visible()
    screenshot(page, screenshots, "simulations-image")
    page.locator(".simulation-tabs .bk-tab", has_text="Gallery").click()
    examples = page.locator(".gallery-example")
    expect(examples.first).to_be_visible()
    shown = examples.count()
    assert 0 < shown <= 8
    page.wait_for_function("() => [...document.querySelectorAll('.gallery-example img')].every("
                           "image => image.complete && image.naturalWidth >= 8)", timeout=PAGE_TIMEOUT_MS)
    assert page.locator(".gallery-example img").count() == 2 * shown
    screenshot(page, screenshots, "simulations-gallery")


def test_the_page_reads_chinese_for_a_chinese_browser(platform: RunningPlatform,
                                                      simulated: dict[str, dict[str, Any]], chinese_bob: Page,
                                                      screenshots: Path) -> None:
    page = open_simulations(chinese_bob, platform, f"simulation={simulated['v2']['id']}")
    expect(page.locator("#nav-simulations")).to_have_text("仿真")
    assert page.title() == "AITIP · 仿真"
    expect(page.locator(".table-simulations .tabulator-col-title", has_text="模型或端点")).to_be_visible()
    expect(page.locator(".simulation-verdict")).to_contain_text("未通过：有阈值或回归检查未满足。")
    expect(page.locator(".simulation-tabs .bk-tab", has_text="结论与曲线")).to_be_visible()
    expect(page.locator(".simulate-refused")).to_contain_text("需要开发者角色")
    expect(page.locator(".simulation-checks")).to_contain_text("阈值")
    assert wait_drawn(page, ".simulation-curves.family-epsilon", CURVE_BLUE) >= 40
    screenshot(page, screenshots, "simulations-verdict-zh")
    # A shipped template's title and description in Chinese; the project's own as its author wrote them.
    page.locator(".simulation-page-tabs .bk-tab", has_text="场景模板").click()
    templates = page.locator(".table-simulation-templates .tabulator-row")
    templates.filter(has_text="llm_safety").locator('[tabulator-field="template"]').click()
    expect(page.locator(".template-detail h4")).to_contain_text("llm_safety@1 · 大语言模型安全")
    expect(page.locator(".template-detail")).to_contain_text("向 HTTP 聊天端点")
    templates.filter(has_text=TEMPLATE).locator('[tabulator-field="template"]').click()
    expect(page.locator(".template-detail h4")).to_contain_text("Digits under noise and FGSM")
    screenshot(page, screenshots, "simulations-templates-zh")


def test_a_developer_is_told_what_the_platform_refused_then_simulates_and_sees_the_verdict(
        platform: RunningPlatform, simulated: dict[str, dict[str, Any]], developer_page: Page,
        screenshots: Path) -> None:
    page = open_simulations(developer_page, platform, "lang=en")
    listed = rows(page).count()
    simulate_button = page.locator(".simulate button")
    expect(simulate_button).to_be_enabled()
    # An LLM template without an endpoint: the platform's 422, said as it said it, and the field it named.
    page.locator(".simulate-template select").select_option(label="llm_safety@1 · library · llm")
    expect(page.locator(".simulate-uri input")).to_be_visible()
    expect(page.locator(".simulate-model")).to_be_hidden()
    simulate_button.click()
    expect(page.locator(".aitip-error")).to_contain_text("Could not simulate llm_safety@1 against an endpoint")
    expect(page.locator(".aitip-error")).to_contain_text("probes an LLM endpoint: describe it")
    expect(page.locator(".simulate-problems")).to_contain_text("endpoint: required for an llm template")
    screenshot(page, screenshots, "simulations-refused")

    page.locator(".simulate-template select").select_option(label=f"{TEMPLATE}@1 · project · custom")
    expect(page.locator(".simulate-model select")).to_be_visible()
    page.locator(".simulate-model select").select_option(label=MODEL)
    page.locator(".simulate-version select").select_option(label="v1")
    simulate_button.click()
    expect(page.locator(".aitip-info")).to_contain_text(f"({TEMPLATE}@1) started")
    expect(page.locator(".aitip-error")).to_have_count(0)
    expect(rows(page)).to_have_count(listed + 1)
    newest = rows(page).nth(0)
    expect(newest.locator('[tabulator-field="target"]')).to_have_text(f"{MODEL} v1")
    expect(newest.locator('[tabulator-field="trigger"]')).to_have_text("started by hand")
    # The page follows it while it runs: its verdict appears without a reload.
    expect(page.locator(".simulation-verdict[data-state='passed']")).to_be_visible(timeout=JUDGED_MS)
    expect(newest.locator(".simulation-state[data-state='passed']")).to_be_visible()
    expect(page.locator(".report-html button")).to_be_enabled(timeout=JUDGED_MS)
    assert wait_drawn(page, ".simulation-curves.family-epsilon", CURVE_BLUE) >= 40
    screenshot(page, screenshots, "simulations-simulated")
