"""Notebook-job throughput and latency, side by side in one run:

  (a) the papermill CLI, one job after another (a fresh interpreter and kernel each);
  (b) papermill's Python API in 2 long-lived worker processes (a fresh kernel each);
  (c) jupyter-scheduler, when it installs beside us (it is skipped otherwise, and the table says so);
  (d) AITIP through its REST API (`aitip up` on loopback: hub, proxy, platform service, MLflow tracking on).

Each runs N trivial parameterized notebooks and M 20-cell numpy/pandas notebooks. Reported: jobs per
minute, submit -> first cell p50/p95 (the first cell prints its wall-clock time), and ratios to (a).
AITIP's latency is measured with one job at a time (a pooled kernel free), its throughput with all
jobs submitted at once.

    .venv/bin/python benchmarks/jobs_throughput.py            # full: 50 trivial + 20 heavy
    .venv/bin/python benchmarks/jobs_throughput.py --quick    # 10 + 5, for a smoke run
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

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

def jupyter_scheduler_available() -> str | None:
    try:
        import jupyter_scheduler  # noqa: F401
    except ImportError:
        return "not installed beside the platform (see README)"
    return None


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
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "jobs_throughput.json"))
    args = parser.parse_args()
    trivial_n, heavy_n = (10, 5) if args.quick else (50, 20)
    work = Path(tempfile.mkdtemp(prefix="aitip-bench-"))
    rows: list[dict] = []

    from tests.support.platform import start_platform

    platform = start_platform(work / "home")
    try:
        with platform.api(platform.token(platform.admin_user, platform.admin_password)) as admin:
            token = admin.headers["Authorization"].split()[1]
            assert admin.post("projects", json={"name": "bench"}).status_code == 201
        for notebook, count, kind in ((TRIVIAL, trivial_n, "trivial"), (HEAVY, heavy_n, "heavy")):
            rows += aitip(notebook, count, kind, platform, token)
    finally:
        platform.stop()
    for notebook, count, kind in ((TRIVIAL, trivial_n, "trivial"), (HEAVY, heavy_n, "heavy")):
        rows.append(papermill_api(notebook, count, kind, work))
        if not args.skip_cli:
            rows.append(papermill_cli(notebook, count, kind, work))
    skipped = jupyter_scheduler_available()

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
