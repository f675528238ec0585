"""Evaluation end to end through the real hub: a developer's training job registers a version and its
evaluation starts by itself, as the developer's own account; the next version is judged against it; both
reports download through the hub's proxy, and the PDF's pages are looked at as pictures."""

from __future__ import annotations

import os
import pwd
import shutil
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.evaluation.conftest import TRAINING, digits_csv, training_notebook
from tests.support.platform import RunningPlatform

pytestmark = pytest.mark.integration

PROJECT, MODEL = "evaluation-e2e", "digits-mlp"
THRESHOLDS = {"accuracy_score": {"threshold": 0.8, "greater_is_better": True},
              "f1_score": {"min_absolute_change": 0.001, "greater_is_better": True}}
JUDGED = ("passed", "failed", "error")
PICTURES = "evaluation-e2e-report-page"


def poll(read: Any, done: Any, timeout: float, what: str, interval: float = 0.2) -> Any:
    """``read()`` until ``done`` holds of it; past the deadline, fails with its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {timeout} s; last seen: {value}")
        time.sleep(interval)


def kernel_uid(api: httpx.Client, job_id: int) -> int | None:
    """The uid the job's kernel ran cells as, read from /proc once its first cell started (the drop to the
    owner's account runs before it); None when the kernel was gone before it could be looked at."""
    def seen() -> list[dict[str, Any]]:
        return api.get(f"jobs/{job_id}/events", params={"limit": 1000}).json()["items"]

    def started_or_ended(events: list[dict[str, Any]]) -> bool:
        return any(e["kind"] == "cell_started" for e in events) or any(
            e["kind"] == "state" and e["data"].get("state") in ("succeeded", "failed", "cancelled", "timed_out")
            for e in events)

    events = poll(seen, started_or_ended, 120, f"job {job_id}'s first cell did not start", interval=0.05)
    pids = [e["data"]["kernel_pid"] for e in events if e["kind"] == "state" and e["data"].get("kernel_pid")]
    assert pids, f"job {job_id}'s events name no kernel: {events}"
    try:
        status = Path(f"/proc/{pids[-1]}/status").read_text()
    except FileNotFoundError:
        return None
    real, effective, saved, filesystem = (int(n) for n in next(
        line for line in status.splitlines() if line.startswith("Uid:")).split()[1:])
    assert real == effective == saved == filesystem, status
    return real


def train(api: httpx.Client, epochs: int) -> dict[str, Any]:
    submitted = api.post("jobs", json={
        "project": PROJECT, "notebook": training_notebook(), "notebook_name": TRAINING.name,
        "parameters": {"dataset": "digits", "model_name": MODEL, "epochs": epochs}, "inputs": [{"dataset": "digits"}]})
    assert submitted.status_code == 201, submitted.text
    return submitted.json()


def evaluation_of(api: httpx.Client, training_job: dict[str, Any]) -> dict[str, Any] | None:
    listed = api.get(f"projects/{PROJECT}/evaluations", params={"model": MODEL})
    assert listed.status_code == 200, listed.text
    return next((e for e in listed.json()["evaluations"] if e["trigger"] == f"job:{training_job['id']}"), None)


def run_and_evaluate(platform: RunningPlatform, developer: httpx.Client, token: str,
                     epochs: int) -> dict[str, Any]:
    """A training job, the evaluation it started by itself (judged, its report written), and the uid its
    evaluation's kernel ran as."""
    job = train(developer, epochs)
    job = platform.wait_for_job(token, job["id"], {"succeeded", "failed", "cancelled", "timed_out"}, timeout=150)
    assert job["state"] == "succeeded", (job["reason"], job["failed_cell"])
    started = poll(lambda: evaluation_of(developer, job), lambda e: e is not None and e["job_id"] is not None, 30,
                   f"no evaluation started by itself after training job {job['id']}")
    uid = kernel_uid(developer, started["job_id"])
    judged = poll(lambda: evaluation_of(developer, job), lambda e: e["state"] in JUDGED and e["has_report"], 150,
                  f"the evaluation after training job {job['id']} was not judged and reported")
    detail = developer.get(f"projects/{PROJECT}/evaluations/{judged['id']}")
    assert detail.status_code == 200, detail.text
    return {"training_job": job, "evaluation": detail.json(), "kernel_uid": uid}


@pytest.fixture(scope="module")
def evaluated(platform: RunningPlatform, people: dict[str, str]) -> Iterator[dict[str, Any]]:
    """ann's project; carol (developer) registers the digits table and trains twice, bob (maintainer) says how
    digits-mlp is judged. Everyone through the hub's proxy with their own hub token."""
    ann, bob, carol = (platform.api(people[name]) for name in ("ann", "bob", "carol"))
    with ann, bob, carol:
        assert ann.post("projects", json={"name": PROJECT}).status_code == 201
        for user, role in (("bob", "maintainer"), ("carol", "developer")):
            added = ann.post(f"projects/{PROJECT}/members", json={"user": user, "role": role})
            assert added.status_code == 201, added.text
        registered = carol.post(f"projects/{PROJECT}/datasets/digits/versions", params={"filename": "digits.csv"},
                                content=digits_csv(), headers={"Content-Type": "application/octet-stream"})
        assert registered.status_code == 201, registered.text
        policy = bob.put(f"projects/{PROJECT}/evaluation-policies/{MODEL}", json={
            "dataset": "digits", "label_column": "label", "thresholds": THRESHOLDS, "baseline": "previous"})
        assert policy.status_code == 200, policy.text
        assert policy.json()["automatic"] is True and policy.json()["updated_by"] == "bob"
        first = run_and_evaluate(platform, carol, people["carol"], epochs=3)
        second = run_and_evaluate(platform, carol, people["carol"], epochs=1)  # a worse model
        yield {"first": first, "second": second}


def test_each_registered_version_is_evaluated_by_itself_and_the_second_against_the_first(
        evaluated: dict[str, Any]) -> None:
    first, second = evaluated["first"]["evaluation"], evaluated["second"]["evaluation"]
    for run in (evaluated["first"], evaluated["second"]):
        evaluation, job = run["evaluation"], run["training_job"]
        assert (evaluation["trigger"], evaluation["created_by"]) == (f"job:{job['id']}", "carol")
        assert evaluation["model_run_id"] == job["mlflow_run_id"]
        assert (evaluation["dataset"], evaluation["dataset_version"]) == ("digits", 1)
        assert evaluation["result"]["data"]["rows"] == 450  # the test split only
    assert (first["model_version"], second["model_version"]) == (1, 2)
    assert first["state"] == "passed" and first["baseline_version"] is None, first["verdict"]
    assert first["metrics"]["accuracy_score"] > 0.8
    # One epoch against three: F1 fell, so the change check fails and the verdict with it, saying by how much.
    assert second["baseline_version"] == 1
    assert second["baseline_metrics"]["f1_score"] == pytest.approx(first["metrics"]["f1_score"])
    assert second["state"] == "failed" and second["verdict"]["passed"] is False, second["verdict"]
    (failed,) = [reason for reason in second["verdict"]["reasons"] if not reason["passed"]]
    assert (failed["metric"], failed["kind"]) == ("f1_score", "absolute_change"), failed
    assert failed["baseline"] == pytest.approx(first["metrics"]["f1_score"]) and failed["required"] == 0.001
    assert failed["candidate"] == pytest.approx(second["metrics"]["f1_score"]) and failed["candidate"] < failed["bound"]


def test_the_evaluation_ran_as_the_developers_account(platform: RunningPlatform, people: dict[str, str],
                                                      evaluated: dict[str, Any]) -> None:
    carol = pwd.getpwnam("aitip-carol")
    seen = [evaluated[key]["kernel_uid"] for key in ("first", "second")]
    assert any(uid is not None for uid in seen), "both evaluation kernels ended before they were looked at"
    assert {uid for uid in seen if uid is not None} == {carol.pw_uid}, seen
    for key in ("first", "second"):
        job_id = evaluated[key]["evaluation"]["job_id"]
        with platform.api(people["carol"]) as api:
            job = api.get(f"jobs/{job_id}").json()
        assert job["owner"] == "carol" and job["state"] == "succeeded", job
        work = platform.home / "job-workspaces" / f"{job_id}.{job['attempt']}" / "work"
        assert work.stat().st_uid == carol.pw_uid  # the kernel's working directory is carol's


def test_the_evaluations_mlflow_run_is_linked_to_the_models_run(platform: RunningPlatform,
                                                                 people: dict[str, str],
                                                                 evaluated: dict[str, Any]) -> None:
    with platform.api(people["bob"]) as api:
        for key in ("first", "second"):
            evaluation = evaluated[key]["evaluation"]
            job = api.get(f"jobs/{evaluation['job_id']}").json()
            run = api.get(f"runs/{job['mlflow_run_id']}")
            assert run.status_code == 200, run.text
            tags = run.json()["tags"]
            assert tags["aitip.tag.evaluated_run"] == evaluation["model_run_id"] \
                == evaluated[key]["training_job"]["mlflow_run_id"]
            assert tags["aitip.tag.evaluated_model"] == f"{MODEL}/{evaluation['model_version']}"
            assert tags["aitip.tag.evaluation"] == str(evaluation["id"])
            assert (tags["aitip.job_id"], tags["aitip.user"]) == (str(job["id"]), "carol")


def download(platform: RunningPlatform, token: str, evaluation_id: int, fmt: str) -> httpx.Response:
    with platform.api(token) as api:
        return api.get(f"projects/{PROJECT}/evaluations/{evaluation_id}/report", params={"format": fmt},
                       headers={"Accept-Language": "en"})


def test_both_reports_download_as_html_and_pdf_through_the_proxy(platform: RunningPlatform,
                                                                 people: dict[str, str],
                                                                 evaluated: dict[str, Any]) -> None:
    for key in ("first", "second"):
        evaluation = evaluated[key]["evaluation"]
        html = download(platform, people["bob"], evaluation["id"], "html")
        assert html.status_code == 200 and html.headers["content-type"].startswith("text/html"), html.text[:300]
        assert MODEL in html.text and "f1_score" in html.text and "<svg" in html.text
        pdf = download(platform, people["bob"], evaluation["id"], "pdf")
        assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
        assert pdf.content.startswith(b"%PDF") and b"%%EOF" in pdf.content[-1024:]


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", path
    return struct.unpack(">II", header[16:24])


def test_the_failed_evaluations_pdf_pages_as_pictures(platform: RunningPlatform, people: dict[str, str],
                                                      evaluated: dict[str, Any], tmp_path: Path) -> None:
    """Each page at 60 dpi (A4: 496 x 702 pixels), copied to $AITIP_SCREENSHOT_DIR when it is set
    (benchmarks/results/screenshots), as the browser tests' screenshots are."""
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (poppler-utils) is not installed: the PDF's pages cannot be drawn as pictures")
    pdf = download(platform, people["carol"], evaluated["second"]["evaluation"]["id"], "pdf")
    assert pdf.status_code == 200, pdf.text[:300]
    source = tmp_path / "report.pdf"
    source.write_bytes(pdf.content)
    subprocess.run(["pdftoppm", "-png", "-r", "60", str(source), str(tmp_path / "page")], check=True, timeout=60)
    pages = sorted(tmp_path.glob("page-*.png"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
    assert pages, "pdftoppm drew no page"
    for page in pages:
        width, height = png_size(page)
        assert abs(width - 496) <= 2 and abs(height - 702) <= 2, (page.name, width, height)
    target = os.environ.get("AITIP_SCREENSHOT_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        for stale in Path(target).glob(f"{PICTURES}*.png"):
            stale.unlink()
        for number, page in enumerate(pages, start=1):
            shutil.copy2(page, Path(target) / f"{PICTURES}{number}.png")
