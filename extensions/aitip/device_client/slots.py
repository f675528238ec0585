"""A/B slots on a device: two images, one active. A new image goes into the inactive slot and is marked to boot
once; the device keeps it only when it comes up (``commit``), and otherwise boots its old slot again
(``fall_back``), as U-Boot's and Android's A/B schemes do. The state is one small JSON file, replaced whole."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ..atomic_files import write_atomic


class Slots:
    def __init__(self, directory: Path, *, durable: bool = True, keep_images: bool = True) -> None:
        self.directory = directory
        # A simulated device's flash needs no fsync, and need not hold the image (a fleet of thousands on one
        # machine keeps each image's SHA-256 instead); a real device's does both.
        self.durable = durable
        self.keep_images = keep_images
        self.state_path = directory / "boot.json"
        self.state: dict[str, Any] = json.loads(self.state_path.read_text()) if self.state_path.is_file() else {
            "active": "a", "versions": {"a": None, "b": None}, "trying": None}

    @property
    def active(self) -> str:
        return str(self.state["active"])

    @property
    def inactive(self) -> str:
        return "b" if self.active == "a" else "a"

    @property
    def version(self) -> str | None:
        return self.state["versions"][self.active]  # type: ignore[no-any-return]

    def image(self, slot: str) -> bytes | None:
        path = self.directory / f"{slot}.img"
        return path.read_bytes() if path.is_file() else None

    def _write(self, path: Path, data: bytes) -> None:
        if self.durable:
            write_atomic(path, data)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)

    def _save(self) -> None:
        self._write(self.state_path, json.dumps(self.state).encode("utf-8"))

    def write_inactive(self, image: bytes, version: str) -> None:
        """Write the image into the inactive slot and boot it once (the simulated reboot)."""
        slot = self.inactive
        if self.keep_images:
            self._write(self.directory / f"{slot}.img", image)
        self.state.setdefault("sha256", {})[slot] = hashlib.sha256(image).hexdigest()
        self.state["versions"][slot] = version
        self.state["trying"] = {"slot": slot, "from": self.active}
        self.state["active"] = slot
        self._save()

    def commit(self) -> None:
        self.state["trying"] = None
        self._save()

    def fall_back(self) -> None:
        trying = self.state["trying"]
        if trying is not None:
            self.state["active"] = trying["from"]
            self.state["trying"] = None
            self._save()
