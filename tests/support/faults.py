"""Shared pieces of the fault-injection tests: a notebook whose every attempt writes a trace, and the
checks that no job ran twice at once and that no kernel outlived its worker."""

from __future__ import annotations

from pathlib import Path

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
    found = set()
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if b"ipykernel_launcher" in (proc / "cmdline").read_bytes() and \
                    "zombie" not in (proc / "status").read_text():
                found.add(int(proc.name))
        except OSError:
            continue
    return found


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
