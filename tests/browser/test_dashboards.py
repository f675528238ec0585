"""The dashboards in a real browser, through the real hub: sign-in, each page against the API, run
comparison, cancelling as a job's owner and being refused as a viewer, and the same pages inside
JupyterLab through jupyter-server-proxy. Every page leaves a screenshot."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlparse

import pytest

from tests.browser.conftest import MODEL, PAGE_TIMEOUT_MS, PROJECT, TRAINING_PARAMETERS, open_dashboard, screenshot
from tests.support.notebooks import notebook
from tests.support.platform import RunningPlatform

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

JOB_STATES = ("queued", "starting", "running", "succeeded", "failed", "cancelled", "timed_out")
TICKER = notebook("import time\nfor tick in range(1200):\n    print('tick', tick, flush=True)\n    time.sleep(0.5)")


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def start_ticker(platform: RunningPlatform, token: str) -> int:
    """A job that prints a line every half second until cancelled; returns once it runs."""
    with platform.api(token) as api:
        response = api.post("jobs", json={"project": PROJECT, "notebook": TICKER, "notebook_name": "ticker.ipynb",
                                          "timeout_seconds": 900})
        assert response.status_code == 201, response.text
    job_id = int(response.json()["id"])
    platform.wait_for_job(token, job_id, {"running"}, timeout=120)
    return job_id


def cell(row: Any, field: str) -> str:
    """A Tabulator cell's text, by its field."""
    return str(row.locator(f'[tabulator-field="{field}"]').inner_text()).strip()


def grid_rows(page: Page, table: str) -> Any:
    """The rows of a Bokeh DataTable (SlickGrid) with the class ``table-<table>``."""
    return page.locator(f".table-{table} .slick-row")


def grid_row(page: Page, table: str, first_cell: str) -> Any:
    exact = re.compile(rf"^\s*{re.escape(first_cell)}\s*$")
    return grid_rows(page, table).filter(has=page.locator(".slick-cell", has_text=exact))


def grid_cell(page: Page, table: str, row: Any, column: str) -> str:
    """A SlickGrid cell's text by its column's header; the grid draws only the columns in view, so
    it is scrolled to the column first."""
    headers = page.locator(f".table-{table} .slick-header-column")
    index = headers.all_inner_texts().index(column)
    left = headers.nth(index).evaluate("element => element.offsetLeft")
    page.locator(f".table-{table} .slick-viewport").first.evaluate("(viewport, x) => { viewport.scrollLeft = x }",
                                                                    left)
    target = row.locator(f".slick-cell.l{index}")
    target.wait_for(state="attached")
    return str(target.inner_text()).strip()


def test_the_dashboards_send_strangers_to_the_hub_login(browser: Browser, platform: RunningPlatform,
                                                        people: dict[str, str]) -> None:
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{platform.dashboards_url}/overview")
        page.wait_for_url(re.compile(r"/hub/login"), timeout=PAGE_TIMEOUT_MS)
    finally:
        context.close()


def test_the_viewers_own_token_reaches_the_platform(platform: RunningPlatform, people: dict[str, str],
                                                    ann_page: Page, screenshots: Path) -> None:
    """Signing in at the hub gives Panel an OAuth token scoped to the platform service; the page
    shows the identity the platform API answered ``me`` with."""
    page = open_dashboard(ann_page, platform, "overview")
    expect(page.locator("#viewer")).to_have_text("signed in as ann")
    with platform.hub_api(people["ann"]) as hub:
        tokens = hub.get("users/ann/tokens").json()["api_tokens"]
    issued = [token for token in tokens if "dashboards" in (token.get("oauth_client") or "")]
    assert issued, [token.get("oauth_client") for token in tokens]
    assert any("access:services!service=aitip" in token["scopes"] for token in issued), issued
    assert not any("admin:users" in scope or scope == "self" for token in issued for scope in token["scopes"])


def test_overview_counts_jobs_as_the_api_does(platform: RunningPlatform, people: dict[str, str],
                                              trained: list[dict[str, Any]], ann_page: Page,
                                              screenshots: Path) -> None:
    page = open_dashboard(ann_page, platform, "overview")
    page.wait_for_selector("#job-counts")
    with platform.api(people["ann"]) as api:
        expected = {state: api.get("jobs", params={"state": state, "limit": 1}).json()["total"]
                    for state in JOB_STATES}
        now = api.get("resources/now")
    shown = {state: int(page.locator(f"#count-{state}").inner_text()) for state in JOB_STATES}
    assert shown == expected
    assert shown["succeeded"] >= len(trained)
    recent_ids = {cell(row, "id") for row in page.locator(".table-recent .tabulator-row").all()}
    assert {str(job["id"]) for job in trained} <= recent_ids
    resources = page.locator("#resources").inner_text()
    if now.status_code in (404, 503):
        assert "no resource data" in resources
    else:
        assert f"of {now.json()['host']['cpu_count']} cores" in resources
        if not now.json()["gpu_available"]:
            assert "no GPU" in resources
    screenshot(page, screenshots, "overview")


def test_jobs_page_and_a_job_page_match_the_api(platform: RunningPlatform, people: dict[str, str],
                                                trained: list[dict[str, Any]], ann_page: Page,
                                                screenshots: Path) -> None:
    page = open_dashboard(ann_page, platform, f"jobs?project={PROJECT}")
    page.wait_for_selector(".table-jobs .tabulator-row")
    with platform.api(people["ann"]) as api:
        listing = api.get("jobs", params={"project": PROJECT}).json()
    assert page.locator("#jobs-total").inner_text() == str(listing["total"])
    shown = {cell(row, "id"): cell(row, "state") for row in page.locator(".table-jobs .tabulator-row").all()}
    assert shown == {str(job["id"]): job["state"] for job in listing["items"][:20]}
    screenshot(page, screenshots, "jobs")

    job = trained[1]
    page = open_dashboard(ann_page, platform, f"jobs?job={job['id']}")
    expect(page.locator("#job-state .job-state")).to_have_attribute("data-state", "succeeded")
    parameters = {cell(row, "parameter"): cell(row, "value")
                  for row in page.locator(".table-parameters .tabulator-row").all()}
    assert parameters == {"epochs": "3", "learning_rate": "0.003", "model_name": f'"{MODEL}"'}
    history = [cell(row, "state") for row in page.locator(".table-history .tabulator-row").all()]
    assert history[0] == "queued" and history[-1] == "succeeded" and "running" in history
    expect(page.locator("#job-log")).to_contain_text("epoch   3")
    with page.expect_download() as download:
        page.locator("button", has_text="Executed notebook").click()
    executed = Path(download.value.path()).read_text()
    assert '"nbformat"' in executed and "epoch   3" in executed
    screenshot(page, screenshots, "job")


def test_a_job_runs_again_from_its_page_with_what_was_changed(platform: RunningPlatform, people: dict[str, str],
                                                              trained: list[dict[str, Any]], ann_page: Page,
                                                              bob_page: Page, screenshots: Path) -> None:
    """The card's fields hold the job's values; a viewer is told the role it takes; ann changes two fields and
    the new job runs with those changed and the rest as the job had it (no model registered: model_name "")."""
    job = trained[0]
    page = open_dashboard(bob_page, platform, f"jobs?job={job['id']}")
    page.locator(".rerun-form .card-header").first.click()
    expect(page.locator(".rerun-refused")).to_contain_text(f"Running a job of {PROJECT} again needs the developer "
                                                           "role; you are viewer")
    expect(page.locator(".rerun-job button")).to_be_disabled()

    page = open_dashboard(ann_page, platform, f"jobs?job={job['id']}")
    page.locator(".rerun-form .card-header").first.click()
    epochs = page.locator(".parameter-epochs input")
    expect(epochs).to_have_value(str(job["parameters"]["epochs"]))
    expect(page.locator(".parameter-model_name input")).to_have_value(MODEL)
    epochs.fill("1")
    epochs.press("Tab")
    page.locator(".parameter-model_name input").fill("")
    page.locator(".parameter-model_name input").press("Tab")
    screenshot(page, screenshots, "job-rerun-form")
    page.locator(".rerun-job button").click()
    expect(page.locator(".aitip-info")).to_contain_text(re.compile(rf"Job {job['id']} runs again as job \d+"))
    with platform.api(people["ann"]) as api:
        listing = api.get("jobs", params={"project": PROJECT, "limit": 100}).json()["items"]
    again_id = max(item["id"] for item in listing if item["rerun_of"] == job["id"])
    expect(page.locator(".aitip-info")).to_contain_text(f"Job {job['id']} runs again as job {again_id} (")
    expect(page.locator("#job-title")).to_contain_text(f"Job {again_id}")
    ended = platform.wait_for_job(people["ann"], again_id, {"succeeded", "failed", "cancelled", "timed_out"})
    assert ended["state"] == "succeeded", ended["reason"]
    assert ended["rerun_of"] == job["id"] and ended["notebook_sha256"] == job["notebook_sha256"]
    assert ended["parameters"] == {**job["parameters"], "epochs": 1, "model_name": ""}
    expect(page.locator(".job-view")).to_contain_text(f"job {job['id']}")  # rerun of
    screenshot(page, screenshots, "job-rerun")


def runs_row(page: Page, run_name: str) -> Any:
    """A row of the Experiments page's runs table (a Tabulator since it gained header filters, frozen
    and picked columns), by the run's name."""
    exact = re.compile(rf"^\s*{re.escape(run_name)}\s*$")
    return page.locator(".table-runs .tabulator-row").filter(
        has=page.locator('[tabulator-field="run"]', has_text=exact))


def test_experiments_page_shows_runs_with_the_apis_metrics(platform: RunningPlatform, people: dict[str, str],
                                                           trained: list[dict[str, Any]], ann_page: Page,
                                                           screenshots: Path) -> None:
    page = open_dashboard(ann_page, platform, f"experiments?project={PROJECT}")
    page.locator(".table-runs .tabulator-row").first.wait_for(state="visible")
    with platform.api(people["ann"]) as api:
        runs = api.get(f"projects/{PROJECT}/runs").json()["runs"]
    assert page.locator("#runs-count").inner_text() == str(len(runs))
    assert {run["job_id"] for run in runs} >= {job["id"] for job in trained}
    page.wait_for_selector(".runs-chart canvas")
    assert page.locator(".runs-chart.empty").count() == 0, "the best runs' curves are drawn on first load"
    screenshot(page, screenshots, "experiments")
    for run in runs:
        if run["job_id"] not in {job["id"] for job in trained}:
            continue
        assert run["run_name"] == f"digits_sklearn · job {run['job_id']}", "named after the notebook and job"
        row = runs_row(page, run["run_name"])
        assert cell(row, "job") == str(run["job_id"])
        assert cell(row, "param.epochs") == run["params"]["epochs"]
        # The first metric shown by default (the columns that fit the window; the picker adds the others).
        assert float(cell(row, "metric.final_test_accuracy")) == pytest.approx(run["metrics"]["final_test_accuracy"],
                                                                               rel=1e-3)


def test_compare_two_runs(platform: RunningPlatform, people: dict[str, str], trained: list[dict[str, Any]],
                          ann_page: Page, screenshots: Path) -> None:
    """Ticking runs compares them at once (the Compare button is gone): curves, and the Differences tab."""
    with platform.api(people["ann"]) as api:
        runs = {run["job_id"]: run for run in api.get(f"projects/{PROJECT}/runs").json()["runs"]}
    picked = [runs[job["id"]] for job in trained]
    page = open_dashboard(ann_page, platform, f"experiments?project={PROJECT}&compare={picked[0]['run_id']}")
    page.wait_for_selector(".runs-chart.curves-1")
    runs_row(page, picked[1]["run_name"]).locator("input[type=checkbox]").click()
    page.wait_for_selector(".runs-chart.curves-2")
    page.locator(".experiment-tabs .bk-tab", has_text="Differences").click()
    grid_rows(page, "param-diff").first.wait_for(state="visible")
    for name in ("epochs", "learning_rate"):
        row = grid_row(page, "param-diff", name)
        assert grid_cell(page, "param-diff", row, "differs") == "yes"
        for run in picked:
            assert grid_cell(page, "param-diff", row, run["run_name"]) == run["params"][name]
    assert grid_cell(page, "param-diff", grid_row(page, "param-diff", "model_name"), "differs") == ""
    expect(page.locator("#comparison-title")).to_contain_text("Comparing 2 runs")
    shared = parse_qs(urlparse(page.url).query)["compare"][0]
    assert set(shared.split(",")) == {run["run_id"] for run in picked}, "the address shares the comparison"
    screenshot(page, screenshots, "experiments-compare")


def test_models_page_shows_versions_and_their_lineage(platform: RunningPlatform, people: dict[str, str],
                                                      trained: list[dict[str, Any]], ann_page: Page,
                                                      screenshots: Path) -> None:
    page = open_dashboard(ann_page, platform, f"models?project={PROJECT}")
    page.wait_for_selector(".table-versions .tabulator-row")
    with platform.api(people["ann"]) as api:
        (model,) = [m for m in api.get(f"projects/{PROJECT}/models").json()["models"] if m["name"] == MODEL]
    assert len(model["versions"]) == len(TRAINING_PARAMETERS)
    rows = {cell(row, "version"): row for row in page.locator(".table-versions .tabulator-row").all()}
    assert set(rows) == {str(version["version"]) for version in model["versions"]}
    for version in model["versions"]:
        row = rows[str(version["version"])]
        assert cell(row, "model") == MODEL
        assert cell(row, "run") == version["run_id"]
        assert cell(row, "job") == str(version["job_id"])
    latest = max(version["version"] for version in model["versions"])
    expect(page.locator(".latest-version")).to_have_text(f"v{latest}")
    assert page.locator(".lineage-chart canvas").count() >= 1
    screenshot(page, screenshots, "models")


def test_api_errors_become_readable_banners(platform: RunningPlatform, people: dict[str, str], ann_page: Page,
                                            screenshots: Path) -> None:
    page = open_dashboard(ann_page, platform, f"experiments?project={PROJECT}&filter=metrics.loss%20%3E%3E%201")
    expect(page.locator(".aitip-error")).to_contain_text(f"Could not list the runs of {PROJECT}")
    expect(page.locator(".aitip-note")).to_contain_text("Filter syntax (MLflow): metrics.accuracy > 0.9")
    screenshot(page, screenshots, "experiments-bad-filter")


def test_the_owner_follows_the_live_log_and_cancels(platform: RunningPlatform, people: dict[str, str],
                                                    ann_page: Page, screenshots: Path) -> None:
    job_id = start_ticker(platform, people["ann"])
    try:
        page = open_dashboard(ann_page, platform, f"jobs?job={job_id}")
        expect(page.locator("#job-state .job-state")).to_have_attribute("data-state", "running")
        shown_at_load = page.locator("#job-log").inner_text()
        # Lines printed after the page was served arrive over the platform's event stream.
        later = int(re.findall(r"tick (\d+)", shown_at_load)[-1]) + 4 if "tick" in shown_at_load else 4
        expect(page.locator("#job-log")).to_contain_text(f"tick {later}", timeout=PAGE_TIMEOUT_MS)
        screenshot(page, screenshots, "job-running")
        cancel = page.locator(".cancel-job button")
        expect(cancel).to_be_enabled()
        cancel.click()
        expect(page.locator(".aitip-info")).to_contain_text(f"Job {job_id}: cancellation requested")
        assert platform.wait_for_job(people["ann"], job_id, {"cancelled"}, timeout=90)["state"] == "cancelled"
        expect(page.locator("#job-state .job-state")).to_have_attribute("data-state", "cancelled")
        expect(cancel).to_be_disabled()
        screenshot(page, screenshots, "job-cancelled")
    finally:
        with platform.api(people["ann"]) as ann:
            ann.post(f"jobs/{job_id}/cancel")


def test_a_viewer_may_not_cancel(platform: RunningPlatform, people: dict[str, str], bob_page: Page,
                                 screenshots: Path) -> None:
    job_id = start_ticker(platform, people["ann"])
    try:
        page = open_dashboard(bob_page, platform, f"jobs?job={job_id}")
        expect(page.locator("#viewer")).to_have_text("signed in as bob")
        cancel = page.locator(".cancel-job button")
        expect(cancel).to_be_disabled()
        expect(page.locator("#job-permission")).to_contain_text("You may not cancel or retry this job")
        cancel.click(force=True)
        screenshot(page, screenshots, "job-viewer")

        # A page opened while bob was a maintainer offers the button; the platform still decides.
        with platform.api(people["ann"]) as ann:
            assert ann.patch(f"projects/{PROJECT}/members/users/bob", json={"role": "maintainer"}).status_code == 200
            try:
                page = open_dashboard(bob_page, platform, f"jobs?job={job_id}")
                expect(cancel).to_be_enabled()
            finally:
                assert ann.patch(f"projects/{PROJECT}/members/users/bob", json={"role": "viewer"}).status_code == 200
        cancel.click()
        expect(page.locator(".aitip-error")).to_contain_text(f"You may not cancel job {job_id}")
        screenshot(page, screenshots, "job-viewer-refused")
        time.sleep(1)
        with platform.api(people["ann"]) as ann:
            job = ann.get(f"jobs/{job_id}").json()
        assert job["state"] == "running" and not job["cancel_requested"]
    finally:
        with platform.api(people["ann"]) as ann:
            ann.post(f"jobs/{job_id}/cancel")
        platform.wait_for_job(people["ann"], job_id, {"cancelled"}, timeout=90)


def test_the_dashboards_inside_jupyterlab(platform: RunningPlatform, people: dict[str, str],
                                          trained: list[dict[str, Any]], ann_page: Page, screenshots: Path) -> None:
    """jupyter-server-proxy starts the same pages in ann's server; they call the platform as ann."""
    platform.spawn("ann", people["ann"])
    ann_page.goto(f"{platform.url}/user/ann/aitip-dashboards/jobs?project={PROJECT}")
    ann_page.wait_for_selector("canvas", timeout=150_000)
    expect(ann_page.locator("#viewer")).to_have_text("signed in as ann")
    with platform.api(people["ann"]) as api:
        total = api.get("jobs", params={"project": PROJECT}).json()["total"]
    assert ann_page.locator("#jobs-total").inner_text() == str(total)
    screenshot(ann_page, screenshots, "jupyterlab-dashboards")


def test_datasets_page_shows_versions_quality_diff_lineage_and_annotations(
        platform: RunningPlatform, people: dict[str, str], ann_page: Page, screenshots: Path) -> None:
    import httpx

    def register(content: bytes) -> dict[str, Any]:
        response = httpx.post(f"{platform.url}/services/aitip/api/aitip/v1/projects/{PROJECT}/datasets/scores/versions",
                              params={"filename": "scores.csv"}, content=content, timeout=120,
                              headers={"Authorization": f"token {people['ann']}"})
        assert response.status_code == 201, response.text
        return response.json()

    register(b"id,score,label\n1,0.5,a\n2,0.7,b\n3,0.9,a\n")
    latest = register(b"id,score,label,extra\n1,0.5,a,x\n2,0.7,b,y\n3,0.9,a,z\n4,0.1,b,w\n")
    with platform.api(people["ann"]) as api:
        task = api.post(f"projects/{PROJECT}/annotations", json={
            "name": "score-check", "dataset": "scores", "labels": ["ok", "bad"], "annotators": ["ann"]})
        assert task.status_code == 201, task.text
    page = open_dashboard(ann_page, platform, f"datasets?project={PROJECT}&dataset=scores")
    page.wait_for_selector(".table-dataset-versions .tabulator-row")
    versions = {cell(row, "version"): row for row in page.locator(".table-dataset-versions .tabulator-row").all()}
    assert set(versions) == {"1", "2"}
    assert cell(versions["2"], "rows") == str(latest["rows"]) == "4"
    expect(page.locator("#dataset-diff")).to_contain_text("v1 → v2")
    expect(page.locator("#dataset-diff")).to_contain_text("extra")
    expect(page.locator("#dataset-lineage")).to_contain_text("No job has read this version yet")
    page.wait_for_selector(".table-annotation-tasks .tabulator-row")  # below the fold: put in once shown
    # The project's tasks: other modules sharing this platform may have made theirs in it too.
    tasks = {cell(row, "task"): row for row in page.locator(".table-annotation-tasks .tabulator-row").all()}
    assert "score-check" in tasks, list(tasks)
    assert cell(tasks["score-check"], "items") == "4"
    assert page.locator("canvas").count() >= 2  # null map and histogram drawn
    screenshot(page, screenshots, "datasets")
