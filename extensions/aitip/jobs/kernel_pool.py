"""A pool of pre-started kernels so a job never waits for a kernel to boot.

Each kernel serves exactly one job and is then discarded (shut down off the job's path). Kernels use
the ``ipc`` transport: the ``tcp`` transport raced on ports (``Address already in use``) in measurements.
Kernels start with a scrubbed environment: the platform's credentials never reach user code.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import socket
import tempfile
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager

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


@dataclass
class PooledKernel:
    name: str
    manager: AsyncKernelManager
    client: AsyncKernelClient
    started_at: float
    host: str = field(default_factory=socket.gethostname)

    @property
    def pid(self) -> int | None:
        provisioner = getattr(self.manager, "provisioner", None)
        return getattr(provisioner, "pid", None)


class KernelPool:
    def __init__(self, sizes: dict[str, int], *, startup_timeout: float = 60.0,
                 env: dict[str, str] | None = None, inherit_environment: bool = False) -> None:
        self.sizes = dict(sizes)
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

    async def start_kernel(self, name: str) -> PooledKernel:
        base = self.runtime_dir / f"k-{uuid.uuid4().hex[:10]}"
        manager = AsyncKernelManager(kernel_name=name, transport="ipc", connection_file=str(base) + ".json")
        env = {**os.environ, **self.env} if self.inherit_environment else kernel_environment(self.env)
        await manager.start_kernel(env=env, cwd=str(self.runtime_dir))
        client = manager.client()
        client.start_channels()
        try:
            await client.wait_for_ready(timeout=self.startup_timeout)
        except Exception:
            client.stop_channels()
            await manager.shutdown_kernel(now=True)
            raise
        client.allow_stdin = False
        await self._warm(client)
        self.started += 1
        return PooledKernel(name, manager, client, asyncio.get_running_loop().time())

    @staticmethod
    async def _warm(client: AsyncKernelClient) -> None:
        """A fresh kernel's first execution costs ~15 ms of one-time set-up: pay it before a job waits."""
        msg_id = client.execute("pass", silent=True, store_history=False)
        while True:
            reply = await client.get_shell_msg(timeout=30)
            if reply["parent_header"].get("msg_id") == msg_id:
                return

    async def acquire(self, name: str) -> PooledKernel:
        """A ready kernel of that spec: a pooled one when free, else one started now."""
        while self._ready[name]:
            kernel = self._ready[name].pop(0)
            # Booting the replacement costs a core for ~0.7 s: let the job's first cells run first.
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
        with contextlib.suppress(Exception):
            await kernel.manager.kill_kernel()

    async def close(self) -> None:
        self._closed = True
        kernels = [k for ready in self._ready.values() for k in ready]
        self._ready.clear()
        await asyncio.gather(*(self.discard(k) for k in kernels), return_exceptions=True)
        pending = list(self._tasks)
        if pending:
            await asyncio.wait(pending, timeout=10)
        shutil.rmtree(self.runtime_dir, ignore_errors=True)

    def ready_count(self, name: str) -> int:
        return len(self._ready[name])
