"""Uploads land in a staging area first: written as they stream in, hashed on the way (one pass over the
bytes), bounded in size, and removed whole on any failure. Zip archives of image folders are unpacked
here, refusing anything that could escape or explode: absolute or ``..`` member names, symlinks,
too many members, too many bytes, or a compression ratio no real image folder has."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ..errors import InvalidInput, PayloadTooLarge

CHUNK = 1 << 20


@dataclass(frozen=True)
class ArchiveLimits:
    max_members: int = 100_000
    max_total_bytes: int = 10 << 30
    max_ratio: float = 200.0  # uncompressed / compressed, per member; images barely compress


@dataclass
class UnpackedFolder:
    root: Path
    files: dict[str, str] = field(default_factory=dict)  # relative path -> md5
    bytes: int = 0


class StagedUpload:
    """One upload being received: ``write`` each chunk, then ``finish``; ``discard`` removes everything."""

    def __init__(self, staging_root: Path, filename: str, max_bytes: int) -> None:
        self.directory = staging_root / uuid.uuid4().hex
        self.directory.mkdir(parents=True, exist_ok=False)
        self.filename = filename
        self.path = self.directory / "upload"
        self.max_bytes = max_bytes
        self.size = 0
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._file = open(self.path, "wb")  # noqa: SIM115 - closed in finish/discard
        self.md5: str | None = None

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise PayloadTooLarge(f"the upload is larger than the limit of {self.max_bytes} bytes",
                                  detail={"limit_bytes": self.max_bytes})
        self._md5.update(chunk)
        self._file.write(chunk)

    def write_from(self, path: Path) -> None:
        with open(path, "rb") as source:
            while chunk := source.read(CHUNK):
                self.write(chunk)

    def finish(self) -> None:
        self._file.close()
        self.md5 = self._md5.hexdigest()
        if self.size == 0:
            raise InvalidInput("the upload is empty")

    def discard(self) -> None:
        if not self._file.closed:
            self._file.close()
        shutil.rmtree(self.directory, ignore_errors=True)


def _safe_member_path(name: str) -> PurePosixPath:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise InvalidInput(f"the archive holds an absolute path: {name!r}", code="unsafe_archive")
    if any(part == ".." for part in path.parts):
        raise InvalidInput(f"the archive holds a path leaving its folder: {name!r}", code="unsafe_archive")
    return path


def unpack_image_archive(archive: Path, destination: Path, limits: ArchiveLimits) -> UnpackedFolder:
    """Unpack a zip of class sub-folders, checking every member before a byte is written."""
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as error:
        raise InvalidInput(f"not a readable zip archive: {error}", code="bad_archive") from None
    with zf:
        members = zf.infolist()
        if len(members) > limits.max_members:
            raise InvalidInput(f"the archive has {len(members)} members; the limit is {limits.max_members}",
                               code="unsafe_archive")
        total = 0
        for info in members:
            _safe_member_path(info.filename)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise InvalidInput(f"the archive holds a symbolic link: {info.filename!r}", code="unsafe_archive")
            total += info.file_size
            if total > limits.max_total_bytes:
                raise InvalidInput(f"the archive unpacks to more than {limits.max_total_bytes} bytes",
                                   code="unsafe_archive")
            if info.file_size > 1 << 20 and info.file_size > limits.max_ratio * max(info.compress_size, 1):
                raise InvalidInput(f"{info.filename!r} expands {info.file_size / max(info.compress_size, 1):.0f}"
                                   f"-fold: refusing a likely zip bomb", code="unsafe_archive")
        folder = UnpackedFolder(destination)
        destination.mkdir(parents=True)
        for info in members:
            relative = _safe_member_path(info.filename)
            if info.is_dir() or not relative.parts:
                continue
            if relative.parts[0] in ("__MACOSX",) or relative.name.startswith("."):
                continue
            target = destination.joinpath(*relative.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            digest = hashlib.md5(usedforsecurity=False)
            written = 0
            with zf.open(info) as source, open(target, "wb") as sink:
                while chunk := source.read(CHUNK):
                    written += len(chunk)
                    if written > info.file_size:  # a header that lies about the size
                        raise InvalidInput(f"{info.filename!r} is larger than its header says", code="unsafe_archive")
                    digest.update(chunk)
                    sink.write(chunk)
            folder.files[relative.as_posix()] = digest.hexdigest()
            folder.bytes += written
    if not folder.files:
        raise InvalidInput("the archive holds no files", code="bad_archive")
    os.chmod(destination, 0o755)
    return folder
