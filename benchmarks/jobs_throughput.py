"""Notebook-job throughput and latency, side by side in one run:

  (a) the papermill CLI, one job after another (a fresh interpreter and kernel each);
  (b) papermill's Python API in 2 long-lived worker processes (a fresh kernel each);
  (c) jupyter-scheduler 2.12.1 through its REST API, from a venv of its own;
  (d) AITIP through its REST API (`aitip up` on loopback: hub, proxy, platform service, MLflow tracking on).

Each runs N trivial parameterized notebooks and M 20-cell numpy/pandas notebooks. Reported: jobs per
minute, submit -> first cell p50/p95 (the notebooks' second cell prints `FIRST_CELL <time.time()>`), and
ratios to (a). Throughput runs from the first submission to the last job's completion.

AITIP's latency is measured with one job at a time (a pooled kernel free), its throughput with all jobs
submitted at once.

jupyter-scheduler is not installed into the platform's venv (it would enable its server extension in the
platform's own Jupyter server). The first run creates `.bench-venvs/jupyter-scheduler` (python3.11 venv:
jupyter-scheduler, jupyter-server, ipykernel and the platform's numpy/pandas versions; about a minute, needs
the package index) and later runs reuse it; if it cannot be made, (c) is skipped and the JSON says why. For
the run, `jupyter server` starts from that venv on a free loopback port with a temp root_dir, sqlite
database, staging area and Jupyter config/data/runtime dirs, and a token. All N jobs are submitted at once
(`POST /scheduler/jobs`, kernel `python3`, output ipynb); jupyter-scheduler has no queue: each job is
its own spawned interpreter running nbconvert's ExecutePreprocessor. Completion is each job's own
`end_time` (ms, written by its process after the output notebook); the first-cell time is read from the
output notebook in the staging area. The server is shut down through its API at the end; stragglers killed.

    .venv/bin/python benchmarks/jobs_throughput.py                    # full: 50 trivial + 20 heavy
    .venv/bin/python benchmarks/jobs_throughput.py --quick            # 10 + 5, for a smoke run
    .venv/bin/python benchmarks/jobs_throughput.py --skip-cli --skip-scheduler --out /tmp/x.json
"""

from __future__ import annotations

import argparse
import copy
import json
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from pathlib import Path
from typing import Any

import httpx
import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
VENV_BIN = Path(sys.executable).parent


def _notebook(cells: list[str]) -> dict[str, Any]:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("x = 1")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("import time\nprint('FIRST_CELL', repr(time.time()))")]
    nb.cells += [nbformat.v4.new_code_cell(source) for source in cells]
    nb.metadata["kernelspec"] = {"name": "aitip-python", "display_name": "AITIP Python (CPU)", "language": "python"}
    return dict(nbformat.from_dict(nb))


TRIVIAL = _notebook(["y = x * 2\nprint(y)"])
HEAVY = _notebook(
    ["import numpy as np\nimport pandas as pd\nrng = np.random.default_rng(x)"]
    + [f"a{i} = rng.standard_normal((150, 150))\nb{i} = a{i} @ a{i}.T\n"
       f"frame{i} = pd.DataFrame({{'k': rng.integers(0, 50, 5000), 'v': rng.standard_normal(5000)}})\n"
       f"summary{i} = frame{i}.groupby('k')['v'].agg(['mean', 'std']).head(3)\nfloat(b{i}.trace())"
       for i in range(18)]
)


def first_cell_time(executed: dict[str, Any]) -> float:
    for cell in executed["cells"]:
        for output in cell.get("outputs", []):
            text = "".join(output.get("text", ""))
            if "FIRST_CELL" in text:
                return float(text.split()[1])
    raise ValueError("no FIRST_CELL output")


def summarize(name: str, kind: str, started: float, ended: float, latencies: list[float], jobs: int) -> dict:
    latencies = sorted(latencies)
    p95 = latencies[min(len(latencies) - 1, int(round(0.95 * (len(latencies) - 1))))]
    return {"runner": name, "notebook": kind, "jobs": jobs, "jobs_per_minute": 60 * jobs / (ended - started),
            "first_cell_p50_ms": 1000 * statistics.median(latencies), "first_cell_p95_ms": 1000 * p95}


# ----- (a) papermill CLI -----

def papermill_cli(notebook: dict, count: int, kind: str, work: Path) -> dict:
    source = work / f"{kind}.ipynb"
    nbformat.write(nbformat.from_dict(notebook), source)
    latencies = []
    started = time.time()
    for index in range(count):
        output = work / f"cli-{kind}-{index}.ipynb"
        submitted = time.time()
        subprocess.run([str(VENV_BIN / "papermill"), str(source), str(output), "-p", "x", str(index),
                        "-k", "aitip-python", "--no-progress-bar"], check=True, capture_output=True)
        latencies.append(first_cell_time(json.loads(output.read_text())) - submitted)
    return summarize("papermill CLI (sequential)", kind, started, time.time(), latencies, count)


# ----- (b) papermill API in 2 long-lived workers -----

def _api_job(args: tuple[str, str, int, float]) -> float:
    import papermill

    source, output, index, submitted = args
    papermill.execute_notebook(source, output, parameters={"x": index}, kernel_name="aitip-python",
                               progress_bar=False)
    return first_cell_time(json.loads(Path(output).read_text())) - submitted


def _warm(_: int) -> None:
    import papermill  # noqa: F401 - import once per worker, as a long-lived worker would


def papermill_api(notebook: dict, count: int, kind: str, work: Path) -> dict:
    source = work / f"{kind}.ipynb"
    nbformat.write(nbformat.from_dict(notebook), source)
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        pool.map(_warm, range(2))
        started = time.time()
        latencies = pool.map(_api_job, [(str(source), str(work / f"api-{kind}-{i}.ipynb"), i, started)
                                        for i in range(count)], chunksize=1)
        ended = time.time()
    # All were submitted at `started`: queueing counts, as for AITIP's throughput run.
    return summarize("papermill API (2 workers)", kind, started, ended, latencies, count)


# ----- (c) jupyter-scheduler -----

SCHEDULER_VENV = ROOT / ".bench-venvs" / "jupyter-scheduler"
SCHEDULER_VERSION = "2.12.1"


def _setup_step(command: list[str]) -> str | None:
    """Run one venv-setup command; None when it worked, else why not."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"{' '.join(command[:5])}: {error}"
    if done.returncode == 0:
        return None
    tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
    return f"{' '.join(command[:5])} exited {done.returncode}: " + " | ".join(tail)


def scheduler_venv() -> tuple[Path | None, str | None]:
    """jupyter-scheduler in a venv of its own, created once and reused (installed into the platform's venv it
    would enable its server extension in the platform's own Jupyter server). Returns (bin dir, None) or
    (None, why it could not be made)."""
    bin_dir = SCHEDULER_VENV / "bin"
    ready = SCHEDULER_VENV / ".bench-ready"
    if ready.exists() and (bin_dir / "jupyter").exists():
        return bin_dir, None
    import numpy
    import pandas

    print(f"jupyter-scheduler: creating {SCHEDULER_VENV} (once; reused afterwards) and installing "
          f"jupyter-scheduler=={SCHEDULER_VERSION}, jupyter-server, ipykernel, numpy=={numpy.__version__}, "
          f"pandas=={pandas.__version__} into it (about a minute) ...", flush=True)
    started = time.time()
    failed = _setup_step(["python3.11", "-m", "venv", "--clear", str(SCHEDULER_VENV)])
    if failed:
        return None, f"could not create its venv: {failed}"
    pip = [str(bin_dir / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
           f"jupyter-scheduler=={SCHEDULER_VERSION}", "jupyter-server", "ipykernel"]
    # The platform's numpy/pandas where they resolve there, whatever does otherwise.
    if _setup_step(pip + [f"numpy=={numpy.__version__}", f"pandas=={pandas.__version__}"]):
        print("jupyter-scheduler: the platform's numpy/pandas versions did not install; trying unpinned", flush=True)
        failed = _setup_step(pip + ["numpy", "pandas"])
        if failed:
            return None, f"could not install it into its venv: {failed}"
    ready.write_text(SCHEDULER_VERSION + "\n")
    print(f"jupyter-scheduler: venv ready in {time.time() - started:.0f} s", flush=True)
    return bin_dir, None


def _tree_rss_mb(pid: int) -> tuple[int, float]:
    """(processes, resident MB) of ``pid`` and everything below it."""
    from aitip.launcher import descendants

    count, rss = 0, 0
    for member in [pid, *descendants(pid)]:
        try:
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss += int(line.split()[1])
                    count += 1
        except OSError:
            continue
    return count, rss / 1024


class SchedulerServer:
    """`jupyter server` from the jupyter-scheduler venv on a free loopback port, with a temp root_dir,
    database, staging area and Jupyter config/data/runtime dirs (nothing of the user's or the platform's)."""

    def __init__(self, bin_dir: Path, work: Path) -> None:
        from aitip.launcher import free_port

        self.work = work
        self.root = work / "root"
        self.staging = work / "staging"
        for folder in (self.root, self.staging, work / "config", work / "data", work / "runtime"):
            folder.mkdir(parents=True, exist_ok=True)
        # The extension is enabled by the venv's etc/jupyter/jupyter_server_config.d/jupyter_scheduler.json;
        # say so again explicitly, with its database and staging area in `work`.
        (work / "config" / "jupyter_server_config.json").write_text(json.dumps({
            "ServerApp": {"jpserver_extensions": {"jupyter_scheduler": True}},
            "SchedulerApp": {"db_url": f"sqlite:///{work / 'scheduler.sqlite'}"},
            "Scheduler": {"staging_path": str(self.staging)},
        }))
        self.port = free_port()
        self.token = uuid.uuid4().hex
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "JUPYTER_CONFIG_DIR": str(work / "config"), "JUPYTER_DATA_DIR": str(work / "data"),
               "JUPYTER_RUNTIME_DIR": str(work / "runtime"), "PYTHONUNBUFFERED": "1"}
        for name in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "JUPYTER_PATH", "JUPYTER_NO_CONFIG"):
            env.pop(name, None)
        env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
        self.log_path = work / "server.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [str(bin_dir / "jupyter"), "server", "--no-browser", "--ServerApp.ip=127.0.0.1",
             f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0", f"--ServerApp.root_dir={self.root}",
             f"--IdentityProvider.token={self.token}", "--ServerApp.allow_root=True"],
            env=env, stdout=self._log, stderr=subprocess.STDOUT, cwd=work)
        self.http = httpx.Client(base_url=self.url, timeout=60, headers={"Authorization": f"token {self.token}"})

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"jupyter server exited with {self.process.returncode}:\n{self.log()[-3000:]}")
            try:
                if self.http.get("/api/status").status_code == 200:
                    environments = self.http.get("/scheduler/runtime_environments")
                    if environments.status_code != 200:
                        raise RuntimeError(f"jupyter_scheduler is not loaded ({environments.status_code}):\n"
                                           f"{self.log()[-3000:]}")
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        raise TimeoutError(f"jupyter server not ready in {timeout} s:\n{self.log()[-3000:]}")

    def stop(self, timeout: float = 30) -> list[int]:
        """Shut down through the API (kernels first), then SIGTERM; returns the processes left (killed)."""
        from aitip.launcher import descendants

        tree = [(pid, _started(pid)) for pid in descendants(self.process.pid)]
        try:
            if self.process.poll() is None:
                self.http.post("/api/shutdown")
            self.process.wait(timeout)
        except (httpx.HTTPError, subprocess.TimeoutExpired):
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        finally:
            self.http.close()
            self._log.close()
        deadline = time.monotonic() + 10
        left = tree
        while left and time.monotonic() < deadline:
            time.sleep(0.2)
            left = [(pid, since) for pid, since in left if since and _started(pid) == since and _alive(pid)]
        for pid, _ in left:
            os.kill(pid, signal.SIGKILL)
        return [pid for pid, _ in left]


def _started(pid: int) -> str | None:
    """The process's start time in clock ticks (so a reused pid is not taken for it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2:].split()[19]


def _alive(pid: int) -> bool:
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def jupyter_scheduler(runs: list[tuple[dict, int, str]], bin_dir: Path, work: Path) -> list[dict]:
    """All N jobs submitted at once through `POST /scheduler/jobs`; each is one spawned interpreter running
    nbconvert's ExecutePreprocessor on a fresh `python3` kernel (jupyter-scheduler has no queue or limit)."""
    server = SchedulerServer(bin_dir, work)
    rows = []
    try:
        server.wait_ready()
        environment = server.http.get("/scheduler/runtime_environments").json()[0]["name"]
        for notebook, count, kind in runs:
            own = copy.deepcopy(notebook)
            own["metadata"]["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
            nbformat.write(nbformat.from_dict(own), server.root / f"{kind}.ipynb")
            submitted_at, ids = [], []
            started = time.time()
            for index in range(count):
                submitted_at.append(time.time())
                response = server.http.post("/scheduler/jobs", json={
                    "name": f"bench-{kind}-{index}", "input_uri": f"{kind}.ipynb",
                    "runtime_environment_name": environment, "parameters": {"x": str(index)},
                    "output_formats": ["ipynb"]})
                assert response.status_code == 200, response.text
                ids.append(response.json()["job_id"])
            # One list request per poll (the same records as GET /scheduler/jobs/{id}), not one per job: the
            # poller must not take CPU from the jobs. Completion times come from the jobs, not from the poll.
            done: dict[str, dict] = {}
            peak_processes, peak_mb = 0, 0.0
            deadline = time.monotonic() + 120 + 30 * count
            while len(done) < count:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{count - len(done)} of {count} {kind} jobs not done in time")
                processes, resident = _tree_rss_mb(server.process.pid)
                peak_processes, peak_mb = max(peak_processes, processes), max(peak_mb, resident)
                listing = server.http.get("/scheduler/jobs", params={"name": f"bench-{kind}-", "max_items": 1000})
                assert listing.status_code == 200, listing.text
                for job in listing.json()["jobs"]:
                    # A new job reads STOPPED (the ORM default) until its process sets IN_PROGRESS.
                    if job["job_id"] in ids and job["status"] in ("COMPLETED", "FAILED"):
                        done[job["job_id"]] = job
                time.sleep(0.25)
            # A failed job (its kernels bind TCP ports, and a port race kills one now and then under load) is
            # reported, not fatal: jobs/minute counts the completed ones only.
            failed = [(j["job_id"], j["status_message"]) for j in done.values() if j["status"] != "COMPLETED"]
            completed = [j for j in done.values() if j["status"] == "COMPLETED"]
            # Completion: the job's own end_time (ms, written by its process after the output file).
            ended = max(j["end_time"] for j in completed) / 1000
            latencies = []
            for job_id, submitted in zip(ids, submitted_at):
                if job_id not in {j["job_id"] for j in completed}:
                    continue
                (output,) = [path for path in (server.staging / job_id).glob("*.ipynb")
                             if path.name != f"{kind}.ipynb"]
                latencies.append(first_cell_time(json.loads(output.read_text())) - submitted)
            row = summarize("jupyter-scheduler (REST)", kind, started, ended, latencies, len(completed))
            row["failed_jobs"] = len(failed)
            row["failures"] = [message for _, message in failed[:3]]
            rows.append(row)
            if failed:
                print(f"jupyter-scheduler: {len(failed)} of {count} {kind} jobs failed, e.g. {failed[0][1]!r}", flush=True)
            print(f"jupyter-scheduler, {count} {kind} jobs at once: peak {peak_processes} processes, "
                  f"{peak_mb:.0f} MB resident (server and jobs)", flush=True)
    finally:
        left = server.stop()
        if left:
            print(f"jupyter-scheduler: killed {len(left)} leftover processes {left}", flush=True)
    return rows

# ----- (d) AITIP -----

def aitip(notebook: dict, count: int, kind: str, platform: Any, token: str) -> list[dict]:
    import httpx

    api = httpx.Client(base_url=f"{platform.url}/services/aitip/api/aitip/v1/", timeout=60,
                       headers={"Authorization": f"token {token}"})
    body = {"project": "bench", "notebook": notebook, "notebook_name": f"{kind}.ipynb"}

    def wait_all(ids: list[int]) -> list[dict]:
        while True:
            jobs = [api.get(f"jobs/{i}").json() for i in ids]
            if all(j["state"] in ("succeeded", "failed", "cancelled", "timed_out") for j in jobs):
                return jobs
            time.sleep(0.05)

    def first_cell(job_id: int) -> float:
        return first_cell_time(api.get(f"jobs/{job_id}/notebook").json())

    # Latency: one job at a time, so a pre-started kernel is free.
    latencies = []
    for index in range(min(count, 20)):
        time.sleep(0.5)  # let the pool refill, as between interactive submissions
        submitted = time.time()
        job = api.post("jobs", json={**body, "parameters": {"x": index}}).json()
        (done,) = wait_all([job["id"]])
        assert done["state"] == "succeeded", done
        latencies.append(first_cell(job["id"]) - submitted)
    latency = summarize("AITIP API, one at a time", kind, 0, 1, latencies, len(latencies))

    # Throughput: everything at once.
    started = time.time()
    submitted_at = {}
    ids = []
    for index in range(count):
        submitted_at[index] = time.time()
        ids.append(api.post("jobs", json={**body, "parameters": {"x": index}}).json()["id"])
    jobs = wait_all(ids)
    ended = max(time.mktime(time.strptime(j["finished_at"][:19], "%Y-%m-%dT%H:%M:%S"))
                + float("0." + j["finished_at"][20:26]) - time.timezone for j in jobs)
    assert all(j["state"] == "succeeded" for j in jobs), [j["reason"] for j in jobs if j["state"] != "succeeded"]
    burst = [first_cell(i) - submitted_at[n] for n, i in enumerate(ids)]
    throughput = summarize("AITIP API, all at once", kind, started, ended, burst, count)
    latency["jobs_per_minute"] = float("nan")
    return [latency, throughput]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--skip-cli", action="store_true")
    parser.add_argument("--skip-scheduler", action="store_true", help="leave out (c) jupyter-scheduler")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "jobs_throughput.json"))
    args = parser.parse_args()
    trivial_n, heavy_n = (10, 5) if args.quick else (50, 20)
    work = Path(tempfile.mkdtemp(prefix="aitip-bench-"))
    rows: list[dict] = []
    runs = [(TRIVIAL, trivial_n, "trivial"), (HEAVY, heavy_n, "heavy")]

    from tests.support.platform import start_platform

    # Production settings: as root, each job's kernel runs as its owner's account; no token or directory cache.
    platform = start_platform(work / "home")
    try:
        with platform.api(platform.token(platform.admin_user, platform.admin_password)) as admin:
            token = admin.headers["Authorization"].split()[1]
            assert admin.post("projects", json={"name": "bench"}).status_code == 201
        for notebook, count, kind in runs:
            rows += aitip(notebook, count, kind, platform, token)
    finally:
        platform.stop()
    for notebook, count, kind in runs:
        rows.append(papermill_api(notebook, count, kind, work))
        if not args.skip_cli:
            rows.append(papermill_cli(notebook, count, kind, work))
    skipped: str | None = "skipped (--skip-scheduler)"
    if not args.skip_scheduler:
        bin_dir, skipped = scheduler_venv()
        if bin_dir is not None:
            try:
                rows += jupyter_scheduler(runs, bin_dir, work / "scheduler")
            except Exception as error:  # keep the rows measured so far; say why (c) is missing
                traceback.print_exc()
                skipped = f"failed: {error!r}"[:1000] + f" (server log: {work / 'scheduler' / 'server.log'})"

    baseline = {r["notebook"]: r["jobs_per_minute"] for r in rows if r["runner"].startswith("papermill CLI")}
    print(f"\n{'runner':32} {'notebook':8} {'jobs':>4} {'jobs/min':>9} {'x CLI':>7} {'p50 ms':>8} {'p95 ms':>8}")
    for row in rows:
        ratio = row["jobs_per_minute"] / baseline[row["notebook"]] if row["notebook"] in baseline else float("nan")
        row["ratio_to_cli"] = ratio
        print(f"{row['runner']:32} {row['notebook']:8} {row['jobs']:>4} {row['jobs_per_minute']:>9.1f} "
              f"{ratio:>7.2f} {row['first_cell_p50_ms']:>8.0f} {row['first_cell_p95_ms']:>8.0f}")
    if skipped:
        print(f"jupyter-scheduler: {skipped}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"rows": rows, "jupyter_scheduler": skipped or "measured",
                               "machine": f"{multiprocessing.cpu_count()} cores"}, indent=2))


if __name__ == "__main__":
    main()
