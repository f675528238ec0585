"""Executors run one job's notebook and report as it goes. ``LocalExecutor`` runs jobs on this machine,
each in a fresh pre-started kernel; other executors (Ray) implement the same interface."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, DeadKernelError
from traitlets import Bool, Dict, Float, Integer, List, Unicode
from traitlets.config import LoggingConfigurable

from ..isolation.limits import limits_code
from ..isolation.privileges import drop_code
from ..isolation.workspaces import LATE_ENV_FILE, SETUP_ERROR_FILE, JobWorkspace
from .kernel_pool import KernelPool, PooledKernel
from ..atomic_files import write_atomic
from .parameters import INJECTED_TAG, parameters_cell_index, render_parameters_cell

log = logging.getLogger("aitip.jobs.executor")


@dataclass
class ExecutionRequest:
    job_id: int
    attempt: int
    notebook: dict[str, Any]
    parameters: dict[str, Any]
    kernel: str
    timeout_seconds: float
    workdir: Path
    output_path: Path
    env: dict[str, str] = field(default_factory=dict)
    gpus: list[int] = field(default_factory=list)
    # Environment known only later (the MLflow run, created while the kernel is being set up).
    late_env: asyncio.Future[dict[str, str]] | None = None
    # The attempt's directories; with an account, the kernel drops to it before any cell runs.
    workspace: JobWorkspace | None = None
    # A sandboxed job (aitip.jobs.models.Sandbox): its own kernel, in a network of its own, under limits.
    sandbox: dict[str, Any] | None = None

    @property
    def late_env_file(self) -> Path:
        return self.workspace.late_env_file if self.workspace else self.output_path.parent / LATE_ENV_FILE

    @property
    def setup_error_file(self) -> Path:
        return self.workspace.setup_error_file if self.workspace else self.workdir.parent / SETUP_ERROR_FILE

    def publish_late_env(self, data: bytes) -> None:
        """Hand the kernel its late environment, atomically, where only the platform can write."""
        if self.workspace is not None:
            self.workspace.publish(LATE_ENV_FILE, data)
            return
        path = self.late_env_file
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_bytes(data)
        os.replace(temporary, path)

    def setup_error(self) -> str | None:
        if self.workspace is not None:
            return self.workspace.read_setup_error()
        path = self.setup_error_file
        return path.read_text().strip() or None if path.exists() else None


@dataclass
class ExecutionResult:
    status: str  # succeeded | failed | timed_out | cancelled | lost
    reason: str | None = None
    failed_cell: dict[str, Any] | None = None
    cells_run: int = 0


class ExecutionObserver(Protocol):
    async def kernel_started(self, pid: int | None, host: str) -> None: ...
    async def cell_started(self, index: int, source: str) -> None: ...
    async def cell_finished(self, index: int, status: str, seconds: float) -> None: ...
    async def output(self, index: int, name: str, text: str) -> None: ...


class Stop(Exception):
    """Raised into a running job: cancelled, timed out, or its lease lost."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def prepare_notebook(notebook: dict[str, Any], parameters: dict[str, Any]) -> Any:
    """The notebook as it will run: the injected-parameters cell placed after the parameters cell."""
    nb = nbformat.reads(json.dumps(notebook), as_version=4)  # normalizes multi-line sources to strings
    if parameters:
        cell = nbformat.v4.new_code_cell(render_parameters_cell(parameters))
        cell.metadata["tags"] = [INJECTED_TAG]
        index = parameters_cell_index(notebook)
        nb.cells.insert(index + 1, cell)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return nb


SETUP_FAILED_EXIT = 70
LATE_ENV_WAIT_SECONDS = 300.0

# Kernel side of the late environment: applied before the first cell that starts after the platform wrote
# the file, and waited for by the first ``import mlflow`` (the only code that needs the run's id). A kernel
# that already has MLflow imported waits for it at once.
_LATE_ENV_HOOK = """
def _aitip_late_env(path, timeout):
    import importlib.abc, json, os, sys, time
    shell = get_ipython() if "get_ipython" in globals() else None
    state = {"pending": True}

    def apply(wait):
        if not state["pending"]:
            return
        deadline = time.monotonic() + timeout
        while not os.path.exists(path):
            if not wait:
                return
            if time.monotonic() > deadline:
                raise ImportError(f"the job's MLflow run was not ready within {timeout:g} s")
            time.sleep(0.002)
        with open(path) as handle:
            late = json.load(handle)
        state["pending"] = False
        if finder in sys.meta_path:
            sys.meta_path.remove(finder)
        if shell is not None:
            shell.events.unregister("pre_run_cell", before_cell)
        if "error" in late:
            raise ImportError("the job's MLflow run could not be created: " + late["error"])
        os.environ.update(late["env"])

    def before_cell(info=None):
        apply(False)

    class Finder(importlib.abc.MetaPathFinder):
        def find_spec(self, name, import_path=None, target=None):
            if name.partition(".")[0] == "mlflow":
                apply(True)
            return None

    finder = Finder()
    if "mlflow" in sys.modules or shell is None:
        apply(True)
        return
    sys.meta_path.insert(0, finder)
    shell.events.register("pre_run_cell", before_cell)
"""


def setup_code(env: dict[str, str], workdir: Path, gpus: list[int], late_env_file: Path | None = None, *,
               error_file: Path, workspace: JobWorkspace | None = None,
               sandbox: dict[str, Any] | None = None) -> str:
    """Run before the first cell, never shown: a sandbox's limits and, with an account in ``workspace``, the
    drop to it (the kernel was started by the platform); then the job's environment and working directory;
    with ``late_env_file``, the hook that applies the environment the platform writes there later."""
    variables = dict(env)
    variables["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in gpus)
    code = ""
    if sandbox is not None:
        code += limits_code(memory_mb=sandbox.get("memory_mb"), cpu_seconds=sandbox.get("cpu_seconds"),
                            cpus=sandbox.get("cpus"))
    account = workspace.account if workspace is not None else None
    if account is not None:
        code += drop_code(account.uid, account.gid, account.groups, str(account.home), account.name)
    code += (f"import os as _aitip_os\n_aitip_os.environ.update({variables!r})\n"
             f"_aitip_os.chdir({str(workdir)!r})\ndel _aitip_os\n")
    if late_env_file is not None:
        code += (f"{_LATE_ENV_HOOK}\n_aitip_late_env({str(late_env_file)!r}, {LATE_ENV_WAIT_SECONDS!r})\n"
                 f"del _aitip_late_env\n")
    # One statement for IPython: it compiles and hashes a cell node by node (each extra statement costs time).
    # Sent ahead of the first cell without waiting for its reply (nbclient drops it): a set-up that fails
    # leaves its reason in a file and ends the kernel, so no cell ever runs without its environment (or
    # under the platform's account).
    return (f"try:\n    exec({code!r})\nexcept BaseException as _aitip_error:\n"
            f"    import os as _aitip_os, traceback as _aitip_tb\n"
            f"    with open({str(error_file)!r}, 'w') as _aitip_out:\n"
            f"        _aitip_out.write(''.join(_aitip_tb.format_exception_only(_aitip_error)).strip())\n"
            f"    _aitip_os._exit({SETUP_FAILED_EXIT})\n")


def publish_late_env(future: asyncio.Future[dict[str, str]], request: ExecutionRequest) -> None:
    """Write the late environment (or why there is none) for the kernel's hook; atomic by rename."""
    if future.cancelled():
        late: dict[str, Any] = {"error": "the job was stopped before its run was created"}
    elif future.exception() is not None:
        error = future.exception()
        late = {"error": f"{type(error).__name__}: {error}"}
    else:
        late = {"env": future.result() or {}}
    request.publish_late_env(json.dumps(late).encode())


class Executor(LoggingConfigurable):
    """Runs jobs. ``slots`` is how many run at once; ``execute`` must honour ``stop``."""

    max_concurrent_jobs = Integer(
        0, help="Jobs run at once (0: one per CPU core). Each job still gets its own fresh kernel.",
    ).tag(config=True)

    @property
    def slots(self) -> int:
        return self.max_concurrent_jobs or os.cpu_count() or 1

    async def start(self) -> None:
        """Prepare (pre-start kernels, connect to a cluster)."""

    async def stop(self) -> None:
        """Release everything started."""

    async def execute(self, request: ExecutionRequest, observer: ExecutionObserver,
                      stop: asyncio.Future[Stop]) -> ExecutionResult:
        raise NotImplementedError


class LocalExecutor(Executor):
    """Jobs on this machine, each in a fresh kernel taken from a pool of pre-started ones."""

    pool_sizes = Dict(
        {"aitip-python": 2},
        help="Kernels kept started and waiting, per kernel spec. A job on another spec starts one on demand.",
    ).tag(config=True)
    save_interval = Float(2.0, help="Seconds between writes of the running job's output notebook.").tag(config=True)
    fork_kernels = Bool(
        True,
        help="Fork IPython kernels from a fork server that has done the imports once (a kernel starts in "
             "tens of ms, not ~0.7 s). Each job still gets a new process. Off: every kernel is a new interpreter.",
    ).tag(config=True)
    preload_modules = List(
        Unicode(), ["numpy", "pandas"],
        help="Modules the fork server imports once, so jobs find them loaded. Modules that start threads or "
             "initialize CUDA at import must not be listed: the server then refuses to fork (kernels start as "
             "plain processes).",
    ).tag(config=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pool = KernelPool(self.pool_sizes, fork=self.fork_kernels, preload=list(self.preload_modules))

    async def start(self) -> None:
        await self.pool.start()

    async def stop(self) -> None:
        await self.pool.close()

    async def execute(self, request: ExecutionRequest, observer: ExecutionObserver,
                      stop: asyncio.Future[Stop]) -> ExecutionResult:
        if request.workspace is None:
            request.workdir.mkdir(parents=True, exist_ok=True)
        nb = prepare_notebook(request.notebook, request.parameters)
        if request.sandbox is not None:
            kernel = await self.pool.start_kernel(request.kernel, isolate_network=True)
        else:
            kernel = await self.pool.acquire(request.kernel)
        await observer.kernel_started(kernel.pid, kernel.host)
        run = _NotebookRun(nb, kernel, observer, request, self.save_interval)
        runner = asyncio.ensure_future(run.run())
        try:
            done, _ = await asyncio.wait({runner, stop}, timeout=request.timeout_seconds,
                                         return_when=asyncio.FIRST_COMPLETED)
            if runner in done:
                return runner.result()
            cause = stop.result() if stop in done else Stop(
                "timed_out", f"the job ran longer than its timeout of {request.timeout_seconds:g} s")
            runner.cancel()
            with contextlib.suppress(BaseException):
                await runner
            await KernelPool.kill(kernel)
            return ExecutionResult(cause.status, cause.reason, cells_run=run.cells_run)
        finally:
            if not runner.done():
                runner.cancel()
            run.save()
            self.pool.release(kernel)


class _NotebookRun:
    """Runs the cells of one notebook on one kernel through nbclient, reporting each step."""

    def __init__(self, nb: Any, kernel: PooledKernel, observer: ExecutionObserver, request: ExecutionRequest,
                 save_interval: float) -> None:
        self.nb = nb
        self.kernel = kernel
        self.observer = observer
        self.request = request
        self.save_interval = save_interval
        self.cells_run = 0
        self._dirty = True
        self._last_save = 0.0

    def save(self) -> None:
        write_atomic(self.request.output_path, nbformat.writes(self.nb).encode())
        self._dirty = False
        self._last_save = time.monotonic()

    def _maybe_save(self) -> None:
        if self._dirty and time.monotonic() - self._last_save >= self.save_interval:
            self.save()

    async def _setup(self) -> None:
        """One silent execution, sent ahead of the first cell without waiting for its reply. The MLflow run
        is created meanwhile: its environment goes in now if it is known, else the kernel gets it later
        through a file, so the first cell never waits for MLflow."""
        env = dict(self.request.env)
        late, late_file = self.request.late_env, None
        if late is not None and late.done():
            env.update(late.result() or {})
        elif late is not None:
            late_file = self.request.late_env_file
            late.add_done_callback(lambda future: publish_late_env(future, self.request))
        code = setup_code(env, self.request.workdir, self.request.gpus, late_file,
                          error_file=self.request.setup_error_file, workspace=self.request.workspace,
                          sandbox=self.request.sandbox)
        self.kernel.client.execute(code, silent=True, store_history=False)

    def _tracking_failure(self) -> ExecutionResult | None:
        """The job fails when its MLflow run could not be created: every job is a tracked run."""
        late = self.request.late_env
        if late is None or not late.done() or late.cancelled() or late.exception() is None:
            return None
        error = late.exception()
        return ExecutionResult("failed", f"the job's MLflow run could not be created: {type(error).__name__}: {error}",
                               cells_run=self.cells_run)

    async def run(self) -> ExecutionResult:
        await self._setup()
        result = await self._run_cells()
        if self.request.late_env is not None and result.status == "succeeded":
            with contextlib.suppress(Exception):
                await self.request.late_env  # a job done before its run existed: the run is there for its report
            result = self._tracking_failure() or result
        return result

    async def _run_cells(self) -> ExecutionResult:
        client = _ObservedNotebookClient(self)
        client.kc = self.kernel.client
        client.reset_execution_trackers()
        info = self.kernel.kernel_info
        if not info:
            reply = await client.async_wait_for_reply(self.kernel.client.kernel_info())
            info = reply["content"] if reply is not None else {}
        if "language_info" in info:
            self.nb.metadata["language_info"] = info["language_info"]
        for index, cell in enumerate(self.nb.cells):
            if cell.cell_type != "code" or not cell.source.strip():
                continue
            failure = self._tracking_failure()
            if failure is not None:
                return failure
            await self.observer.cell_started(index, cell.source)
            started = time.monotonic()
            self._dirty = True
            try:
                await client.async_execute_cell(cell, index, execution_count=client.code_cells_executed + 1)
            except CellExecutionError as error:
                await self.observer.cell_finished(index, "error", time.monotonic() - started)
                return ExecutionResult("failed", f"cell {index} raised {error.ename}: {error.evalue}",
                                       failed_cell={"index": index, "source": cell.source, "ename": error.ename,
                                                    "evalue": error.evalue, "traceback": error.traceback},
                                       cells_run=self.cells_run + 1)
            except DeadKernelError:
                await self.observer.cell_finished(index, "kernel_died", time.monotonic() - started)
                code = await self._exit_code()
                setup_error = self.request.setup_error() if code == SETUP_FAILED_EXIT else None
                if setup_error is not None:
                    return ExecutionResult("failed", f"the job's set-up failed in the kernel: {setup_error}",
                                           cells_run=self.cells_run)
                return ExecutionResult("failed", f"the kernel died while running cell {index}"
                                       + (f" (exit code {code})" if code is not None else ""),
                                       failed_cell={"index": index, "source": cell.source}, cells_run=self.cells_run)
            self.cells_run += 1
            await self.observer.cell_finished(index, "ok", time.monotonic() - started)
            self._maybe_save()
        return ExecutionResult("succeeded", cells_run=self.cells_run)

    async def _exit_code(self) -> int | None:
        provisioner = getattr(self.kernel.manager, "provisioner", None)
        process = getattr(provisioner, "process", None)
        return getattr(process, "returncode", None) if process is not None else None


class _ObservedNotebookClient(NotebookClient):
    """nbclient on a kernel we already started, reporting stream output as it arrives."""

    def __init__(self, run: _NotebookRun) -> None:
        super().__init__(run.nb, km=run.kernel.manager, kernel_name=run.kernel.name, timeout=None,
                         allow_errors=False, record_timing=True, iopub_timeout=4)
        self._run = run

    def output(self, outs: list[Any], msg: dict[str, Any], display_id: str | None, cell_index: int) -> Any:
        result = super().output(outs, msg, display_id, cell_index)
        if msg["msg_type"] == "stream":
            content = msg["content"]
            asyncio.ensure_future(self._run.observer.output(cell_index, content["name"], content["text"]))
        self._run._dirty = True
        return result
