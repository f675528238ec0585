"""Each job attempt's directories, under ``$AITIP_HOME/job-workspaces`` (mode 0711):

``<job>.<attempt>/``  root, group of the owner, 0750 — the owner may enter, nobody else
  ``work/``      the owner's, 0700: the kernel's working directory
  ``inputs/``    the platform's, group-readable: declared dataset versions, read-only to the owner
  ``control/``   the platform's, group-readable: what the platform hands the kernel (its MLflow run's
                 environment) and files the kernel may only write into, never replace (the set-up error,
                 the tracking spool)

The platform never opens a path its user could have replaced: everything it reads or writes lies in a
directory only it can change. In single-trust mode the same tree belongs to the one account, mode 0700.
"""

from __future__ import annotations

import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

from .accounts import Account

LATE_ENV_FILE = "run-env.json"
SETUP_ERROR_FILE = "setup-error.txt"
SPOOL_FILE = "tracking.spool"
MAX_SETUP_ERROR_BYTES = 8192


@dataclass(frozen=True)
class JobWorkspace:
    root: Path
    account: Account | None

    @property
    def work(self) -> Path:
        return self.root / "work"

    @property
    def inputs(self) -> Path:
        return self.root / "inputs"

    @property
    def control(self) -> Path:
        return self.root / "control"

    @property
    def late_env_file(self) -> Path:
        return self.control / LATE_ENV_FILE

    @property
    def setup_error_file(self) -> Path:
        return self.control / SETUP_ERROR_FILE

    @property
    def spool_file(self) -> Path:
        return self.control / SPOOL_FILE

    def _share(self, path: Path, mode: int) -> None:
        """The platform's file or directory, readable (``mode``) by the owner's group alone."""
        if self.account is not None:
            os.chown(path, 0, self.account.gid, follow_symlinks=False)
            os.chmod(path, mode)
        else:
            os.chmod(path, mode & 0o700)

    def publish(self, name: str, data: bytes) -> Path:
        """Write a control file the kernel may read, atomically (a rename within ``control/``)."""
        target = self.control / name
        temporary = self.control / f".{name}.{os.getpid()}.tmp"
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        try:
            os.write(descriptor, data)
        finally:
            os.close(descriptor)
        self._share(temporary, 0o640)
        os.replace(temporary, target)
        return target

    def read_setup_error(self) -> str | None:
        """What the kernel wrote into the set-up error file, if anything (bounded, never followed)."""
        try:
            descriptor = os.open(self.setup_error_file, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except FileNotFoundError:
            return None
        try:
            if not stat.S_ISREG(os.fstat(descriptor).st_mode):
                return None
            text = os.read(descriptor, MAX_SETUP_ERROR_BYTES).decode("utf-8", errors="replace").strip()
        finally:
            os.close(descriptor)
        return text or None

    def seal_inputs(self) -> None:
        """After the platform put the declared inputs in place: the owner may read them, not change them."""
        for directory, names, files in os.walk(self.inputs):
            self._share(Path(directory), 0o750)
            for name in names:
                self._share(Path(directory) / name, 0o750)
            for name in files:
                path = Path(directory) / name
                if not path.is_symlink():
                    self._share(path, 0o640)


class Workspaces:
    """Makes job workspaces under ``root``; ``accounts`` is None in single-trust mode."""

    def __init__(self, root: Path, *, separate_accounts: bool) -> None:
        self.root = root
        self.separate_accounts = separate_accounts

    def spool_path(self, job_id: int, attempt: int) -> Path:
        return self.root / f"{job_id}.{attempt}" / "control" / SPOOL_FILE

    def create(self, job_id: int, attempt: int, account: Account | None) -> JobWorkspace:
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o711 if self.separate_accounts else 0o700)
        workspace = JobWorkspace(self.root / f"{job_id}.{attempt}", account if self.separate_accounts else None)
        if workspace.root.exists():  # an attempt interrupted by a shutdown runs again under its number
            shutil.rmtree(workspace.root)
        workspace.root.mkdir(mode=0o700)
        for directory in (workspace.control, workspace.inputs):
            directory.mkdir(mode=0o700)
            workspace._share(directory, 0o750)
        for name in (SETUP_ERROR_FILE, SPOOL_FILE):
            os.close(os.open(workspace.control / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            workspace._share(workspace.control / name, 0o660)
        workspace.work.mkdir(mode=0o700)
        if workspace.account is not None:
            os.chown(workspace.work, workspace.account.uid, workspace.account.gid)
        workspace._share(workspace.root, 0o750)
        return workspace
