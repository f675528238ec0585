"""The shipped contract test (notebooks/test/model_contract.ipynb) as a release policy's test run: run as a job on
a model version, it passes the digits model and fails the version that raises on a negative pixel (which passes
its evaluation on the project's data), naming the case; its report is in the job's MLflow run; it runs again on
the other version with ``jobs.rerun``; and the release of each version is granted or refused by it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from aitip.shipped_notebooks import shipped_notebooks
from tests.evaluation.conftest import digits_csv, wait_job
from tests.releases.test_releases_api import POLICY, RELEASES, make_alpha
from tests.simulation.test_simulations_api import train
from tests.support.fragile_model import FRAGILE_TRAINING
from tests.support.workers import start_worker

pytestmark = pytest.mark.slow  # three jobs and two trainings

CONTRACT = shipped_notebooks("test") / "model_contract.ipynb"
CASES = 9


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any], tracking_uri: str) -> dict[str, Any]:
    jp_server_config["AitipExtension"]["run_jobs"] = True
    jp_server_config["AitipExtension"]["mlflow_tracking_uri"] = tracking_uri
    return jp_server_config


async def test_the_contract_passes_a_sound_version_fails_a_fragile_one_and_gates_their_releases(
        api: Any, jp_serverapp: Any) -> None:
    await make_alpha(api)
    status, _ = await api("POST", "projects/alpha/datasets/digits/versions", raw=digits_csv(),
                          params={"filename": "digits.csv"})
    assert status == 201
    await start_worker(jp_serverapp)
    assert (await api("PUT", "projects/alpha/evaluation-policies/digits-mlp", body={
        "dataset": "digits", "thresholds": {"accuracy_score": {"threshold": 0.5, "greater_is_better": True}}}))[0] == 200
    await train(api, "digits-mlp", "logistic", epochs=1)  # version 1
    status, job = await api("POST", "jobs", user="carol", body={
        "project": "alpha", "notebook": FRAGILE_TRAINING, "notebook_name": "digits_fragile.ipynb",
        "parameters": {"dataset": "digits", "model_name": "digits-mlp"}, "inputs": [{"dataset": "digits"}]})
    assert status == 201 and (await wait_job(api, job["id"]))["state"] == "succeeded"  # version 2

    status, contract = await api("POST", "jobs", user="carol", body={
        "project": "alpha", "shipped": "test/model_contract",  # named as the policy's test_runs name it
        "parameters": {"model_name": "digits-mlp", "model_version": 1, "dataset": "digits"},
        "inputs": [{"dataset": "digits"}]})
    assert status == 201, contract
    passed = await wait_job(api, contract["id"])
    assert passed["state"] == "succeeded", (passed["reason"], passed["failed_cell"])
    status, run = await api("GET", f"runs/{passed['mlflow_run_id']}", user="bob")
    assert status == 200, run
    assert (run["metrics"]["tests_total"], run["metrics"]["tests_passed"], run["metrics"]["tests_failed"]) == (
        CASES, CASES, 0)
    assert {"model_contract.junit.xml", "model_contract.json", "model_contract.txt"} <= {
        artifact["path"] for artifact in run["artifacts"]}, run["artifacts"]

    status, again = await api("POST", f"jobs/{passed['id']}/rerun", user="carol",
                              body={"parameters": {"model_version": 2}})
    assert status == 201 and again["rerun_of"] == passed["id"], again
    failed = await wait_job(api, again["id"])
    assert failed["state"] == "failed", failed
    assert failed["failed_cell"]["ename"] == "CasesFailed", failed["failed_cell"]
    assert failed["failed_cell"]["evalue"] == (f"1 of {CASES} cases failed: rows outside the data's range get "
                                               "answers, not errors (ValueError: a negative pixel)")

    for _ in range(1500):  # both versions pass their evaluation: the project's data has no negative pixel
        status, listed = await api("GET", "projects/alpha/evaluations", user="bob", params={"model": "digits-mlp"})
        if {(e["model_version"], e["state"]) for e in listed["evaluations"]} >= {(1, "passed"), (2, "passed")}:
            break
        await asyncio.sleep(0.2)
    assert {(e["model_version"], e["state"]) for e in listed["evaluations"]} >= {(1, "passed"), (2, "passed")}
    policy = {"evaluation": True, "test_runs": [{"notebook": CONTRACT.name}]}
    status, answer = await api("PUT", POLICY, user="dave", body=policy)
    assert status == 200, answer
    body = {"kind": "model", "name": "digits-mlp", "model": "digits-mlp", "dataset": "digits", "dataset_version": 1}
    status, refused = await api("POST", RELEASES, user="carol", body={**body, "version": "2.0.0", "model_version": 2})
    assert status == 422 and f"job {failed['id']}, failed" in refused["error"]["detail"][0]["reason"], refused
    status, release = await api("POST", RELEASES, user="carol", body={**body, "version": "1.0.0", "model_version": 1})
    assert status == 201, release
    assert [(e["kind"], e["job_id"], e["notebook"]) for e in release["evidence"] if e["kind"] == "test_run"] == [
        ("test_run", passed["id"], CONTRACT.name)]
