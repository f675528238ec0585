"""How fast a failing service canary is aborted, against the real platform over loopback (``aitip up``: hub,
proxy, platform service; the traffic goes through the hub's proxy as a client application's would).

The project trains two versions of the digits classifier in jobs (1: logistic regression; 2: the same model as
an MLflow pyfunc that raises on a row with a negative pixel, which the evaluation data never has), evaluates both
by policy, and releases version 2 (approved by a second person). Each trial starts a rollout of that release onto
the endpoint serving version 1 — ``set_weight`` 20, then an analysis every ``--interval`` seconds (error rate at
most 5 %, no failure tolerated), then 100 — under four client threads calling the endpoint every 20 ms. Once an
analysis run has passed, the clients start sending rows with a negative pixel at a random moment within an
interval; then, measured from the first failed answer (the error rate crossing its limit):

  abort:   until the rollout is degraded (the canary's weight set to 0: the rollout's ``updated_at``, on the
           same machine's clock as the clients'), in seconds and in analysis intervals;
  stable:  from the abort until the last answer of the canary (or failed answer) the clients received — the
           traffic back on the stable version.

The failed rollout is retried (from its first step) for the next trial. There is no peer run side by side here:
Argo Rollouts and Flagger need Kubernetes. The figures are set against the issue's goals: the abort within
2 analysis intervals of the crossing, and the traffic back on stable within 1 s.

    .venv/bin/python benchmarks/canary_abort.py                 # 8 trials, 5 s intervals
    .venv/bin/python benchmarks/canary_abort.py --trials 3 --interval 10
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.runs_listing import start_aitip

PROJECT, MODEL, ENDPOINT, DATASET = "canary", "digits-canary", "digits", "digits"
CLIENTS = 4


class Clients:
    """``CLIENTS`` threads calling the endpoint through the proxy; each answer's time and version (None: failed)."""

    def __init__(self, url: str, token: str) -> None:
        from sklearn.datasets import load_digits

        self.url = f"{url}/services/aitip/serve/{PROJECT}/{ENDPOINT}/v2/models/{ENDPOINT}/infer"
        self.headers = {"Authorization": f"token {token}"}
        self.rows = load_digits().data[:8]
        self.negative = False
        self.answers: list[tuple[float, int | None]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._call, args=(index,), daemon=True) for index in range(CLIENTS)]

    def __enter__(self) -> Clients:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def _call(self, client: int) -> None:
        with httpx.Client(timeout=10, headers=self.headers) as http:
            index = client
            while not self._stop.is_set():
                row = [float(value) for value in self.rows[index % 8]]
                if self.negative:
                    row[0] = -1.0
                try:
                    response = http.post(self.url, headers={"X-Route-Key": f"{client}-{index}"}, json={
                        "inputs": [{"name": "pixels", "shape": [1, 64], "datatype": "FP64", "data": row}]})
                    version = int(response.json()["model_version"]) if response.status_code == 200 else None
                except (httpx.HTTPError, ValueError, KeyError):
                    version = None
                with self._lock:
                    self.answers.append((time.time(), version))  # wall clock: set against the abort's time
                index += CLIENTS
                self._stop.wait(0.02)

    def after(self, moment: float) -> list[tuple[float, int | None]]:
        with self._lock:
            return [(at, version) for at, version in self.answers if at >= moment]


def wait_for(check: Any, timeout: float, what: str, step: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(step)
    raise TimeoutError(f"{what} did not happen within {timeout} s")


def prepare(platform: Any) -> tuple[httpx.Client, httpx.Client, str, int]:
    """The project, its two versions, the approved release of version 2, the endpoint serving version 1."""
    from tests.evaluation.conftest import TRAINING, digits_csv, training_notebook
    from tests.support.fragile_model import FRAGILE_TRAINING

    token = platform.token(platform.admin_user, platform.admin_password)
    assert platform.signup("approver", "Appr0ver-pass").status_code in (200, 302)
    platform.approve("approver")
    approver_token = platform.token("approver", "Appr0ver-pass")
    api, approver = platform.api(token), platform.api(approver_token)
    api.timeout = approver.timeout = httpx.Timeout(60)
    assert api.post("projects", json={"name": PROJECT}).status_code == 201
    assert api.post(f"projects/{PROJECT}/members", json={"user": "approver", "role": "maintainer"}).status_code == 201
    registered = api.post(f"projects/{PROJECT}/datasets/{DATASET}/versions", params={"filename": "digits.csv"},
                          content=digits_csv(), headers={"Content-Type": "application/octet-stream"})
    assert registered.status_code == 201, registered.text
    assert api.put(f"projects/{PROJECT}/evaluation-policies/{MODEL}", json={"dataset": DATASET, "thresholds": {
        "accuracy_score": {"threshold": 0.5, "greater_is_better": True}}}).status_code == 200
    for notebook, name, parameters in ((training_notebook(), TRAINING.name, {"classifier": "logistic"}),
                                       (FRAGILE_TRAINING, "digits_fragile.ipynb", {})):
        job = api.post("jobs", json={"project": PROJECT, "notebook": notebook, "notebook_name": name,
                                     "parameters": {"dataset": DATASET, "model_name": MODEL, **parameters},
                                     "inputs": [{"dataset": DATASET}]})
        assert job.status_code == 201, job.text
        done = platform.wait_for_job(token, job.json()["id"], {"succeeded", "failed", "cancelled", "timed_out"},
                                     timeout=300)
        assert done["state"] == "succeeded", (done["reason"], done["failed_cell"])

    def evaluated() -> bool:
        found = api.get(f"projects/{PROJECT}/evaluations", params={"model": MODEL}).json()["evaluations"]
        return {(e["model_version"], e["state"]) for e in found} >= {(1, "passed"), (2, "passed")}

    wait_for(evaluated, 300, "the evaluations of both versions", step=1)
    release = api.post(f"projects/{PROJECT}/releases", json={
        "kind": "model", "name": "digits", "version": "2.0.0", "model": MODEL, "model_version": 2,
        "dataset": DATASET})
    assert release.status_code == 201, release.text
    release_id = int(release.json()["id"])
    decided = approver.post(f"projects/{PROJECT}/releases/{release_id}/decisions", json={"decision": "approve"})
    assert decided.status_code == 200 and decided.json()["state"] == "approved", decided.text
    deployed = api.post(f"projects/{PROJECT}/endpoints", json={"name": ENDPOINT, "model": MODEL, "version": 1})
    assert deployed.status_code == 201, deployed.text
    return api, approver, token, release_id


def trial(api: httpx.Client, clients: Clients, rollout: dict[str, Any], interval: float,
          rng: random.Random) -> dict[str, Any]:
    """One rollout (started or retried) until its analysis aborts it on the clients' failing requests."""
    path = f"projects/{PROJECT}/rollouts/{rollout['id']}"
    clients.negative = False
    try:
        wait_for(lambda: any(run["outcome"] == "passed" for run in api.get(path).json()["analysis_runs"][-1:])
                 and api.get(path).json()["state"] == "progressing", 6 * interval, "a passed analysis run", step=0.2)
    except TimeoutError:
        raise TimeoutError(f"no passed analysis run: {api.get(path).json()}") from None
    passed_runs = len(api.get(path).json()["analysis_runs"])
    time.sleep(rng.uniform(0, interval))
    turned = time.time()
    clients.negative = True
    failed = wait_for(lambda: next((at for at, version in clients.after(turned) if version is None), None), 30,
                      "a failed answer")
    aborted = wait_for(lambda: (found := api.get(path).json())["state"] != "progressing" and found, 10 * interval,
                       "the abort", step=0.02)
    time.sleep(2.0)
    clients.negative = False
    aborted_at = datetime.fromisoformat(aborted["updated_at"]).timestamp()  # when the canary's weight went to 0
    late = [at for at, version in clients.after(turned) if version != 1 and at >= aborted_at]
    runs = aborted["analysis_runs"]
    return {"state": aborted["state"], "message": aborted["message"],
            "abort_after_crossing_s": round(aborted_at - failed, 3),
            "abort_after_crossing_intervals": round((aborted_at - failed) / interval, 2),
            "stable_after_abort_s": round(max(late) - aborted_at if late else 0.0, 3),
            "answers_not_stable_after_abort": len(late),
            "failed_run": {key: runs[-1][key] for key in ("requests", "errors", "error_rate", "outcome")},
            "runs_before": passed_runs}


def run(trials: int, interval: float, work: Path) -> dict[str, Any]:
    home = work / "home"
    home.mkdir()
    began = time.monotonic()
    platform, _ = start_aitip(home)
    facts: dict[str, Any] = {"aitip_up_s": round(time.monotonic() - began, 1), "interval_s": interval,
                             "clients": CLIENTS, "trials": []}
    rng = random.Random(7)
    try:
        began = time.monotonic()
        api, approver, token, release_id = prepare(platform)
        facts["prepare_s"] = round(time.monotonic() - began, 1)
        print(f"trained, evaluated, released and deployed in {facts['prepare_s']} s", flush=True)
        watch = {"interval_seconds": interval, "count": 1000, "failure_limit": 0, "min_requests": 3,
                 "conditions": [{"metric": "error_rate", "max": 0.05}]}
        with Clients(platform.url, token) as clients:
            started = api.post(f"projects/{PROJECT}/releases/{release_id}/rollouts", json={
                "endpoint": ENDPOINT, "steps": [{"set_weight": 20}, {"analysis": watch}, {"set_weight": 100}]})
            assert started.status_code == 201, started.text
            rollout = started.json()
            for number in range(trials):
                if number:
                    retried = api.post(f"projects/{PROJECT}/rollouts/{rollout['id']}/retry")
                    assert retried.status_code == 200, retried.text
                measured = trial(api, clients, rollout, interval, rng)
                facts["trials"].append(measured)
                print(f"trial {number + 1}: {measured}", flush=True)
            facts["answers"] = len(clients.answers)
        api.close()
        approver.close()
    finally:
        platform.stop()
    aborts = [t["abort_after_crossing_s"] for t in facts["trials"]]
    stables = [t["stable_after_abort_s"] for t in facts["trials"]]
    facts["abort_after_crossing_s"] = {"p50": round(statistics.median(aborts), 3), "max": max(aborts)}
    facts["abort_after_crossing_intervals_max"] = round(max(aborts) / interval, 2)
    facts["stable_after_abort_s"] = {"p50": round(statistics.median(stables), 3), "max": max(stables)}
    return facts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--interval", type=float, default=5.0, help="the analysis interval, in seconds")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "canary_abort.json"))
    args = parser.parse_args()
    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="aitip-canary-bench-"))
    try:
        facts = run(args.trials, args.interval, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    goals = {"abort_within_2_intervals": all(t["state"] == "degraded" and t["abort_after_crossing_intervals"] <= 2
                                             for t in facts["trials"]),
             "stable_within_1_s": facts["stable_after_abort_s"]["max"] <= 1.0}
    result = {"facts": facts, "goals": goals, "machine": {"cpus": os.cpu_count(), "load_before": load_before,
                                                         "load_after": os.getloadavg()},
              "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
