"""Model serving latency and throughput, side by side in one run, on the same digits classifier
(scikit-learn ``LogisticRegression`` on ``load_digits``, saved with ``mlflow.sklearn`` and a signature,
registered as versions of model ``digits`` from runs of project ``bench``'s experiment):

  (a) ``mlflow models serve -m <model dir> --env-manager local`` (uvicorn, default 1 worker, and
      ``--workers 2``): ``POST /invocations`` with ``{"inputs": [[64 floats]]}``;
  (b) AITIP (``aitip up``: hub, proxy, platform service; production settings) at the platform service's own
      port (``/services/aitip/serve/bench/digits/...``, not through the hub's proxy): the Open Inference
      Protocol ``v2/models/digits/infer`` with an endpoint API key, MLflow's ``/invocations`` through the same
      route, and OIP with a hub token instead of a key;
  (c) a second endpoint splitting 80/20 between two versions (sticky ``X-Route-Key``, a different key on
      every request), against the single-version endpoint, alternating rounds: the split router's added
      latency;
  (d) batching: 64-row requests, and 64 concurrent single-row requests, in rows/s;
  (e) the same OIP call through the hub's proxy (configurable-http-proxy);
  and, to tell the layers apart, the replica itself over its Unix socket (what the platform's router calls),
  the model's ``predict`` in this process, and the client's own floor against a trivial asyncio server.

The client is a raw asyncio HTTP/1.1 client, one keep-alive connection per simulated client, all in this
process; every request's bytes are built before the clock starts. Each case runs for a fixed time after a
warm-up (which also lets the endpoint's autoscaler settle: by default 1-2 replicas per version, 4 requests in
flight per replica). Reported: p50/p99 ms per request, requests/s (and rows/s) over the timed window, and the
ratios AITIP/MLflow. Every answer is checked for status 200; the first answer of each server is checked
against the model's own predictions.

    .venv/bin/python benchmarks/serving.py            # full: 8 s per case, 2 s warm-up (~9 min with starts)
    .venv/bin/python benchmarks/serving.py --quick    # 1.5 s per case, one split round: a smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
VENV_BIN = Path(sys.executable).parent

from benchmarks.runs_listing import percentile, start_aitip

PROJECT = "bench"
MODEL = "digits"
SINGLE = "digits"  # the single-version endpoint
SPLIT = "digits-canary"  # versions 1 and 2, 80/20
BATCH_ROWS = 64
MANY = 64  # concurrent single-row connections in the batching case


# ----- the model -----

def train_and_save(root: Path) -> tuple[dict[int, Any], np.ndarray]:
    """Versions 1 and 2 (the same estimator, two regularisations: the same predict cost), saved as MLflow model
    directories under ``root``; and the test rows."""
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x_train, x_test, y_train, _ = train_test_split(digits.data, digits.target, test_size=0.25, random_state=0,
                                                   stratify=digits.target)
    fitted = {1: LogisticRegression(max_iter=1000, C=1 / 256).fit(x_train, y_train),
              2: LogisticRegression(max_iter=1000, C=1 / 64).fit(x_train, y_train)}
    for version, model in fitted.items():
        mlflow.sklearn.save_model(model, str(root / f"v{version}"),
                                  signature=infer_signature(x_test[:5], model.predict(x_test[:5])))
    return fitted, x_test


def register(store: Path, files: Path) -> None:
    """Model ``digits`` versions 1-2, each registered from a run of experiment ``aitip/bench`` (the project's)."""
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{store}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.create_experiment(f"aitip/{PROJECT}", artifact_location=(store.parent / "mlartifacts").as_uri(),
                                          tags={"aitip.project": PROJECT})
    client.create_registered_model(MODEL)
    for version in (1, 2):
        run = client.create_run(experiment).info.run_id
        client.log_artifacts(run, str(files / f"v{version}"), "model")
        client.set_terminated(run, "FINISHED")
        client.create_model_version(MODEL, f"{client.get_run(run).info.artifact_uri}/model", run_id=run)


def predict_costs(model_dir: Path, x_test: np.ndarray) -> dict[str, float]:
    """Median ms of the model's own predict in this process (one row, 64 rows), and of MLflow's pyfunc wrapper."""
    import mlflow.pyfunc
    import mlflow.sklearn

    estimator = mlflow.sklearn.load_model(str(model_dir))
    pyfunc = mlflow.pyfunc.load_model(str(model_dir))
    one, batch = x_test[:1], x_test[:BATCH_ROWS]

    def timed(step: Any, n: int = 300) -> float:
        for _ in range(20):
            step()
        samples = []
        for _ in range(n):
            began = time.perf_counter()
            step()
            samples.append((time.perf_counter() - began) * 1000)
        return statistics.median(samples)

    return {"sklearn_predict_1_row_ms": timed(lambda: estimator.predict(one)),
            "sklearn_predict_64_rows_ms": timed(lambda: estimator.predict(batch)),
            "pyfunc_predict_1_row_ms": timed(lambda: pyfunc.predict(one), 100)}


# ----- MLflow's scoring server -----

def start_mlflow_serve(model_dir: Path, work: Path, workers: int | None) -> tuple[subprocess.Popen[bytes], int, float]:
    """``mlflow models serve`` on a free port (uvicorn found on PATH: the venv's bin first); (process, port,
    seconds to its first /ping)."""
    from aitip.launcher import free_port

    port = free_port()
    command = [str(VENV_BIN / "mlflow"), "models", "serve", "-m", str(model_dir), "--env-manager", "local",
               "-h", "127.0.0.1", "-p", str(port)]
    if workers is not None:
        command += ["--workers", str(workers)]
    env = {**os.environ, "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}", "MLFLOW_DISABLE_TELEMETRY": "true",
           "DO_NOT_TRACK": "true"}
    log = work / f"mlflow-serve-{workers or 'default'}.log"
    began = time.monotonic()
    process = subprocess.Popen(command, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                               start_new_session=True)
    return process, port, began


def wait_mlflow_serve(process: subprocess.Popen[bytes], port: int, began: float, log: Path) -> float:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"mlflow models serve exited:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ping", timeout=2).status_code == 200:
                return time.monotonic() - began
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"mlflow models serve did not answer /ping in 180 s:\n{log.read_text()[-3000:]}")


def stop_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(20)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


# ----- a trivial server: the client's own floor -----

def _trivial_server(port: int, ready: Any) -> None:
    answer = b'{"predictions":[0]}'
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(answer)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request_head = await reader.readuntil(b"\r\n\r\n")
                match = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", request_head)
                if match:
                    await reader.readexactly(int(match.group(1)))
                writer.write(head + answer)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port)
        ready.set()
        async with server:
            await server.serve_forever()

    asyncio.run(main())


# ----- the client: raw HTTP/1.1 on one keep-alive connection -----

def request_bytes(method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class Connection:
    def __init__(self, target: tuple[str, Any]) -> None:
        self.target = target
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        kind, where = self.target
        if kind == "unix":
            self.reader, self.writer = await asyncio.open_unix_connection(where, limit=1 << 22)
        else:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", where, limit=1 << 22)

    async def send(self, raw: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            await self.open()
        assert self.reader is not None and self.writer is not None
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lower = head.lower()
        at = lower.find(b"\r\ncontent-length:")
        if at >= 0:
            body = await self.reader.readexactly(int(lower[at + 17:lower.find(b"\r\n", at + 2)]))
        elif b"\r\ntransfer-encoding: chunked" in lower:
            parts = []
            while True:
                size = int((await self.reader.readline()).split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    await self.reader.readline()
                    break
                parts.append(await self.reader.readexactly(size))
                await self.reader.readline()
            body = b"".join(parts)
        else:
            body = b""
        if b"\r\nconnection: close" in lower:
            self.close()
        return status, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def _drive(connections: list[Connection], requests: list[bytes], seconds: float) -> tuple[
        list[float], int, str | None, float, int]:
    """Every connection sends back to back until ``seconds`` pass: (ms per request, errors, first error,
    window seconds, requests)."""
    latencies: list[list[float]] = [[] for _ in connections]
    errors = [0]
    first: list[str] = []
    started = time.perf_counter()
    deadline = started + seconds
    ends = [started]

    async def client(index: int) -> None:
        connection, mine = connections[index], latencies[index]
        position = index
        count = len(requests)
        while True:
            began = time.perf_counter()
            if began >= deadline:
                break
            raw = requests[position % count]
            position += len(connections)
            status, body = await connection.send(raw)
            ended = time.perf_counter()
            mine.append((ended - began) * 1000)
            if status != 200:
                errors[0] += 1
                if not first:
                    first.append(f"{status} {body[:200]!r}")
        ends.append(time.perf_counter())

    await asyncio.gather(*(client(index) for index in range(len(connections))))
    flat = [value for mine in latencies for value in mine]
    return flat, errors[0], (first[0] if first else None), max(ends) - started, len(flat)


def run_case(target: tuple[str, Any], requests: list[bytes], clients: int, seconds: float, warmup: float,
             rows: int = 1) -> dict[str, Any]:
    async def main() -> dict[str, Any]:
        connections = [Connection(target) for _ in range(clients)]
        await asyncio.gather(*(connection.open() for connection in connections))
        try:
            await _drive(connections, requests, warmup)
            latencies, errors, first, window, count = await _drive(connections, requests, seconds)
        finally:
            for connection in connections:
                connection.close()
        if not latencies:
            raise RuntimeError("no request was measured")
        return {"clients": clients, "rows_per_request": rows, "requests": count, "errors": errors,
                "first_error": first, "p50_ms": statistics.median(latencies), "p99_ms": percentile(latencies, 0.99),
                "mean_ms": statistics.fmean(latencies), "req_s": count / window, "rows_s": count * rows / window}

    return asyncio.run(main())


def run_httpx_case(url: str, body: bytes, headers: dict[str, str], clients: int, seconds: float,
                   warmup: float) -> dict[str, Any]:
    """The same load with ``httpx.AsyncClient`` (HTTP/1.1 keep-alive, one client per simulated caller): how a
    Python caller usually measures it; it writes a request's head and body separately."""
    async def main() -> dict[str, Any]:
        latencies: list[float] = []
        errors = [0]

        async def client(http: httpx.AsyncClient, deadline: float, mine: list[float]) -> float:
            while time.perf_counter() < deadline:
                began = time.perf_counter()
                response = await http.post(url, content=body, headers=headers)
                mine.append((time.perf_counter() - began) * 1000)
                if response.status_code != 200:
                    errors[0] += 1
            return time.perf_counter()

        https = [httpx.AsyncClient(timeout=60) for _ in range(clients)]
        try:
            scratch: list[float] = []
            await asyncio.gather(*(client(http, time.perf_counter() + warmup, scratch) for http in https))
            started = time.perf_counter()
            ends = await asyncio.gather(*(client(http, started + seconds, latencies) for http in https))
        finally:
            for http in https:
                await http.aclose()
        window = max(ends) - started
        return {"clients": clients, "rows_per_request": 1, "requests": len(latencies), "errors": errors[0],
                "first_error": None, "p50_ms": statistics.median(latencies), "p99_ms": percentile(latencies, 0.99),
                "mean_ms": statistics.fmean(latencies), "req_s": len(latencies) / window,
                "rows_s": len(latencies) / window}

    return asyncio.run(main())


def listener_pid(port: int) -> int | None:
    """The process listening on a loopback TCP port."""
    done = subprocess.run(["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True, check=False)
    match = re.search(r"pid=(\d+)", done.stdout)
    return int(match.group(1)) if match else None


def socket_pid(path: str) -> int | None:
    done = subprocess.run(["ss", "-Hlxp"], capture_output=True, text=True, check=False)
    for line in done.stdout.splitlines():
        if path in line:
            match = re.search(r"pid=(\d+)", line)
            if match:
                return int(match.group(1))
    return None


def py_spy() -> str | None:
    """py-spy, if installed (on PATH, or ``pip install --target /tmp/pyspy py-spy``)."""
    import shutil

    found = shutil.which("py-spy")
    if found:
        return found
    candidate = Path(os.environ.get("PY_SPY", "/tmp/pyspy/bin/py-spy"))
    return str(candidate) if candidate.exists() else None


def start_profile(binary: str, pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([binary, "record", "--pid", str(pid), "--duration", str(max(1, int(seconds))),
                             "--rate", "250", "--format", "raw", "--output", str(out), "--nonblocking"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def summarise_profile(path: Path, top: int = 25) -> dict[str, Any]:
    """From py-spy's folded stacks: the share of samples in which each function is on the stack (inclusive)
    and on top (own), the top ``top`` of each, as percentages of all samples."""
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    total = 0
    if not path.exists():
        return {"samples": 0}
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [re.sub(r"\s*\((.*?)(:\d+)?\)$", lambda m: f" ({_short(m.group(1))})", frame)
                  for frame in stack.split(";")]
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + count
        own[frames[-1]] = own.get(frames[-1], 0) + count
    share = (lambda counts: [(name, round(100 * value / total, 1)) for name, value in
                             sorted(counts.items(), key=lambda item: -item[1])[:top]]) if total else (lambda _: [])
    return {"samples": total, "inclusive_pct": share(inclusive), "own_pct": share(own)}


def _short(path: str) -> str:
    for marker in ("site-packages/", "extensions/", "lib/python3.11/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


async def _one(target: tuple[str, Any], raw: bytes) -> tuple[int, bytes]:
    connection = Connection(target)
    try:
        return await connection.send(raw)
    finally:
        connection.close()


def one(target: tuple[str, Any], raw: bytes) -> tuple[int, bytes]:
    return asyncio.run(_one(target, raw))


# ----- bodies -----

def mlflow_body(rows: np.ndarray) -> bytes:
    return json.dumps({"inputs": rows.tolist()}).encode()


def oip_body(rows: np.ndarray) -> bytes:
    return json.dumps({"inputs": [{"name": "input", "shape": list(rows.shape), "datatype": "FP64",
                                   "data": rows.reshape(-1).tolist()}]}).encode()


def predictions(body: bytes) -> list[int]:
    document = json.loads(body)
    if "predictions" in document:
        return [int(value) for value in document["predictions"]]
    return [int(value) for value in document["outputs"][0]["data"]]


# ----- the replicas' sockets (the layer under the platform's router) -----

def replica_sockets(endpoint: str) -> list[str]:
    """The Unix sockets of the endpoint's replicas, read from its serving hosts' command lines."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if len(argv) > 3 and argv[2] == b"aitip.serving.host":
            spec = json.loads(argv[3])
            if spec.get("name") == endpoint:
                found += [str(path) for path in Path(spec["sockets_dir"]).glob("replica-*.sock")]
    return sorted(set(found))  # the replicas are forks of the host: the same command line


# ----- the run -----

def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seconds", type=float, default=None, help="timed seconds per case (default 8; quick 1.5)")
    parser.add_argument("--split-rounds", type=int, default=None, help="alternating single/split rounds (default 3)")
    parser.add_argument("--skip-workers-2", action="store_true", help="leave `mlflow models serve --workers 2` out")
    parser.add_argument("--profile", action="store_true",
                        help="sample the platform service and a replica with py-spy during an extra 8-client case")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "serving.json"))
    args = parser.parse_args()
    seconds = args.seconds or (1.5 if args.quick else 8.0)
    warmup = 0.5 if args.quick else 2.0
    rounds = args.split_rounds or (1 if args.quick else 3)
    load_before = os.getloadavg()
    began_run = time.time()
    print(f"load average at the start: {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}", flush=True)

    work = Path(tempfile.mkdtemp(prefix="aitip-serving-bench-"))
    home = work / "home"
    home.mkdir()
    store = home / "mlflow.sqlite"  # the platform's default tracking store, so `aitip up` reads it
    fitted, x_test = train_and_save(work / "files")
    register(store, work / "files")
    model_dir = work / "files" / "v1"
    one_row, batch = x_test[:1], x_test[:BATCH_ROWS]
    expected_one = fitted[1].predict(one_row).tolist()
    expected_batch = fitted[1].predict(batch).tolist()

    rows: list[dict[str, Any]] = []
    facts: dict[str, Any] = {}

    def case(system: str, path: str, protocol: str, target: tuple[str, Any], requests: list[bytes], clients: int,
             rows_per_request: int = 1, note: str = "") -> dict[str, Any]:
        row = {"system": system, "path": path, "protocol": protocol, "note": note,
               **run_case(target, requests, clients, seconds, warmup, rows_per_request)}
        rows.append(row)
        print(f"{system:28} {path:8} {protocol:12} {clients:>3} x {rows_per_request:>2} rows  p50 {row['p50_ms']:7.2f}"
              f"  p99 {row['p99_ms']:7.2f} ms  {row['req_s']:8.1f} req/s  {row['rows_s']:9.0f} rows/s"
              f"{'  ERRORS ' + str(row['errors']) + ': ' + str(row['first_error']) if row['errors'] else ''}",
              flush=True)
        return row

    # MLflow's servers start while the platform does (each takes 11-16 s).
    workers_list: list[int | None] = [None] + ([] if args.skip_workers_2 else [2])
    mlflow_servers = {workers: start_mlflow_serve(model_dir, work, workers) for workers in workers_list}
    platform = None
    trivial = None
    try:
        facts.update(predict_costs(model_dir, x_test))
        print("in-process: " + ", ".join(f"{name} {value:.3f}" for name, value in facts.items()), flush=True)

        began = time.monotonic()
        platform, service_port = start_aitip(home)
        facts["aitip_up_s"] = time.monotonic() - began
        for workers, (process, port, started) in mlflow_servers.items():
            facts[f"mlflow_serve_{workers or 'default'}_start_s"] = wait_mlflow_serve(
                process, port, started, work / f"mlflow-serve-{workers or 'default'}.log")
        token = platform.token(platform.admin_user, platform.admin_password)
        with platform.api(token) as admin:
            assert admin.post("projects", json={"name": PROJECT}).status_code == 201
            for name, version in ((SINGLE, 1), (SPLIT, 1)):
                began = time.monotonic()
                answer = admin.post(f"projects/{PROJECT}/endpoints", json={"name": name, "model": MODEL,
                                                                           "version": version}, timeout=180)
                assert answer.status_code == 201, answer.text
                facts[f"deploy_{name}_s"] = time.monotonic() - began
            began = time.monotonic()
            answer = admin.post(f"projects/{PROJECT}/endpoints/{SPLIT}/versions", json={"version": 2, "weight": 20},
                                timeout=180)
            assert answer.status_code in (200, 201), answer.text
            facts["add_canary_s"] = time.monotonic() - began
            weights = {variant["version"]: variant["weight"] for variant in answer.json()["variants"]}
            assert weights == {1: 80, 2: 20}, weights
            keys = {}
            for name in (SINGLE, SPLIT):
                answer = admin.post(f"projects/{PROJECT}/endpoints/{name}/keys", json={"name": "bench"})
                assert answer.status_code == 201, answer.text
                keys[name] = answer.json()["secret"]
            settings = admin.get(f"projects/{PROJECT}/endpoints/{SINGLE}").json().get("settings")
        facts["endpoint_settings"] = settings
        print(f"platform up in {facts['aitip_up_s']:.1f} s; endpoints deployed in {facts[f'deploy_{SINGLE}_s']:.1f} "
              f"and {facts[f'deploy_{SPLIT}_s']:.1f} s, canary added in {facts['add_canary_s']:.1f} s", flush=True)

        direct = ("tcp", service_port)
        proxy = ("tcp", int(platform.url.rsplit(":", 1)[1]))
        base = f"/services/aitip/serve/{PROJECT}"
        json_type = {"Content-Type": "application/json"}

        def oip_request(endpoint: str, rows_: np.ndarray, auth: str, extra: dict[str, str] | None = None) -> bytes:
            return request_bytes("POST", f"{base}/{endpoint}/v2/models/{MODEL}/infer", oip_body(rows_),
                                 {**json_type, "Authorization": auth, **(extra or {})})

        key_auth = f"Bearer {keys[SINGLE]}"
        oip_one = [oip_request(SINGLE, one_row, key_auth)]
        oip_batch = [oip_request(SINGLE, batch, key_auth)]
        invocations_one = [request_bytes("POST", f"{base}/{SINGLE}/invocations", mlflow_body(one_row),
                                         {**json_type, "Authorization": key_auth})]
        token_one = [oip_request(SINGLE, one_row, f"token {token}")]
        split_one = [oip_request(SPLIT, one_row, f"Bearer {keys[SPLIT]}", {"X-Route-Key": f"caller-{index}"})
                     for index in range(997)]
        mlflow_one = [request_bytes("POST", "/invocations", mlflow_body(one_row), json_type)]
        mlflow_batch = [request_bytes("POST", "/invocations", mlflow_body(batch), json_type)]
        replica_oip_one = [request_bytes("POST", f"/v2/models/{MODEL}/infer", oip_body(one_row), json_type)]

        # Every server answers what the model predicts, before anything is timed.
        for label, target, raw, wanted in (
                ("AITIP OIP", direct, oip_one[0], expected_one), ("AITIP OIP 64", direct, oip_batch[0], expected_batch),
                ("AITIP invocations", direct, invocations_one[0], expected_one),
                ("AITIP OIP token", direct, token_one[0], expected_one),
                ("AITIP via proxy", proxy, oip_one[0], expected_one)):
            status, body = one(target, raw)
            assert status == 200 and predictions(body) == wanted, (label, status, body[:300])
        for workers, (_, port, _) in mlflow_servers.items():
            status, body = one(("tcp", port), mlflow_one[0])
            assert status == 200 and predictions(body) == expected_one, (workers, status, body[:300])
            status, body = one(("tcp", port), mlflow_batch[0])
            assert status == 200 and predictions(body) == expected_batch, (workers, status, body[:300])
        seen = {}
        for raw in split_one[:200]:
            status, body = asyncio.run(_headers_of(direct, raw))
            seen[body] = seen.get(body, 0) + 1
        facts["split_versions_seen_in_200_keys"] = seen
        print(f"answers checked; the split sent 200 keys to versions {seen}", flush=True)

        # The client's floor: a trivial asyncio server in its own process.
        from aitip.launcher import free_port

        trivial_port = free_port()
        context = multiprocessing.get_context("fork")
        ready = context.Event()
        trivial = context.Process(target=_trivial_server, args=(trivial_port, ready), daemon=True)
        trivial.start()
        ready.wait(10)
        for clients in (1, 8):
            case("client floor (trivial server)", "direct", "raw", ("tcp", trivial_port), mlflow_one, clients)

        # Single rows, 1 and 8 clients.
        for clients in (1, 8):
            for workers, (_, port, _) in mlflow_servers.items():
                case(f"mlflow models serve ({workers or 1} worker{'s' if workers else ''})", "direct", "invocations",
                     ("tcp", port), mlflow_one, clients)
            case("AITIP", "direct", "OIP, key", direct, oip_one, clients)
            case("AITIP", "direct", "invocations", direct, invocations_one, clients, note="API key")
            case("AITIP", "direct", "OIP, token", direct, token_one, clients, note="hub token")
            case("AITIP", "proxy", "OIP, key", proxy, oip_one, clients)
            sockets = replica_sockets(SINGLE)
            case("AITIP replica socket", "socket", "OIP", ("unix", sockets[0]), replica_oip_one, clients,
                 note=f"replica 0 of {len(sockets)}, no router, no key")

        # How a Python caller usually measures it: httpx.AsyncClient, 1 and 8 clients.
        for clients in (1, 8):
            for label, url, body, headers in (
                    ("mlflow models serve (1 worker)", f"http://127.0.0.1:{mlflow_servers[None][1]}/invocations",
                     mlflow_body(one_row), json_type),
                    ("AITIP", f"http://127.0.0.1:{service_port}{base}/{SINGLE}/v2/models/{MODEL}/infer",
                     oip_body(one_row), {**json_type, "Authorization": key_auth})):
                row = {"system": label, "path": "direct", "protocol": "invocations" if "mlflow" in label else
                       "OIP, key", "note": "httpx.AsyncClient",
                       **run_httpx_case(url, body, headers, clients, seconds, warmup)}
                rows.append(row)
                print(f"{label:28} httpx    {row['protocol']:12} {clients:>3} x  1 rows  p50 {row['p50_ms']:7.2f}  "
                      f"p99 {row['p99_ms']:7.2f} ms  {row['req_s']:8.1f} req/s", flush=True)

        # The split router: single-version and split endpoints in alternating rounds.
        split_rows: dict[str, list[dict[str, Any]]] = {"single": [], "split": []}
        for clients in (1, 8):
            for _ in range(rounds):
                split_rows["single"].append(case("AITIP single version", "direct", "OIP, key", direct, oip_one,
                                                 clients, note="split comparison"))
                split_rows["split"].append(case("AITIP split 80/20 sticky", "direct", "OIP, key", direct, split_one,
                                                clients, note="split comparison"))
        facts["routing_table_choose_us"] = _choose_cost()

        # Batching: 64-row requests, and many concurrent single rows.
        for clients in (1, 8):
            for workers, (_, port, _) in mlflow_servers.items():
                case(f"mlflow models serve ({workers or 1} worker{'s' if workers else ''})", "direct", "invocations",
                     ("tcp", port), mlflow_batch, clients, BATCH_ROWS)
            case("AITIP", "direct", "OIP, key", direct, oip_batch, clients, BATCH_ROWS)
        case("AITIP", "direct", "OIP, key", direct, oip_one, MANY, note="many concurrent single rows (batched)")
        case("mlflow models serve (1 worker)", "direct", "invocations", ("tcp", mlflow_servers[None][1]), mlflow_one,
             MANY, note="many concurrent single rows")
        binary = py_spy() if args.profile else None
        if args.profile and binary is None:
            print("--profile: py-spy not found (pip install --target /tmp/pyspy py-spy)", flush=True)
        if binary is not None:
            service_pid = listener_pid(service_port)
            sockets = replica_sockets(SINGLE)
            replica_pid = socket_pid(sockets[0]) if sockets else None
            profiles = {}
            for name, pid in (("platform_service", service_pid), ("replica", replica_pid)):
                if pid is None:
                    continue
                out_path = work / f"profile-{name}.txt"
                spy = start_profile(binary, pid, seconds, out_path)
                time.sleep(0.5)
                case("AITIP", "direct", "OIP, key", direct, oip_one, 8, note=f"profiled: {name} under py-spy")
                spy.wait(60)
                profiles[name] = {"pid": pid, **summarise_profile(out_path)}
                print(f"profile of the {name} (pid {pid}): {profiles[name]['samples']} samples; own time: "
                      + ", ".join(f"{frame} {pct}%" for frame, pct in profiles[name].get("own_pct", [])[:12]),
                      flush=True)
            facts["profiles"] = profiles
        with platform.api(token) as admin:
            facts["endpoint_after"] = {variant["version"]: {"replicas": variant["replicas"],
                                                            "wanted": variant["replicas_wanted"]}
                                       for variant in admin.get(f"projects/{PROJECT}/endpoints/{SINGLE}").json()
                                       ["variants"]}
    finally:
        if trivial is not None:
            trivial.terminate()
        for process, _, _ in mlflow_servers.values():
            stop_group(process)
        if platform is not None:
            platform.stop()

    load_after = os.getloadavg()
    summary = summarise(rows, split_rows)
    report = markdown(rows, summary, facts)
    print("\n" + report)
    print(f"load average at the end: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
    goals = summary["goals"]
    print("goals: " + ", ".join(f"{name} {'met' if met else 'NOT met'}" for name, met in goals.items()))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "rows": rows, "summary": summary, "goals": goals, "facts": facts, "quick": args.quick,
        "seconds_per_case": seconds, "warmup_seconds": warmup, "split_rounds": rounds,
        "client_model": "raw asyncio HTTP/1.1, one keep-alive connection per client, all clients in one process",
        "machine": f"{multiprocessing.cpu_count()} cores", "load_average_before": load_before,
        "load_average_after": load_after, "started": time.strftime("%Y-%m-%d %H:%M", time.localtime(began_run)),
        "wall_s": time.time() - began_run, "markdown": report,
    }, indent=2))


async def _headers_of(target: tuple[str, Any], raw: bytes) -> tuple[int, str]:
    """(status, X-Model-Version) of one request."""
    reader, writer = await asyncio.open_connection("127.0.0.1", target[1])
    try:
        writer.write(raw)
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        match = re.search(r"(?i)\r\nx-model-version:\s*(\d+)", head)
        return int(head[9:12]), match.group(1) if match else "?"
    finally:
        writer.close()


def _choose_cost() -> float:
    """Microseconds of the split router's choice (sticky key hashed, weights bisected), in this process."""
    from aitip.serving.router import RoutingTable

    table = RoutingTable.of({1: 80, 2: 20})
    keys = [f"caller-{index}" for index in range(1000)]
    began = time.perf_counter()
    for _ in range(20):
        for key in keys:
            table.choose(key)
    return (time.perf_counter() - began) / 20_000 * 1e6


def _find(rows: list[dict[str, Any]], system: str, protocol: str, clients: int, rows_per_request: int = 1,
          path: str = "direct", note: str | None = None) -> dict[str, Any] | None:
    for row in rows:
        if (row["system"], row["protocol"], row["clients"], row["rows_per_request"], row["path"]) == \
                (system, protocol, clients, rows_per_request, path) and (note is None or row["note"] == note):
            return row
    return None


def summarise(rows: list[dict[str, Any]], split_rows: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    mlflow = "mlflow models serve (1 worker)"
    ratios: dict[str, Any] = {}
    for clients in (1, 8):
        theirs = _find(rows, mlflow, "invocations", clients)
        ours = _find(rows, "AITIP", "OIP, key", clients)
        ours_inv = _find(rows, "AITIP", "invocations", clients)
        if theirs and ours and ours_inv:
            ratios[f"{clients}_clients"] = {
                "mlflow_over_aitip_oip_p50": theirs["p50_ms"] / ours["p50_ms"],
                "aitip_oip_over_mlflow_req_s": ours["req_s"] / theirs["req_s"],
                "mlflow_over_aitip_invocations_p50": theirs["p50_ms"] / ours_inv["p50_ms"],
                "aitip_invocations_over_mlflow_req_s": ours_inv["req_s"] / theirs["req_s"]}
    split: dict[str, Any] = {}
    for clients in (1, 8):
        single = [row["p50_ms"] for row in split_rows["single"] if row["clients"] == clients]
        routed = [row["p50_ms"] for row in split_rows["split"] if row["clients"] == clients]
        if single and routed:
            split[f"{clients}_clients"] = {"single_p50_ms": statistics.median(single),
                                           "split_p50_ms": statistics.median(routed),
                                           "added_p50_ms": statistics.median(routed) - statistics.median(single),
                                           "rounds_single": single, "rounds_split": routed}
    one = _find(rows, "AITIP", "OIP, key", 1)
    eight = _find(rows, "AITIP", "OIP, key", 8)
    batched = [row["rows_s"] for row in rows if row["system"] == "AITIP" and row["path"] == "direct"
               and (row["rows_per_request"] == BATCH_ROWS or row["clients"] == MANY)]
    goals = {
        "single_row_p50_le_5ms_direct": bool(one and one["p50_ms"] <= 5),
        "ge_300_req_s_at_8_clients_direct": bool(eight and eight["req_s"] >= 300),
        "ge_10x_mlflow_same_run": bool(ratios.get("8_clients") and ratios["1_clients"]["mlflow_over_aitip_oip_p50"]
                                       >= 10 and ratios["8_clients"]["aitip_oip_over_mlflow_req_s"] >= 10),
        "split_adds_le_1ms_p50": bool(split.get("1_clients") and split["1_clients"]["added_p50_ms"] <= 1),
        "ge_5000_rows_s_batching": bool(batched and max(batched) >= 5000),
    }
    return {"ratios": ratios, "split": split, "best_batched_rows_s": max(batched) if batched else None,
            "goals": goals}


def _pair(row: dict[str, Any] | None) -> str:
    return "" if row is None else f"{row['p50_ms']:.2f} / {row['p99_ms']:.2f}"


def markdown(rows: list[dict[str, Any]], summary: dict[str, Any], facts: dict[str, Any]) -> str:
    lines = ["p50 / p99 ms per request; req/s and rows/s over the timed window", "",
             "| server | path | protocol | clients | rows/request | p50 / p99 ms | req/s | rows/s | note |",
             "|---|---|---|---:|---:|---:|---:|---:|---|"]
    for row in rows:
        if row["note"] == "split comparison":
            continue
        lines.append(f"| {row['system']} | {row['path']} | {row['protocol']} | {row['clients']} | "
                     f"{row['rows_per_request']} | {_pair(row)} | {row['req_s']:,.0f} | {row['rows_s']:,.0f} | "
                     f"{row['note']}{' ERRORS ' + str(row['errors']) if row['errors'] else ''} |")
    lines += ["", "| split router | clients | single version p50 | split 80/20 p50 | added p50 | rounds |",
              "|---|---:|---:|---:|---:|---:|"]
    for name, split in summary["split"].items():
        lines.append(f"| sticky key, 2 versions | {name.split('_')[0]} | {split['single_p50_ms']:.2f} | "
                     f"{split['split_p50_ms']:.2f} | {split['added_p50_ms']:+.2f} | {len(split['rounds_single'])} |")
    lines += ["", "| ratio | 1 client | 8 clients |", "|---|---:|---:|"]
    ratios = summary["ratios"]
    for name in ("mlflow_over_aitip_oip_p50", "aitip_oip_over_mlflow_req_s", "mlflow_over_aitip_invocations_p50",
                 "aitip_invocations_over_mlflow_req_s"):
        lines.append(f"| {name} | {ratios.get('1_clients', {}).get(name, 0):.1f} | "
                     f"{ratios.get('8_clients', {}).get(name, 0):.1f} |")
    lines += ["", "In this process: " + ", ".join(f"{name} {value:.3f}" for name, value in facts.items()
                                                  if name.endswith("_ms")) +
              f"; the routing table's choice {facts.get('routing_table_choose_us', 0):.2f} µs"]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
