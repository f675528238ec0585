"""A project's TUF repository (The Update Framework, python-tuf 7): the four top-level roles' keys, kept by the
platform in its private home (0600), and the signed metadata and firmware targets that devices fetch over HTTP.

Consistent snapshots are on: snapshot and targets metadata are published as ``<version>.<role>.json`` and targets
under their SHA-256, so a device mid-update never mixes files of two publications. The timestamp (and, less
often, the others) is re-signed before it expires by :meth:`TufRepository.keep_fresh`; a device holding a
timestamp that no longer refreshes refuses it as frozen."""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from securesystemslib.signer import CryptoSigner, SSlibKey
from tuf.api.metadata import (
    TOP_LEVEL_ROLE_NAMES,
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization.json import JSONSerializer

from ..atomic_files import write_atomic
from ..file_lock import exclusive_file_lock

# How long each role's signature holds; re-signed once less than half of it is left.
LIFETIMES = {"root": timedelta(days=365), "targets": timedelta(days=90), "snapshot": timedelta(days=7),
             "timestamp": timedelta(days=1)}
TARGET_NAME = r"^firmware/[a-z0-9][a-z0-9._-]{0,99}/[A-Za-z0-9.+_-]{1,64}\.bin$"


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def target_path(name: str, version: str) -> str:
    """Where a firmware release is published in the repository (its TUF target path)."""
    return f"firmware/{name}/{version}.bin"


class TufRepository:
    """One project's repository in ``directory`` (``keys/``, ``metadata/``, ``targets/``), made on first use.
    Making it and publishing are serialised by a file lock (between threads and processes: two makers would
    each make their own keys); readers read files that are only ever replaced whole."""

    def __init__(self, directory: Path, *, lifetimes: dict[str, timedelta] | None = None,
                 clock: Any = _now) -> None:
        self.directory = directory
        self.keys_dir = directory / "keys"
        self.metadata_dir = directory / "metadata"
        self.targets_dir = directory / "targets"
        self.lifetimes = {**LIFETIMES, **(lifetimes or {})}
        self.clock = clock
        self._threads = threading.Lock()
        with self._locked():
            self._signers = {role: self._signer(role) for role in TOP_LEVEL_ROLE_NAMES}
            if not (self.metadata_dir / "root.json").is_file():
                self._initialise()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        with self._threads, exclusive_file_lock(self.directory / ".lock"):
            yield

    # ----- keys -----

    def _signer(self, role: str) -> CryptoSigner:
        path = self.keys_dir / f"{role}.pem"
        if path.is_file():
            private = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(private, Ed25519PrivateKey):
                raise ValueError(f"{path} holds no Ed25519 key")
        else:
            self.keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(self.directory, 0o700)
            os.chmod(self.keys_dir, 0o700)
            private = Ed25519PrivateKey.generate()
            write_atomic(path, private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                     serialization.NoEncryption()), mode=0o600)
        return CryptoSigner(private, SSlibKey.from_crypto(private.public_key()))

    # ----- metadata files -----

    def _expiry(self, role: str) -> datetime:
        return self.clock() + self.lifetimes[role]

    def _write(self, metadata: Metadata[Any], *names: str) -> None:
        role = metadata.signed.type
        metadata.signatures.clear()
        metadata.sign(self._signers[role], append=True)
        data = metadata.to_bytes(JSONSerializer(compact=True))
        for name in names:
            write_atomic(self.metadata_dir / name, data, mode=0o644)

    def _load(self, name: str) -> Metadata[Any]:
        return Metadata.from_file(str(self.metadata_dir / name))

    def _initialise(self) -> None:
        self.metadata_dir.mkdir(parents=True, exist_ok=True)
        self.targets_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.metadata_dir, 0o755)
        os.chmod(self.targets_dir, 0o755)
        root = Root(expires=self._expiry("root"), consistent_snapshot=True)
        for role, signer in self._signers.items():
            root.add_key(signer.public_key, role)
        self._write(Metadata(root), "1.root.json", "root.json")
        targets = Targets(expires=self._expiry("targets"))
        self._write(Metadata(targets), "1.targets.json")
        self._publish_snapshot(Snapshot(expires=self._expiry("snapshot")), targets.version, bump=False)

    def _publish_snapshot(self, snapshot: Snapshot, targets_version: int, *, bump: bool = True) -> None:
        if bump:
            snapshot.version += 1
        snapshot.meta["targets.json"] = MetaFile(version=targets_version)
        snapshot.expires = self._expiry("snapshot")
        self._write(Metadata(snapshot), f"{snapshot.version}.snapshot.json")
        self._publish_timestamp(snapshot.version)

    def _publish_timestamp(self, snapshot_version: int) -> None:
        path = self.metadata_dir / "timestamp.json"
        timestamp = self._load("timestamp.json").signed if path.is_file() else Timestamp(expires=self._expiry(
            "timestamp"))
        if path.is_file():
            timestamp.version += 1
        timestamp.snapshot_meta = MetaFile(version=snapshot_version)
        timestamp.expires = self._expiry("timestamp")
        self._write(Metadata(timestamp), "timestamp.json")

    def _current(self, role: str) -> Metadata[Any]:
        timestamp = self._load("timestamp.json").signed
        snapshot = self._load(f"{timestamp.snapshot_meta.version}.snapshot.json")
        if role == "snapshot":
            return snapshot
        return self._load(f"{snapshot.signed.meta['targets.json'].version}.targets.json")

    # ----- what the platform does -----

    def trusted_root(self) -> bytes:
        """The root metadata a device is provisioned with (``Updater``'s required ``bootstrap``)."""
        return (self.metadata_dir / "root.json").read_bytes()

    def publish(self, path: str, data: bytes, custom: dict[str, Any]) -> TargetFile:
        """Add (or replace) the target ``path`` with ``data``, and publish new targets, snapshot and timestamp."""
        digest = hashlib.sha256(data).hexdigest()
        with self._locked():
            stored = self.targets_dir / Path(path).parent / f"{digest}.{Path(path).name}"
            if not stored.is_file():
                write_atomic(stored, data, mode=0o644)
            targets = self._current("targets").signed
            snapshot = self._current("snapshot").signed
            target = TargetFile(length=len(data), hashes={"sha256": digest}, path=path,
                                unrecognized_fields={"custom": custom})
            targets.targets[path] = target
            targets.version += 1
            targets.expires = self._expiry("targets")
            self._write(Metadata(targets), f"{targets.version}.targets.json")
            self._publish_snapshot(snapshot, targets.version)
            return target

    def target(self, path: str) -> TargetFile | None:
        return self._current("targets").signed.targets.get(path)

    def keep_fresh(self) -> list[str]:
        """Re-sign every role with less than half of its lifetime left; the roles re-signed."""
        renewed: list[str] = []
        with self._locked():
            now = self.clock()
            targets = self._current("targets").signed
            snapshot = self._current("snapshot").signed
            timestamp = self._load("timestamp.json").signed
            if targets.expires - now < self.lifetimes["targets"] / 2:
                targets.version += 1
                targets.expires = self._expiry("targets")
                self._write(Metadata(targets), f"{targets.version}.targets.json")
                renewed.append("targets")
            if renewed or snapshot.expires - now < self.lifetimes["snapshot"] / 2:
                self._publish_snapshot(snapshot, targets.version)
                renewed += ["snapshot", "timestamp"]
            elif timestamp.expires - now < self.lifetimes["timestamp"] / 2:
                self._publish_timestamp(snapshot.version)
                renewed.append("timestamp")
        return renewed

    def metadata_file(self, name: str) -> Path | None:
        """A metadata file a device may fetch (``root.json``, ``<n>.root.json``, ``timestamp.json``,
        ``<n>.snapshot.json``, ``<n>.targets.json``), or None."""
        if "/" in name or name.startswith("."):
            return None
        path = self.metadata_dir / name
        return path if path.is_file() else None

    def target_file(self, name: str) -> Path | None:
        """A published target by its consistent-snapshot name (``firmware/<release>/<sha256>.<version>.bin``)."""
        parts = name.split("/")
        if any(part in ("", ".", "..") or part.startswith(".") for part in parts):
            return None
        path = self.targets_dir / name
        return path if path.is_file() else None
