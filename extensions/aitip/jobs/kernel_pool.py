"""A pool of pre-started kernels so a job never waits for a kernel to boot.

Each kernel serves exactly one job and is then discarded (shut down off the job's path). Kernels use
the ``ipc`` transport: the ``tcp`` transport raced on ports (``Address already in use``) in measurements.
Kernels start with a scrubbed environment: the platform's credentials never reach user code.
IPython kernels are forked from a fork server (``aitip.jobs.forkserver``) that has done the imports
once; other kernel specs, or a fork server that cannot start, fall back to a plain process launch.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import pathlib
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty
from typing import Any

from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from jupyter_client.provisioning import LocalProvisioner

log = logging.getLogger("aitip.jobs.kernels")

# Variables a kernel may inherit from the platform process; everything else (tokens, catalog URLs,
# hub variables) stays behind.
INHERITED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV",
                 "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "CUDA_HOME",
                 "LD_LIBRARY_PATH", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")


def kernel_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {name: os.environ[name] for name in INHERITED_ENV if name in os.environ}
    env["PYTHONUNBUFFERED"] = "1"
    env["MPLBACKEND"] = "Agg"
    env.update(extra or {})
    return env


IPYKERNEL_LAUNCHERS = (["-m", "ipykernel_launcher"], ["-m", "ipykernel"])


def _interpreter(argv: list[str]) -> str:
    """The Python a kernel spec runs: a bare ``python`` is the platform's own."""
    return sys.executable if argv[0] in ("python", "python3", f"python3.{sys.version_info[1]}") else argv[0]


def job_kernel_arguments(argv: list[str]) -> list[str]:
    """Options for an IPython job kernel: no history database. IPython otherwise writes every cell to one
    shared ``history.sqlite`` from a thread of each kernel (time spent on every job's cells, and lock contention
    between concurrent jobs); ``In``/``Out`` still work from memory. Other kernels get none."""
    return ["--HistoryManager.enabled=False"] if argv[1:3] in IPYKERNEL_LAUNCHERS else []


class ForkedKernelProcess:
    """A ``Popen``-like handle on a kernel the fork server forked: polled and signalled through a pidfd,
    so a recycled pid can never be hit; its exit code comes from the server, which reaps it."""

    stdin = stdout = stderr = None

    def __init__(self, pid: int, pidfd: int, server: ForkServer) -> None:
        self.pid = pid
        self._pidfd: int | None = pidfd
        self._server = server
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is not None or self._pidfd is None:
            return self.returncode
        readable, _, _ = select.select([self._pidfd], [], [], 0)
        if not readable:
            return None
        self.returncode = self._server.exit_code(self.pid)
        os.close(self._pidfd)
        self._pidfd = None
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(["kernel"], timeout or 0)
            time.sleep(0.01)
        return self.returncode  # type: ignore[return-value]

    def send_signal(self, signum: int) -> None:
        if self.poll() is not None or self._pidfd is None:
            return
        signal.pidfd_send_signal(self._pidfd, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def __del__(self) -> None:
        if self._pidfd is not None:
            with contextlib.suppress(OSError):
                os.close(self._pidfd)


class ForkServer:
    """One fork server process for one Python executable and environment (see ``aitip.jobs.forkserver``)."""

    def __init__(self, python: str, env: dict[str, str], runtime_dir: Path, preload: list[str]) -> None:
        self.python = python
        self.env = env
        self.preload = preload
        self.socket_path = str(runtime_dir / f"fork-{uuid.uuid4().hex[:8]}.sock")
        self.process: subprocess.Popen[bytes] | None = None
        self.preloaded: list[str] = []

    def handles(self, cmd: list[str]) -> bool:
        """Only IPython kernels of this very interpreter can be forked from it."""
        return bool(cmd) and cmd[0] == self.python and cmd[1:3] in IPYKERNEL_LAUNCHERS and "-f" in cmd[3:]

    async def start(self, timeout: float = 60.0) -> None:
        self.process = subprocess.Popen(
            [self.python, "-m", "aitip.jobs.forkserver", self.socket_path, "--preload", ",".join(self.preload)],
            env=self.env, stdin=subprocess.DEVNULL, cwd=str(Path(self.socket_path).parent),
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the kernel fork server exited with code {self.process.returncode}")
            try:
                self.preloaded = self._request({"op": "ping"})["preloaded"]
                return
            except OSError:
                if time.monotonic() > deadline:
                    await self.close()
                    raise RuntimeError("the kernel fork server did not start in time") from None
                await asyncio.sleep(0.05)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _request(self, message: dict[str, Any], *, with_fd: bool = False) -> Any:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.settimeout(30)
            connection.connect(self.socket_path)
            connection.sendall(json.dumps(message).encode() + b"\n")
            data, fds = b"", []
            while not data.endswith(b"\n"):
                chunk, received, _, _ = socket.recv_fds(connection, 65536, 1)
                fds += received
                if not chunk:
                    break
                data += chunk
        reply = json.loads(data) if data else {"error": "the fork server closed the connection"}
        if "error" in reply:
            for fd in fds:
                os.close(fd)
            raise RuntimeError(f"kernel fork server: {reply['error']}")
        return (reply, fds) if with_fd else reply

    def exit_code(self, pid: int) -> int:
        for _ in range(100):
            status = self._request({"op": "status", "pid": pid})
            if status["returncode"] is not None:
                return int(status["returncode"])
            if not status["running"]:
                break
            time.sleep(0.005)
        return -1  # exited, but its status is no longer known

    async def spawn(self, cmd: list[str], env: dict[str, str], cwd: str | None, *,
                    isolate_network: bool = False) -> ForkedKernelProcess:
        request = {"op": "spawn", "argv": cmd[3:], "env": env, "cwd": cwd, "isolate_network": isolate_network}
        reply, fds = await asyncio.to_thread(self._request, request, with_fd=True)
        if len(fds) != 1:
            raise RuntimeError("the kernel fork server sent no process handle")
        return ForkedKernelProcess(int(reply["pid"]), fds[0], self)

    async def close(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                await asyncio.to_thread(self.process.wait, 10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                await asyncio.to_thread(self.process.wait)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket_path)


class ForkServerProvisioner(LocalProvisioner):  # type: ignore[misc]
    """Launches an IPython kernel by asking the fork server for it; anything else as a plain process."""

    fork_server: ForkServer | None = None
    isolate_network = False  # a sandboxed kernel: a network namespace of its own (aitip.isolation.network)

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> Any:
        server = self.fork_server
        if server is None or not server.alive or not server.handles(cmd):
            return await self._launch_process(cmd, **kwargs)
        try:
            self.process = await server.spawn(cmd, env=dict(kwargs.get("env") or {}), cwd=kwargs.get("cwd"),
                                              isolate_network=self.isolate_network)
        except (OSError, RuntimeError) as error:
            log.warning("could not fork a kernel (%s); launching it as a process", error)
            return await self._launch_process(cmd, **kwargs)
        self.pid = self.process.pid
        self.pgid = self.process.pid  # the kernel leads its own session
        self.cwd = kwargs.get("cwd", pathlib.Path.cwd())
        return self.connection_info

    async def _launch_process(self, cmd: list[str], **kwargs: Any) -> Any:
        if self.isolate_network:
            cmd = [sys.executable, "-m", "aitip.isolation.network", "--", *cmd]
        return await super().launch_kernel(cmd, **kwargs)


@dataclass
class PooledKernel:
    name: str
    manager: AsyncKernelManager
    client: AsyncKernelClient
    started_at: float
    kernel_info: dict[str, Any] = field(default_factory=dict)
    host: str = field(default_factory=socket.gethostname)

    @property
    def pid(self) -> int | None:
        provisioner = getattr(self.manager, "provisioner", None)
        return getattr(provisioner, "pid", None)


# Imported once in the fork server, so a job's ``import numpy, pandas`` is already done.
DEFAULT_PRELOAD = ["numpy", "pandas"]


class KernelPool:
    def __init__(self, sizes: dict[str, int], *, startup_timeout: float = 60.0,
                 env: dict[str, str] | None = None, inherit_environment: bool = False,
                 fork: bool = True, preload: list[str] | None = None) -> None:
        self.sizes = dict(sizes)
        self.fork = fork
        self.preload = list(preload if preload is not None else DEFAULT_PRELOAD)
        self._fork_servers: dict[str, ForkServer | None] = {}
        self._fork_server_lock = asyncio.Lock()
        self.inherit_environment = inherit_environment
        self.startup_timeout = startup_timeout
        self.env = env or {}
        self._ready: dict[str, list[PooledKernel]] = defaultdict(list)
        self._starting: dict[str, int] = defaultdict(int)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        # Short paths: ipc sockets are Unix sockets, whose paths are limited to ~107 bytes.
        self.runtime_dir = Path(tempfile.mkdtemp(prefix="aitip-k"))
        self.refill_delay = 0.2
        self.started = 0

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def start(self) -> None:
        # Where kernel specs live is looked up once off the event loop: jupyter_client imports IPython for it
        # (~/.ipython/kernels), which held up every request to a starting platform while it ran.
        await asyncio.to_thread(lambda: KernelSpecManager().kernel_dirs)
        for name in self.sizes:
            self._refill(name)

    def _refill(self, name: str, delay: float = 0.0) -> None:
        if self._closed:
            return
        missing = self.sizes.get(name, 0) - len(self._ready[name]) - self._starting[name]
        for _ in range(max(0, missing)):
            self._starting[name] += 1
            self._spawn(self._start_into_pool(name, delay))

    async def _start_into_pool(self, name: str, delay: float = 0.0) -> None:
        try:
            if delay:
                await asyncio.sleep(delay)
            kernel = await self.start_kernel(name)
        except Exception:
            log.exception("could not pre-start a %s kernel", name)
            await asyncio.sleep(2.0)
            return
        finally:
            self._starting[name] -= 1
        if self._closed:
            await self.discard(kernel)
            return
        self._ready[name].append(kernel)

    def _base_environment(self) -> dict[str, str]:
        return {**os.environ, **self.env} if self.inherit_environment else kernel_environment(self.env)

    def _environment_for(self, argv: list[str]) -> dict[str, str]:
        """The kernel's environment: the platform's module path and virtual environment stay behind for a
        kernel of another environment (its own packages first: aitip-triton's numpy<2, not the platform's)."""
        env = self._base_environment()
        if argv and _interpreter(argv) != sys.executable:
            env.pop("PYTHONPATH", None)
            env.pop("VIRTUAL_ENV", None)
        return env

    async def _fork_server_for(self, manager: AsyncKernelManager) -> ForkServer | None:
        """The running fork server for this spec's interpreter, started on first use; None if it cannot be (the
        fork server is the platform's own module: only kernels of the platform's interpreter are forked)."""
        argv = list(manager.kernel_spec.argv) if manager.kernel_spec else []
        if not argv or argv[1:3] not in IPYKERNEL_LAUNCHERS or _interpreter(argv) != sys.executable:
            return None
        python = sys.executable
        async with self._fork_server_lock:
            server = self._fork_servers.get(python)
            if python in self._fork_servers and (server is None or server.alive):
                return server
            server = ForkServer(python, self._base_environment(), self.runtime_dir, self.preload)
            try:
                await server.start(self.startup_timeout)
            except Exception:  # noqa: BLE001 - kernels still start, only slower
                log.exception("kernel fork server for %s did not start; launching kernels as processes", python)
                server = None
            self._fork_servers[python] = server
            return server

    async def start_kernel(self, name: str, *, isolate_network: bool = False) -> PooledKernel:
        """A new kernel of spec ``name``; with ``isolate_network``, in a network namespace of its own (never
        pooled: a sandboxed job starts its own)."""
        base = self.runtime_dir / f"k-{uuid.uuid4().hex[:10]}"
        manager = AsyncKernelManager(kernel_name=name, transport="ipc", connection_file=str(base) + ".json")
        if self.fork or isolate_network:
            manager.kernel_id = str(uuid.uuid4())
            provisioner = ForkServerProvisioner(kernel_id=manager.kernel_id, kernel_spec=manager.kernel_spec,
                                                parent=manager)
            provisioner.fork_server = await self._fork_server_for(manager) if self.fork else None
            provisioner.isolate_network = isolate_network
            manager.provisioner = provisioner
        # A job kernel keeps none of the platform's descriptors: a forked one detaches itself, a plain
        # one gets /dev/null for the streams it would otherwise share with the platform's log.
        streams = {} if self.inherit_environment else {"stdin": subprocess.DEVNULL, "stdout": subprocess.DEVNULL,
                                                       "stderr": subprocess.DEVNULL}
        await manager.start_kernel(env=self._environment_for(list(manager.kernel_spec.argv)), cwd=str(self.runtime_dir),
                                   extra_arguments=job_kernel_arguments(manager.kernel_spec.argv), **streams)
        client = manager.client()
        client.start_channels()
        try:
            info = await self._wait_for_ready(manager, client, self.startup_timeout)
        except Exception:
            client.stop_channels()
            await manager.shutdown_kernel(now=True)
            raise
        client.allow_stdin = False
        await self._warm(client)
        self.started += 1
        return PooledKernel(name, manager, client, asyncio.get_running_loop().time(), info)

    @staticmethod
    async def _wait_for_ready(manager: AsyncKernelManager, client: AsyncKernelClient,
                              timeout: float) -> dict[str, Any]:
        """A kernel_info reply on shell and a message on IOPub (so no output is lost to a late subscription).

        Like ``wait_for_ready``, but retrying every 20 ms instead of 200 ms: a forked kernel is up so soon that the
        longer wait would make most of its start.
        Returns the kernel_info reply's content (the job's notebook records its language_info).
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg_id = client.kernel_info()
            while time.monotonic() < deadline:
                try:
                    reply = await client.get_shell_msg(timeout=0.1)
                except Empty:
                    if not await manager.is_alive():
                        raise RuntimeError("the kernel died before replying to kernel_info") from None
                    continue
                if reply["parent_header"].get("msg_id") == msg_id:
                    break
            else:
                break
            try:
                await client.get_iopub_msg(timeout=0.02)
            except Empty:
                continue
            while True:
                try:
                    await client.get_iopub_msg(timeout=0.005)
                except Empty:
                    return dict(reply["content"])
        raise RuntimeError(f"the kernel did not answer within {timeout:g} s")

    @staticmethod
    async def _warm(client: AsyncKernelClient) -> None:
        """A fresh kernel's first execution carries a one-time set-up: run it before a job waits."""
        msg_id = client.execute("pass", silent=True, store_history=False)
        while True:
            reply = await client.get_shell_msg(timeout=30)
            if reply["parent_header"].get("msg_id") == msg_id:
                return

    async def acquire(self, name: str) -> PooledKernel:
        """A ready kernel of that spec: a pooled one when free, else one started now."""
        while self._ready[name]:
            kernel = self._ready[name].pop(0)
            # Booting the replacement keeps a core busy (a whole interpreter start): the job's first cells go first.
            self._refill(name, delay=self.refill_delay)
            if await kernel.manager.is_alive():
                return kernel
            self._spawn(self.discard(kernel))
        self._refill(name)
        return await self.start_kernel(name)

    def release(self, kernel: PooledKernel) -> None:
        """The job is done with it: shut it down in the background."""
        self._spawn(self.discard(kernel))

    async def discard(self, kernel: PooledKernel) -> None:
        with contextlib.suppress(Exception):
            kernel.client.stop_channels()
        with contextlib.suppress(Exception):
            await kernel.manager.shutdown_kernel(now=True)

    @staticmethod
    async def kill(kernel: PooledKernel) -> None:
        """Stop the kernel process now (cancel, timeout, lost lease)."""
        provisioner = kernel.manager.provisioner
        if provisioner is not None and provisioner.has_process:
            with contextlib.suppress(ProcessLookupError):
                await provisioner.kill()

    async def close(self) -> None:
        self._closed = True
        kernels = [k for ready in self._ready.values() for k in ready]
        self._ready.clear()
        await asyncio.gather(*(self.discard(k) for k in kernels), return_exceptions=True)
        pending = list(self._tasks)
        if pending:
            await asyncio.wait(pending, timeout=10)
        servers = [server for server in self._fork_servers.values() if server is not None]
        self._fork_servers.clear()
        await asyncio.gather(*(server.close() for server in servers), return_exceptions=True)
        shutil.rmtree(self.runtime_dir, ignore_errors=True)

    def ready_count(self, name: str) -> int:
        return len(self._ready[name])
