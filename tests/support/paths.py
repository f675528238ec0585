"""Test directories that users' own accounts can reach: pytest makes its temporary directories mode 0700,
which no other account may pass through (the platform's user homes and job workspaces live below them)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def open_to_all_accounts(path: Path) -> Path:
    """Let every account pass through ``path`` and the test directories above it (o+x, never o+r)."""
    path = path.resolve()
    for directory in [*reversed(path.parents), path]:
        if directory == ARTIFACTS or ARTIFACTS in directory.parents or str(directory).startswith("/tmp/"):
            mode = directory.stat().st_mode
            if not mode & stat.S_IXOTH:
                os.chmod(directory, stat.S_IMODE(mode) | stat.S_IXOTH)
    return path


def shared_directory(path: Path) -> Path:
    """A directory every account may write into (sticky, like /tmp), for traces that job kernels run as
    their owners leave behind."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o1777)
    return open_to_all_accounts(path)
