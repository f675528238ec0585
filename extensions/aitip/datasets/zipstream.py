"""A folder sent as a zip archive without writing the archive anywhere: ``aitip data add NAME FOLDER``.

Each file becomes a stored (uncompressed) member whose local header carries its CRC-32 and sizes, so the
platform can unpack it while it streams in (a member whose sizes follow its data, as ``zipfile`` writes to
an unseekable stream, could only be spooled and unpacked at the end). The CRC takes one read of the file
just before it is sent (the second read then comes from the page cache); the archive's length is known
before the first byte, so the upload carries a Content-Length. Images are already compressed, and
deflating them would cost more CPU than the bytes it saves.

Limits of the classic format (no ZIP64 here): fewer than 65,535 files, and under 4 GiB in all; past them
``ZipStream.fits`` is false and the caller writes a ZIP64 archive with ``zipfile`` instead.
"""

from __future__ import annotations

import errno
import os
import stat
import struct
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

LOCAL_HEADER = struct.Struct("<IHHHHHIIIHH")
CENTRAL_HEADER = struct.Struct("<IHHHHHHIIIHHHHHII")
END_OF_DIRECTORY = struct.Struct("<IHHHHIIH")
VERSION = 20  # 2.0: what a stored member with a UTF-8 name needs
MADE_BY_UNIX = 3 << 8 | VERSION
FLAG_UTF8 = 0x800
LIMIT = 0xFFFFFFFF
MAX_MEMBERS = 0xFFFF
READ_CHUNK = 1 << 20


class FileChanged(OSError):
    """A file's size changed between listing the folder and sending it (something is still writing to it): the
    upload is abandoned, and the platform keeps nothing of it. ``filename`` names the file, as for other
    ``OSError``s."""

    def __init__(self, path: Path, listed: int, seen: int | None = None) -> None:
        shown = f"{listed} -> {seen} bytes" if seen is not None else f"shorter than its {listed} bytes"
        super().__init__(errno.EAGAIN, f"changed size while it was being sent ({shown})", str(path))
        self.listed, self.seen = listed, seen


@dataclass(frozen=True)
class _Entry:
    path: Path
    name: bytes
    size: int
    mode: int
    dos_time: int
    dos_date: int


def _dos_stamp(mtime: float) -> tuple[int, int]:
    year, month, day, hour, minute, second = time.localtime(max(mtime, 315532800))[:6]  # 1980 at the earliest
    return hour << 11 | minute << 5 | second // 2, (year - 1980) << 9 | month << 5 | day


class ZipStream:
    """The regular files under ``folder`` (symbolic links left out), in sorted order, as one zip archive:
    iterate it for the bytes; ``length`` is their total."""

    def __init__(self, folder: Path) -> None:
        entries = []
        for path in sorted(p for p in folder.rglob("*") if not p.is_symlink() and p.is_file()):
            info = path.stat()
            dos_time, dos_date = _dos_stamp(info.st_mtime)
            entries.append(_Entry(path, path.relative_to(folder).as_posix().encode(), info.st_size,
                                  stat.S_IMODE(info.st_mode) | stat.S_IFREG, dos_time, dos_date))
        self.entries = entries
        self.directory_offset = sum(LOCAL_HEADER.size + len(e.name) + e.size for e in entries)
        self.directory_size = sum(CENTRAL_HEADER.size + len(e.name) for e in entries)
        self.length = self.directory_offset + self.directory_size + END_OF_DIRECTORY.size

    @property
    def fits(self) -> bool:
        """Whether the classic format holds it (else ZIP64 is needed)."""
        return len(self.entries) < MAX_MEMBERS and self.directory_offset + self.directory_size < LIMIT

    def __iter__(self) -> Iterator[bytes]:
        if not self.fits:
            raise ValueError("the folder needs a ZIP64 archive (65,535 files or 4 GiB and more)")
        offsets, crcs = [], []
        offset = 0
        for entry in self.entries:
            crc = _crc32(entry)
            offsets.append(offset)
            crcs.append(crc)
            yield LOCAL_HEADER.pack(0x04034B50, VERSION, FLAG_UTF8, 0, entry.dos_time, entry.dos_date, crc,
                                    entry.size, entry.size, len(entry.name), 0) + entry.name
            yield from _contents(entry)
            offset += LOCAL_HEADER.size + len(entry.name) + entry.size
        directory = bytearray()
        for entry, local_offset, crc in zip(self.entries, offsets, crcs, strict=True):
            directory += CENTRAL_HEADER.pack(0x02014B50, MADE_BY_UNIX, VERSION, FLAG_UTF8, 0, entry.dos_time,
                                             entry.dos_date, crc, entry.size, entry.size, len(entry.name), 0, 0, 0,
                                             0, entry.mode << 16, local_offset)
            directory += entry.name
        directory += END_OF_DIRECTORY.pack(0x06054B50, 0, 0, len(self.entries), len(self.entries),
                                           self.directory_size, self.directory_offset, 0)
        yield bytes(directory)


def _crc32(entry: _Entry) -> int:
    crc, seen = 0, 0
    with open(entry.path, "rb") as source:
        while chunk := source.read(READ_CHUNK):
            crc = zlib.crc32(chunk, crc)
            seen += len(chunk)
    if seen != entry.size:
        raise FileChanged(entry.path, entry.size, seen)
    return crc


def _contents(entry: _Entry) -> Iterator[bytes]:
    left = entry.size
    with open(entry.path, "rb") as source:
        os.posix_fadvise(source.fileno(), 0, 0, os.POSIX_FADV_SEQUENTIAL)
        while left:
            chunk = source.read(min(READ_CHUNK, left))
            if not chunk:
                raise FileChanged(entry.path, entry.size)
            left -= len(chunk)
            yield chunk
