"""Named points where the fault tests kill the platform, to prove a step is crash-safe.

A point does nothing unless ``$AITIP_FAULT_POINT`` names it. Then the process sends itself SIGKILL there,
once: ``$AITIP_FAULT_ONCE_FILE`` (required) is created first, and a point whose file exists is passed, so a
restarted process (the hub restarts the platform service) gets past it.
"""

from __future__ import annotations

import os
import signal

FAULT_ENV = "AITIP_FAULT_POINT"
ONCE_ENV = "AITIP_FAULT_ONCE_FILE"


def point(name: str) -> None:
    """Die here (SIGKILL) if the fault test asked for this point and it has not fired yet."""
    if os.environ.get(FAULT_ENV) != name:
        return
    marker = os.environ.get(ONCE_ENV)
    if not marker:
        return
    try:
        descriptor = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.write(descriptor, name.encode())
    os.fsync(descriptor)
    os.close(descriptor)
    os.kill(os.getpid(), signal.SIGKILL)
