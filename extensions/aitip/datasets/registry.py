"""The data registry: a Git + DVC repository that only the platform service writes.

One DVC ``Repo`` object stays alive (importing DVC and opening a repo are paid once, not on every call as
when shelled out). A version is: the data moved (not copied) into ``<project>/<name>/data.<ext>`` (or
``data/`` for a folder), ``dvc add`` with a hardlink cache (no second copy of the bytes), the ``.dvc``
file committed to Git and tagged ``datasets/<project>/<name>/v<N>``. Any failure undoes all of it:
the commit, the tag, the workspace, and cache objects that did not exist before.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import yaml

from ..errors import InvalidInput
from ..schema import dataset_name_error

log = logging.getLogger("aitip.datasets.registry")

GIT_IDENTITY = ["-c", "user.name=AITIP platform", "-c", "user.email=platform@aitip.invalid",
                "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false"]


class RegistryError(RuntimeError):
    """The registry repository refused an operation (Git or DVC)."""


@dataclass(frozen=True)
class CommittedVersion:
    commit: str
    tag: str
    data_path: str  # relative to the registry root
    md5: str
    size: int
    files: int


@dataclass(frozen=True)
class TrackedOutput:
    md5: str
    size: int
    files: int
    is_dir: bool


def tag_name(project: str, name: str, version: int) -> str:
    """The version's Git tag; a name the dataset rule refuses (Git would too, or the file system) is a 422."""
    problem = dataset_name_error(name)
    if problem is not None:
        raise InvalidInput("{name!r} cannot name a dataset: {problem}",
                           detail=[{"field": "dataset", "message": str(problem), "type": "dataset_name"}],
                           name=name, problem=problem)
    return f"datasets/{project}/{name}/v{version}"


class DataRegistry:
    def __init__(self, root: Path, remote: str | None = None) -> None:
        self.root = root
        self.remote = remote
        self._lock = threading.Lock()
        self._repo: Any = None
        # Pushes to the remote: versions (tags) waiting, handled one batch at a time by a thread of their own.
        self._push_state = threading.Condition()
        self._push_pending: set[str] = set()
        self._push_failed: set[str] = set()
        self._pushing = False
        self._push_closing = False
        self._pusher: threading.Thread | None = None
        self.push_error: str | None = None
        os.environ.setdefault("DVC_NO_ANALYTICS", "1")
        self._init()

    # ----- set-up -----

    def _git(self, *args: str, check: bool = True) -> str:
        result = subprocess.run(["git", *GIT_IDENTITY, *args], cwd=self.root, capture_output=True, text=True)
        if check and result.returncode != 0:
            raise RegistryError(f"git {' '.join(args)}: {result.stderr.strip() or result.stdout.strip()}")
        return result.stdout.strip()

    def _init(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        from dvc.repo import Repo

        if not (self.root / ".git").exists():
            self._git("init", "-q", "-b", "main")
        if not (self.root / ".dvc").exists():
            with _quiet():
                repo = Repo.init(str(self.root))
                with repo.config.edit() as config:
                    config["core"]["analytics"] = False
                    config["core"]["autostage"] = False
                    config["cache"]["type"] = ["hardlink", "copy"]
                repo.close()
            self._git("add", "-A")
            self._git("commit", "-q", "-m", "Initialize the AITIP data registry")
        if self.remote:
            self._configure_remote(self.remote)
        with _quiet():
            self._repo = Repo(str(self.root))  # re-opened so the settings above apply

    def _configure_remote(self, url: str) -> None:
        """The remote is this platform's setting, not the registry's history: it goes in DVC's git-ignored
        ``config.local``, rewritten at every start (so a changed setting applies)."""
        from dvc.repo import Repo

        if "://" not in url:
            Path(url).mkdir(parents=True, exist_ok=True)
            url = str(Path(url).absolute())
        with _quiet():
            repo = Repo(str(self.root))
            try:
                with repo.config.edit("local") as config:
                    config["remote"]["registry"] = {"url": url}
                    config["core"]["remote"] = "registry"
            finally:
                repo.close()

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """One writer at a time, across threads and processes."""
        with self._lock, open(self.root / ".git" / "aitip-registry.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def close(self, push_timeout: float = 120.0) -> None:
        """Waits (up to ``push_timeout`` s) for pushes asked for; versions not pushed by then are pushed
        when the platform next registers one (or by ``dvc push --all-tags`` in the registry)."""
        with self._push_state:
            self._push_closing = True
            self._push_state.notify_all()
        if self._pusher is not None:
            self._pusher.join(push_timeout)
        if self._repo is not None:
            self._repo.close()
            self._repo = None

    # ----- cache -----

    def cache_path(self, md5: str) -> Path:
        return self.root / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]

    def _new_cache_objects(self, md5s: list[str]) -> list[Path]:
        return [self.cache_path(m) for m in md5s if not self.cache_path(m).exists()]

    # ----- writing a version -----

    def commit_version(self, project: str, name: str, version: int, staged: Path, *, is_dir: bool, suffix: str,
                       file_md5s: dict[str, str], message: str, author: str) -> CommittedVersion:
        """Move ``staged`` in as the dataset's content, ``dvc add`` it, commit and tag; all or nothing.

        ``file_md5s`` (relative path -> md5, ``""`` for a single file) were computed while the upload streamed
        in; they are handed to DVC's state so ``dvc add`` does not read the bytes a second time."""
        relative_dir = Path(project) / name
        target_name = "data" if is_dir else f"data{suffix}"
        target = self.root / relative_dir / target_name
        tag = tag_name(project, name, version)
        with self.writing():
            head = self._git("rev-parse", "HEAD")
            if self._git("tag", "-l", tag):
                raise RegistryError(f"tag {tag} already exists")
            new_objects = self._new_cache_objects(list(file_md5s.values()))
            tagged = False
            try:
                self._clear_workspace(self.root / relative_dir)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staged, target)
                self._remember_hashes(target, file_md5s)
                with _quiet():
                    self._repo.add([str(target)])
                output = self.tracked_output(f"{relative_dir / target_name}.dvc")
                if output.is_dir:
                    new_objects.append(self.cache_path(output.md5))  # the folder's manifest object
                self._git("add", "-A", "--", str(relative_dir))
                self._git("commit", "-q", "--allow-empty",  # the same content again is still a new version
                          "-m", f"{project}/{name} v{version}: {message or 'new version'}",
                          "-m", f"Registered-by: {author}")
                self._git("tag", "-a", tag, "-m", f"{project}/{name} version {version} by {author}")
                tagged = True
                commit = self._git("rev-parse", "HEAD")
            except BaseException:
                self._undo(head, tag if tagged else None, relative_dir, new_objects)
                raise
        return CommittedVersion(commit, tag, f"{relative_dir / target_name}", output.md5, output.size, output.files)

    def _remember_hashes(self, target: Path, file_md5s: dict[str, str]) -> None:
        """Seed DVC's state (inode, mtime, size -> md5) with the hashes taken during the upload."""
        from dvc_data.hashfile.hash_info import HashInfo

        items = [(str(target / relative) if relative else str(target), HashInfo("md5", md5), None)
                 for relative, md5 in file_md5s.items() if md5]
        if items:
            self._repo.state.save_many(items, self._repo.fs)

    def undo_version(self, committed: CommittedVersion, previous_commit: str) -> None:
        """Take back a committed version (its catalog record could not be written)."""
        relative_dir = Path(committed.data_path).parent
        with self.writing():
            self._undo(previous_commit, committed.tag, relative_dir, [])

    def _undo(self, head: str, tag: str | None, relative_dir: Path, new_objects: list[Path]) -> None:
        with contextlib.suppress(Exception):  # undo as much as can be undone; the caller re-raises the cause
            if tag:
                self._git("tag", "-d", tag, check=False)
            self._git("reset", "-q", "--hard", head, check=False)
            self._git("clean", "-q", "-fdx", "--", str(relative_dir), check=False)
            for path in new_objects:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            dvc_files = list((self.root / relative_dir).glob("*.dvc")) if (self.root / relative_dir).exists() else []
            if dvc_files:
                with _quiet():
                    self._repo.checkout([str(p) for p in dvc_files], force=True)

    def _clear_workspace(self, directory: Path) -> None:
        """The previous version's data (read-only hardlinks into the cache) and its .dvc file leave the
        workspace; Git keeps the old .dvc file, and ``dvc add`` writes the new one."""
        if not directory.exists():
            return
        for entry in directory.iterdir():
            if not entry.name.startswith("data"):
                continue
            if entry.is_dir():
                _make_writable(entry)
                shutil.rmtree(entry)
            else:
                entry.unlink()

    def previous_commit(self) -> str:
        return self._git("rev-parse", "HEAD")

    # ----- reading versions -----

    def tracked_output(self, dvc_file: str, rev: str | None = None) -> TrackedOutput:
        text = self._git("show", f"{rev}:{dvc_file}") if rev else (self.root / dvc_file).read_text()
        out = yaml.safe_load(text)["outs"][0]
        return TrackedOutput(out["md5"], int(out.get("size", 0)), int(out.get("nfiles", 1)),
                             str(out["md5"]).endswith(".dir"))

    def dir_manifest(self, md5: str) -> dict[str, str]:
        """relative path -> md5 for a tracked folder, from DVC's ``.dir`` object."""
        return {entry["relpath"]: entry["md5"] for entry in json.loads(self.cache_path(md5).read_text())}

    def object_path(self, md5: str) -> Path:
        path = self.cache_path(md5)
        if not path.exists():
            raise RegistryError(f"object {md5} is missing from the registry's cache")
        return path

    def checkout_version_data(self, data_path: str, tag: str, destination: Path) -> Path:
        """Materialize a version's content at ``destination`` (hardlinks when possible) for a restore."""
        output = self.tracked_output(f"{data_path}.dvc", rev=tag)
        if not output.is_dir:
            _link_or_copy(self.object_path(output.md5), destination)
            return destination
        destination.mkdir(parents=True)
        for relpath, md5 in self.dir_manifest(output.md5).items():
            target = destination / relpath
            target.parent.mkdir(parents=True, exist_ok=True)
            _link_or_copy(self.object_path(md5), target)
        return destination

    def file_diff(self, tag_a: str, tag_b: str, dvc_file_a: str, dvc_file_b: str) -> str:
        """The change of the tracked ``.dvc`` files between two versions, as Git shows it."""
        if dvc_file_a == dvc_file_b:
            return self._git("diff", "--no-color", tag_a, tag_b, "--", dvc_file_a)
        return self._git("diff", "--no-color", f"{tag_a}:{dvc_file_a}", f"{tag_b}:{dvc_file_b}", check=False)

    # ----- the remote -----

    def push_later(self, tag: str) -> None:
        """Copy a registered version's data to the remote, off the registration path: a thread with its own
        DVC ``Repo`` pushes the versions asked for (``revs``, not the workspace), so no registration waits
        for it. A failed push is logged, kept in ``push_error`` and retried with the next version."""
        if not self.remote:
            return
        with self._push_state:
            self._push_pending |= {tag, *self._push_failed}
            self._push_failed = set()
            if self._pusher is None or not self._pusher.is_alive():
                self._pusher = threading.Thread(target=self._push_loop, name="aitip-dvc-push", daemon=True)
                self._pusher.start()
            self._push_state.notify_all()

    def _push_loop(self) -> None:
        from dvc.repo import Repo

        while True:
            with self._push_state:
                while not self._push_pending and not self._push_closing:
                    self._push_state.wait()
                if not self._push_pending:
                    return
                tags, self._push_pending = sorted(self._push_pending), set()
                self._pushing = True
            try:
                with _quiet(), Repo(str(self.root)) as repo:
                    repo.push(revs=tags, workspace=False)
                self.push_error = None
            except Exception as error:  # noqa: BLE001 - reported, and retried with the next version
                log.warning("pushing %s to the DVC remote %s failed: %s", ", ".join(tags), self.remote, error)
                self.push_error = f"{type(error).__name__}: {error}"
                kept = {tag for tag in tags if self._git("tag", "-l", tag, check=False)}  # not taken back since
                with self._push_state:
                    self._push_failed |= kept
            finally:
                with self._push_state:
                    self._pushing = False
                    self._push_state.notify_all()

    def wait_pushed(self, timeout: float = 60.0) -> bool:
        """True once every version asked for is pushed (or its push failed: see ``push_error``)."""
        with self._push_state:
            return self._push_state.wait_for(lambda: not self._pushing and not self._push_pending, timeout)


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def _make_writable(root: Path) -> None:
    for directory, _, _ in os.walk(root):
        os.chmod(directory, 0o755)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """DVC prints hints ("To track the changes with git, run: ...") meant for a terminal user."""
    from dvc.ui import ui

    dvc_log = logging.getLogger("dvc")
    level = dvc_log.level
    dvc_log.setLevel(logging.WARNING)
    ui._enabled = False
    try:
        yield
    finally:
        ui._enabled = True
        dvc_log.setLevel(level)
