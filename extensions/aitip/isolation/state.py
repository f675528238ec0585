"""``$AITIP_HOME`` is the platform's: the catalog, the hub's database, cookie secret and pid files, the
admin password, the DVC registry and cache, the MLflow store and artifacts, stored notebooks and every
job's report. With separate accounts the home is mode 0711 (reachable by name, not listable) and each of
those is 0700/0600; only ``users/`` (homes) and ``job-workspaces/`` are reachable by users, each entry
under them owned by or shared with its user alone. Single-trust mode keeps the home 0700.

The platform's processes run with umask 077 (``aitip up`` sets it before starting the hub, the proxy and
the services; ``aitip worker`` too), so what they create is private from the start; a home made by an
older version is tightened once, recursively.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

USERS_DIR = "users"
WORKSPACES_DIR = "job-workspaces"
PUBLIC_ENTRIES = frozenset({USERS_DIR, WORKSPACES_DIR})
TIGHTENED_MARKER = ".private-v1"


def secure_home(home: Path, *, separate_accounts: bool) -> None:
    """Make ``home`` private to this process's user; reachable entries only where users need them. (The
    platform's entry points also set umask 077, so what it creates later is private from the start.)"""
    home.mkdir(parents=True, exist_ok=True)
    os.chmod(home, 0o711 if separate_accounts else 0o700)
    marker = home / TIGHTENED_MARKER
    for entry in home.iterdir():
        if entry.name in PUBLIC_ENTRIES:
            if separate_accounts:
                os.chmod(entry, 0o711)
            continue
        if not marker.exists():
            _tighten(entry)
        elif not entry.is_symlink():
            os.chmod(entry, stat.S_IMODE(entry.lstat().st_mode) & 0o700)
    for name in PUBLIC_ENTRIES:
        (home / name).mkdir(mode=0o711 if separate_accounts else 0o700, exist_ok=True)
    marker.touch()


def _tighten(path: Path) -> None:
    """Remove group and other access below ``path`` (once: a home made before the platform was private)."""
    if path.is_symlink():
        return
    os.chmod(path, stat.S_IMODE(path.lstat().st_mode) & 0o700)
    if path.is_dir():
        for root, directories, files in os.walk(path):
            for name in directories + files:
                child = os.path.join(root, name)
                mode = os.lstat(child).st_mode
                if not stat.S_ISLNK(mode):
                    os.chmod(child, stat.S_IMODE(mode) & 0o700)
