"""Serving end to end through the real hub: a developer trains two versions of the digits classifier in jobs,
deploys version 1 with the CLI, calls it through the hub's proxy with the CLI, the SDK and curl (a hub token and
an endpoint API key), adds version 2 as a 20 % canary, reads the split in the metrics, shifts all traffic to 2
and undeploys 1. The workers run as the developer's own account."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from aitip.client import Client
from aitip.cli import main as cli_main
from tests.evaluation.conftest import TRAINING, digits_csv, training_notebook
from tests.support.platform import RunningPlatform

pytestmark = pytest.mark.integration

PROJECT, MODEL, ENDPOINT = "serving-e2e", "digits-served", "digits"


def cli(platform: RunningPlatform, token: str, *argv: str) -> tuple[int, str, str]:
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli_main(["--url", f"{platform.url}/services/aitip/", "--token", token, *argv])
    return code, out.getvalue(), err.getvalue()


def test_rows() -> np.ndarray:
    from sklearn.datasets import load_digits

    return load_digits().data[:8]


@pytest.fixture(scope="module")
def deployed(platform: RunningPlatform, people: dict[str, str]) -> Iterator[dict[str, Any]]:
    """carol (developer) trains versions 1 (logistic) and 2 (MLP) and deploys 1 with the CLI; bob (maintainer)
    makes an API key."""
    ann, bob, carol = (platform.api(people[name]) for name in ("ann", "bob", "carol"))
    with ann, bob, carol:
        assert ann.post("projects", json={"name": PROJECT}).status_code == 201
        for user, role in (("bob", "maintainer"), ("carol", "developer")):
            assert ann.post(f"projects/{PROJECT}/members", json={"user": user, "role": role}).status_code == 201
        registered = carol.post(f"projects/{PROJECT}/datasets/digits/versions", params={"filename": "digits.csv"},
                                content=digits_csv(), headers={"Content-Type": "application/octet-stream"})
        assert registered.status_code == 201, registered.text
        for classifier in ("logistic", "mlp"):
            job = carol.post("jobs", json={
                "project": PROJECT, "notebook": training_notebook(), "notebook_name": TRAINING.name,
                "parameters": {"dataset": "digits", "model_name": MODEL, "classifier": classifier, "epochs": 5},
                "inputs": [{"dataset": "digits"}]})
            assert job.status_code == 201, job.text
            done = platform.wait_for_job(people["carol"], job.json()["id"],
                                         {"succeeded", "failed", "cancelled", "timed_out"}, timeout=180)
            assert done["state"] == "succeeded", (done["reason"], done["failed_cell"])
        code, out, err = cli(platform, people["carol"], "endpoints", "deploy", "--project", PROJECT, "--name",
                             ENDPOINT, "--model", MODEL, "--version", "1", "--settings", json.dumps({"sample_rate": 1}))
        assert code == 0, err
        key = bob.post(f"projects/{PROJECT}/endpoints/{ENDPOINT}/keys", json={"name": "e2e"})
        assert key.status_code == 201, key.text
        yield {"deploy_output": out, "key": key.json()["secret"]}


def test_version_1_deploys_with_the_cli_and_runs_as_the_developers_account(
        platform: RunningPlatform, people: dict[str, str], deployed: dict[str, Any]) -> None:
    shown = deployed["deploy_output"]
    assert f"endpoint {PROJECT}/{ENDPOINT}: model {MODEL} (local)" in shown, shown
    assert "/services/aitip/serve/serving-e2e/digits/" in shown and "100 %" in shown, shown
    carol = pwd.getpwnam("aitip-carol").pw_uid
    uids = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        if b"aitip.serving.host" in command and f'"model_name": "{MODEL}"'.encode() in command:
            uids.add(int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1]))
    assert uids == {carol}, uids


def test_called_through_the_proxy_with_the_cli_the_sdk_and_curl(
        platform: RunningPlatform, people: dict[str, str], deployed: dict[str, Any]) -> None:
    rows = test_rows()
    code, out, err = cli(platform, people["bob"], "endpoints", "predict", "--project", PROJECT, "--endpoint",
                         ENDPOINT, "--data", json.dumps(rows.tolist()))
    assert code == 0, err
    assert out.startswith("version 1: [") and len(json.loads(out.split(": ", 1)[1])) == 8, out
    by_cli = json.loads(out.split(": ", 1)[1])

    client = Client(f"{platform.url}/services/aitip/", people["bob"])
    assert client.serving.predict(PROJECT, ENDPOINT, rows) == by_cli
    assert client.serving.predict(PROJECT, ENDPOINT, rows, protocol="mlflow") == by_cli
    assert client.serving.predict(PROJECT, ENDPOINT, rows, api_key=deployed["key"]) == by_cli
    assert client.serving.last_version == 1
    from sklearn.datasets import load_digits

    assert np.mean(np.asarray(by_cli) == load_digits().target[:8]) >= 0.75

    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    body = json.dumps({"inputs": rows.tolist()})
    answer = subprocess.run([curl, "-s", "-H", f"Authorization: Bearer {deployed['key']}", "-H",
                             "Content-Type: application/json", "-d", body,
                             f"{platform.url}/services/aitip/serve/{PROJECT}/{ENDPOINT}/invocations"],
                            capture_output=True, text=True, timeout=30)
    assert json.loads(answer.stdout) == {"predictions": by_cli}, answer.stdout + answer.stderr
    refused = subprocess.run([curl, "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H",
                              "Content-Type: application/json", "-d", json.dumps({"inputs": [[1.0] * 63]}), "-H",
                              f"Authorization: Bearer {deployed['key']}",
                              f"{platform.url}/services/aitip/serve/{PROJECT}/{ENDPOINT}/invocations"],
                             capture_output=True, text=True, timeout=30)
    assert refused.stdout == "400"


def test_a_20_percent_canary_shows_in_the_metrics_then_takes_all_and_version_1_goes(
        platform: RunningPlatform, people: dict[str, str], deployed: dict[str, Any]) -> None:
    client = Client(f"{platform.url}/services/aitip/", people["carol"])
    endpoint = client.ops.endpoints.add_version(project=PROJECT, endpoint=ENDPOINT, version=2, weight=20)
    assert {v.version: v.weight for v in endpoint.variants} == {1: 80, 2: 20}
    rows = test_rows()[:1]
    seen: Counter[int] = Counter()
    with httpx.Client(base_url=f"{platform.url}/services/aitip/serve/{PROJECT}/{ENDPOINT}/", timeout=30,
                      headers={"Authorization": f"Bearer {deployed['key']}"}) as http:
        for index in range(400):
            answer = http.post(f"v2/models/{ENDPOINT}/infer", headers={"X-Route-Key": f"customer-{index}"}, json={
                "inputs": [{"name": "x", "shape": [1, 64], "datatype": "FP64", "data": rows.reshape(-1).tolist()}]})
            assert answer.status_code == 200, answer.text
            seen[int(answer.headers["X-Model-Version"])] += 1
    assert 0.13 < seen[2] / 400 < 0.27, seen
    code, out, err = cli(platform, people["bob"], "endpoints", "metrics", "--project", PROJECT, "--endpoint",
                         ENDPOINT, "--json")
    assert code == 0, err
    totals = {t["version"]: t["requests"] for t in json.loads(out)["totals"]}
    assert totals[2] >= seen[2] and totals[1] >= seen[1], (totals, seen)

    code, out, err = cli(platform, people["carol"], "endpoints", "traffic", "--project", PROJECT, "--endpoint",
                         ENDPOINT, "--weights", json.dumps({"2": 100}))
    assert code == 0, err
    code, out, err = cli(platform, people["carol"], "endpoints", "remove-version", "--project", PROJECT,
                         "--endpoint", ENDPOINT, "--model-version", "1")
    assert code == 0, err
    table = out.split("VERSION", 1)[1].splitlines()[1:]
    assert [line.split()[0] for line in table if line.strip()] == ["2"], out
    client = Client(f"{platform.url}/services/aitip/", people["bob"])
    for _ in range(5):
        client.serving.predict(PROJECT, ENDPOINT, rows)
        assert client.serving.last_version == 2
