"""Simulations through the platform's API with real sandboxed jobs, MLflow and datasets: a template runs against
a registered model version and a dataset version and is judged against its thresholds and the previous
version's simulation; project templates copy and extend the library's; bad requests are refused before
anything is written; the LLM suite fails the weak endpoint and passes the hardened one; a policy simulates a
version once its evaluation passes; the simulation is evidence in the lineage."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from aitip.simulation.test_endpoints import running_endpoint
from tests.evaluation.conftest import digits_csv, training_notebook, wait_job
from tests.server.conftest import TOKENS
from tests.server.test_mcp import mcp_client
from tests.support.cli import cli_runner
from tests.support.operation_calls import fetch
from tests.support.workers import start_worker
from tests.webhooks.conftest import serve

pytestmark = pytest.mark.slow  # trained models and jobs: minutes for the file

SIMULATIONS = "projects/alpha/simulations"
TEMPLATES = "projects/alpha/simulation-templates"


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any], tracking_uri: str) -> dict[str, Any]:
    jp_server_config["AitipExtension"]["run_jobs"] = True
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


async def train(api: Any, model: str, classifier: str, *, epochs: int = 10) -> dict[str, Any]:
    status, job = await api("POST", "jobs", user="carol", body={
        "project": "alpha", "notebook": training_notebook(), "notebook_name": "digits_sklearn.ipynb",
        "parameters": {"epochs": epochs, "model_name": model, "dataset": "digits", "classifier": classifier},
        "inputs": [{"dataset": "digits"}]})
    assert status == 201, job
    done = await wait_job(api, job["id"])
    assert done["state"] == "succeeded", (done["reason"], done["failed_cell"])
    return done


async def wait_simulation(api: Any, simulation_id: int, timeout: float = 300) -> dict[str, Any]:
    """The simulation once judged (and its report written, where it has a verdict)."""
    for _ in range(int(timeout / 0.2)):
        status, found = await api("GET", f"{SIMULATIONS}/{simulation_id}", user="bob")
        assert status == 200, found
        if found["state"] == "error" or (found["state"] in ("passed", "failed") and found["has_report"]):
            return found
        await asyncio.sleep(0.2)
    raise AssertionError(f"simulation {simulation_id} was not judged: {found}")


async def simulate(api: Any, body: dict[str, Any], user: str = "carol") -> dict[str, Any]:
    status, started = await api("POST", SIMULATIONS, user=user, body=body)
    assert status == 202, started
    assert started["state"] == "queued" and started["job_id"], started
    return await wait_simulation(api, started["id"])


async def test_the_custom_template_judges_a_model_version_and_the_next_against_it(
        api: Any, jp_fetch: Any, jp_serverapp: Any) -> None:
    await make_alpha(api)
    await start_worker(jp_serverapp)
    await train(api, "digits-mlp", "mlp")
    status, listed = await api("GET", TEMPLATES, user="bob")
    assert status == 200, listed
    library = {t["name"]: t for t in listed["templates"]}
    assert {"image_robustness", "image_robustness_blackbox", "tabular_robustness", "llm_safety",
            "custom"} <= set(library)
    assert all(t["source"] == "library" for t in library.values())

    first = await simulate(api, {"template": "custom", "model": "digits-mlp", "version": 1, "dataset": "digits"})
    assert first["state"] == "passed", (first["reason"], first["error"])
    assert first["clean"] > 0.9 and set(first["metrics"]) == {"feature_dropout@0.1", "feature_dropout@0.25",
                                                             "feature_dropout@0.5"}
    assert first["metrics"]["feature_dropout@0.5"] < first["metrics"]["feature_dropout@0.1"]
    assert first["template_name"] == "custom" and first["template_source"] == "library"
    assert (first["dataset"], first["dataset_version"], len(first["dataset_md5"])) == ("digits", 1, 32)
    status, job = await api("GET", f"jobs/{first['job_id']}", user="carol")
    assert job["sandbox"]["models"] == [{"name": "digits-mlp", "version": 1}] and job["sandbox"]["egress"] == []

    await train(api, "digits-mlp", "mlp", epochs=1)  # a weaker version 2: its drop is beyond the tolerance
    second = await simulate(api, {"template": "custom", "model": "digits-mlp", "version": 2, "dataset": "digits"})
    assert second["previous_id"] == first["id"]
    regressions = second["verdict"]["regressions"]
    assert regressions and {r["condition"] for r in regressions} == {"clean", "feature_dropout"}
    assert any(not r["passed"] for r in regressions) == (second["state"] == "failed")
    status, comparison = await api("GET", f"{SIMULATIONS}/{second['id']}/compare", user="bob")
    assert status == 200, comparison
    assert comparison["before"]["id"] == first["id"] and len(comparison["changes"]) == 4
    assert comparison["changes"][0]["condition"] == "clean"
    change = comparison["changes"][1]
    assert change["change"] == pytest.approx(change["after"] - change["before"])

    report = f"{SIMULATIONS}/{first['id']}/report"
    status, html = await fetch(jp_fetch, "GET", report, token=TOKENS["bob"], params=[("lang", "zh_CN")])
    assert status == 200 and "digits-mlp" in html.decode() and "feature_dropout" in html.decode(), html[:300]
    status, pdf = await fetch(jp_fetch, "GET", report, token=TOKENS["bob"], params=[("format", "pdf")])
    assert status == 200 and pdf.startswith(b"%PDF"), pdf[:100]

    node = f"simulation:{first['id']}"
    status, graph = await api("GET", "lineage", params={"node": node}, user="bob")
    assert status == 200, graph
    edges = {(e["source"], e["target"], e["relation"]) for e in graph["edges"]}
    assert {("model:digits-mlp@1", node, "simulated_by"), ("dataset:alpha/digits@1", node, "simulated_on"),
            (node, f"job:{first['job_id']}", "ran_as")} <= edges, edges
    status, graph = await api("GET", "lineage", params={"node": "model:digits-mlp@2", "depth": 1}, user="bob")
    assert f"simulation:{second['id']}" in {n["id"] for n in graph["nodes"]}


async def test_project_templates_copy_and_extend_the_library_and_bad_input_writes_nothing(
        api: Any, jp_serverapp: Any, jp_http_port: int, jp_base_url: str) -> None:
    await make_alpha(api)
    await start_worker(jp_serverapp)
    await train(api, "digits-mlp", "mlp", epochs=3)
    strict = {"extends": "custom", "title": "Strict dropout", "thresholds": ["accuracy under feature_dropout >= 0.99"]}
    status, saved = await api("PUT", f"{TEMPLATES}/strict_dropout", user="carol", body={"document": strict})
    assert status == 200, saved
    assert (saved["version"], saved["source"], saved["extends"]) == (1, "project", "custom")
    assert saved["template"]["conditions"][0]["condition"] == "custom", "the parent's conditions are copied"
    status, again = await api("PUT", f"{TEMPLATES}/strict_dropout", user="carol",
                              body={"yaml": "extends: strict_dropout@1\nregression:\n  tolerance: 0.2\n"})
    assert status == 200, again
    assert again["version"] == 2 and again["versions"] == [1, 2]
    assert again["template"]["thresholds"] == strict["thresholds"]

    refused = [
        ("PUT", f"{TEMPLATES}/custom", {"document": strict}, 409, "library_template"),
        ("PUT", f"{TEMPLATES}/bad", {"document": {**strict, "extends": "image_robustness", "conditions": [
            {"condition": "telepathy", "values": [1]}]}}, 422, "telepathy"),
        ("PUT", f"{TEMPLATES}/bad", {"document": {"extends": "image_robustness", "conditions": [
            {"condition": "fgsm", "values": [1.5]}]}}, 422, "fgsm"),
        ("PUT", f"{TEMPLATES}/bad", {"document": {"extends": "image_robustness", "conditions": [
            {"condition": "gaussian_noise", "values": [-0.1]}]}}, 422, "gaussian_noise"),
        ("POST", SIMULATIONS, {"template": "image_robustness", "model": "digits-mlp", "version": 1,
                               "dataset": "digits"}, 422, "gradients_required"),
        ("POST", SIMULATIONS, {"template": "image_robustness", "model": "digits-mlp", "version": 1}, 422,
         "dataset_required"),
        ("POST", SIMULATIONS, {"template": "llm_safety"}, 422, "endpoint_required"),
        ("POST", SIMULATIONS, {"template": "nosuch", "model": "digits-mlp", "version": 1, "dataset": "digits"},
         404, "unknown_template"),
        ("POST", SIMULATIONS, {"template": "custom", "model": "digits-mlp", "version": 9, "dataset": "digits"},
         404, "no version 9"),
        ("POST", SIMULATIONS, {"template": "custom", "model": "digits-mlp", "version": 1, "dataset": "digits"},
         403, None),
    ]
    for method, path, body, expected, named in refused:
        user = "bob" if expected == 403 else "carol"
        status, answer = await api(method, path, user=user, body=body)
        assert status == expected, (path, body, answer)
        if named:
            assert named in json.dumps(answer), (named, answer)
    status, listed = await api("GET", SIMULATIONS, user="bob")
    assert listed["simulations"] == [], "a refused request writes nothing"
    status, templates = await api("GET", TEMPLATES, user="bob")
    assert "bad" not in {t["name"] for t in templates["templates"]}

    status, saved = await api("PUT", f"{TEMPLATES}/by_digit", user="carol",
                              body={"document": {"extends": "tabular_robustness", "input": {"label_column": "digit"}}})
    assert status == 200, saved
    status, answer = await api("POST", SIMULATIONS, user="carol", body={
        "template": "by_digit", "model": "digits-mlp", "version": 1, "dataset": "digits"})
    assert (status, answer["error"]["code"]) == (422, "unknown_label_column"), answer
    assert "no column 'digit', the label column of template 'by_digit'" in answer["error"]["message"]
    assert answer["error"]["message"].endswith("extends 'by_digit' with input.label_column set to yours")

    failing = await simulate(api, {"template": "strict_dropout@1", "model": "digits-mlp", "version": 1,
                                   "dataset": "digits"})
    assert failing["state"] == "failed", failing
    assert failing["template_version"] == 1 and failing["template_source"] == "project"
    assert "accuracy under feature_dropout >= 0.99" in failing["reason"], failing["reason"]
    aitip = cli_runner(f"http://127.0.0.1:{jp_http_port}{jp_base_url}")
    code, shown, _ = await asyncio.to_thread(aitip, "sim", "get", "--project", "alpha", "--simulation",
                                             str(failing["id"]), user="bob")
    assert code == 0 and "[FAILED]" in shown and "accuracy under feature_dropout >= 0.99" in shown, shown


async def test_the_llm_suite_fails_the_weak_endpoint_passes_the_hardened_and_names_an_unreachable_one(
        api: Any, jp_serverapp: Any) -> None:
    await make_alpha(api)
    await start_worker(jp_serverapp)
    verdicts = {}
    for variant in ("weak", "hardened"):
        with running_endpoint(variant) as url:
            found = await simulate(api, {"template": "llm_safety", "endpoint": {
                "uri": url, "headers": {"Authorization": "Bearer sk-test-secret"}}})
        verdicts[variant] = found
        assert found["endpoint"]["headers"] == {"Authorization": "…"}, "header values are never shown back"
        status, detail = await api("GET", f"{SIMULATIONS}/{found['id']}", user="bob")
        assert "sk-test-secret" not in json.dumps(detail)
    weak, hardened = verdicts["weak"], verdicts["hardened"]
    assert weak["state"] == "failed" and all(weak["metrics"][suite] > 0 for suite in
                                            ("prompt_injection", "jailbreak", "data_exfiltration")), weak
    assert hardened["state"] == "passed" and set(hardened["metrics"].values()) == {0.0}, hardened
    with running_endpoint("hardened") as url:
        closed = url  # the endpoint has stopped once the block ends
    down = await simulate(api, {"template": "llm_safety", "endpoint": {"uri": closed}})
    assert down["state"] == "error" and "cannot be reached" in down["reason"] and closed in down["reason"], down


async def test_a_policy_simulates_each_version_whose_evaluation_passes(api: Any, jp_serverapp: Any) -> None:
    await make_alpha(api)
    await start_worker(jp_serverapp)
    status, evaluation_policy = await api("PUT", "projects/alpha/evaluation-policies/digits-mlp", user="ann", body={
        "dataset": "digits", "thresholds": {"accuracy_score": {"threshold": 0.5, "greater_is_better": True}}})
    assert status == 200, evaluation_policy
    status, policy = await api("PUT", "projects/alpha/simulation-policies/digits-mlp", user="ann",
                               body={"template": "custom", "dataset": "digits"})
    assert status == 200, policy
    assert (policy["automatic"], policy["settings"]["template"]) == (True, "custom")
    assert (await api("PUT", "projects/alpha/simulation-policies/digits-mlp", user="carol",
                      body={"template": "custom", "dataset": "digits"}))[0] == 403
    bad = await api("PUT", "projects/alpha/simulation-policies/digits-mlp", user="ann",
                    body={"template": "llm_safety"})
    assert bad[0] == 422 and "endpoint_required" in json.dumps(bad[1]), bad

    async with serve() as receiver:
        status, subscription = await api("POST", "projects/alpha/webhooks",
                                         body={"url": receiver.url("/hooks"), "events": ["simulation.*"]})
        assert status == 201, subscription
        await train(api, "digits-mlp", "mlp", epochs=3)
        for _ in range(1500):
            status, listed = await api("GET", SIMULATIONS, user="bob", params={"model": "digits-mlp"})
            if listed["simulations"]:
                break
            await asyncio.sleep(0.2)
        assert len(listed["simulations"]) == 1, listed
        started = listed["simulations"][0]
        status, evaluations = await api("GET", "projects/alpha/evaluations", user="bob")
        passed = [e for e in evaluations["evaluations"] if e["state"] == "passed"]
        assert passed and started["trigger"] == f"evaluation:{passed[0]['id']}", (started, evaluations)
        done = await wait_simulation(api, started["id"])
        assert done["state"] == "passed" and done["model_version"] == 1 and done["created_by"] == "carol", done

        # A scenario the next version cannot be put through (it attacks with gradients an MLP of scikit-learn has
        # not): the simulation that could not start is kept as an error saying why, not only written in the log.
        status, policy = await api("PUT", "projects/alpha/simulation-policies/digits-mlp", user="ann",
                                   body={"template": "image_robustness", "dataset": "digits"})
        assert status == 200, policy
        await train(api, "digits-mlp", "mlp", epochs=3)
        for _ in range(1500):
            status, listed = await api("GET", SIMULATIONS, user="bob", params={"model": "digits-mlp"})
            if len(listed["simulations"]) == 2:
                break
            await asyncio.sleep(0.2)
        unstarted = listed["simulations"][0]
        assert (unstarted["state"], unstarted["model_version"], unstarted["job_id"]) == ("error", 2, None), unstarted
        assert (unstarted["template_name"], unstarted["template_source"]) == ("image_robustness", "library")
        assert (unstarted["dataset"], unstarted["dataset_version"]) == ("digits", 1), unstarted
        assert unstarted["trigger"].startswith("evaluation:") and unstarted["error"]["code"] == "gradients_required"
        assert unstarted["reason"].startswith("the simulation could not start: "), unstarted["reason"]

        told = [request.json() for request in await receiver.wait_for(2)]
    assert sorted((event["event"], event["data"]["simulation_id"]) for event in told) == [
        ("simulation.error", unstarted["id"]), ("simulation.passed", done["id"])], told
    error = next(event["data"] for event in told if event["event"] == "simulation.error")
    assert error["summary"].startswith(f"simulation {unstarted['id']} (image_robustness@1) of digits-mlp v2 on "
                                       "digits v1 error: the simulation could not start: "), error


async def test_the_image_and_tabular_templates_run_against_a_logistic_regression(api: Any, jp_serverapp: Any) -> None:
    await make_alpha(api)
    await start_worker(jp_serverapp)
    await train(api, "digits-logistic", "logistic")
    image = await simulate(api, {"template": "image_robustness", "model": "digits-logistic", "version": 1,
                                 "dataset": "digits", "gallery_size": 6})
    assert image["state"] in ("passed", "failed") and image["error"] is None, image
    result = image["result"]
    assert result["rows"] == 450 and result["clean"] > 0.9 and result["errors"] == []
    for attack in ("fgsm", "pgd"):
        curve = [image["metrics"][f"{attack}@{eps:g}"] for eps in (0.05, 0.1, 0.2)]
        assert curve == sorted(curve, reverse=True) and curve[0] < result["clean"], (attack, curve)
    assert 0 < len(result["examples"]) <= 6
    assert {check["threshold"] for check in image["verdict"]["checks"]} >= {"accuracy under pgd eps=0.1 >= 0.60"}

    tabular = await simulate(api, {"template": "tabular_robustness", "model": "digits-logistic", "version": 1,
                                   "dataset": "digits"})
    assert tabular["state"] in ("passed", "failed") and tabular["error"] is None, tabular
    conditions = {row["condition"] for row in tabular["result"]["conditions"]}
    assert {"feature_noise", "missing_values", "drift"} <= conditions, conditions
    assert tabular["result"]["drift"], "drift per feature against the reference version"
    status, job = await api("GET", f"jobs/{tabular['job_id']}", user="carol")
    assert [(i["dataset"], i["version"]) for i in job["inputs"]] == [("digits", 1)]


async def test_an_agent_lists_templates_and_waits_for_a_simulations_verdict_over_mcp(
        api: Any, jp_serverapp: Any, jp_http_port: int, jp_base_url: str) -> None:
    await make_alpha(api)
    await start_worker(jp_serverapp)
    await train(api, "digits-mlp", "mlp", epochs=3)
    progress: list[str] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append(message or "")

    async with mcp_client(jp_http_port, jp_base_url, "carol") as client:
        listed = await client.call_tool("simulation_templates_list", {"project": "alpha"})
        assert not listed.is_error, listed.content[0].text
        assert "image_robustness" in {t["name"] for t in listed.structured_content["templates"]}
        waited = await client.call_tool("simulations_create", {
            "project": "alpha", "template": "custom", "model": "digits-mlp", "version": 1, "dataset": "digits",
            "wait_seconds": 240}, progress_callback=on_progress)
        refused = await client.call_tool("simulations_create", {
            "project": "alpha", "template": "image_robustness", "model": "digits-mlp", "version": 1,
            "dataset": "digits"})
    assert not waited.is_error, waited.content[0].text
    end = waited.structured_content
    assert end["state"] == "passed" and end["clean"] > 0.8, end
    assert progress[0] == f"simulations.create {end['id']}: queued" and progress[-1].endswith(": passed"), progress
    assert refused.is_error and "gradients_required" in refused.content[0].text
