"""Shared pieces of the fault-injection tests: a notebook whose every attempt writes a trace, and the
checks that no job ran twice at once and that no kernel outlived its worker."""

from __future__ import annotations

import time
from pathlib import Path

from aitip.launcher import descendants
from tests.support.notebooks import notebook

TRACE = notebook(
    "import os, time\nattempt = os.environ['AITIP_JOB_ATTEMPT']\nend = time.monotonic() + seconds\n"
    "with open(marker, 'a') as trace:\n"
    "    while time.monotonic() < end:\n"
    "        trace.write(f'{attempt} {time.time()}\\n'); trace.flush(); time.sleep(0.05)\n"
    "    trace.write(f'{attempt} done\\n')\n",
    parameters="marker = ''\nseconds = 1.0",
)


def ipykernels() -> set[int]:
    """Every kernel process on this machine: IPython kernels started as processes, the kernel fork servers and
    the kernels forked from them (whose command line is their fork server's)."""
    found = set()
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            command = (proc / "cmdline").read_bytes()
            if (b"ipykernel_launcher" in command or b"aitip.jobs.forkserver" in command) and \
                    "zombie" not in (proc / "status").read_text():
                found.add(int(proc.name))
        except OSError:
            continue
    return found


def kernels_below(pid: int) -> set[int]:
    """The kernel processes running below ``pid`` now: those that must not outlive it when it is killed. Only
    these are checked afterwards, so that the kernels of tests running beside (pytest-xdist) do not count."""
    return ipykernels() & set(descendants(pid))


def survivors(kernels: set[int], timeout: float = 30.0) -> set[int]:
    """Those of ``kernels`` still running once they had ``timeout`` seconds to notice their parent died
    (ipykernel's parent poller; the fork server's)."""
    deadline = time.monotonic() + timeout
    while (alive := kernels & ipykernels()) and time.monotonic() < deadline:
        time.sleep(0.2)
    return alive


def attempts_in_trace(trace: Path) -> list[int]:
    """The attempt number of every line a job's kernels wrote, in file order."""
    if not trace.exists():
        return []
    return [int(line.split()[0]) for line in trace.read_text().splitlines()]


def check_never_twice(trace: Path, final_attempt: int, succeeded: bool) -> None:
    """A later attempt's lines never precede an earlier attempt's: no two attempts ran at once."""
    seen = attempts_in_trace(trace)
    assert seen == sorted(seen), f"{trace.name}: attempts interleaved (ran twice at once): {seen}"
    if succeeded:
        assert seen[-1] == final_attempt and trace.read_text().rstrip().endswith("done")
