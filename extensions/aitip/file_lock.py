"""An exclusive lock on a file, between threads and processes: ``flock``, released when the holder closes
it or dies (a killed holder never leaves a lock behind)."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def exclusive_file_lock(path: Path) -> Iterator[int]:
    """Hold ``path`` (created 0600 if missing) locked; yields its descriptor, for a lock file that also
    holds data (a drain's offset)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield descriptor
    finally:
        os.close(descriptor)
