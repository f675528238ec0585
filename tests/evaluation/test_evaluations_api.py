"""Evaluations through the platform's API with real jobs, MLflow and datasets: a training job registers a
version and its evaluation starts by itself; the next version is judged against the previous one; bad
requests are refused before anything is written; a custom metric that raises ends the evaluation in error
with the cell and its traceback, and no verdict."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from sqlalchemy import select

from aitip.evaluation.tables import CheckedTrainingJobRecord

from tests.evaluation.conftest import digits_csv, training_notebook, wait_job
from tests.server.conftest import TOKENS
from tests.webhooks.conftest import serve
from tests.server.test_mcp import mcp_client
from tests.support.cli import cli_runner
from tests.support.operation_calls import fetch
from tests.support.workers import start_worker

pytestmark = pytest.mark.slow  # trained models and jobs: minutes for the file

POLICY = "projects/alpha/evaluation-policies/digits-mlp"
THRESHOLDS = {"accuracy_score": {"threshold": 0.8, "greater_is_better": True},
              "f1_score": {"min_absolute_change": 0.0001, "greater_is_better": True}}


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any], tracking_uri: str) -> dict[str, Any]:
    jp_server_config["AitipExtension"]["run_jobs"] = True  # start_worker starts the worker and the controller
    jp_server_config["AitipExtension"]["mlflow_tracking_uri"] = tracking_uri
    jp_server_config["WebhookDispatcher"] = {"allowed_networks": ["127.0.0.1/32"], "base_delay_seconds": 0.1}
    return jp_server_config


async def make_alpha(api: Any) -> None:
    assert (await api("POST", "projects", body={"name": "alpha"}))[0] == 201
    for user, role in (("bob", "viewer"), ("carol", "developer")):
        assert (await api("POST", "projects/alpha/members", body={"user": user, "role": role}))[0] == 201
    status, version = await api("POST", "projects/alpha/datasets/digits/versions", raw=digits_csv(),
                                params={"filename": "digits.csv"})
    assert status == 201, version


async def train(api: Any, *, epochs: int = 3, user: str = "carol") -> dict[str, Any]:
    status, job = await api("POST", "jobs", user=user, body={
        "project": "alpha", "notebook": training_notebook(), "notebook_name": "digits_sklearn.ipynb",
        "parameters": {"epochs": epochs, "model_name": "digits-mlp", "dataset": "digits"},
        "inputs": [{"dataset": "digits"}]})
    assert status == 201, job
    return await wait_job(api, job["id"])


async def wait_evaluation(api: Any, *, model_version: int, timeout: float = 300) -> dict[str, Any]:
    """The evaluation of a version once it is judged and its report written (it must have started by itself)."""
    for _ in range(int(timeout / 0.2)):
        status, listed = await api("GET", "projects/alpha/evaluations", params={"model": "digits-mlp"}, user="bob")
        assert status == 200, listed
        found = [e for e in listed["evaluations"] if e["model_version"] == model_version]
        if found and found[0]["state"] in ("passed", "failed", "error") and found[0]["has_report"]:
            status, detail = await api("GET", f"projects/alpha/evaluations/{found[0]['id']}", user="bob")
            assert status == 200, detail
            return detail
        await asyncio.sleep(0.2)
    raise AssertionError(f"version {model_version} was not evaluated: {listed}")


async def test_a_registered_version_is_evaluated_by_itself_and_the_next_against_it(api: Any, jp_fetch: Any,
                                                                                   jp_serverapp: Any) -> None:
    await make_alpha(api)
    await start_worker(jp_serverapp)
    status, policy = await api("PUT", POLICY, user="ann", body={
        "dataset": "digits", "label_column": "label", "thresholds": THRESHOLDS, "baseline": "previous"})
    assert status == 200, policy
    assert (policy["automatic"], policy["settings"]["dataset"], policy["updated_by"]) == (True, "digits", "ann")

    first_job = await train(api)
    assert first_job["state"] == "succeeded", (first_job["reason"], first_job["failed_cell"])
    first = await wait_evaluation(api, model_version=1)
    assert first["state"] == "passed", (first["error"], first["verdict"])
    assert (first["trigger"], first["created_by"], first["baseline_version"]) == (f"job:{first_job['id']}", "carol",
                                                                                  None)
    assert (first["dataset"], first["dataset_version"], len(first["dataset_md5"])) == ("digits", 1, 32)
    assert first["model_run_id"] == first_job["mlflow_run_id"] and first["warnings"] == []
    assert first["metrics"]["accuracy_score"] > 0.8 and first["baseline_metrics"] is None
    assert first["result"]["data"]["rows"] == 450  # the test split only
    assert [b["batch_size"] for b in first["result"]["profile"]["batches"]] == [1, 32]
    # Each threshold judged: the absolute threshold met; no baseline to change from.
    assert first["verdict"]["passed"] is True
    assert {r["metric"] for r in first["verdict"]["reasons"]} >= {"accuracy_score"}

    second_job = await train(api, epochs=1)  # a worse model: one epoch
    assert second_job["state"] == "succeeded", second_job["reason"]
    second = await wait_evaluation(api, model_version=2)
    assert second["baseline_version"] == 1, second
    assert second["baseline_metrics"]["accuracy_score"] == pytest.approx(first["metrics"]["accuracy_score"])
    # One epoch against three: F1 did not improve on the baseline, so the verdict fails, saying so.
    assert second["state"] == "failed" and second["verdict"]["passed"] is False, second["verdict"]
    (worse,) = [r for r in second["verdict"]["reasons"] if not r["passed"]]
    assert (worse["metric"], worse["kind"]) == ("f1_score", "absolute_change")
    assert worse["baseline"] == pytest.approx(first["metrics"]["f1_score"])

    # The evaluation's job ran the notebook snapshot the record names, tagged with what it judged.
    status, job = await api("GET", f"jobs/{second['job_id']}")
    assert status == 200 and job["notebook_sha256"] == second["notebook_sha256"]
    assert job["tags"]["evaluation"] == str(second["id"]) and job["tags"]["evaluated_model"] == "digits-mlp/2"
    assert [(i["dataset"], i["version"]) for i in job["inputs"]] == [("digits", 1)]

    # In lineage: model version -> evaluation <- dataset version, and the evaluation -> the job that ran it.
    status, graph = await api("GET", "lineage", params={"node": f"evaluation:{second['id']}"}, user="bob")
    assert status == 200, graph
    edges = {(e["source"], e["target"], e["relation"]) for e in graph["edges"]}
    node = f"evaluation:{second['id']}"
    assert {("model:digits-mlp@2", node, "evaluated_by"), ("dataset:alpha/digits@1", node, "evaluated_on"),
            (node, f"job:{second['job_id']}", "ran_as")} <= edges
    status, graph = await api("GET", "lineage", params={"node": "dataset:alpha/digits@1", "depth": 1}, user="bob")
    assert {f"evaluation:{first['id']}", node} <= {n["id"] for n in graph["nodes"]}
    assert (await api("GET", "lineage", params={"node": node}, user="erin"))[0] == 404

    # Its report, judged and written: HTML in the caller's language, PDF to download.
    report = f"projects/alpha/evaluations/{second['id']}/report"
    status, html = await fetch(jp_fetch, "GET", report, token=TOKENS["bob"], params=[("lang", "zh_CN")])
    assert status == 200, html
    text = html.decode()
    assert "digits-mlp" in text and "评估" in text and "f1_score" in text
    status, pdf = await fetch(jp_fetch, "GET", report, token=TOKENS["bob"], params=[("format", "pdf")],
                              headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert status == 200 and pdf.startswith(b"%PDF"), pdf[:100]
    status, refused = await fetch(jp_fetch, "GET", report, token=TOKENS["erin"])
    assert status == 404, refused  # not a member: the project does not exist for them

    # A viewer reads them; only a developer may evaluate by hand, a maintainer set the policy.
    assert (await api("POST", "projects/alpha/evaluations", user="bob",
                      body={"model": "digits-mlp", "version": 1}))[0] == 403
    assert (await api("PUT", POLICY, user="carol", body={"dataset": "digits"}))[0] == 403


# A bad request, the answer it gets, and what the message names. Sent one after the other on one trained model
# (training is the slow part).
BAD_REQUESTS = [
    ({"model": "digits-mlp", "version": 9}, 404, "not_found", "version 9"),
    ({"model": "someone-elses", "version": 1, "dataset": "digits"}, 404, "not_found", "someone-elses"),
    ({"model": "someone-elses", "version": 1}, 422, "dataset_required", "dataset"),
    ({"model": "digits-mlp", "version": 1, "dataset": "nothing"}, 404, "unknown_dataset", "nothing"),
    ({"model": "digits-mlp", "version": 1, "label_column": "digit"}, 422, "unknown_label_column", "'digit'"),
    ({"model": "digits-mlp", "version": 1, "notebook": "nope"}, 422, "unknown_notebook", "'nope'"),
    ({"model": "digits-mlp", "version": 1, "baseline": "7"}, 422, "unknown_baseline", "7"),
    ({"model": "digits-mlp", "version": 1, "baseline": "latest"}, 422, "invalid_input", "baseline"),
    ({"model": "digits-mlp", "version": 1, "thresholds": {"accuracy_score": {"greater_is_better": True}}}, 422,
     "invalid_input", "thresholds"),
    ({"model": "digits-mlp", "version": 1, "notebook_document": {"nbformat": 4, "nbformat_minor": 5,
                                                                  "metadata": {}, "cells": []}},
     422, "invalid_notebook", "no code cells"),
]


async def test_bad_evaluation_requests_are_refused_and_write_nothing(api: Any, jp_serverapp: Any) -> None:
    await make_alpha(api)
    await start_worker(jp_serverapp)
    status, policy = await api("PUT", POLICY, user="ann", body={"dataset": "digits", "automatic": False})
    assert status == 200, policy
    job = await train(api, epochs=1)
    assert job["state"] == "succeeded", job["reason"]
    for body, status, code, named in BAD_REQUESTS:
        answer_status, answer = await api("POST", "projects/alpha/evaluations", user="carol", body=body)
        assert (answer_status, answer["error"]["code"]) == (status, code), (body, answer)
        assert named in answer["error"]["message"], (body, answer)
    status, listed = await api("GET", "projects/alpha/evaluations")
    assert listed["evaluations"] == []
    status, jobs = await api("GET", "jobs", params={"project": "alpha"})
    assert [j["id"] for j in jobs["items"]] == [job["id"]]  # no evaluation job either
    # Nor can a policy name data the project lacks, or a label column its dataset lacks.
    status, answer = await api("PUT", POLICY, user="ann", body={"dataset": "nothing"})
    assert (status, answer["error"]["code"]) == (404, "unknown_dataset")
    status, answer = await api("PUT", POLICY, user="ann", body={"dataset": "digits", "label_column": "digit"})
    assert (status, answer["error"]["code"]) == (422, "unknown_label_column")
    status, kept = await api("GET", POLICY)
    assert kept["settings"]["label_column"] == "label" and kept["automatic"] is False

    # Evaluated on another dataset holding the same images, without a split: the rows the model was trained
    # on (digits v1's train split) are found in it and counted.
    everything = b"\n".join(line.rsplit(b",", 1)[0] for line in digits_csv().splitlines()) + b"\n"
    status, version = await api("POST", "projects/alpha/datasets/digits-all/versions", raw=everything,
                                params={"filename": "digits-all.csv"})
    assert status == 201, version
    status, evaluation = await api("POST", "projects/alpha/evaluations", user="carol", body={
        "model": "digits-mlp", "version": 1, "dataset": "digits-all"})
    assert status == 202 and evaluation["warnings"] == [], evaluation
    ended = await wait_evaluation(api, model_version=1)
    assert ended["state"] == "passed", ended["error"]
    assert ended["result"]["data"]["overlap"] == {"rows": 1347, "with": ["digits@1"]}
    assert ended["warnings"] == ["1347 of the 1797 rows evaluated are also in the data the model was trained on "
                                 "(digits@1)"], ended["warnings"]


async def test_an_automatic_evaluation_that_cannot_start_is_kept_as_an_error_saying_why(
        api: Any, jp_serverapp: Any) -> None:
    """A policy whose baseline version is not there when the version registers: the evaluation that could not
    start is shown as an error with its reason (not only logged), told to the project's Slack channel, and is not
    tried again at every pass."""
    await make_alpha(api)
    await start_worker(jp_serverapp)
    status, policy = await api("PUT", POLICY, user="ann", body={"dataset": "digits", "baseline": "9"})
    assert status == 200, policy
    async with serve() as receiver:
        status, subscription = await api("POST", "projects/alpha/webhooks", body={
            "url": receiver.url("/slack"), "events": ["evaluation.failed", "evaluation.error"], "format": "slack"})
        assert status == 201, subscription
        job = await train(api, epochs=1)
        assert job["state"] == "succeeded", job["reason"]
        [told] = await receiver.wait_for(1)
    for _ in range(600):
        status, listed = await api("GET", "projects/alpha/evaluations", user="bob")
        if listed["evaluations"]:
            break
        await asyncio.sleep(0.2)
    [unstarted] = listed["evaluations"]
    assert told.json()["text"].startswith(f"[alpha] evaluation {unstarted['id']} of digits-mlp v1 on digits v1 error: the "
                                          "evaluation could not start: the baseline version 9 does not exist"), told
    assert (unstarted["state"], unstarted["model_version"], unstarted["job_id"]) == ("error", 1, None), unstarted
    assert (unstarted["trigger"], unstarted["dataset"], unstarted["dataset_version"]) == (f"job:{job['id']}",
                                                                                         "digits", 1)
    assert unstarted["error"]["code"] == "unknown_baseline"
    assert unstarted["reason"] == "the evaluation could not start: the baseline version 9 does not exist"
    await train(api, epochs=1)  # another job's pass: the first version is not tried again
    status, again = await api("GET", "projects/alpha/evaluations", user="bob")
    assert [e["id"] for e in again["evaluations"] if e["model_version"] == 1] == [unstarted["id"]]


async def test_the_cli_waits_for_the_verdict_and_exits_non_zero_when_it_fails(
        api: Any, jp_serverapp: Any, jp_http_port: int, jp_base_url: str) -> None:
    await make_alpha(api)
    await start_worker(jp_serverapp)
    assert (await api("PUT", POLICY, user="ann", body={"dataset": "digits", "automatic": False}))[0] == 200
    job = await train(api, epochs=1)
    assert job["state"] == "succeeded", job["reason"]
    aitip = cli_runner(f"http://127.0.0.1:{jp_http_port}{jp_base_url}")

    def session() -> dict[str, tuple[int, str, str]]:
        evaluate = ("evaluations", "create", "--project", "alpha", "--model", "digits-mlp", "--version", "1")
        return {
            "passes": aitip("eval", *evaluate[1:], "--wait", user="carol"),
            "fails": aitip(*evaluate, "--thresholds", '{"accuracy_score": {"threshold": 0.999, '
                           '"greater_is_better": true}}', "--wait", user="carol"),
            "fails_json": aitip("--json", *evaluate, "--thresholds", '{"log_loss": {"threshold": 0.0001, '
                                '"greater_is_better": false}}', "--wait", user="carol"),
            "list": aitip("evaluations", "list", "--project", "alpha", user="bob"),
            "policy": aitip("evaluation-policies", "get", "--project", "alpha", "--model", "digits-mlp", user="bob"),
        }

    done = await asyncio.to_thread(session)
    code, shown, _ = done["passes"]
    assert code == 0 and "[PASSED]" in shown and "METRIC" in shown, done["passes"]
    assert shown.splitlines()[0].startswith("evaluation ") and "digits-mlp v1 on digits v1" in shown
    code, shown, _ = done["fails"]
    assert code == 1 and "verdict: failed" in shown, done["fails"]
    assert "accuracy_score" in shown.split("verdict: failed")[1].splitlines()[1]  # its reason, then metrics
    code, shown, _ = done["fails_json"]
    answer = json.loads(shown)
    assert code == 1 and answer["state"] == "failed" and answer["verdict"]["reasons"][0]["metric"] == "log_loss"
    code, shown, _ = done["list"]
    assert code == 0 and shown.count("digits-mlp") == 3, shown
    code, shown, _ = done["policy"]
    assert code == 0 and shown.startswith("evaluation policy of digits-mlp in alpha — only when asked"), shown
    assert "dataset:    digits, its newest version when it starts" in shown, shown

    # An agent evaluates through MCP: the handle at once, or followed to the verdict with progress.
    progress: list[str | None] = []

    async def on_progress(done_: float, total: float | None, message: str | None) -> None:
        progress.append(message)

    async with mcp_client(jp_http_port, jp_base_url, "carol") as client:
        waited = await client.call_tool("evaluations_create", {"project": "alpha", "model": "digits-mlp",
                                                               "version": 1, "wait_seconds": 240},
                                        progress_callback=on_progress)
    assert not waited.is_error, waited.content[0].text
    end = waited.structured_content
    assert end["state"] == "passed" and end["metrics"]["accuracy_score"] > 0.5, end
    assert progress[0] == f"evaluations.create {end['id']}: queued" and progress[-1].endswith(": passed")


async def test_of_a_sweep_only_the_best_trials_version_is_evaluated_once_the_sweep_ends(
        api: Any, jp_serverapp: Any) -> None:
    await make_alpha(api)
    await start_worker(jp_serverapp)
    assert (await api("PUT", POLICY, user="ann", body={"dataset": "digits"}))[0] == 200
    status, sweep = await api("POST", "sweeps", user="carol", body={
        "project": "alpha", "notebook": training_notebook(), "notebook_name": "digits_sklearn.ipynb",
        "parameters": {"model_name": "digits-mlp"}, "space": {"epochs": {"type": "grid", "values": [1, 3]}},
        "strategy": "grid", "objective": "final_test_accuracy", "parallelism": 2})
    assert status == 201, sweep
    for _ in range(1500):
        status, sweep = await api("GET", f"sweeps/{sweep['id']}")
        if sweep["state"] != "running":
            break
        await asyncio.sleep(0.2)
    assert sweep["state"] == "succeeded", sweep
    best = next(trial for trial in sweep["trial_jobs"] if trial["job_id"] == sweep["best_job_id"])
    assert best["parameters"]["epochs"] == 3
    status, models = await api("GET", "projects/alpha/models")
    (model,) = [m for m in models["models"] if m["name"] == "digits-mlp"]
    best_version = next(v["version"] for v in model["versions"] if v["job_id"] == sweep["best_job_id"])
    evaluation = await wait_evaluation(api, model_version=best_version)
    assert evaluation["trigger"] == f"job:{sweep['best_job_id']}" and evaluation["state"] == "passed", evaluation
    # Both trials looked at once the sweep ended; the other trial's version is not evaluated.
    trials = {trial["job_id"] for trial in sweep["trial_jobs"]}
    catalog = jp_serverapp.web_app.settings["aitip"].catalog
    for _ in range(300):
        with catalog.session() as session:
            checked = set(session.scalars(select(CheckedTrainingJobRecord.job_id)
                                          .where(CheckedTrainingJobRecord.job_id.in_(trials))))
        if checked == trials:
            break
        await asyncio.sleep(0.1)
    assert checked == trials
    status, listed = await api("GET", "projects/alpha/evaluations")
    assert [e["model_version"] for e in listed["evaluations"]] == [best_version]


async def test_a_custom_metric_that_raises_ends_in_error_with_its_traceback_and_no_verdict(
        api: Any, jp_serverapp: Any) -> None:
    await make_alpha(api)
    await start_worker(jp_serverapp)
    assert (await api("PUT", POLICY, user="ann", body={"dataset": "digits", "automatic": False}))[0] == 200
    job = await train(api, epochs=1)
    assert job["state"] == "succeeded", job["reason"]
    status, evaluation = await api("POST", "projects/alpha/evaluations", user="carol", body={
        "model": "digits-mlp", "version": 1,
        "parameters": {"custom_metrics": "def broken(y_true, y_pred, y_proba):\n    return 1 / 0\n"}})
    assert status == 422, evaluation  # parameters belong to the policy, not to one evaluation
    assert (await api("PUT", POLICY, user="ann", body={
        "dataset": "digits", "automatic": False,
        "parameters": {"custom_metrics": "def broken(y_true, y_pred, y_proba):\n    return 1 / 0\n"}}))[0] == 200
    status, evaluation = await api("POST", "projects/alpha/evaluations", user="carol",
                                   body={"model": "digits-mlp", "version": 1})
    assert status == 202 and evaluation["state"] == "queued", evaluation
    ended = await wait_evaluation(api, model_version=1)
    assert ended["state"] == "error" and ended["verdict"] is None and ended["metrics"] is None
    assert ended["error"]["code"] == "job_failed"
    assert "ZeroDivisionError" in ended["error"]["failed_cell"]["traceback"]
    assert "custom_metrics" in ended["error"]["failed_cell"]["source"]

    # A notebook of one's own that hands back a dict of metrics, judged by the policy's thresholds on them.
    status, policy = await api("PUT", POLICY, user="ann", body={
        "dataset": "digits", "automatic": False, "notebook_document": OWN_NOTEBOOK,
        "thresholds": {"share_right": {"threshold": 0.5, "greater_is_better": True}}})
    assert status == 200, policy
    status, evaluation = await api("POST", "projects/alpha/evaluations", user="carol",
                                   body={"model": "digits-mlp", "version": 1})
    assert status == 202 and evaluation["settings"]["notebook"] == "custom", evaluation
    ended = await wait_evaluation(api, model_version=1)
    assert ended["state"] == "passed", (ended["error"], ended["verdict"])
    assert ended["metrics"]["rows"] == 450 and 0.5 < ended["metrics"]["share_right"] <= 1
    assert [(r["metric"], r["passed"]) for r in ended["verdict"]["reasons"]] == [("share_right", True)]
    status, job = await api("GET", f"jobs/{ended['job_id']}")
    assert job["notebook_sha256"] == ended["notebook_sha256"] and job["notebook_name"] == "evaluate-custom.ipynb"


OWN_NOTEBOOK = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
    {"cell_type": "code", "metadata": {"tags": ["parameters"]}, "execution_count": None, "outputs": [],
     "source": 'model_uri = ""\ndataset = ""\nlabel_column = "label"\nsplit_column = ""\ntest_split = "test"'},
    {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": (
        "import mlflow\nimport aitip.datasets\nfrom aitip.evaluation.results import publish\n"
        "frame = aitip.datasets.to_pandas(dataset)\n"
        "frame = frame[frame[split_column] == test_split] if split_column else frame\n"
        "features = frame.drop(columns=[c for c in (label_column, split_column) if c]).to_numpy()\n"
        "right = mlflow.sklearn.load_model(model_uri).predict(features) == frame[label_column].to_numpy()\n"
        "publish({'task': 'custom', 'metrics': {'share_right': float(right.mean()), 'rows': float(len(frame))}})")},
]}
