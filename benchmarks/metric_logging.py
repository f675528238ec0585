"""Metric logging with the plain MLflow API, side by side in one run: 10,000 `mlflow.log_metric` calls in a loop

  (a) in an AITIP job's notebook, through the real platform (`aitip up` on loopback, a notebook submitted
      over the REST API; the notebook's code is the plain loop, unchanged). As root the job's kernel runs as
      its owner's account and may not open the store: its buffered store appends to the job's spool, which
      the platform drains into MLflow in bulk (the cell's end waits for that drain). In single-trust mode
      (run again with AITIP_SHARED_ACCOUNT=1, as root) the kernel writes the store itself (`aitip:sqlite`);
  (b) in a plain Python process against `mlflow server --workers 1` (started here on a free loopback
      port >= 20000, sqlite backend in WAL mode in a temp dir);
  (c) the same against a default `mlflow server` (4 workers): a sample of calls only, since at ~15 calls/s
      10,000 would take over ten minutes;
  (d) MLflow's own async logging against the `--workers 1` server (with its buffering on);
  (e) the buffered store over HTTP: `aitip:http://...` against the `--workers 1` server.

Every loop times itself. "loop" is the calls alone, what the training code waits for; "stored" runs until
every point is durable in the store: the loop plus the flush (for the job, the cell's end: a second cell
reads the clock). Fast cases run the loop 3 times (a metric key each) and report the median, as the
2-core machine is shared; the plain synchronous loop (minutes) runs once. Afterwards the points are
counted in each store: every step of every trial must be there.

    .venv/bin/python benchmarks/metric_logging.py                      # full run (~6-8 minutes)
    .venv/bin/python benchmarks/metric_logging.py --skip-default-server
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
VENV_BIN = Path(sys.executable).parent
METRIC = "bench_loss"

LOOP = f"""
import json, os, time
import mlflow
calls, trials = int(os.environ["BENCH_CALLS"]), int(os.environ["BENCH_TRIALS"])
mlflow.log_metric("warmup", 0.0)  # the first call builds the store and starts the run: not timed
for trial in range(trials):
    started = time.perf_counter()
    for step in range(calls):
        mlflow.log_metric(f"{METRIC}_{{trial}}", 1.0 / (step + 1), step=step)
    looped = time.perf_counter()
    mlflow.flush_async_logging()  # a no-op for synchronous logging
    stored = time.perf_counter()
    print("RESULT " + json.dumps({{"calls": calls, "loop_s": looped - started, "stored_s": stored - started,
                                  "tracking_uri": mlflow.get_tracking_uri()}}))
"""


def job_notebook(calls: int, trials: int) -> dict[str, Any]:
    """The loop as a user writes it: no flush, no configuration. The cell after each loop reads the clock
    once the loop's cell has ended, that is after the cell-end flush."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "import json, os, time\nimport mlflow\n"
        "mlflow.log_metric('warmup', 0.0)  # the first call builds the store and starts the run: not timed\n"
        f"calls = {calls}")]
    for trial in range(trials):
        nb.cells += [
            nbformat.v4.new_code_cell(
                "started = time.perf_counter()\n"
                f"for step in range(calls):\n    mlflow.log_metric('{METRIC}_{trial}', 1.0 / (step + 1), step=step)\n"
                "looped = time.perf_counter()"),
            nbformat.v4.new_code_cell(
                "stored = time.perf_counter()\n"
                "print('RESULT ' + json.dumps({'calls': calls, 'loop_s': looped - started,"
                " 'stored_s': stored - started, 'tracking_uri': mlflow.get_tracking_uri()}))"),
        ]
    nb.metadata["kernelspec"] = {"name": "aitip-python", "display_name": "AITIP Python (CPU)", "language": "python"}
    return dict(nbformat.from_dict(nb))


def result_lines(text: str) -> list[dict[str, Any]]:
    results = [json.loads(line[len("RESULT "):]) for line in text.splitlines() if line.startswith("RESULT ")]
    if not results:
        raise ValueError(f"no RESULT line in:\n{text[-3000:]}")
    return results


def landed(history: list[Any], calls: int) -> int:
    """The loop's steps found in the store, each counted once: duplicates cannot make up for losses."""
    return len({m.step for m in history if 0 <= m.step < calls})


def row(case: str, results: list[dict[str, Any]], stored_points: list[int], note: str = "") -> dict[str, Any]:
    """One case: the median trial's rates, every trial kept; ``landed`` is the worst trial's count."""
    calls = results[0]["calls"]
    trials = [{"loop_per_s": r["calls"] / r["loop_s"], "stored_per_s": r["calls"] / r["stored_s"],
               "loop_s": r["loop_s"], "stored_s": r["stored_s"], "landed": points}
              for r, points in zip(results, stored_points, strict=True)]
    return {"case": case, "calls": calls, "trials": trials,
            "loop_per_s": statistics.median(t["loop_per_s"] for t in trials),
            "stored_per_s": statistics.median(t["stored_per_s"] for t in trials),
            "landed": min(stored_points), "all_landed": all(points == calls for points in stored_points),
            "tracking_uri": results[0]["tracking_uri"], "note": note}


# ----- (a) AITIP -----

def aitip_job(calls: int, trials: int, work: Path, *, shared_account: bool) -> dict[str, Any]:
    """``shared_account``: single-trust mode (the kernel runs as the platform and opens the store itself);
    otherwise, as root, the kernel runs as its owner's account and logs through its spool."""
    from mlflow import MlflowClient

    from tests.support.platform import start_platform

    home = work / ("aitip-home-shared" if shared_account else "aitip-home")
    platform = start_platform(home, environment={"AITIP_SHARED_ACCOUNT": "1"} if shared_account else {})
    try:
        with platform.api(platform.token(platform.admin_user, platform.admin_password)) as admin:
            assert admin.post("projects", json={"name": "bench"}).status_code == 201
            job = admin.post("jobs", json={"project": "bench", "notebook": job_notebook(calls, trials),
                                           "notebook_name": "metric_logging.ipynb"}).json()
            deadline = time.monotonic() + 300
            while True:
                job = admin.get(f"jobs/{job['id']}").json()
                if job["state"] in ("succeeded", "failed", "cancelled", "timed_out"):
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"job {job['id']} still {job['state']}")
                time.sleep(0.2)
            assert job["state"] == "succeeded", job
            executed = admin.get(f"jobs/{job['id']}/notebook").json()
        outputs = "".join("".join(output.get("text", "")) for cell in executed["cells"]
                          for output in cell.get("outputs", []))
        results = result_lines(outputs)
        client = MlflowClient(f"sqlite:///{home / 'mlflow.sqlite'}")
        points = [landed(client.get_metric_history(job["mlflow_run_id"], f"{METRIC}_{trial}"), calls)
                  for trial in range(trials)]
    finally:
        platform.stop()
    if shared_account:
        return row("AITIP job, single-trust (aitip:sqlite)", results, points,
                   "the kernel runs as the platform and writes the store; stored = once the loop's cell has ended")
    return row("AITIP job, kernel as its owner (spool)", results, points,
               "the kernel runs as the job's owner: its spool, drained by the platform; stored = once the loop's "
               "cell has ended")


# ----- (b)-(e) against a plain MLflow server -----

class MlflowServer:
    def __init__(self, work: Path, name: str, workers: int | None) -> None:
        from aitip.launcher import free_port

        self.dir = work / name
        self.dir.mkdir(parents=True)
        database = self.dir / "mlflow.sqlite"
        self._make_store(database)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [str(VENV_BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(self.port),
                   "--backend-store-uri", f"sqlite:///{database}",
                   "--default-artifact-root", (self.dir / "artifacts").as_uri()]
        if workers is not None:
            command += ["--workers", str(workers)]
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        self.log = (self.dir / "server.log").open("wb")
        self.process = subprocess.Popen(command, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        self._wait_ready()

    @staticmethod
    def _make_store(database: Path) -> None:
        """Tables made and WAL on before the server starts: the same journal mode as AITIP's store."""
        subprocess.run([sys.executable, "-c", "import sys; from mlflow import MlflowClient; "
                        "MlflowClient(sys.argv[1]).search_experiments(max_results=1)", f"sqlite:///{database}"],
                       check=True, capture_output=True)
        with sqlite3.connect(database) as db:
            db.execute("PRAGMA journal_mode=WAL")

    def _wait_ready(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mlflow server exited: {(self.dir / 'server.log').read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.stop()
        raise TimeoutError(f"mlflow server not ready in {timeout} s")

    def new_run(self, name: str) -> str:
        from mlflow import MlflowClient

        client = MlflowClient(self.url)
        experiment = client.get_experiment_by_name("bench") or client.get_experiment(
            client.create_experiment("bench"))
        return client.create_run(experiment.experiment_id, run_name=name).info.run_id

    def count(self, run_id: str, calls: int, trials: int) -> list[int]:
        from mlflow import MlflowClient

        client = MlflowClient(self.url)
        return [landed(client.get_metric_history(run_id, f"{METRIC}_{trial}"), calls) for trial in range(trials)]

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self.log.close()


def plain_loop(server: MlflowServer, calls: int, trials: int, case: str, tracking_uri: str, note: str = "",
               **env: str) -> dict[str, Any]:
    run_id = server.new_run(case)
    process_env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri, "MLFLOW_RUN_ID": run_id,
                   "BENCH_CALLS": str(calls), "BENCH_TRIALS": str(trials), **env}
    done = subprocess.run([sys.executable, "-c", LOOP], env=process_env, capture_output=True, text=True,
                          timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"{case} failed:\n{done.stderr[-3000:]}")
    return row(case, result_lines(done.stdout), server.count(run_id, calls, trials), note)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--trials", type=int, default=3, help="repetitions of the fast cases")
    parser.add_argument("--default-server-calls", type=int, default=300)
    parser.add_argument("--skip-default-server", action="store_true")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "metric_logging.json"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="aitip-metric-bench-"))
    load_before = os.getloadavg()
    rows = [aitip_job(args.calls, args.trials, work, shared_account=False)]
    if os.geteuid() == 0:
        rows.append(aitip_job(args.calls, args.trials, work, shared_account=True))

    server = MlflowServer(work, "server-1-worker", workers=1)
    try:
        rows.append(plain_loop(server, args.calls, 1, "plain MLflow, server --workers 1", server.url))
        rows.append(plain_loop(server, args.calls, args.trials, "MLflow async logging, server --workers 1",
                               server.url, "MLFLOW_ENABLE_ASYNC_LOGGING=true, MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS=1",
                               MLFLOW_ENABLE_ASYNC_LOGGING="true", MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS="1"))
        rows.append(plain_loop(server, args.calls, args.trials, "AITIP buffered store, aitip:http (--workers 1)",
                               f"aitip:{server.url}", "the buffered store in a plain process, inner store HTTP",
                               MLFLOW_REGISTRY_URI=server.url))
    finally:
        server.stop()
    if not args.skip_default_server:
        server = MlflowServer(work, "server-default", workers=None)
        try:
            rows.append(plain_loop(server, args.default_server_calls, 1, "plain MLflow, default server (4 workers)",
                                   server.url, f"a sample of {args.default_server_calls} calls"))
        finally:
            server.stop()

    baseline = next(r for r in rows if r["case"] == "plain MLflow, server --workers 1")
    for r in rows:
        r["loop_ratio_to_plain"] = r["loop_per_s"] / baseline["stored_per_s"]
        r["stored_ratio_to_plain"] = r["stored_per_s"] / baseline["stored_per_s"]
    print(f"\n{'case':48} {'calls':>6} {'trials':>6} {'loop/s':>8} {'stored/s':>8} {'loop x':>7} {'stored x':>8} "
          f"{'landed':>7}")
    for r in rows:
        print(f"{r['case']:48} {r['calls']:>6} {len(r['trials']):>6} {r['loop_per_s']:>8,.0f} "
              f"{r['stored_per_s']:>8,.0f} {r['loop_ratio_to_plain']:>7,.1f} {r['stored_ratio_to_plain']:>8,.1f} "
              f"{r['landed']:>7}")
    print("rates: medians of the trials; x: over plain `mlflow.log_metric` against `mlflow server --workers 1`;"
          " landed: distinct steps stored, worst trial")
    load_after = os.getloadavg()
    print(f"load average before {load_before[0]:.1f}, after {load_after[0]:.1f} ({os.cpu_count()} cores)")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"rows": rows, "machine": f"{os.cpu_count()} cores",
                               "load_average_1min": {"before": load_before[0], "after": load_after[0]},
                               "all_landed": all(r["all_landed"] for r in rows)}, indent=2))
    if not all(r["all_landed"] for r in rows):
        raise SystemExit("some points did not land: see the landed column")


if __name__ == "__main__":
    main()
