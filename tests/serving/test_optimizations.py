"""``aitip serve optimize`` through the platform: a registered version packaged for Triton by Triton Model
Navigator in a sandboxed job on the aitip-triton kernel, its summary read from the executed notebook, its package
handed out as an archive of regular files only; a 409 where the kernel is not installed; who may do what.

The navigator's own run needs its kernel environment (kernels/triton/install.sh; here, on a machine without a
GPU, the navigator installed without TensorRT runs the ONNX path on onnxruntime's CPU runner)."""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError

from aitip.serving.optimizations import NOTEBOOK_NAME, SUMMARY_MIME
from tests.server.conftest import TOKENS
from tests.serving.test_endpoints_api import make_alpha
from tests.support.cli import cli_runner
from tests.support.workers import start_worker

ROOT = Path(__file__).resolve().parents[2]
TRITON_PYTHON = Path(os.environ.get("AITIP_TRITON_ENV", ROOT / ".venv-triton")) / "bin" / "python"
OPTIMIZATIONS = "projects/alpha/optimizations"


def navigator_missing() -> str | None:
    import subprocess

    if not TRITON_PYTHON.exists():
        return f"no Triton Model Navigator environment at {TRITON_PYTHON.parent.parent} (kernels/triton/install.sh)"
    found = subprocess.run([str(TRITON_PYTHON), "-c", "import model_navigator, ipykernel, skl2onnx"],
                           capture_output=True, text=True, timeout=120)
    return None if found.returncode == 0 else f"{TRITON_PYTHON} cannot import the navigator: {found.stderr[-300:]}"


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any], served_models: Any,
                     request: pytest.FixtureRequest) -> dict[str, Any]:
    jp_server_config["AitipExtension"]["mlflow_tracking_uri"] = served_models[0]
    jp_server_config["AitipExtension"]["run_jobs"] = request.node.get_closest_marker("slow") is not None
    return jp_server_config


def install_triton_kernel(jp_data_dir: Path, python: Path) -> None:
    """The aitip-triton kernel spec as kernels/triton/install.sh writes it, its device CPU (no GPU here)."""
    target = jp_data_dir / "kernels" / "aitip-triton"
    target.mkdir(parents=True)
    (target / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "AITIP Triton Model Navigator (CPU)", "language": "python",
        "env": {"AITIP_KERNEL": "aitip-triton", "AITIP_KERNEL_DEVICE": "cpu"},
        "metadata": {"aitip": {"device": "cpu", "resources": {"cpus": 2, "gpus": 0}}}}))


async def wait_optimization(api: Any, optimization: int, timeout: float = 240) -> dict[str, Any]:
    for _ in range(int(timeout / 0.5)):
        status, found = await api("GET", f"{OPTIMIZATIONS}/{optimization}", user="bob")
        assert status == 200, found
        if found["state"] in ("succeeded", "failed", "cancelled", "timed_out"):
            return found
        await asyncio.sleep(0.5)
    raise AssertionError(f"optimization {optimization} did not end: {found}")


async def download(jp_fetch: Any, optimization: int, user: str = "bob") -> tuple[int, bytes]:
    try:
        response = await jp_fetch("api", "aitip", "v1", *OPTIMIZATIONS.split("/"), str(optimization), "package",
                                  headers={"Authorization": f"token {TOKENS[user]}"})
    except HTTPClientError as error:
        assert error.response is not None, error
        response = error.response
    return response.code, response.body


async def test_without_the_triton_kernel_the_request_is_refused_saying_how_to_install_it(api: Any) -> None:
    await make_alpha(api)
    status, answer = await api("POST", OPTIMIZATIONS, user="carol", body={"model": "digits", "version": 1,
                                                                          "device": "cpu"})
    assert status == 409, answer
    assert answer["error"]["code"] == "kernel_not_installed"
    assert "kernels/triton/install.sh" in answer["error"]["message"]
    status, answer = await api("POST", OPTIMIZATIONS, user="carol", body={"model": "digits", "version": 1,
                                                                          "device": "cpu", "formats": ["trt"]})
    assert status == 422 and "TensorRT formats" in answer["error"]["message"], answer
    status, answer = await api("GET", OPTIMIZATIONS, user="carol")
    assert status == 200 and answer == {"optimizations": []}, answer


async def test_the_package_holds_the_owners_regular_files_never_a_link_to_the_platforms(
        api: Any, jp_fetch: Any, jp_serverapp: Any, tmp_path: Path) -> None:
    """The output folder is the job owner's: a link in it to a file only the platform may read is left out, as
    is the navigator's workspace; the summary comes from the executed notebook, not the owner's files."""
    from aitip.jobs.tables import JobRecord

    from tests.support.notebooks import TRIVIAL

    await make_alpha(api)
    secret = tmp_path / "platform-secret"
    secret.write_text("the platform's signing key")
    status, job = await api("POST", "jobs", user="carol", body={
        "project": "alpha", "notebook": TRIVIAL, "notebook_name": NOTEBOOK_NAME,
        "tags": {"optimized_model": "digits/1", "optimize_device": "cpu", "optimize_formats": "onnx",
                 "optimize_batch_sizes": "1", "optimize_triton_name": "digits"}})
    assert status == 201, job
    output = Path(os.environ["AITIP_HOME"]) / "job-workspaces" / f"{job['id']}.1" / "work" / "triton"
    (output / "triton_repository" / "digits" / "1").mkdir(parents=True)
    (output / "triton_repository" / "digits" / "config.pbtxt").write_text('name: "digits"\n')
    (output / "triton_repository" / "digits" / "1" / "model.onnx").write_bytes(b"onnx bytes")
    (output / "model.nav").write_bytes(b"navigator package")
    (output / "navigator_workspace").mkdir()
    (output / "navigator_workspace" / "status.yaml").write_text("big\n")
    (output / "stolen").symlink_to(secret)
    (output / "triton_repository" / "stolen-dir").symlink_to(tmp_path)
    summary = {"schema": 1, "navigator_version": "0.14.0", "model_name": "digits", "flavor": "sklearn",
               "target_device": "cpu", "batch_sizes": [1], "models": {"onnx": {
                   "format": "onnx", "status": "OK", "conversion": {"CopyModel": "OK"}, "runners": {"OnnxCPU": {
                       "status": "OK", "commands": {"Correctness": "OK", "Performance": "OK"},
                       "latency_ms": {"1": 0.02}, "throughput": {"1": 40000.0}}}}},
               "best": {"model": "onnx", "runner": "OnnxCPU", "latency_ms": 0.02, "throughput": 40000.0},
               "package": "model.nav", "repository": "triton_repository"}
    executed = tmp_path / "executed.ipynb"
    executed.write_text(json.dumps({"cells": [{"cell_type": "code", "source": "", "metadata": {},
                                               "execution_count": 1, "outputs": [{
                                                   "output_type": "display_data", "metadata": {},
                                                   "data": {SUMMARY_MIME: summary, "text/plain": "summary"}}]}],
                                    "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    with jp_serverapp.web_app.settings["aitip"].catalog.session() as session:  # as the job's end leaves it
        record = session.get(JobRecord, job["id"])
        record.state, record.attempt, record.output_path = "succeeded", 1, str(executed)

    status, found = await api("GET", f"{OPTIMIZATIONS}/{job['id']}", user="bob")
    assert status == 200 and found["has_package"], found
    assert found["summary"]["formats"] == {"onnx": "OK"}
    assert found["summary"]["models"]["onnx"]["runners"]["OnnxCPU"]["latency_ms"] == {"1": 0.02}
    status, body = await download(jp_fetch, job["id"])
    assert status == 200
    with tarfile.open(fileobj=io.BytesIO(body)) as archive:
        names = sorted(archive.getnames())
        members = {member.name: member for member in archive.getmembers()}
        assert archive.extractfile(f"{job['id']}/model.nav").read() == b"navigator package"
    prefix = str(job["id"])
    assert names == [prefix, f"{prefix}/model.nav", f"{prefix}/triton_repository",
                     f"{prefix}/triton_repository/digits", f"{prefix}/triton_repository/digits/1",
                     f"{prefix}/triton_repository/digits/1/model.onnx",
                     f"{prefix}/triton_repository/digits/config.pbtxt"], names
    assert all(member.isfile() or member.isdir() for member in members.values())
    assert b"signing key" not in body

    status, listed = await api("GET", OPTIMIZATIONS, user="bob", params={"model": "digits"})
    assert status == 200 and [item["id"] for item in listed["optimizations"]] == [job["id"]], listed
    status, listed = await api("GET", OPTIMIZATIONS, user="bob", params={"model": "other"})
    assert status == 200 and listed["optimizations"] == [], listed
    status, answer = await api("GET", f"{OPTIMIZATIONS}/{job['id'] + 100}", user="bob")
    assert status == 404, answer
    status, answer = await api("GET", f"projects/alpha/optimizations/{job['id']}", user="erin")
    assert status in (403, 404), answer


@pytest.mark.slow
async def test_a_version_is_packaged_for_triton_on_the_cpu_with_the_cli_and_its_package_downloaded(
        api: Any, jp_data_dir: Path, jp_serverapp: Any, jp_http_port: int, jp_base_url: str,
        tmp_path: Path) -> None:
    reason = await asyncio.to_thread(navigator_missing)
    if reason is not None:
        pytest.skip(reason)
    install_triton_kernel(jp_data_dir, TRITON_PYTHON)
    await start_worker(jp_serverapp)
    await make_alpha(api)
    aitip = cli_runner(f"http://127.0.0.1:{jp_http_port}{jp_base_url}")
    status, answer = await api("POST", OPTIMIZATIONS, user="bob", body={"model": "digits", "version": 1,
                                                                        "device": "cpu"})
    assert status == 403, answer  # a viewer reads packagings, but does not start one
    status, answer = await api("POST", OPTIMIZATIONS, user="carol", body={"model": "digits", "version": 9,
                                                                          "device": "cpu"})
    assert status == 404 and answer["error"]["code"] == "unknown_model_version", answer

    code, shown, err = await asyncio.to_thread(
        aitip, "serve", "optimize", "--project", "alpha", "--model", "digits", "--version", "1", "--device", "cpu",
        "--batch-sizes", "8", "--batch-sizes", "1", "--stability-percentage", "30", "--wait", "--json",
        user="carol")
    assert code == 0, (shown, err)
    done = json.loads(shown)
    assert done["state"] == "succeeded" and done["created_by"] == "carol", done
    assert done["formats"] == ["onnx"] and done["batch_sizes"] == [1, 8] and done["triton_name"] == "digits"
    summary = done["summary"]
    assert summary["navigator_version"] == "0.14.0" and summary["flavor"] == "sklearn", summary
    assert summary["formats"]["onnx"] == "OK", summary
    runner = summary["models"]["onnx"]["runners"]["OnnxCPU"]
    assert runner["status"] == "OK" and set(runner["latency_ms"]) == {"1", "8"}, runner
    assert all(value > 0 for value in runner["latency_ms"].values())
    assert summary["best"]["model"] == "onnx" and summary["repository"] == "triton_repository", summary

    code, shown, err = await asyncio.to_thread(aitip, "serve", "optimization", "--project", "alpha",
                                               "--optimization", str(done["id"]), user="bob")
    assert code == 0 and "succeeded" in shown and "OnnxCPU" in shown, (shown, err)
    print(shown, file=sys.stderr)
    target = tmp_path / "digits-triton.tar.gz"
    code, shown, err = await asyncio.to_thread(aitip, "serve", "package", "--project", "alpha", "--optimization",
                                               str(done["id"]), "--output", str(target), user="bob")
    assert code == 0, (shown, err)
    with tarfile.open(target) as archive:
        names = set(archive.getnames())
        config = archive.extractfile(f"{done['id']}/triton_repository/digits/config.pbtxt").read().decode()
    assert f"{done['id']}/model.nav" in names, sorted(names)
    assert not any("navigator_workspace" in name for name in names)
    assert "max_batch_size: 8" in config, config
