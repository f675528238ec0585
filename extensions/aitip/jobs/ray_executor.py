"""``RayExecutor``: each job runs as a Ray task (``num_cpus``/``num_gpus`` from the job) on a Ray cluster,
in a fresh kernel started inside the task; cell events and output stream back through a Ray queue."""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path
from typing import Any

from traitlets import Float, Integer, Unicode

from .executor import (
    ExecutionObserver,
    ExecutionRequest,
    ExecutionResult,
    Executor,
    Stop,
    _NotebookRun,
)
from .kernel_pool import KernelPool
from ..atomic_files import write_atomic


class _QueueObserver:
    """Inside the Ray task: every event goes to the driver through the queue."""

    def __init__(self, queue: Any) -> None:
        self.queue = queue

    async def kernel_started(self, pid: int | None, host: str) -> None:
        await self.queue.put_async(("kernel_started", (pid, host)))

    async def cell_started(self, index: int, source: str) -> None:
        await self.queue.put_async(("cell_started", (index, source)))

    async def cell_finished(self, index: int, status: str, seconds: float) -> None:
        await self.queue.put_async(("cell_finished", (index, status, seconds)))

    async def output(self, index: int, name: str, text: str) -> None:
        await self.queue.put_async(("output", (index, name, text)))


async def _run_in_task(payload: dict[str, Any], queue: Any) -> dict[str, Any]:
    import nbformat

    from .executor import prepare_notebook

    request = ExecutionRequest(**payload)
    if request.workspace is None:
        request.workdir.mkdir(parents=True, exist_ok=True)
    pool = KernelPool({}, fork=False)  # one kernel per task: a fork server would not pay off
    kernel = await pool.start_kernel(request.kernel)
    observer = _QueueObserver(queue)
    await observer.kernel_started(kernel.pid, kernel.host)
    nb = prepare_notebook(request.notebook, request.parameters)
    run = _NotebookRun(nb, kernel, observer, request, save_interval=1e9)
    run.save = lambda: None  # type: ignore[method-assign]  # the driver writes the output notebook
    try:
        result = await run.run()
    finally:
        await pool.discard(kernel)
        await pool.close()
    return {"status": result.status, "reason": result.reason, "failed_cell": result.failed_cell,
            "cells_run": result.cells_run, "notebook": nbformat.writes(nb)}


def _task(payload: dict[str, Any], queue: Any) -> dict[str, Any]:
    return asyncio.run(_run_in_task(payload, queue))


class RayExecutor(Executor):
    """Jobs as Ray tasks. ``address='local'`` starts a private one-node cluster on loopback."""

    address = Unicode("local", help="Ray address: 'local' (a private cluster), 'auto', or ray://host:port.").tag(
        config=True)
    num_cpus = Integer(0, help="CPUs of the private local cluster (0: all cores).").tag(config=True)
    poll_seconds = Float(0.05, help="How often the driver drains a running job's event queue.").tag(config=True)

    _remote: Any = None

    async def start(self) -> None:
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # bind the local cluster to loopback
        if self.address == "local":
            os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        import ray

        options: dict[str, Any] = {"address": self.address, "include_dashboard": False, "log_to_driver": False,
                                   "ignore_reinit_error": True}
        if self.address == "local":
            options["num_cpus"] = self.num_cpus or os.cpu_count() or 1
            options["_temp_dir"] = tempfile.mkdtemp(prefix="aitip-ray-")
        await asyncio.to_thread(ray.init, **options)
        self._remote = ray.remote(_task)

    async def stop(self) -> None:
        import ray

        await asyncio.to_thread(ray.shutdown)

    async def execute(self, request: ExecutionRequest, observer: ExecutionObserver,
                      stop: asyncio.Future[Stop]) -> ExecutionResult:
        import ray
        from ray.util.queue import Queue

        late = await request.late_env if request.late_env is not None else {}
        payload = {"job_id": request.job_id, "attempt": request.attempt, "notebook": request.notebook,
                   "parameters": request.parameters, "kernel": request.kernel,
                   "timeout_seconds": request.timeout_seconds, "workdir": request.workdir,
                   "output_path": request.output_path, "env": {**request.env, **late},
                   "gpus": list(range(len(request.gpus))),
                   # With an account, the task's kernel drops to the job's owner as a local one does: the
                   # workspace (and the account) must exist where the task runs (a local cluster, or nodes
                   # sharing them).
                   "workspace": request.workspace}
        queue = Queue()
        ref = self._remote.options(num_cpus=1, num_gpus=len(request.gpus)).remote(payload, queue)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + request.timeout_seconds
        cause: Stop | None = None
        try:
            while True:
                await self._drain(queue, observer)
                ready, _ = await asyncio.to_thread(ray.wait, [ref], timeout=self.poll_seconds)
                if ready:
                    break
                if stop.done():
                    cause = stop.result()
                elif loop.time() > deadline:
                    cause = Stop("timed_out", f"the job ran longer than its timeout of {request.timeout_seconds:g} s")
                if cause is not None:
                    ray.cancel(ref, force=True)
                    return ExecutionResult(cause.status, cause.reason)
            await self._drain(queue, observer)
            try:
                outcome = await asyncio.to_thread(ray.get, ref)
            except ray.exceptions.RayError as error:
                return ExecutionResult("failed", f"the Ray task failed: {type(error).__name__}: {error}")
            write_atomic(Path(request.output_path), outcome["notebook"].encode())
            return ExecutionResult(outcome["status"], outcome["reason"], outcome["failed_cell"], outcome["cells_run"])
        finally:
            ray.kill(queue.actor)

    @staticmethod
    async def _drain(queue: Any, observer: ExecutionObserver) -> None:
        from ray.util.queue import Empty

        while True:
            try:
                kind, args = await queue.get_async(block=False)
            except Empty:
                return
            await getattr(observer, kind)(*args)
