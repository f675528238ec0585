"""Runs listing latency, side by side in one run: AITIP's runs API vs MLflow's own ``runs/search``
REST endpoint, on the same MLflow sqlite store of 5,000 runs x (5 params, 10 metrics) in one experiment.

  (a) ``mlflow server --workers 1`` (job execution off) on a loopback port, ``POST runs/search``;
  (b) AITIP (``aitip up``: hub, proxy, platform service) ``GET projects/bench/runs``, measured both
      straight at the platform service (as MLflow is) and through the hub's proxy (as browsers go).

Each answers a first page (100 runs, MLflow's default order) and a filtered page
(``metrics.m0 > 0.5``), to 1 and to 16 concurrent clients (forked processes, each with a keep-alive httpx client).
Reported: p50/p99 milliseconds per request and AITIP's ratio to MLflow. The store is written with
bulk SQL (rows shaped as MLflow writes them) after MLflow creates its schema; both systems must
return the same first-page run ids, or the benchmark stops.

    .venv/bin/python benchmarks/runs_listing.py              # full: 150 requests at 1 client, 16 x 20 at 16
    .venv/bin/python benchmarks/runs_listing.py --quick      # 30 and 16 x 5, for a smoke run
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
VENV_BIN = Path(sys.executable).parent
PROJECT = "bench"
FILTER = "metrics.m0 > 0.5"
PAGE = 100


# ----- the store -----

def build_store(path: Path, runs: int = 5000, params: int = 5, metrics: int = 10, seed: int = 0) -> str:
    """An MLflow sqlite store with one experiment ``aitip/bench`` holding ``runs`` finished runs, each
    with the tags the AITIP job tracker sets, ``params`` params and ``metrics`` one-point metrics.
    Returns the experiment id."""
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{path}"
    client = MlflowClient(tracking_uri=uri)
    experiment_id = client.create_experiment(f"aitip/{PROJECT}", artifact_location=(path.parent / "mlartifacts").as_uri(),
                                             tags={"aitip.project": PROJECT})
    rng = np.random.default_rng(seed)
    values = rng.random((runs, metrics))
    start = 1_700_000_000_000
    run_rows, tag_rows, param_rows, metric_rows, latest_rows = [], [], [], [], []
    for index in range(runs):
        run_id = uuid.uuid4().hex
        began = start + index * 60_000
        name = f"job-{index + 1}"
        run_rows.append((run_id, name, "UNKNOWN", "", "", "ann", "FINISHED", began, began + 45_000, "", "active",
                         f"{(path.parent / 'mlartifacts').as_uri()}/{run_id}/artifacts", int(experiment_id)))
        tags = {"aitip.job_id": str(index + 1), "aitip.attempt": "1", "aitip.project": PROJECT, "aitip.user": "ann",
                "aitip.notebook_sha256": f"{index:064x}", "aitip.kernel": "aitip-python", "mlflow.user": "ann",
                "mlflow.source.name": "train.ipynb", "mlflow.runName": name}
        tag_rows += [(key, value, run_id) for key, value in tags.items()]
        param_rows += [(f"p{p}", str(round(float(rng.random()), 4)), run_id) for p in range(params)]
        for m in range(metrics):
            value = float(values[index, m])
            metric_rows.append((f"m{m}", value, began + 40_000, run_id, 0, 0))
            latest_rows.append((f"m{m}", value, began + 40_000, 0, 0, run_id))
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.executemany("INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id, "
                       "status, start_time, end_time, source_version, lifecycle_stage, artifact_uri, experiment_id) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", run_rows)
        db.executemany("INSERT INTO tags (key, value, run_uuid) VALUES (?, ?, ?)", tag_rows)
        db.executemany("INSERT INTO params (key, value, run_uuid) VALUES (?, ?, ?)", param_rows)
        db.executemany("INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES (?, ?, ?, ?, ?, ?)",
                       metric_rows)
        db.executemany("INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) "
                       "VALUES (?, ?, ?, ?, ?, ?)", latest_rows)
    return str(experiment_id)


class StoreWriter:
    """Another process committing to the store 100 times a second, as a training job logging a metric
    to a run of its own: it keeps AITIP's answer cache honest (every commit invalidates it)."""

    def __init__(self, path: Path, interval: float = 0.01) -> None:
        self.path, self.interval = path, interval
        self._stop = multiprocessing.get_context("spawn").Event()
        self._process: multiprocessing.process.BaseProcess | None = None
        self.commits = multiprocessing.get_context("spawn").Value("i", 0)

    def __enter__(self) -> StoreWriter:
        context = multiprocessing.get_context("spawn")
        self._process = context.Process(target=_write_metrics, args=(str(self.path), self.interval, self._stop,
                                                                     self.commits), daemon=True)
        self._process.start()
        deadline = time.monotonic() + 60
        while self.commits.value == 0:
            if not self._process.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the store writer did not start committing")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._process is not None:
            self._process.join(10)


def _write_metrics(path: str, interval: float, stop: Any, commits: Any) -> None:
    run_id = uuid.uuid4().hex
    with sqlite3.connect(path, timeout=30) as db:
        db.execute("INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id, status, "
                   "start_time, source_version, lifecycle_stage, artifact_uri, experiment_id) "
                   "VALUES (?, 'writer', 'UNKNOWN', '', '', 'ann', 'RUNNING', ?, '', 'active', '', 0)",
                   (run_id, int(time.time() * 1000)))
    db = sqlite3.connect(path, timeout=30, isolation_level=None)
    step = 0
    while not stop.is_set():
        now = int(time.time() * 1000)
        db.execute("BEGIN")
        db.execute("INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES ('loss', ?, ?, ?, ?, 0)",
                   (1.0 / (step + 1), now, run_id, step))
        db.execute("INSERT OR REPLACE INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) "
                   "VALUES ('loss', ?, ?, ?, 0, ?)", (1.0 / (step + 1), now, step, run_id))
        db.execute("COMMIT")
        step += 1
        with commits.get_lock():
            commits.value += 1
        time.sleep(interval)
    db.close()


# ----- the two systems -----

def start_mlflow(store: Path, work: Path) -> tuple[subprocess.Popen[bytes], str]:
    from aitip.launcher import free_port

    port = free_port()
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    log = (work / "mlflow-server.log").open("wb")
    process = subprocess.Popen([str(VENV_BIN / "mlflow"), "server", "--workers", "1", "--host", "127.0.0.1",
                                "--port", str(port), "--backend-store-uri", f"sqlite:///{store}",
                                "--default-artifact-root", (work / "mlflow-artifacts").as_uri()],
                               env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"mlflow server exited:\n{(work / 'mlflow-server.log').read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError("mlflow server did not answer /health in 120 s")


def stop_mlflow(process: subprocess.Popen[bytes]) -> None:
    """The server and its uvicorn worker share the process group it was started in: stop the group,
    then kill whatever of it is left."""
    import signal

    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(20)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def start_aitip(home: Path, extra_env: dict[str, str] | None = None) -> tuple[Any, int]:
    """``aitip up`` with production settings (every token and the caller's groups asked of the hub on every
    request) and a known port for the platform service itself."""
    from aitip.launcher import free_port

    from tests.support.paths import open_to_all_accounts
    from tests.support.platform import RunningPlatform

    open_to_all_accounts(home)  # as root, users' homes under it must be reachable
    port, service_port = free_port(), free_port()
    password = "Adm1n-" + uuid.uuid4().hex[:10]
    env = {**os.environ, "AITIP_HOME": str(home), "AITIP_PORT": str(port), "AITIP_SERVICE_PORT": str(service_port),
           "AITIP_ADMIN_USER": "admin", "AITIP_ADMIN_PASSWORD": password, "PYTHONUNBUFFERED": "1"}
    for name in ("AITIP_CATALOG_URL", "AITIP_DIRECTORY_CACHE_SECONDS", "AITIP_MLFLOW_TRACKING_URI",
                 "AITIP_TOKEN_CACHE_SECONDS"):
        env.pop(name, None)
    env.update(extra_env or {})
    log_path = home / "platform.log"
    process = subprocess.Popen([str(VENV_BIN / "aitip"), "up"], env=env, stdout=log_path.open("wb"),
                               stderr=subprocess.STDOUT)
    platform = RunningPlatform(url=f"http://127.0.0.1:{port}", home=home, admin_user="admin",
                               admin_password=password, process=process, log_path=log_path)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"aitip up exited:\n{platform.log()[-3000:]}")
        if "AITIP is up at" in platform.log():
            return platform, service_port
        time.sleep(0.3)
    platform.stop()
    raise TimeoutError(f"aitip up was not ready in 180 s:\n{platform.log()[-3000:]}")


# ----- measuring -----

def measure(request: Any, clients: int, per_client: int, warmup: int = 3, *, run_client: Any = None,
            timeout: float = 600) -> tuple[list[float], list[str]]:
    """Milliseconds per request, ``clients`` client processes (forked: each its own interpreter, as separate
    programs or browsers are, so one client's HTTP parsing never holds up another's clock) each sending
    ``per_client`` requests back to back on its own keep-alive connection, after ``warmup`` untimed ones;
    and the failed answers, which are timed too (MLflow 3.17's server answers a few concurrent searches
    with a 500). ``run_client`` replaces what each process runs (``_client``: HTTP requests)."""
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    start = context.Barrier(clients)
    processes = [context.Process(target=run_client or _client, args=(request, per_client, warmup, start, results))
                 for _ in range(clients)]
    for process in processes:
        process.start()
    latencies: list[float] = []
    failures: list[str] = []
    for _ in processes:
        mine, failed = results.get(timeout=timeout)
        latencies.extend(mine)
        failures.extend(failed)
    for process in processes:
        process.join(30)
    return latencies, failures


def _client(request: Any, per_client: int, warmup: int, start: Any, results: Any) -> None:
    mine: list[float] = []
    failed: list[str] = []
    with httpx.Client(timeout=120) as http:
        for _ in range(warmup):
            request(http)
        start.wait()
        for _ in range(per_client):
            began = time.perf_counter()
            response = request(http)
            response.read()
            mine.append((time.perf_counter() - began) * 1000)
            if response.status_code != 200:
                failed.append(f"{response.status_code} {response.text[:200]}")
    results.put((mine, failed))


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--runs", type=int, default=5000)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "runs_listing.json"))
    args = parser.parse_args()
    single, per_client = (30, 5) if args.quick else (150, 20)

    work = Path(tempfile.mkdtemp(prefix="aitip-runs-bench-"))
    home = work / "home"
    home.mkdir()
    store = home / "mlflow.sqlite"  # the platform's default tracking store, so `aitip up` reads it
    began = time.time()
    experiment_id = build_store(store, runs=args.runs)
    print(f"store: {args.runs} runs x (5 params, 10 metrics) in {time.time() - began:.1f} s ({store})")

    load_before = os.getloadavg()
    mlflow_process, mlflow_url = start_mlflow(store, work)
    platform, service_port = start_aitip(home)
    # The same platform as it was before revocation took effect at once: hub answers cached (token lookups
    # 300 s, groups and admin flag 10 s), on the same MLflow store, to measure what checking costs.
    cached_home = work / "home-cached"
    cached_home.mkdir()
    cached, cached_port = start_aitip(cached_home, {"AITIP_TOKEN_CACHE_SECONDS": "300",
                                                    "AITIP_DIRECTORY_CACHE_SECONDS": "10",
                                                    "AITIP_MLFLOW_TRACKING_URI": f"sqlite:///{store}"})
    rows: list[dict[str, Any]] = []
    try:
        token = platform.token(platform.admin_user, platform.admin_password)
        cached_token = cached.token(cached.admin_user, cached.admin_password)
        for running, key in ((platform, token), (cached, cached_token)):
            with running.api(key) as admin:
                assert admin.post("projects", json={"name": PROJECT}).status_code == 201
        auth = {"Authorization": f"token {token}"}
        cached_auth = {"Authorization": f"token {cached_token}"}
        direct = f"http://127.0.0.1:{service_port}/services/aitip/api/aitip/v1/projects/{PROJECT}/runs"
        cached_direct = f"http://127.0.0.1:{cached_port}/services/aitip/api/aitip/v1/projects/{PROJECT}/runs"
        proxied = f"{platform.url}/services/aitip/api/aitip/v1/projects/{PROJECT}/runs"

        def mlflow_request(filter_string: str) -> Any:
            body = {"experiment_ids": [experiment_id], "max_results": PAGE, "filter": filter_string}
            return lambda http: http.post(f"{mlflow_url}/api/2.0/mlflow/runs/search", json=body)

        def aitip_request(url: str, filter_string: str, headers: dict[str, str] = auth) -> Any:
            params = {"max_results": PAGE, **({"filter": filter_string} if filter_string else {})}
            return lambda http: http.get(url, params=params, headers=headers)

        queries = {"first page": "", f"filtered ({FILTER})": FILTER}
        with httpx.Client(timeout=120) as http:
            for name, filter_string in queries.items():
                theirs = [r["info"]["run_id"] for r in mlflow_request(filter_string)(http).json()["runs"]]
                ours = [r["run_id"] for r in aitip_request(direct, filter_string)(http).json()["runs"]]
                assert ours == theirs and len(ours) == PAGE, f"{name}: AITIP and MLflow disagree on the page"

        systems = {"mlflow": lambda f: mlflow_request(f), "aitip": lambda f: aitip_request(direct, f),
                   "aitip_proxy": lambda f: aitip_request(proxied, f),
                   "aitip_cached": lambda f: aitip_request(cached_direct, f, cached_auth)}
        for store_state in ("static", "written"):
            writer = StoreWriter(store) if store_state == "written" else None
            with writer or contextlib.nullcontext():
                for query, filter_string in queries.items():
                    for clients in (1, 16):
                        row: dict[str, Any] = {"store": store_state, "query": query, "clients": clients}
                        for system, make in systems.items():
                            latencies, failures = measure(make(filter_string), clients,
                                                          single if clients == 1 else per_client)
                            row[system] = {"requests": len(latencies), "errors": len(failures),
                                           "p50_ms": statistics.median(latencies),
                                           "p99_ms": percentile(latencies, 0.99), "max_ms": max(latencies)}
                            if failures:
                                print(f"  {system}: {len(failures)} failed answers, first: {failures[0][:120]!r}")
                        row["p50_ratio"] = row["mlflow"]["p50_ms"] / row["aitip"]["p50_ms"]
                        row["p99_ratio"] = row["mlflow"]["p99_ms"] / row["aitip"]["p99_ms"]
                        rows.append(row)
                        print(_line(row), flush=True)
            if writer is not None:
                print(f"writer: {writer.commits.value} commits while the 'written' rows ran")
    finally:
        platform.stop()
        cached.stop()
        stop_mlflow(mlflow_process)

    print(f"\n{'store':8} {'query':34} {'clients':>7}  {'MLflow p50/p99':>16}  {'AITIP p50/p99':>15}  "
          f"{'via proxy p50/p99':>17}  {'x p50':>6} {'x p99':>6}  {'cached hub p50/p99':>18}")
    for row in rows:
        print(_line(row))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "rows": rows, "runs": args.runs, "page": PAGE, "filter": FILTER,
        "machine": f"{multiprocessing.cpu_count()} cores", "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "note": "latencies in ms; x = MLflow / AITIP (direct to the platform service); 'written' = another "
                "process commits a metric to the store 100 times a second during the measurement; aitip_cached = "
                "the same platform with hub answers cached (token lookups 300 s, groups 10 s), as before "
                "revocation took effect on the next request",
    }, indent=2))


def _line(row: dict[str, Any]) -> str:
    def pair(system: str) -> str:
        return f"{row[system]['p50_ms']:7.1f}/{row[system]['p99_ms']:<7.1f}"

    return (f"{row['store']:8} {row['query']:34} {row['clients']:>7}  {pair('mlflow'):>16}  {pair('aitip'):>15}  "
            f"{pair('aitip_proxy'):>17}  {row['p50_ratio']:6.1f} {row['p99_ratio']:6.1f}  {pair('aitip_cached'):>18}")


if __name__ == "__main__":
    main()
