"""Content-addressed notebook snapshots: a job names the exact notebook it ran by SHA-256."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def canonical_bytes(notebook: dict[str, Any]) -> bytes:
    return json.dumps(notebook, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def write_atomic(path: Path, data: bytes) -> None:
    """Write via a temporary file in the same directory and rename: readers see old or new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class NotebookStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / f"{sha256}.ipynb"

    def put(self, notebook: dict[str, Any]) -> str:
        data = canonical_bytes(notebook)
        sha256 = hashlib.sha256(data).hexdigest()
        target = self.path(sha256)
        if not target.exists():
            write_atomic(target, data)
        return sha256

    def get(self, sha256: str) -> dict[str, Any]:
        return json.loads(self.path(sha256).read_bytes())  # type: ignore[no-any-return]
