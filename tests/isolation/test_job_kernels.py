"""Job kernels run as the job owner's own Linux account: dropped before any cell, with no way back to
root, nothing of the platform's descriptors, and only the owner's directories reachable."""

from __future__ import annotations

import json
import os
import pwd
import stat
from pathlib import Path

import pytest

from aitip.isolation.accounts import Accounts
from aitip.jobs.models import JobState, JobSubmit
from tests.jobs.conftest import ANN, make_platform
from tests.support.notebooks import notebook
from tests.support.paths import open_to_all_accounts

pytestmark = pytest.mark.asyncio

PROBE = notebook("""
import json, os, stat
report = {"resuid": os.getresuid(), "resgid": os.getresgid(), "groups": sorted(os.getgroups()),
          "cwd": os.getcwd(), "home": os.environ.get("HOME"), "umask": oct(os.umask(0o077))}
report["no_new_privs"] = sorted({line.split()[1] for task in os.listdir("/proc/self/task")
                                 for line in open(f"/proc/self/task/{task}/status") if line.startswith("NoNewPrivs")})
fds = {}
for fd in os.listdir("/proc/self/fd"):
    try:
        fds[fd] = os.readlink(f"/proc/self/fd/{fd}")
    except FileNotFoundError:
        pass  # the descriptor listdir itself used
report["fds"] = fds
try:
    os.setuid(0)
    report["setuid0"] = "became root"
except PermissionError:
    report["setuid0"] = "refused"
print("REPORT" + json.dumps(report))
""")


async def _run_probe(tmp_path: Path):
    home = open_to_all_accounts(tmp_path)
    accounts = Accounts.of_platform(home)
    platform = await make_platform(home)
    platform.worker.accounts = accounts
    platform.worker.workspaces.separate_accounts = True
    return platform, accounts


async def test_a_job_kernel_runs_as_its_owner_with_nothing_of_the_platform(tmp_path: Path) -> None:
    platform, accounts = await _run_probe(tmp_path)
    await platform.worker.start()
    try:
        job = await platform.jobs.submit(ANN, JobSubmit(project="lab", notebook=PROBE))
        done = await platform.wait(job.id, JobState.succeeded, JobState.failed)
        assert done.state is JobState.succeeded, done.reason
        events, _ = await platform.jobs.events(ANN, job.id)
    finally:
        await platform.worker.stop()
        platform.catalog.dispose()
    text = "".join(e.data.get("text", "") for e in events if e.kind == "output")
    report = json.loads(text.split("REPORT", 1)[1])
    ann = accounts.lookup("ann")
    assert ann is not None and pwd.getpwuid(ann.uid).pw_name == "aitip-ann"
    assert report["resuid"] == [ann.uid] * 3 and report["resgid"] == [ann.gid] * 3
    assert report["groups"] == sorted(ann.groups) and 0 not in report["groups"]
    assert report["setuid0"] == "refused"
    assert report["no_new_privs"] == ["1"], "every thread of the kernel has PR_SET_NO_NEW_PRIVS"
    assert report["home"] == str(ann.home) and report["umask"] == "0o77"
    work = Path(report["cwd"])
    assert work.stat().st_uid == ann.uid and stat.S_IMODE(work.stat().st_mode) == 0o700
    targets = list(report["fds"].values())
    assert [t for t in targets if not t.startswith(("socket:", "pipe:", "anon_inode:", "/dev/null"))] == []
    platform_side = {os.readlink(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")
                     if os.path.exists(f"/proc/self/fd/{fd}")}
    numbered = {t for t in targets if t.startswith(("socket:", "pipe:"))}  # anon inodes carry no identity
    assert numbered & platform_side == set(), "a socket or pipe shared with the platform"
    print(f"\nkernel as {ann.name} (uid {ann.uid}); descriptors: {sorted(set(t.split(':')[0] for t in targets))}")
