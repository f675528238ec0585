"""Simulation end to end through the real hub: a developer trains a logistic-regression digits classifier, its
evaluation passes and the project's simulation policy attacks it in a sandbox (as the developer's own account,
in a network of its own) with the image-robustness template; the verdict, the security assessment (its PDF
pages looked at as pictures) and the lineage follow; a stricter project template fails the same version."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.evaluation.conftest import TRAINING, digits_csv, training_notebook
from tests.integration.test_evaluation_e2e import kernel_uid, png_size, poll
from tests.support.platform import RunningPlatform

pytestmark = pytest.mark.integration

PROJECT, MODEL = "simulation-e2e", "digits-logistic"
JUDGED = ("passed", "failed", "error")
PICTURES = "simulation-e2e-report-page"
STRICT = {"extends": "image_robustness", "title": "Strict robustness",
          "thresholds": ["accuracy under clean >= 0.9", "accuracy under pgd eps=0.1 >= 0.95"]}


def simulations(api: httpx.Client) -> list[dict[str, Any]]:
    listed = api.get(f"projects/{PROJECT}/simulations", params={"model": MODEL})
    assert listed.status_code == 200, listed.text
    return listed.json()["simulations"]


def judged(api: httpx.Client, simulation_id: int) -> dict[str, Any]:
    def read() -> dict[str, Any]:
        found = api.get(f"projects/{PROJECT}/simulations/{simulation_id}")
        assert found.status_code == 200, found.text
        return found.json()

    return poll(read, lambda s: s["state"] == "error" or (s["state"] in JUDGED and s["has_report"]), 300,
                f"simulation {simulation_id} was not judged and reported")


@pytest.fixture(scope="module")
def simulated(platform: RunningPlatform, people: dict[str, str]) -> Iterator[dict[str, Any]]:
    """ann's project; bob (maintainer) sets how digits-logistic is evaluated and simulated; carol (developer)
    registers the digits table and trains once; the simulation starts by itself after the evaluation."""
    ann, bob, carol = (platform.api(people[name]) for name in ("ann", "bob", "carol"))
    with ann, bob, carol:
        assert ann.post("projects", json={"name": PROJECT}).status_code == 201
        for user, role in (("bob", "maintainer"), ("carol", "developer")):
            assert ann.post(f"projects/{PROJECT}/members", json={"user": user, "role": role}).status_code == 201
        registered = carol.post(f"projects/{PROJECT}/datasets/digits/versions", params={"filename": "digits.csv"},
                                content=digits_csv(), headers={"Content-Type": "application/octet-stream"})
        assert registered.status_code == 201, registered.text
        evaluation_policy = bob.put(f"projects/{PROJECT}/evaluation-policies/{MODEL}", json={
            "dataset": "digits", "thresholds": {"accuracy_score": {"threshold": 0.9, "greater_is_better": True}}})
        assert evaluation_policy.status_code == 200, evaluation_policy.text
        policy = bob.put(f"projects/{PROJECT}/simulation-policies/{MODEL}",
                         json={"template": "image_robustness", "dataset": "digits"})
        assert policy.status_code == 200, policy.text
        job = carol.post("jobs", json={
            "project": PROJECT, "notebook": training_notebook(), "notebook_name": TRAINING.name,
            "parameters": {"dataset": "digits", "model_name": MODEL, "classifier": "logistic"},
            "inputs": [{"dataset": "digits"}]})
        assert job.status_code == 201, job.text
        job = platform.wait_for_job(people["carol"], job.json()["id"], {"succeeded", "failed", "cancelled",
                                                                        "timed_out"}, timeout=150)
        assert job["state"] == "succeeded", (job["reason"], job["failed_cell"])
        started = poll(lambda: simulations(carol), lambda found: bool(found) and found[0]["job_id"] is not None, 300,
                       "no simulation started by itself after the evaluation passed")[0]
        uid = kernel_uid(carol, started["job_id"])
        automatic = judged(carol, started["id"])
        saved = carol.put(f"projects/{PROJECT}/simulation-templates/strict_robustness", json={"document": STRICT})
        assert saved.status_code == 200, saved.text
        strict = carol.post(f"projects/{PROJECT}/simulations", json={
            "template": "strict_robustness", "model": MODEL, "version": 1, "dataset": "digits"})
        assert strict.status_code == 202, strict.text
        yield {"automatic": automatic, "strict": judged(carol, strict.json()["id"]), "kernel_uid": uid,
               "training_job": job}


def test_the_passed_evaluation_started_the_simulation_which_judged_the_version(simulated: dict[str, Any]) -> None:
    automatic = simulated["automatic"]
    assert automatic["trigger"].startswith("evaluation:") and automatic["created_by"] == "carol"
    assert automatic["state"] == "passed", (automatic["reason"], automatic["error"])
    assert (automatic["model_version"], automatic["dataset"], automatic["dataset_version"]) == (1, "digits", 1)
    assert automatic["model_run_id"] == simulated["training_job"]["mlflow_run_id"]
    result = automatic["result"]
    assert result["rows"] == 450 and result["clean"] > 0.9
    pgd = {row["value"]: row["metric"] for row in result["conditions"] if row["condition"] == "pgd"}
    fgsm = {row["value"]: row["metric"] for row in result["conditions"] if row["condition"] == "fgsm"}
    assert sorted(pgd) == sorted(fgsm) == [0.05, 0.1, 0.2]
    assert pgd[0.2] < pgd[0.1] < pgd[0.05] < result["clean"], pgd
    assert result["examples"], "a gallery of adversarial examples"
    assert all(check["passed"] for check in automatic["verdict"]["checks"]), automatic["verdict"]


def test_a_stricter_project_template_fails_the_same_version_and_says_why(simulated: dict[str, Any]) -> None:
    strict = simulated["strict"]
    assert (strict["template_name"], strict["template_source"], strict["template_version"]) == (
        "strict_robustness", "project", 1)
    assert strict["state"] == "failed", strict
    (failing,) = [check for check in strict["verdict"]["checks"] if not check["passed"]]
    assert failing["threshold"] == "accuracy under pgd eps=0.1 >= 0.95" and failing["value"] < 0.95
    assert "accuracy under pgd eps=0.1 >= 0.95" in strict["reason"]


def test_the_simulation_ran_sandboxed_as_the_developers_account(platform: RunningPlatform, people: dict[str, str],
                                                               simulated: dict[str, Any]) -> None:
    carol = pwd.getpwnam("aitip-carol")
    assert simulated["kernel_uid"] in (None, carol.pw_uid)
    with platform.api(people["carol"]) as api:
        job = api.get(f"jobs/{simulated['automatic']['job_id']}").json()
    assert job["owner"] == "carol" and job["sandbox"]["models"] == [{"name": MODEL, "version": 1}]
    assert job["sandbox"]["egress"] == [] and job["tags"]["simulated_model"] == f"{MODEL}/1"


def test_the_simulation_is_evidence_in_the_lineage(platform: RunningPlatform, people: dict[str, str],
                                                  simulated: dict[str, Any]) -> None:
    node = f"simulation:{simulated['automatic']['id']}"
    with platform.api(people["bob"]) as api:
        graph = api.get("lineage", params={"node": f"model:{MODEL}@1", "depth": 1})
    assert graph.status_code == 200, graph.text
    edges = {(e["source"], e["target"], e["relation"]) for e in graph.json()["edges"]}
    assert (f"model:{MODEL}@1", node, "simulated_by") in edges, edges


def test_the_security_assessment_downloads_and_its_pdf_pages_are_looked_at(
        platform: RunningPlatform, people: dict[str, str], simulated: dict[str, Any], tmp_path: Path) -> None:
    report = f"projects/{PROJECT}/simulations/{simulated['strict']['id']}/report"
    with platform.api(people["bob"]) as api:
        html = api.get(report, headers={"Accept-Language": "zh-CN"})
        pdf = api.get(report, params={"format": "pdf"}, headers={"Accept-Language": "en"})
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html"), html.text[:300]
    assert MODEL in html.text and "<svg" in html.text and "pgd" in html.text
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF"), pdf.text[:300]
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (poppler-utils) is not installed: the PDF's pages cannot be drawn as pictures")
    source = tmp_path / "assessment.pdf"
    source.write_bytes(pdf.content)
    subprocess.run(["pdftoppm", "-png", "-r", "60", str(source), str(tmp_path / "page")], check=True, timeout=60)
    pages = sorted(tmp_path.glob("page-*.png"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
    assert len(pages) >= 2, "the assessment has its verdict, curves and gallery on more than one page"
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
