"""A papermill engine (``papermill --engine aitip``): the platform's execution from the papermill CLI.

It runs cells with the same code as platform jobs (an ``ipc``-transport kernel whose client nbclient is
handed directly, cell events and timings), and saves the output notebook on a timer plus a final
flush instead of papermill's two saves per cell.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from papermill.engines import Engine
from papermill.exceptions import PapermillExecutionError

from .executor import ExecutionRequest, ExecutionResult, Stop, _NotebookRun
from .kernel_pool import KernelPool

SAVE_INTERVAL = 2.0


class _ManagerObserver:
    """Reports progress to papermill's NotebookExecutionManager (metadata, progress bar, logging)."""

    def __init__(self, nb_man: Any, log_output: bool) -> None:
        self.nb_man = nb_man
        self.log_output = log_output

    async def kernel_started(self, pid: int | None, host: str) -> None:
        return None

    async def cell_started(self, index: int, source: str) -> None:
        self.nb_man.cell_start(self.nb_man.nb.cells[index], index)

    async def cell_finished(self, index: int, status: str, seconds: float) -> None:
        cell = self.nb_man.nb.cells[index]
        if status != "ok":
            self.nb_man.cell_exception(cell, index)
        self.nb_man.cell_complete(cell, index)

    async def output(self, index: int, name: str, text: str) -> None:
        if self.log_output:
            stream = sys.stderr if name == "stderr" else sys.stdout
            stream.write(text)
            stream.flush()


class AitipEngine(Engine):
    @classmethod
    def execute_managed_notebook(cls, nb_man: Any, kernel_name: str, log_output: bool = False,
                                 stdout_file: Any = None, stderr_file: Any = None, start_timeout: int = 60,
                                 execution_timeout: float | None = None, **kwargs: Any) -> Any:
        original_save = nb_man.save
        last = [0.0]

        def throttled_save(**save_kwargs: Any) -> None:
            if time.monotonic() - last[0] >= SAVE_INTERVAL:
                original_save(**save_kwargs)
                last[0] = time.monotonic()

        nb_man.save = throttled_save
        try:
            result = asyncio.run(cls._execute(nb_man, kernel_name, log_output, start_timeout, execution_timeout,
                                              kwargs.get("cwd")))
        finally:
            nb_man.save = original_save
        original_save()
        if result.status == "timed_out":
            raise PapermillExecutionError(cell_index=-1, exec_count=None, source="", ename="TimeoutError",
                                          evalue=result.reason or "timed out", traceback=[])
        return nb_man.nb

    @classmethod
    async def _execute(cls, nb_man: Any, kernel_name: str, log_output: bool, start_timeout: int,
                       execution_timeout: float | None, cwd: str | None) -> Any:
        pool = KernelPool({}, startup_timeout=start_timeout, inherit_environment=True, fork=False)
        kernel = await pool.start_kernel(kernel_name)
        scratch = Path(tempfile.mkdtemp(prefix="aitip-pm"))
        request = ExecutionRequest(0, 1, {}, {}, kernel_name, execution_timeout or 0,
                                   Path(cwd or os.getcwd()), scratch / "output.ipynb")
        run = _NotebookRun(nb_man.nb, kernel, _ManagerObserver(nb_man, log_output), request, SAVE_INTERVAL)
        run.save = lambda: None  # type: ignore[method-assign]  # papermill's manager owns the output file
        try:
            runner = asyncio.ensure_future(run.run())
            done, _ = await asyncio.wait({runner}, timeout=execution_timeout)
            if runner not in done:
                runner.cancel()
                stop = Stop("timed_out", f"the notebook ran longer than {execution_timeout} s")

                return ExecutionResult(stop.status, stop.reason)
            return runner.result()
        finally:
            await pool.discard(kernel)
            await pool.close()
