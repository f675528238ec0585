"""A classifier on a registered image folder, end to end with real jobs, MLflow and the dataset registry: the
digits as PNG class folders whose split is declared by the file list ``splits.csv``; two training jobs of
``notebooks/train/digits_images.ipynb`` each register a version, and each version's evaluation
(``notebooks/evaluate/image_classification.ipynb``) starts by itself, judges only the test files, and the
second is judged against the first. Once with scikit-learn (always) and once with a tiny PyTorch CNN (where
torch is installed)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import mlflow
import pytest

from tests.evaluation.conftest import digits_image_zip, image_training_notebook, wait_job
from tests.server.conftest import TOKENS
from tests.support.operation_calls import fetch
from tests.support.workers import start_worker
from tests.support.requirements import skip_without

pytestmark = pytest.mark.slow  # trained models and jobs: minutes for the file

MODEL = "digits-images"
DATASET = "digits-images"
POLICY = f"projects/alpha/evaluation-policies/{MODEL}"
THRESHOLDS = {"accuracy_score": {"threshold": 0.8, "greater_is_better": True},
              "f1_score": {"min_absolute_change": 0.0001, "greater_is_better": True}}
IMAGES = 1797


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any], tracking_uri: str) -> dict[str, Any]:
    jp_server_config["AitipExtension"]["run_jobs"] = True  # start_worker starts the worker and the controller
    jp_server_config["AitipExtension"]["mlflow_tracking_uri"] = tracking_uri
    return jp_server_config


async def train(api: Any, backend: str, epochs: int) -> dict[str, Any]:
    status, job = await api("POST", "jobs", user="carol", body={
        "project": "alpha", "notebook": image_training_notebook(), "notebook_name": "digits_images.ipynb",
        "parameters": {"dataset": DATASET, "model_name": MODEL, "backend": backend, "epochs": epochs},
        "inputs": [{"dataset": DATASET}]})
    assert status == 201, job
    return await wait_job(api, job["id"])


async def wait_evaluation(api: Any, *, model_version: int, evaluation_id: int | None = None,
                          timeout: float = 300) -> dict[str, Any]:
    """The evaluation of a version (its newest, or ``evaluation_id``) once it is judged and its report written."""
    for _ in range(int(timeout / 0.2)):
        status, listed = await api("GET", "projects/alpha/evaluations", params={"model": MODEL}, user="bob")
        assert status == 200, listed
        found = [e for e in listed["evaluations"] if e["model_version"] == model_version
                 and evaluation_id in (None, e["id"])]
        if found and found[0]["state"] in ("passed", "failed", "error") and found[0]["has_report"]:
            status, detail = await api("GET", f"projects/alpha/evaluations/{found[0]['id']}", user="bob")
            assert status == 200, detail
            return detail
        await asyncio.sleep(0.2)
    raise AssertionError(f"version {model_version} was not evaluated: {listed}")


@pytest.fixture(params=["sklearn", "torch"])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "torch":
        skip_without("torch", "the CNN variant needs torch (pip install -e '.[torch]')")
    return request.param


async def test_an_image_classifier_is_evaluated_on_its_test_files_and_the_next_against_it(
        api: Any, jp_fetch: Any, jp_serverapp: Any, tmp_path: Path, backend: str) -> None:
    archive, test_files = digits_image_zip()
    assert (await api("POST", "projects", body={"name": "alpha"}))[0] == 201
    for user, role in (("bob", "viewer"), ("carol", "developer")):
        assert (await api("POST", "projects/alpha/members", body={"user": user, "role": role}))[0] == 201
    status, version = await api("POST", f"projects/alpha/datasets/{DATASET}/versions", raw=archive,
                                params={"filename": "digits-images.zip"})
    assert status == 201, version
    # The registry keeps the file list beside the class folders: not an image, so not a class or an image counted.
    assert (version["format"], version["schema"]["files"], len(version["schema"]["classes"])) == ("images", IMAGES, 10)
    assert (version["files"], version["quality"]["ignored_files"]) == (IMAGES + 1, 1)

    await start_worker(jp_serverapp)
    status, policy = await api("PUT", POLICY, user="ann", body={
        "dataset": DATASET, "notebook": "image_classification", "thresholds": THRESHOLDS, "baseline": "previous"})
    assert status == 200, policy

    first_job = await train(api, backend, epochs=8)
    assert first_job["state"] == "succeeded", (first_job["reason"], first_job["failed_cell"])
    tracking = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.sqlite'}")
    assert tracking.get_run(first_job["mlflow_run_id"]).data.params["backend"] == backend
    first = await wait_evaluation(api, model_version=1)
    assert first["state"] == "passed", (first["error"], first["verdict"])
    assert (first["trigger"], first["baseline_version"], first["settings"]["notebook"]) == (
        f"job:{first_job['id']}", None, "image_classification")
    assert (first["dataset"], first["dataset_version"]) == (DATASET, 1)
    # Only the files splits.csv puts in the test split, none of them among the files training read.
    data = first["result"]["data"]
    assert (data["rows"], data["total_rows"], data["split"]) == (len(test_files), IMAGES, "test")
    assert len(test_files) == 450
    assert data["overlap"] == {"rows": 0, "with": []} and first["warnings"] == []
    confusion = first["result"]["candidate"]["plots"]["confusion_matrix"]
    assert sum(map(sum, confusion["matrix"])) == len(test_files)
    assert first["metrics"]["accuracy_score"] > 0.8 and first["baseline_metrics"] is None
    assert [b["batch_size"] for b in first["result"]["profile"]["batches"]] == [1, 32]
    assert first["result"]["profile"]["model_size"]["source"] == "path"

    second_job = await train(api, backend, epochs=1)  # a worse model: one epoch
    assert second_job["state"] == "succeeded", (second_job["reason"], second_job["failed_cell"])
    second = await wait_evaluation(api, model_version=2)
    assert (second["trigger"], second["baseline_version"]) == (f"job:{second_job['id']}", 1), second
    assert second["result"]["data"]["rows"] == len(test_files)
    assert second["baseline_metrics"]["accuracy_score"] == pytest.approx(first["metrics"]["accuracy_score"])
    assert second["state"] == "failed" and second["verdict"]["passed"] is False, second["verdict"]
    failed = [(r["metric"], r["kind"]) for r in second["verdict"]["reasons"] if not r["passed"]]
    assert ("f1_score", "absolute_change") in failed, second["verdict"]

    # The same images without a file list: every one is evaluated, and those the model was trained on (the train
    # files of digits-images v1, found by their MD5s) are counted and flagged.
    everything, _ = digits_image_zip(split_file=False)
    status, version = await api("POST", "projects/alpha/datasets/digits-images-all/versions", raw=everything,
                                params={"filename": "digits-images-all.zip"})
    assert status == 201, version
    status, started = await api("POST", "projects/alpha/evaluations", user="carol", body={
        "model": MODEL, "version": 1, "dataset": "digits-images-all"})
    assert status == 202 and started["warnings"] == [], started
    whole = await wait_evaluation(api, model_version=1, evaluation_id=started["id"])
    assert whole["state"] == "passed" and whole["result"]["data"]["rows"] == IMAGES, whole["error"]
    trained_on = IMAGES - len(test_files)
    assert whole["result"]["data"]["overlap"] == {"rows": trained_on, "with": [f"{DATASET}@1"]}
    assert whole["warnings"] == [f"{trained_on} of the {IMAGES} rows evaluated are also in the data the model was "
                                 f"trained on ({DATASET}@1)"], whole["warnings"]

    status, job = await api("GET", f"jobs/{second['job_id']}")
    assert status == 200 and [(i["dataset"], i["version"]) for i in job["inputs"]] == [(DATASET, 1)]
    report = f"projects/alpha/evaluations/{second['id']}/report"
    status, html = await fetch(jp_fetch, "GET", report, token=TOKENS["bob"])
    assert status == 200 and MODEL in html.decode() and "f1_score" in html.decode(), html[:300]
    status, pdf = await fetch(jp_fetch, "GET", report, token=TOKENS["bob"], params=[("format", "pdf")])
    assert status == 200 and pdf.startswith(b"%PDF"), pdf[:100]
