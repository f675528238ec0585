"""Endpoints through the platform: a registered version deployed in one call and served by worker processes
running as its deployer's account; called in the Open Inference Protocol and MLflow's invocations with a hub
token and with an API key; a canary added, the split measured, traffic shifted, the old version undeployed;
bad requests answered 400 with the signature; a version that does not load refused while the old one serves."""

from __future__ import annotations

import asyncio
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tornado.httpclient import HTTPClientError

from tests.server.conftest import TOKENS
from tests.support.paths import open_to_all_accounts
from tests.support.waiting import eventually

ENDPOINTS = "projects/alpha/endpoints"


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any], served_models: Any, monkeypatch: Any,
                     isolated_home: Path) -> dict[str, Any]:
    jp_server_config["AitipExtension"]["mlflow_tracking_uri"] = served_models[0]
    if os.geteuid() == 0:
        monkeypatch.delenv("AITIP_SHARED_ACCOUNT")  # as root: workers run as their deployers' accounts
        open_to_all_accounts(isolated_home)
    return jp_server_config


async def make_alpha(api: Any) -> None:
    assert (await api("POST", "projects", body={"name": "alpha"}))[0] == 201
    for user, role in (("bob", "viewer"), ("carol", "developer")):
        assert (await api("POST", "projects/alpha/members", body={"user": user, "role": role}))[0] == 201


async def serve(jp_fetch: Any, path: str, body: Any = None, *, token: str | None = None, key: str | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, Any, dict[str, str]]:
    """(status, JSON answer, headers) of a call to endpoint alpha/digits."""
    sent = {"Authorization": f"Bearer {key}" if key else f"token {token}", **(headers or {})}
    kwargs: dict[str, Any] = {"method": "POST" if body is not None else "GET", "headers": sent}
    if body is not None:
        kwargs["body"] = body if isinstance(body, bytes) else json.dumps(body)
        sent.setdefault("Content-Type", "application/json")
    try:
        response = await jp_fetch("serve", "alpha", "digits", *path.split("/"), **kwargs)
    except HTTPClientError as error:
        response = error.response
        assert response is not None, error
    return response.code, json.loads(response.body or b"null"), dict(response.headers)


def serving_processes() -> dict[int, int]:
    """{pid: uid} of this platform's serving hosts and replicas (its $AITIP_HOME is in their command lines)."""
    home = os.environ["AITIP_HOME"].encode()
    found = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        if b"aitip.serving.host" in command and home in command:
            found[int(pid)] = int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])
    return found


def oip(rows: Any) -> dict[str, Any]:
    array = np.asarray(rows, dtype=float)
    return {"inputs": [{"name": "pixels", "shape": list(array.shape), "datatype": "FP64",
                        "data": array.reshape(-1).tolist()}]}


async def test_deploy_call_canary_shift_and_undeploy(api: Any, jp_fetch: Any, served_models: Any) -> None:
    _, fitted, x_test = served_models
    await make_alpha(api)
    status, endpoint = await api("POST", ENDPOINTS, user="carol", body={
        "name": "digits", "model": "digits", "version": 1, "settings": {"sample_rate": 1.0}})
    assert status == 201, endpoint
    assert endpoint["url"].endswith("serve/alpha/digits/")
    [variant] = endpoint["variants"]
    assert (variant["version"], variant["weight"], variant["state"], variant["replicas"]) == (1, 100, "serving", 1)

    # The worker runs as the deployer's own account, not the platform's.
    status, found = await api("GET", f"{ENDPOINTS}/digits", user="bob")
    assert status == 200 and found["variants"][0]["state"] == "serving"
    if os.geteuid() == 0:
        import pwd

        from aitip.isolation.accounts import account_name

        owner = pwd.getpwnam(account_name("carol")).pw_uid
        assert set(serving_processes().values()) == {owner}, serving_processes()

    # Called with a hub token: OIP and MLflow's invocations agree with the model in this process.
    rows = x_test[:5]
    status, answer, headers = await serve(jp_fetch, "v2/models/digits/infer", oip(rows), token=TOKENS["bob"])
    assert status == 200, answer
    assert answer["outputs"][0]["data"] == fitted[1].predict(rows).tolist()
    assert headers["X-Model-Version"] == "1"
    status, answer, _ = await serve(jp_fetch, "invocations", {"inputs": rows.tolist()}, token=TOKENS["bob"])
    assert status == 200 and answer["predictions"] == fitted[1].predict(rows).tolist(), answer
    status, answer, _ = await serve(jp_fetch, "invocations", {"dataframe_split": {
        "columns": [f"p{i}" for i in range(64)], "data": rows.tolist()}}, token=TOKENS["bob"])
    assert status == 200 and answer["predictions"] == fitted[1].predict(rows).tolist(), answer
    status, answer, _ = await serve(jp_fetch, "v2/models/digits", token=TOKENS["bob"])
    assert status == 200 and answer["inputs"] == [{"name": "input", "datatype": "FP64", "shape": [-1, 64]}]

    # Bad input: 400 naming the signature, never 500.
    status, answer, _ = await serve(jp_fetch, "v2/models/digits/infer", oip(rows[:, :63]), token=TOKENS["bob"])
    assert status == 400 and "expected a float64 tensor of shape (N, 64)" in answer["error"], answer
    assert answer["expected"] == {"tensor": {"name": None, "datatype": "float64", "shape": [-1, 64]}}
    status, answer, _ = await serve(jp_fetch, "invocations", {"inputs": [["x"] * 64]}, token=TOKENS["bob"])
    assert status == 400 and "float64" in answer["message"], answer

    # Outsiders and the anonymous are refused; an API key calls this endpoint only.
    status, answer, _ = await serve(jp_fetch, "v2/models/digits/infer", oip(rows), token=TOKENS["erin"])
    assert status == 404, answer
    status, key = await api("POST", f"{ENDPOINTS}/digits/keys", user="carol", body={"name": "ci"})
    assert status == 403, key  # keys are a maintainer's
    status, key = await api("POST", f"{ENDPOINTS}/digits/keys", body={"name": "ci"})
    assert status == 201 and key["secret"].startswith("aitip_"), key
    status, answer, _ = await serve(jp_fetch, "v2/models/digits/infer", oip(rows), key=key["secret"])
    assert status == 200, answer
    status, answer, _ = await serve(jp_fetch, "v2/models/digits/infer", oip(rows), key=key["secret"] + "x")
    assert status == 403, answer

    # A version that does not load is refused with its reason; version 1 keeps serving.
    status, refused = await api("POST", f"{ENDPOINTS}/digits/versions", user="carol", body={"version": 3, "weight": 20})
    assert status == 422 and refused["error"]["code"] == "model_load_failed", refused
    assert "cannot be loaded" in refused["error"]["message"], refused
    status, answer, _ = await serve(jp_fetch, "v2/models/digits/infer", oip(rows), token=TOKENS["bob"])
    assert status == 200, answer
    status, answer, _ = await serve(jp_fetch, "v2/models/digits/versions/2/infer", oip(rows), token=TOKENS["bob"])
    assert status == 404 and "not deployed" in answer["error"], answer
    status, missing = await api("POST", f"{ENDPOINTS}/digits/versions", user="carol", body={"version": 9})
    assert status == 404 and missing["error"]["code"] == "unknown_model_version", missing

    # Version 2 as a 20 % canary: sticky keys split about 80/20 and the metrics show it.
    status, endpoint = await api("POST", f"{ENDPOINTS}/digits/versions", user="carol", body={"version": 2, "weight": 20})
    assert status == 200, endpoint
    assert {v["version"]: v["weight"] for v in endpoint["variants"]} == {1: 80, 2: 20}
    seen: Counter[str] = Counter()
    for index in range(300):
        status, answer, headers = await serve(jp_fetch, "v2/models/digits/infer", oip(rows[:1]), key=key["secret"],
                                              headers={"X-Route-Key": f"user-{index}"})
        assert status == 200, answer
        seen[headers["X-Model-Version"]] += 1
    assert 0.12 < seen["2"] / 300 < 0.28, seen
    again = [(await serve(jp_fetch, "v2/models/digits/infer", oip(rows[:1]), key=key["secret"],
                          headers={"X-Route-Key": "user-7"}))[2]["X-Model-Version"] for _ in range(5)]
    assert len(set(again)) == 1, again  # the same key, the same version
    status, answer, headers = await serve(jp_fetch, "v2/models/digits/versions/2/infer", oip(rows), key=key["secret"])
    assert status == 200 and headers["X-Model-Version"] == "2"
    assert answer["outputs"][0]["data"] == fitted[2].predict(rows).tolist()
    status, metrics = await api("GET", f"{ENDPOINTS}/digits/metrics", user="bob")
    assert status == 200, metrics
    totals = {t["version"]: t for t in metrics["totals"]}
    assert totals[2]["requests"] >= seen["2"] and totals[1]["requests"] >= seen["1"], totals
    assert totals[1]["client_errors"] == 2 and totals[1]["latency_p50_ms"] is not None

    # All traffic to version 2, version 1 undeployed; then every call goes to 2.
    status, endpoint = await api("PUT", f"{ENDPOINTS}/digits/traffic", user="carol", body={"weights": {"2": 100}})
    assert status == 200, endpoint
    status, refused = await api("DELETE", f"{ENDPOINTS}/digits/versions/2", user="carol")
    assert status == 409 and refused["error"]["code"] == "version_takes_traffic", refused
    status, endpoint = await api("DELETE", f"{ENDPOINTS}/digits/versions/1", user="carol")
    assert status == 200 and [v["version"] for v in endpoint["variants"]] == [2], endpoint
    for _ in range(5):
        assert (await serve(jp_fetch, "invocations", {"inputs": rows.tolist()}, token=TOKENS["bob"]))[2][
            "X-Model-Version"] == "2"

    # The time series, samples and Prometheus's text.
    status, samples = await api("GET", f"{ENDPOINTS}/digits/samples", user="bob", params={"limit": 5})
    assert status == 200 and len(samples["samples"]) == 5, samples
    status, metrics = await api("GET", f"{ENDPOINTS}/digits/metrics", user="bob")  # the samples' read flushed
    assert status == 200 and {point["version"] for point in metrics["series"]} == {1, 2}, metrics["series"]
    response = await jp_fetch("api", "aitip", "v1", "projects", "alpha", "serving-metrics",
                              headers={"Authorization": f"token {TOKENS['bob']}"})
    text = response.body.decode()
    assert 'aitip_serving_requests_total{project="alpha",endpoint="digits",version="2",outcome="ok"}' in text
    assert "aitip_serving_request_seconds_bucket" in text

    # Deleted: the key no longer calls anything, and the worker processes are gone.
    assert (await api("DELETE", f"{ENDPOINTS}/digits", user="carol"))[0] == 403
    assert (await api("DELETE", f"{ENDPOINTS}/digits"))[0] == 204
    status, answer, _ = await serve(jp_fetch, "v2/models/digits/infer", oip(rows), key=key["secret"])
    assert status == 403, answer
    async def left() -> dict:
        return serving_processes()
    assert await eventually(left, lambda processes: not processes, interval=0.05) == {}


async def test_a_version_that_does_not_load_leaves_nothing(api: Any, served_models: Any) -> None:
    await make_alpha(api)
    status, refused = await api("POST", ENDPOINTS, user="carol", body={"name": "broken", "model": "digits",
                                                                     "version": 3})
    assert status == 422 and refused["error"]["code"] == "model_load_failed", refused
    assert (await api("GET", f"{ENDPOINTS}/broken", user="carol"))[0] == 404
    status, listed = await api("GET", ENDPOINTS, user="carol")
    assert status == 200 and listed["endpoints"] == []
    await asyncio.sleep(0)


async def test_a_shadow_gets_copies_whose_answers_are_dropped_samples_are_masked_and_scaling_applies(
        api: Any, jp_fetch: Any, served_models: Any) -> None:
    _, fitted, x_test = served_models
    await make_alpha(api)
    status, endpoint = await api("POST", ENDPOINTS, user="carol", body={
        "name": "digits", "model": "digits", "version": 1,
        "settings": {"sample_rate": 1.0, "mask_fields": ["pixels"]}})
    assert status == 201, endpoint
    status, endpoint = await api("POST", f"{ENDPOINTS}/digits/versions", user="carol", body={"version": 2,
                                                                                           "shadow": True})
    assert status == 200, endpoint
    assert [(v["version"], v["weight"], v["shadow"]) for v in endpoint["variants"]] == [(1, 100, False),
                                                                                         (2, 0, True)]
    rows = x_test[:3]
    for _ in range(20):
        status, answer, headers = await serve(jp_fetch, "v2/models/digits/infer", oip(rows), token=TOKENS["bob"])
        assert status == 200 and headers["X-Model-Version"] == "1", answer
        assert answer["outputs"][0]["data"] == fitted[1].predict(rows).tolist()
    async def version_totals() -> dict[int, dict[str, Any]]:
        status, metrics = await api("GET", f"{ENDPOINTS}/digits/metrics", user="bob")
        return {t["version"]: t for t in metrics["totals"]}
    totals = await eventually(version_totals, lambda totals: totals.get(2, {}).get("shadow_requests") == 20,
                              interval=0.05)
    assert totals[2]["shadow_requests"] == 20 and totals[2]["errors"] == 0, totals
    assert totals[1]["requests"] == 20 and totals[1]["shadow_requests"] == 0, totals

    status, samples = await api("GET", f"{ENDPOINTS}/digits/samples", user="bob", params={"limit": 50})
    assert status == 200 and len(samples["samples"]) == 20, samples
    sample = samples["samples"][0]
    assert sample["version"] == 1 and sample["protocol"] == "oip" and sample["status"] == 200
    assert sample["request"]["inputs"][0]["data"] == "***" and sample["request"]["inputs"][0]["name"] == "pixels"
    assert sample["answer"]["outputs"][0]["data"] == fitted[1].predict(rows).tolist()

    status, refused = await api("PUT", f"{ENDPOINTS}/digits/traffic", user="carol",
                                body={"weights": {"1": 90, "2": 10}, "shadow": 2})
    assert status == 422 and refused["error"]["code"] == "shadow_with_weight", refused
    status, refused = await api("PUT", f"{ENDPOINTS}/digits/traffic", user="carol", body={"weights": {"1": 90}})
    assert status == 422, refused
    status, endpoint = await api("PUT", f"{ENDPOINTS}/digits/scaling", user="carol",
                                 body={"replicas_min": 2, "replicas_max": 2})
    assert status == 200, endpoint
    status, endpoint = await eventually(lambda: api("GET", f"{ENDPOINTS}/digits", user="bob"),
                                        lambda answer: all(v["replicas"] == 2 for v in answer[1]["variants"]),
                                        interval=0.05)
    assert [v["replicas"] for v in endpoint["variants"]] == [2, 2], endpoint


async def test_the_onnx_backend_serves_the_same_answers(api: Any, jp_fetch: Any, served_models: Any) -> None:
    _, fitted, x_test = served_models
    await make_alpha(api)
    status, endpoint = await api("POST", ENDPOINTS, user="carol", body={
        "name": "digits", "model": "digits", "version": 2, "settings": {"backend": "onnx"}})
    assert status == 201, endpoint
    status, answer, _ = await serve(jp_fetch, "v2/models/digits", token=TOKENS["bob"])
    assert status == 200 and answer["platform"] == "aitip-onnx", answer
    status, answer, _ = await serve(jp_fetch, "v2/models/digits/infer", oip(x_test), token=TOKENS["bob"])
    assert status == 200, answer
    assert answer["outputs"][0]["data"] == fitted[2].predict(x_test).tolist()
    status, answer, _ = await serve(jp_fetch, "v2/models/digits/infer", oip(x_test[:, :60]), token=TOKENS["bob"])
    assert status == 400 and answer["expected"]["tensor"]["shape"] == [-1, 64], answer


async def test_labels_sent_to_feedback_score_the_version_that_answered(
        api: Any, jp_fetch: Any, served_models: Any, jp_http_port: int, jp_base_url: str) -> None:
    """Answers to requests that name themselves (X-Request-Id) are scored when their true labels arrive: each
    version's accuracy in the metrics, each answer scored once; bad feedback is a 400 that says what to send."""
    _, fitted, x_test = served_models
    await make_alpha(api)
    assert (await api("POST", ENDPOINTS, user="carol", body={"name": "digits", "model": "digits", "version": 1}))[0] \
        == 201
    assert (await api("POST", f"{ENDPOINTS}/digits/versions", user="carol", body={"version": 2, "weight": 50}))[0] \
        == 200
    truth: dict[str, Any] = {}
    answered: Counter[int] = Counter()
    right: Counter[int] = Counter()
    for index in range(40):
        rows = x_test[index:index + 1]
        status, answer, headers = await serve(jp_fetch, "v2/models/digits/infer", oip(rows), token=TOKENS["bob"],
                                              headers={"X-Request-Id": f"r-{index}", "X-Route-Key": str(index)})
        assert status == 200, answer
        version = int(headers["X-Model-Version"])
        label = int(fitted[1].predict(rows)[0])  # what version 1 says, taken as the truth here
        truth[f"r-{index}"] = label
        answered[version] += 1
        right[version] += int(answer["outputs"][0]["data"][0] == label)
    status, said, _ = await serve(jp_fetch, "invocations", {"inputs": x_test[:2].tolist()}, token=TOKENS["bob"],
                                  headers={"X-Request-Id": "pair"})
    assert status == 200, said
    status, refused, _ = await serve(jp_fetch, "feedback", {"labels": truth}, token=TOKENS["bob"])
    assert status == 403 and "serving.label" in refused["error"], refused  # a viewer calls, but does not label
    status, scored, _ = await serve(jp_fetch, "feedback", {"labels": {**truth, "pair": [0, 1, 2], "never": 3}},
                                    token=TOKENS["carol"])
    assert status == 200, scored
    assert (scored["labelled"], scored["rows"], scored["unknown"], scored["mismatched"]) == (40, 40, ["never"],
                                                                                             ["pair"]), scored
    status, again, _ = await serve(jp_fetch, "feedback", {"labels": {"r-0": truth["r-0"]}}, token=TOKENS["carol"])
    assert status == 200 and again["labelled"] == 0 and again["unknown"] == ["r-0"], "an answer is scored once"
    status, metrics = await api("GET", f"{ENDPOINTS}/digits/metrics", user="bob")
    totals = {t["version"]: t for t in metrics["totals"]}
    assert {version: totals[version]["labelled"] for version in (1, 2)} == dict(answered), totals
    assert totals[1]["accuracy"] == 1.0
    assert totals[2]["accuracy"] == pytest.approx(right[2] / answered[2]), totals
    for body, expected in ((b"not json", "not JSON"), ({"labels": {}}, "send {"), ({"labels": [1]}, "send {"),
                           ({"labels": {"x" * 201: 1}}, "at most 200"), ({"labels": {"a": {"b": 1}}}, "is not a label"),
                           ({"labels": {str(i): 1 for i in range(10_001)}}, "at most 10000")):
        status, refused, _ = await serve(jp_fetch, "feedback", body, token=TOKENS["carol"])
        assert status == 400 and expected in refused["error"], (body if isinstance(body, bytes) else "", refused)
    status, refused, _ = await serve(jp_fetch, "feedback", {"labels": {"r-1": 1}}, token=TOKENS["dave"])
    assert status == 404 and refused["code"] == "not_found", refused  # not a member: the project is not shown

    def by_the_sdk() -> tuple[list[Any], dict[str, Any]]:
        from aitip.client import Client

        with Client(url=f"http://127.0.0.1:{jp_http_port}{jp_base_url}", token=TOKENS["carol"]) as client:
            said = client.serving.predict("alpha", "digits", x_test[:2], request_id="sdk-1")
            return said, client.serving.feedback("alpha", "digits", {"sdk-1": [int(value) for value in said]})

    said, scored = await asyncio.to_thread(by_the_sdk)
    assert len(said) == 2 and (scored["labelled"], scored["rows"], scored["unknown"]) == (1, 2, []), scored
