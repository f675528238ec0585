"""Pooled kernels forked from the fork server: fresh processes, their own RNG state, the right
environment, killable, and a plain process launch whenever forking is not safe or possible."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import pytest_asyncio

from aitip.jobs.kernel_pool import IPYKERNEL_LAUNCHERS, ForkServer, KernelPool, PooledKernel

in_module_loop = pytest.mark.asyncio(loop_scope="module")

PROBE = """
import json, os, random, sys
numpy_preloaded = "numpy" in sys.modules
import numpy
from threadpoolctl import threadpool_info
print(json.dumps({
    "pid": os.getpid(), "ppid": os.getppid(), "sid": os.getsid(0), "cwd": os.getcwd(),
    "numpy": numpy.random.rand(), "random": random.random(),
    "secret": os.environ.get("AITIP_TEST_SECRET"), "kernel": os.environ.get("AITIP_KERNEL"),
    "blas_threads": max([p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"] or [0]),
    "numpy_preloaded_before_cell": numpy_preloaded,
}))
"""


async def run(kernel: PooledKernel, code: str, timeout: float = 30) -> str:
    msg_id = kernel.client.execute(code)
    text = ""
    while True:
        message = await kernel.client.get_iopub_msg(timeout=timeout)
        if message["parent_header"].get("msg_id") != msg_id:
            continue
        if message["msg_type"] == "stream":
            text += message["content"]["text"]
        elif message["msg_type"] == "error":
            raise AssertionError("\n".join(message["content"]["traceback"]))
        elif message["msg_type"] == "status" and message["content"]["execution_state"] == "idle":
            return text


async def probe(kernel: PooledKernel) -> dict[str, Any]:
    return json.loads((await run(kernel, PROBE)).strip().splitlines()[-1])


def _running(pid: int) -> bool:
    """Alive and not a zombie; a process reaped between the two looks is gone (a race on a busy machine)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def wait_gone(pid: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while _running(pid):
        assert time.monotonic() < deadline, f"process {pid} still running"
        await asyncio.sleep(0.05)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def pool() -> AsyncIterator[KernelPool]:
    os.environ["AITIP_TEST_SECRET"] = "platform-only"
    pool = KernelPool({"aitip-python": 0})
    try:
        yield pool
    finally:
        await pool.close()
        os.environ.pop("AITIP_TEST_SECRET", None)


@in_module_loop
async def test_kernels_are_fresh_forked_processes_with_their_own_random_state(pool: KernelPool) -> None:
    first, second = await pool.start_kernel("aitip-python"), await pool.start_kernel("aitip-python")
    try:
        a, b = await probe(first), await probe(second)
        (server,) = [s for s in pool._fork_servers.values() if s is not None]
        assert server.process is not None
        assert a["pid"] != b["pid"] and {a["ppid"], b["ppid"]} == {server.process.pid}
        assert a["pid"] == first.pid and a["sid"] == a["pid"]  # its own session: killable as a group
        assert a["numpy"] != b["numpy"] and a["random"] != b["random"]
        assert a["numpy_preloaded_before_cell"]
    finally:
        await pool.discard(first)
        await pool.discard(second)


@in_module_loop
async def test_forked_kernel_gets_the_scrubbed_environment_and_its_blas_threads(pool: KernelPool) -> None:
    kernel = await pool.start_kernel("aitip-python")
    try:
        facts = await probe(kernel)
        assert facts["secret"] is None  # the platform's variables never reach user code
        assert facts["kernel"] == "aitip-python"  # the kernel spec's env is applied
        assert facts["cwd"] == str(pool.runtime_dir)
        assert facts["blas_threads"] == (os.cpu_count() or 1)  # the preload's one-thread pin is lifted
    finally:
        await pool.discard(kernel)


@in_module_loop
async def test_killing_a_forked_kernel_ends_it_and_reports_the_signal(pool: KernelPool) -> None:
    kernel = await pool.start_kernel("aitip-python")
    pid = kernel.pid
    assert pid is not None and psutil.pid_exists(pid)
    await KernelPool.kill(kernel)
    await wait_gone(pid)
    process = kernel.manager.provisioner.process  # type: ignore[union-attr]
    deadline = time.monotonic() + 5
    while process.poll() is None:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    assert process.returncode == -signal.SIGKILL
    assert not await kernel.manager.is_alive()
    await pool.discard(kernel)


@in_module_loop
async def test_a_dead_fork_server_is_replaced_and_its_kernels_follow_it(pool: KernelPool) -> None:
    kernel = await pool.start_kernel("aitip-python")
    (server,) = [s for s in pool._fork_servers.values() if s is not None]
    assert server.process is not None
    server.process.kill()
    server.process.wait()
    assert kernel.pid is not None
    await wait_gone(kernel.pid, timeout=15)  # ipykernel's parent poller sees its parent go
    replacement = await pool.start_kernel("aitip-python")
    try:
        (new_server,) = [s for s in pool._fork_servers.values() if s is not None]
        assert new_server is not server and new_server.alive
        assert (await probe(replacement))["ppid"] == new_server.process.pid  # type: ignore[union-attr]
    finally:
        await pool.discard(replacement)
        await pool.discard(kernel)


@in_module_loop
@pytest.mark.parametrize(("module_source", "why"), [
    ("import threading, time\nthreading.Thread(target=time.sleep, args=(600,), daemon=True).start()\n",
     "a preloaded module started a thread: forking would be unsafe"),
    ("raise RuntimeError('broken preload')\n", "the fork server cannot start"),
])
async def test_kernels_start_as_plain_processes_when_forking_is_not_safe(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module_source: str, why: str) -> None:
    (tmp_path / "aitip_test_preload.py").write_text(module_source)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    pool = KernelPool({"aitip-python": 0}, preload=["aitip_test_preload"])
    try:
        kernel = await pool.start_kernel("aitip-python")
        facts = await probe(kernel)
        assert facts["ppid"] == os.getpid(), why  # launched by us, not forked
        assert kernel.manager.provisioner.process.__class__.__name__ == "Popen"  # type: ignore[union-attr]
        await pool.discard(kernel)
    finally:
        await pool.close()


@pytest.mark.parametrize(("argv", "handled"), [
    ([sys.executable, "-m", "ipykernel_launcher", "-f", "c.json"], True),
    ([sys.executable, "-m", "ipykernel", "-f", "c.json"], True),
    ([sys.executable, "-m", "ipykernel_launcher"], False),  # no connection file
    (["/usr/bin/python3", "-m", "ipykernel_launcher", "-f", "c.json"], False),  # another interpreter
    ([sys.executable, "-m", "other_kernel", "-f", "c.json"], False),
    (["R", "--slave", "-e", "IRkernel::main()", "--args", "c.json"], False),
])
def test_only_ipython_kernels_of_the_same_interpreter_are_forked(argv: list[str], handled: bool) -> None:
    server = ForkServer(sys.executable, {}, Path("/tmp"), [])
    assert server.handles(argv) is handled
    assert ["-m", "ipykernel_launcher"] in IPYKERNEL_LAUNCHERS


@in_module_loop
async def test_job_kernels_keep_history_in_memory_only(pool: KernelPool) -> None:
    """No history.sqlite writes (a thread and a lock shared by every kernel); In/Out still work."""
    kernel = await pool.start_kernel("aitip-python")
    try:
        await run(kernel, "a = 40 + 2")
        shown = await run(kernel, "import threading\nprint(get_ipython().history_manager.enabled, In[-2], "
                                  "sorted(t.name for t in threading.enumerate() if 'History' in t.name))")
        assert shown.strip() == "False a = 40 + 2 []"
    finally:
        await pool.discard(kernel)


@in_module_loop
async def test_a_kernel_of_another_environment_gets_its_specs_module_path_not_the_platforms(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The platform's PYTHONPATH and VIRTUAL_ENV would put its packages before the kernel environment's own
    (aitip-triton's numpy<2 behind the platform's numpy 2): a kernel of another interpreter gets its spec's
    environment only, and is started as a process (the fork server is the platform's own module)."""
    import subprocess
    import sysconfig

    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "env")], check=True, timeout=120)
    python = tmp_path / "env" / "bin" / "python"
    packages = sysconfig.get_paths()["purelib"]  # where this test's ipykernel is: the spec points its kernel there
    spec = tmp_path / "share" / "kernels" / "other-env"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"], "display_name": "other",
        "language": "python", "env": {"PYTHONPATH": packages}}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "share"))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "platform-only"))
    monkeypatch.setenv("VIRTUAL_ENV", str(tmp_path / "platform-venv"))
    pool = KernelPool({})
    try:
        kernel = await pool.start_kernel("other-env")
        shown = await run(kernel, "import os, sys\nprint(sys.executable, os.environ.get('PYTHONPATH'), "
                                  "os.environ.get('VIRTUAL_ENV'))")
        assert shown.split() == [str(python), packages, "None"], shown
        assert pool._fork_servers == {}
        await pool.discard(kernel)
    finally:
        await pool.close()
