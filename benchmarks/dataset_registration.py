"""Registering a dataset version, side by side in one run with its floors:

  (a) ``md5sum`` of the same bytes (the hashing floor, bytes in page cache);
  (b) ``dvc add`` alone in a fresh Git + DVC repository (the CLI, as a user would run it);
  (c) ``dvc add`` with ``cache.type=hardlink`` (DVC's fastest local set-up);
  (d) AITIP's registration as `aitip data add` sends it, through the hub's proxy (`aitip up` on loopback): the upload streamed in and
      hashed once, schema detection, the quality report and gate, ``dvc add`` with a hardlink cache fed
      the upload's hashes, the Git commit and tag, and the catalog record.

Two inputs of ~1 GB each: one Parquet file (10 numeric columns), and a folder of 1,000 ~1 MB PNGs in ten
class sub-folders (sent as ``aitip data add`` sends a folder: a stored zip streamed from its files). Medians of
``--repeat`` runs (the first run of each warms the page cache and is dropped).

    .venv/bin/python benchmarks/dataset_registration.py              # 1 GB each, 3 runs
    .venv/bin/python benchmarks/dataset_registration.py --mb 200     # a smaller smoke run
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
VENV_BIN = Path(sys.executable).parent
GIT = ["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost"]


def make_parquet(path: Path, megabytes: int) -> None:
    rows = megabytes * (1 << 20) // 80  # 10 float64 columns, little compression of random data
    rng = np.random.default_rng(7)
    with pq.ParquetWriter(path, pa.schema([(f"c{i}", pa.float64()) for i in range(10)]),
                          compression="none") as writer:
        for start in range(0, rows, 1_000_000):
            count = min(1_000_000, rows - start)
            writer.write_table(pa.table({f"c{i}": rng.standard_normal(count) for i in range(10)}))


def make_images(folder: Path, megabytes: int, files: int = 1000) -> None:
    """Valid PNGs of RGB noise (stored, not compressed: noise does not compress), so the registration's
    image checks read and verify every one."""
    from PIL import Image

    side = int((megabytes * (1 << 20) // files / 3) ** 0.5)
    rng = np.random.default_rng(11)
    for index in range(files):
        target = folder / f"class{index % 10}" / f"img{index:04d}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(target, "PNG", compress_level=0)


def timed(command: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, capture_output=True, env=env)
    return time.perf_counter() - started


def md5sum(source: Path) -> float:
    files = [str(p) for p in source.rglob("*") if p.is_file()] if source.is_dir() else [str(source)]
    return timed(["md5sum", *files])


# No analytics or update-check daemons: each would start after a ``dvc`` command and run into the next
# measurement (the platform's DVC Repo never starts them either).
DVC_ENV = {**os.environ, "DVC_NO_ANALYTICS": "1"}


def dvc_add(source: Path, work: Path, hardlink: bool) -> float:
    repo = work / "dvc-repo"
    shutil.rmtree(repo, ignore_errors=True)
    repo.mkdir(parents=True)
    dvc = str(VENV_BIN / "dvc")
    subprocess.run([*GIT, "init", "-q"], cwd=repo, check=True)
    subprocess.run([dvc, "init", "-q"], cwd=repo, check=True, env=DVC_ENV)
    subprocess.run([dvc, "config", "core.check_update", "false"], cwd=repo, check=True, env=DVC_ENV)
    if hardlink:
        subprocess.run([dvc, "config", "cache.type", "hardlink,copy"], cwd=repo, check=True, env=DVC_ENV)
    target = repo / source.name
    if source.is_dir():
        shutil.copytree(source, target)
    else:
        shutil.copyfile(source, target)
    subprocess.run(["sync"], check=True)
    return timed([dvc, "add", "-q", target.name], cwd=repo, env=DVC_ENV)


def aitip_register(platform: object, token: str, source: Path, name: str) -> tuple[float, dict]:
    """What ``aitip data add`` sends (the SDK's own upload body: the file, or the folder as a zip streamed
    from its files, with a Content-Length), posted here to read the response's Server-Timing steps."""
    import httpx
    from aitip.datasets.sdk import _upload_body

    url = f"{platform.url}/services/aitip/api/aitip/v1/projects/bench/datasets/{name}/versions"  # type: ignore[attr-defined]
    subprocess.run(["sync"], check=True)  # as before ``dvc add``: no other run's writes still being flushed
    started = time.perf_counter()
    with _upload_body(source) as (body, length, filename):
        response = httpx.post(url, params={"filename": filename}, content=body, timeout=600,
                              headers={"Authorization": f"token {token}", "Content-Type": "application/octet-stream",
                                       "Content-Length": str(length)})
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    steps = {}
    for part in response.headers.get("Server-Timing", "").split(","):
        step, _, duration = part.strip().partition(";dur=")
        if duration:
            steps[step] = float(duration) / 1000
    return elapsed, {**response.json(), "steps": steps}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--aitip-only", action="store_true", help="profile AITIP's steps alone (no ratios)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "dataset_registration.json"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="aitip-databench-"))
    single = work / "table.parquet"
    images = work / "images"
    print(f"generating {args.mb} MB inputs in {work} ...", file=sys.stderr)
    make_parquet(single, args.mb)
    make_images(images, args.mb)

    from tests.support.platform import start_platform

    # Pushes to the DVC remote follow a registration off its path; left out so a push never overlaps the next
    # measurement.
    platform = start_platform(work / "home", environment={"AITIP_DATA_REMOTE": "none"})
    rows = []
    try:
        with platform.api(platform.token(platform.admin_user, platform.admin_password)) as admin:
            token = admin.headers["Authorization"].split()[1]
            assert admin.post("projects", json={"name": "bench"}).status_code == 201
        for label, source in (("1 file", single), ("1,000 files", images)):
            results: dict[str, list[float]] = {"md5sum": [], "dvc add": [], "dvc add (hardlink)": [], "AITIP": []}
            if args.aitip_only:
                results = {"AITIP": []}
            extra: dict = {}
            steps: dict[str, list[float]] = {}
            for attempt in range(args.repeat + 1):
                if not args.aitip_only:
                    results["md5sum"].append(md5sum(source))
                    results["dvc add"].append(dvc_add(source, work, hardlink=False))
                    results["dvc add (hardlink)"].append(dvc_add(source, work, hardlink=True))
                seconds, version = aitip_register(platform, token, source, f"{'t' if source == single else 'i'}{attempt}")
                results["AITIP"].append(seconds)
                extra = {"rows": version.get("rows"), "files": version.get("files"), "bytes": version.get("bytes")}
                if attempt:
                    for step, duration in version["steps"].items():
                        steps.setdefault(step, []).append(duration)
            extra["steps_seconds"] = {step: statistics.median(values) for step, values in steps.items()}
            print(f"{label}: AITIP's steps (server side, medians): "
                  + ", ".join(f"{step} {value:.2f} s" for step, value in extra["steps_seconds"].items()),
                  file=sys.stderr)
            size = sum(p.stat().st_size for p in source.rglob("*") if p.is_file()) if source.is_dir() else source.stat().st_size
            for runner, times in results.items():
                median = statistics.median(times[1:])
                rows.append({"input": label, "runner": runner, "seconds": median, "mb_per_s": size / median / 1e6,
                             "bytes": size, **({"registered": extra} if runner == "AITIP" else {})})
    finally:
        platform.stop()
        shutil.rmtree(work, ignore_errors=True)

    if args.aitip_only:
        print(json.dumps(rows, indent=2))
        return
    print(f"\n{'input':12} {'runner':20} {'seconds':>8} {'MB/s':>8} {'÷ dvc add':>10} {'÷ md5sum':>9}")
    for row in rows:
        base = {r["runner"]: r["seconds"] for r in rows if r["input"] == row["input"]}
        row["ratio_to_dvc_add"] = row["seconds"] / base["dvc add"]
        row["ratio_to_md5sum"] = row["seconds"] / base["md5sum"]
        print(f"{row['input']:12} {row['runner']:20} {row['seconds']:>8.2f} {row['mb_per_s']:>8.0f} "
              f"{row['ratio_to_dvc_add']:>10.2f} {row['ratio_to_md5sum']:>9.2f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"rows": rows, "megabytes": args.mb, "repeat": args.repeat,
                               "machine": f"{multiprocessing.cpu_count()} cores"}, indent=2))


if __name__ == "__main__":
    main()
