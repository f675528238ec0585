"""Firmware images of firmware releases, kept by their SHA-256 in the platform's private home: the release's
signed content names the hash, so an image is never replaced under a release."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from ..atomic_files import write_atomic
from ..errors import InvalidInput, NotFound
from .models import MAX_FIRMWARE_BYTES


@dataclass(frozen=True)
class Image:
    sha256: str
    length: int


def decode(text: str) -> bytes:
    """The image in a request's ``firmware_base64``, or a 422 saying what is wrong with it."""
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as error:
        raise InvalidInput("firmware_base64 is not base64: {error}", code="firmware_not_base64", error=error) from error
    if not data:
        raise InvalidInput("the firmware image is empty", code="firmware_empty")
    if len(data) > MAX_FIRMWARE_BYTES:
        raise InvalidInput("the firmware image is {data_count} bytes; the limit is {max_firmware_bytes}",
                           code="firmware_too_large", data_count=len(data), max_firmware_bytes=MAX_FIRMWARE_BYTES)
    return data


class FirmwareStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def put(self, data: bytes) -> Image:
        digest = hashlib.sha256(data).hexdigest()
        path = self.directory / f"{digest}.bin"
        if not path.is_file():
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(self.directory, 0o700)
            write_atomic(path, data, mode=0o600)
        return Image(digest, len(data))

    def read(self, sha256: str) -> bytes:
        """The image, checked against its hash (a changed file is not served as the signed one)."""
        path = self.directory / f"{sha256}.bin"
        if len(sha256) != 64 or not path.is_file():
            raise NotFound("no firmware image {sha256} is stored", code="unknown_firmware", sha256=sha256[:12])
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != sha256:
            raise NotFound("the stored firmware image {sha256} no longer matches its hash",
                           code="firmware_changed", sha256=sha256[:12])
        return data
