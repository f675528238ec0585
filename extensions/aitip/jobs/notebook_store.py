"""Content-addressed notebook snapshots: a job names the exact notebook it ran by SHA-256."""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from ..atomic_files import write_atomic


def canonical_bytes(notebook: dict[str, Any]) -> bytes:
    return json.dumps(notebook, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


class NotebookStore:
    """Notebooks by content hash. The most recent ones are also kept in memory (content-addressed, so never
    stale): a job submitted a moment ago starts without a file read in a worker thread."""

    cache_size = 64

    def __init__(self, root: Path) -> None:
        self.root = root
        self._recent: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def _remember(self, sha256: str, data: bytes) -> None:
        with self._lock:
            self._recent[sha256] = data
            self._recent.move_to_end(sha256)
            while len(self._recent) > self.cache_size:
                self._recent.popitem(last=False)

    def cached(self, sha256: str) -> dict[str, Any] | None:
        """The notebook if it is in memory, else None (then ``get`` reads it)."""
        with self._lock:
            data = self._recent.get(sha256)
        return json.loads(data) if data is not None else None

    def path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / f"{sha256}.ipynb"

    def put(self, notebook: dict[str, Any]) -> str:
        data = canonical_bytes(notebook)
        sha256 = hashlib.sha256(data).hexdigest()
        target = self.path(sha256)
        if not target.exists():
            write_atomic(target, data)
        self._remember(sha256, data)
        return sha256

    def get(self, sha256: str) -> dict[str, Any]:
        data = self.path(sha256).read_bytes()
        self._remember(sha256, data)
        return json.loads(data)  # type: ignore[no-any-return]
