"""Uploads land in a staging area first: written as they stream in, hashed on the way (one pass over the
bytes), bounded in size, and removed whole on any failure.

A zip archive of an image folder is unpacked while it streams in (:class:`ArchiveStream`): each member's
local header comes before its data, so its bytes go straight into the member's file and its MD5 and CRC
are taken on the way; the archive itself is never written. The central directory at the end is then
read and cross-checked against what was unpacked: the same members at the same offsets, with the same
names, methods, sizes and CRCs, none a symbolic link. Anything that could escape or explode is refused
(absolute or ``..`` names, symlinks, too many members, too many bytes, a compression ratio no real image
folder has, duplicates, encrypted members), as is a truncated archive; a refusal rejects the whole upload
and its staging directory is removed. Members that cannot be unpacked in flight (a stored member whose
sizes follow its data, a compression method other than deflate, bytes that are not a local header) make
the rest of the archive spool to disk and unpack from there once the central directory has arrived.

Receiving from the event loop (:meth:`StagedUpload.feed`): the chunks are written (and an archive parsed)
by a worker thread, in batches, while the next ones arrive, and a second thread takes their MD5s one batch
behind (hashlib, zlib and file writes release the GIL; writing new page cache costs as much CPU as
MD5 here, so the two run side by side).
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import io
import os
import shutil
import stat
import struct
import threading
import time
import uuid
import zipfile
import zlib
from collections.abc import Awaitable, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from ..errors import InvalidInput, PayloadTooLarge
from ..i18n import N_
from ..schema import relative_path_error

CHUNK = 1 << 20
MAX_PENDING = 4 << 20  # received bytes waiting for the worker before the connection is paused


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


class _Hashing:
    """MD5 updates: done at once, or (``deferred``) collected for the upload's hashing thread, which
    ``flush`` hands them to (also whenever ``MAX_PENDING`` bytes are collected: an inflating member
    yields more bytes than its batch held)."""

    def __init__(self) -> None:
        self.deferred = False
        self.flush: Callable[[], None] | None = None
        self.items: list[tuple[hashlib._Hash, bytes | memoryview]] = []  # type: ignore[name-defined]
        self.size = 0

    def update(self, digest: hashlib._Hash, data: bytes | memoryview) -> None:  # type: ignore[name-defined]
        if not self.deferred:
            digest.update(data)
            return
        self.items.append((digest, data))
        self.size += len(data)
        if self.size >= MAX_PENDING and self.flush is not None:
            self.flush()

    def take(self) -> list[tuple[hashlib._Hash, bytes | memoryview]]:  # type: ignore[name-defined]
        items, self.items, self.size = self.items, [], 0
        return items


def _hash_all(items: list[tuple[hashlib._Hash, bytes | memoryview]]) -> None:  # type: ignore[name-defined]
    for digest, data in items:
        digest.update(data)


class _FileSink:
    """The upload as one file, MD5 taken on the way."""

    def __init__(self, path: Path, hashing: _Hashing) -> None:
        self._file = open(path, "wb")  # noqa: SIM115 - closed in finish/close
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._hashing = hashing

    def write(self, chunk: bytes | memoryview) -> None:
        self._hashing.update(self._md5, chunk)
        self._file.write(chunk)

    def finish(self) -> str:
        self._file.close()
        return self._md5.hexdigest()

    def close(self) -> None:
        self._file.close()


class StagedUpload:
    """One upload being received: ``write`` (or, on the event loop, ``feed``) each chunk, then ``finish``
    (``complete`` after ``feed``); ``discard`` removes everything.

    With ``archive_limits`` the upload is a zip of an image folder, unpacked as it arrives into
    ``directory/data`` (``folder`` once finished); otherwise it is the file ``path``, its MD5 in ``md5``."""

    def __init__(self, staging_root: Path, filename: str, max_bytes: int, *,
                 archive_limits: ArchiveLimits | None = None) -> None:
        self.directory = staging_root / uuid.uuid4().hex
        self.directory.mkdir(parents=True, exist_ok=False)
        self.filename = filename
        self.path = self.directory / "upload"
        self.max_bytes = max_bytes
        self.size = 0
        self.md5: str | None = None
        self.folder: UnpackedFolder | None = None
        # Seconds per registration step ("receive" from creation to the end of ``finish``, then the service's
        # own steps), answered as the response's Server-Timing header and logged.
        self.timings: dict[str, float] = {}
        # Told each registration step as it starts (a registration in the background records it).
        self.on_step: Callable[[str], None] | None = None
        self._created = time.perf_counter()
        self._hashing = _Hashing()
        self._sink: _FileSink | ArchiveStream = (
            ArchiveStream(self.directory / "data", archive_limits, spool=self.path, hashing=self._hashing)
            if archive_limits is not None else _FileSink(self.path, self._hashing))
        self._hasher: ThreadPoolExecutor | None = None  # started by the first feed
        self._hashed: Future[None] | None = None
        self._lock = threading.Lock()  # the worker holds it per chunk; discard takes it to stop the worker
        self._discarded = False
        self._error: BaseException | None = None
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._batch: asyncio.Future[None] | None = None
        self._waiters: list[asyncio.Future[None]] = []

    @property
    def is_archive(self) -> bool:
        return isinstance(self._sink, ArchiveStream)

    def _count(self, size: int) -> None:
        self.size += size
        if self.size > self.max_bytes:
            raise PayloadTooLarge("the upload is larger than the limit of {max_bytes} bytes",
                                  detail={"limit_bytes": self.max_bytes}, max_bytes=self.max_bytes)

    def write(self, chunk: bytes) -> None:
        """Count, hash and write one chunk now (any thread but the event loop's)."""
        self._count(len(chunk))
        if self._error is not None:
            raise self._error
        with self._lock:
            if self._discarded:
                return
            try:
                self._sink.write(chunk)
                self._hash_behind()
            except BaseException as error:
                self._error = error
                raise

    def write_from(self, path: Path) -> None:
        with open(path, "rb") as source:
            while chunk := source.read(CHUNK):
                self.write(chunk)

    # ----- from the event loop -----

    def feed(self, chunk: bytes) -> Awaitable[None] | None:
        """On the event loop: count the chunk at once (an upload over the limit is refused as it passes it)
        and queue it for the worker thread. Returns an awaitable while ``MAX_PENDING`` bytes wait, for the
        caller to pause receiving on (it never raises; a failure of the worker is raised by the next call)."""
        self._count(len(chunk))
        if self._error is not None:
            raise self._error
        if self._hasher is None:
            self._hasher = ThreadPoolExecutor(1, thread_name_prefix="aitip-upload-md5")
            self._hashing.deferred = True
            self._hashing.flush = self._hash_behind
        self._pending.append(chunk)
        self._pending_bytes += len(chunk)
        if self._batch is None:
            self._start_batch()
        elif self._pending_bytes >= MAX_PENDING:
            return self._wait_batch()
        return None

    async def complete(self) -> None:
        """After the last ``feed``: wait for the worker, then ``finish`` (in a thread: an archive's central
        directory is checked there)."""
        while self._batch is not None or (self._pending and self._error is None):
            if self._batch is None:
                self._start_batch()
            await self._wait_batch()
        if self._error is not None:
            raise self._error
        await asyncio.to_thread(self.finish)

    def _start_batch(self) -> None:
        chunks, self._pending, self._pending_bytes = self._pending, [], 0
        self._batch = asyncio.get_running_loop().run_in_executor(None, self._write_batch, chunks)
        self._batch.add_done_callback(self._batch_done)

    def _write_batch(self, chunks: list[bytes]) -> None:
        for chunk in chunks:
            with self._lock:
                if self._discarded:
                    return
                self._sink.write(chunk)
        with self._lock:
            if not self._discarded:
                self._hash_behind()

    def _hash_behind(self) -> None:
        """Hand the MD5 updates collected so far to the hashing thread, once it has done the previous lot
        (so at most two batches of received bytes are held)."""
        items = self._hashing.take()
        if not items:
            return
        assert self._hasher is not None
        if self._hashed is not None:
            self._hashed.result()
        self._hashed = self._hasher.submit(_hash_all, items)

    def _batch_done(self, batch: asyncio.Future[None]) -> None:
        self._batch = None
        if not batch.cancelled() and batch.exception() is not None and self._error is None:
            self._error = batch.exception()
        if self._pending and self._error is None and not self._discarded:
            self._start_batch()
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _wait_batch(self) -> asyncio.Future[None]:
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        return waiter

    # ----- the end -----

    def finish(self) -> None:
        if self._error is not None:
            raise self._error
        if self.size == 0:
            self._sink.close()
            raise InvalidInput("the upload is empty")
        with self._lock:
            self._stop_hashing()
            if isinstance(self._sink, ArchiveStream):
                self.folder = self._sink.finish()
            else:
                self.md5 = self._sink.finish()
        self.timings["receive"] = time.perf_counter() - self._created

    def _stop_hashing(self) -> None:
        """The hashing thread's work done (what is left, and what ``finish`` hashes, is hashed here)."""
        if self._hashed is not None:
            self._hashed.result()
            self._hashed = None
        self._hashing.deferred = False
        _hash_all(self._hashing.take())
        if self._hasher is not None:
            self._hasher.shutdown(wait=False)

    def discard(self) -> None:
        with self._lock:
            self._discarded = True
            self._sink.close()
            self._hashing.take()
            if self._hasher is not None:
                self._hasher.shutdown(wait=False, cancel_futures=True)
        shutil.rmtree(self.directory, ignore_errors=True)


def _safe_member_path(name: str) -> PurePosixPath:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise InvalidInput("the archive holds an absolute path: {name!r}", code="unsafe_archive", name=name)
    if any(part == ".." for part in path.parts):
        raise InvalidInput("the archive holds a path leaving its folder: {name!r}", code="unsafe_archive", name=name)
    if "\x00" in name:
        raise InvalidInput("the archive holds a name with a NUL byte: {name!r}", code="unsafe_archive", name=name)
    problem = relative_path_error(path.as_posix())
    if problem is not None:
        raise InvalidInput("the archive holds a name no file system stores: {problem}", code="bad_archive",
                           detail={"member": name[:300]}, problem=problem)
    return path


def _skipped(relative: PurePosixPath, name: str) -> bool:
    """Folders, macOS resource forks and hidden files are checked but not unpacked."""
    return (name.endswith("/") or not relative.parts or relative.parts[0] == "__MACOSX"
            or relative.name.startswith("."))


def _bad(message: str, **values: Any) -> InvalidInput:
    return InvalidInput(message, code="bad_archive", **values)


def _unsafe(message: str, **values: Any) -> InvalidInput:
    return InvalidInput(message, code="unsafe_archive", **values)


LOCAL_HEADER = struct.Struct("<4s5H3I2H")  # signature, version, flags, method, time, date, crc, sizes, lengths
LOCAL_SIGNATURE = b"PK\x03\x04"
DESCRIPTOR_SIGNATURE = b"PK\x07\x08"
FLAG_ENCRYPTED = 0x01
FLAG_DESCRIPTOR = 0x08
FLAG_STRONG_ENCRYPTION = 0x40
FLAG_UTF8 = 0x800
FLAG_MASKED_HEADERS = 0x2000
ZIP64_MARK = 0xFFFFFFFF
STORED, DEFLATED = zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED
INFLATE_OUT = 1 << 20

HEADER, DATA, DESCRIPTOR, SPOOL = "header", "data", "descriptor", "spool"


@dataclass
class _Member:
    """One member as its local header announced it, and what its data turned out to be."""

    offset: int
    name: str
    relative: PurePosixPath
    method: int
    flags: int
    crc: int | None  # None: in the data descriptor
    compress_size: int | None
    file_size: int | None
    zip64: bool
    target: Path | None  # None: checked, not unpacked
    file: BinaryIO | None = None
    md5: hashlib._Hash | None = None  # type: ignore[name-defined]
    inflater: zlib._Decompress | None = None  # type: ignore[name-defined]
    read: int = 0  # bytes of (compressed) data consumed
    written: int = 0  # bytes of content
    crc_seen: int = 0


class ArchiveStream:
    """Unpacks a zip archive as its bytes arrive (see the module's docstring); ``finish`` at the end."""

    def __init__(self, root: Path, limits: ArchiveLimits, *, spool: Path, hashing: _Hashing | None = None) -> None:
        self.root = root
        self.limits = limits
        self.spool_path = spool
        self._hashing = hashing or _Hashing()
        root.mkdir(parents=True)
        self.folder = UnpackedFolder(root)
        self.members: dict[int, _Member] = {}  # by offset
        self._paths: set[str] = set()
        self._state = HEADER
        self._head = bytearray()
        self._want = 4
        self._head_offset = 0
        self._offset = 0  # stream offset of the next byte to consume
        self._member: _Member | None = None
        self._spool: BinaryIO | None = None
        self._spool_start = 0
        self._total = 0

    # ----- receiving -----

    def write(self, chunk: bytes | memoryview) -> None:
        view = memoryview(chunk)
        while view:
            if self._state == SPOOL:
                assert self._spool is not None
                self._spool.write(view)
                self._offset += len(view)
                return
            if self._state == DATA:
                assert self._member is not None
                used = self._feed_member(self._member, view)
                self._offset += used
                view = view[used:]
                continue
            if not self._head:
                self._head_offset = self._offset
            take = self._want - len(self._head)
            self._head += view[:take]
            self._offset += min(take, len(view))
            view = view[take:]
            if len(self._head) == self._want:
                self._header() if self._state == HEADER else self._descriptor()

    def _header(self) -> None:
        head = self._head
        if bytes(head[:4]) != LOCAL_SIGNATURE:  # the central directory (or bytes this cannot unpack in flight)
            self._start_spool(self._head_offset)
            return
        if len(head) == 4:
            self._want = LOCAL_HEADER.size
            return
        (_, _, flags, method, _, _, crc, compress_size, file_size, name_length,
         extra_length) = LOCAL_HEADER.unpack_from(head)
        if len(head) == LOCAL_HEADER.size and name_length + extra_length:
            self._want = LOCAL_HEADER.size + name_length + extra_length
            return
        raw_name = bytes(head[LOCAL_HEADER.size:LOCAL_HEADER.size + name_length])
        extra = bytes(head[LOCAL_HEADER.size + name_length:])
        try:
            name = raw_name.decode("utf-8" if flags & FLAG_UTF8 else "cp437")
        except UnicodeDecodeError:
            raise _bad(N_("a member's name is not valid UTF-8: {raw_name!r}"), raw_name=raw_name) from None
        relative = _safe_member_path(name)
        if flags & (FLAG_ENCRYPTED | FLAG_STRONG_ENCRYPTION | FLAG_MASKED_HEADERS):
            raise _bad(N_("{name!r} is encrypted; encrypted archives are not supported"), name=name)
        if len(self.members) + 1 > self.limits.max_members:
            raise _unsafe(N_("the archive has more than {max_members} members"),
                             max_members=self.limits.max_members)
        zip64 = False
        if compress_size == ZIP64_MARK or file_size == ZIP64_MARK:
            sizes = _zip64_sizes(extra, file_size, compress_size)
            if sizes is None:  # not a layout this reads in flight
                self._start_spool(self._head_offset)
                return
            file_size, compress_size, zip64 = *sizes, True
        descriptor = bool(flags & FLAG_DESCRIPTOR)
        if method not in (STORED, DEFLATED) or (descriptor and method == STORED):
            self._start_spool(self._head_offset)  # its end is only known from the central directory
            return
        if not descriptor:
            self._check_declared(name, compress_size, file_size)
        member = _Member(self._head_offset, name, relative, method, flags, None if descriptor else crc,
                         None if descriptor else compress_size, None if descriptor else file_size, zip64, None)
        self._open(member)
        self._member = member
        self._head = bytearray()
        self._state = DATA
        if method == DEFLATED:
            member.inflater = zlib.decompressobj(-15)
        if member.compress_size == 0 and method == STORED:
            self._end_member(member)

    def _check_declared(self, name: str, compress_size: int, file_size: int) -> None:
        self._total += file_size
        if self._total > self.limits.max_total_bytes:
            raise _unsafe(N_("the archive unpacks to more than {max_total_bytes} bytes"),
                             max_total_bytes=self.limits.max_total_bytes)
        if file_size > 1 << 20 and file_size > self.limits.max_ratio * max(compress_size, 1):
            raise _unsafe(N_("{name!r} expands {value:.0f}-fold: refusing a likely zip bomb"),
                             name=name, value=file_size / max(compress_size, 1))

    def _open(self, member: _Member) -> None:
        if self._skip(member.relative, member.name):
            return
        key = member.relative.as_posix()
        if key in self._paths:
            raise _unsafe(N_("the archive holds {key!r} twice"), key=key)
        self._paths.add(key)
        target = self.root.joinpath(*member.relative.parts)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            member.file = open(target, "xb")  # noqa: SIM115 - closed at the member's end, or by close()
        except (FileExistsError, NotADirectoryError, IsADirectoryError):
            raise _unsafe(N_("{key!r} clashes with another member of the archive"), key=key) from None
        except OSError as error:  # a limit of the staging file system the name checks did not foresee
            if error.errno != errno.ENAMETOOLONG:
                raise
            raise _bad(N_("{key!r} is a name the file system cannot store (too long)"), key=key[:300]) from None
        member.target = target
        member.md5 = hashlib.md5(usedforsecurity=False)

    @staticmethod
    def _skip(relative: PurePosixPath, name: str) -> bool:
        return _skipped(relative, name)

    def _feed_member(self, member: _Member, view: memoryview) -> int:
        if member.method == STORED:
            assert member.compress_size is not None
            piece = view[:member.compress_size - member.read]
            member.read += len(piece)
            self._content(member, piece)
            if member.read == member.compress_size:
                self._end_member(member)
            return len(piece)
        inflater = member.inflater
        assert inflater is not None
        piece = view if member.compress_size is None else view[:member.compress_size - member.read]
        try:
            out = inflater.decompress(piece, INFLATE_OUT)
            while True:
                self._content(member, out, compressed=member.read + len(piece) - len(inflater.unconsumed_tail))
                if inflater.eof or (not inflater.unconsumed_tail and len(out) < INFLATE_OUT):
                    break
                out = inflater.decompress(inflater.unconsumed_tail, INFLATE_OUT)
        except zlib.error as error:
            raise _bad(N_("{name!r} is not valid deflate data: {error}"), name=member.name, error=error) from None
        used = len(piece) - len(inflater.unused_data)
        member.read += used
        if inflater.eof:
            if member.compress_size is None:
                self._state, self._want = DESCRIPTOR, 4
            elif member.read != member.compress_size:
                raise _bad(N_("{name!r} ends before the size its header gives"), name=member.name)
            else:
                self._end_member(member)
        elif member.compress_size is not None and member.read == member.compress_size:
            raise _bad(N_("{name!r} does not end where its header says"), name=member.name)
        return used

    def _content(self, member: _Member, data: bytes | memoryview, compressed: int | None = None) -> None:
        if not data:
            return
        member.written += len(data)
        if member.file_size is not None:
            if member.written > member.file_size:
                raise _unsafe(N_("{name!r} is larger than its header says"), name=member.name)
        else:  # sizes follow the data: bound it as it grows
            self._total += len(data)
            if self._total > self.limits.max_total_bytes:
                raise _unsafe(N_("the archive unpacks to more than {max_total_bytes} bytes"),
                                 max_total_bytes=self.limits.max_total_bytes)
            if member.written > 1 << 20 and member.written > self.limits.max_ratio * max(compressed or 0, 1):
                raise _unsafe(N_("{name!r} expands more than {max_ratio:.0f}-fold: refusing a likely zip bomb"),
                              name=member.name, max_ratio=self.limits.max_ratio)
        member.crc_seen = zlib.crc32(data, member.crc_seen)
        if member.file is not None:
            assert member.md5 is not None
            self._hashing.update(member.md5, data)
            member.file.write(data)

    def _descriptor(self) -> None:
        member = self._member
        assert member is not None
        sizes = 16 if member.zip64 else 8
        if len(self._head) == 4:
            self._want = (4 if bytes(self._head) == DESCRIPTOR_SIGNATURE else 0) + 4 + sizes
            return
        body = bytes(self._head[4:] if bytes(self._head[:4]) == DESCRIPTOR_SIGNATURE else self._head)
        crc, compress_size, file_size = struct.unpack("<IQQ" if member.zip64 else "<III", body)
        member.crc, member.compress_size, member.file_size = crc, compress_size, file_size
        if compress_size != member.read:
            raise _bad(N_("{name!r}: its data descriptor gives {compress_size} compressed bytes, not {read}"),
                       name=member.name, compress_size=compress_size, read=member.read)
        self._end_member(member)

    def _end_member(self, member: _Member) -> None:
        self._seal(member)
        self._member = None
        self._head = bytearray()
        self._state, self._want = HEADER, 4

    def _start_spool(self, offset: int) -> None:
        """From ``offset`` on, the bytes are kept as they are, for ``finish`` to read with the directory."""
        self._spool = open(self.spool_path, "wb")  # noqa: SIM115 - closed in finish/close
        self._spool_start = offset
        self._spool.write(self._head)
        self._head = bytearray()
        self._state = SPOOL

    # ----- the end -----

    def finish(self) -> UnpackedFolder:
        """Check the central directory against what was unpacked; unpack what was spooled."""
        if self._state != SPOOL:
            self.close()
            raise _bad(N_("the archive is truncated: it ends before its central directory"))
        assert self._spool is not None
        self._spool.close()
        with open(self.spool_path, "rb") as spool:
            try:
                archive = zipfile.ZipFile(_SpooledTail(spool, self._spool_start, self._offset))  # type: ignore[arg-type]
            except (zipfile.BadZipFile, NotImplementedError, EOFError, OSError, ValueError) as error:
                raise _bad(N_("not a readable zip archive: {error}"), error=error) from None
            with archive:
                try:
                    self._check_directory(archive)
                except (zipfile.BadZipFile, NotImplementedError, EOFError, zlib.error, UnicodeDecodeError,
                        RuntimeError) as error:  # what zipfile raises reading a spooled member
                    raise _bad(N_("not a readable zip archive: {error}"), error=error) from None
        self.spool_path.unlink()
        if not self.folder.files:
            raise _bad(N_("the archive holds no files"))
        os.chmod(self.root, 0o755)
        return self.folder

    def _check_directory(self, archive: zipfile.ZipFile) -> None:
        infos = archive.infolist()
        if len(infos) > self.limits.max_members:
            raise _unsafe(N_("the archive has {infos_count} members; the limit is {max_members}"),
                             infos_count=len(infos), max_members=self.limits.max_members)
        streamed = dict(self.members)
        spooled: list[zipfile.ZipInfo] = []
        for info in infos:
            _safe_member_path(info.orig_filename)
            if stat.S_ISLNK(info.external_attr >> 16):
                raise _unsafe(N_("the archive holds a symbolic link: {filename!r}"), filename=info.filename)
            if info.flag_bits & (FLAG_ENCRYPTED | FLAG_STRONG_ENCRYPTION | FLAG_MASKED_HEADERS):
                raise _bad(N_("{filename!r} is encrypted; encrypted archives are not supported"),
                              filename=info.filename)
            if info.header_offset >= self._spool_start:
                spooled.append(info)
                continue
            member = streamed.pop(info.header_offset, None)
            if member is None:
                raise _bad(N_("the central directory names {filename!r} at offset {header_offset}, where the archive "
                              "holds no such member (or names it twice)"),
                              filename=info.filename, header_offset=info.header_offset)
            if (member.name, member.method, member.crc, member.compress_size, member.file_size) != (
                    info.orig_filename, info.compress_type, info.CRC, info.compress_size, info.file_size):
                raise _bad(N_("the central directory disagrees with the local header of {name!r} (as "
                              "{orig_filename!r}): the archive is corrupt or crafted"),
                              name=member.name, orig_filename=info.orig_filename)
        if streamed:
            hidden = next(iter(streamed.values()))
            raise _bad(N_("{name!r} is not in the archive's central directory"), name=hidden.name)
        for info in spooled:
            self._unpack_spooled(archive, info)
        for member in self.members.values():
            if member.target is not None and member.md5 is not None:
                self.folder.files[member.relative.as_posix()] = member.md5.hexdigest()
                self.folder.bytes += member.written

    def _unpack_spooled(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> None:
        relative = _safe_member_path(info.orig_filename)
        self._check_declared(info.filename, info.compress_size, info.file_size)
        member = _Member(info.header_offset, info.orig_filename, relative, info.compress_type, info.flag_bits,
                         info.CRC, info.compress_size, info.file_size, False, None)
        self._open(member)
        with archive.open(info) as source:  # checks the local header's name and, at the end, the CRC
            while chunk := source.read(CHUNK):
                self._content(member, chunk)
        self._seal(member)

    def _seal(self, member: _Member) -> None:
        """A member's last byte is in: its size and CRC checked, its file closed, and it is counted."""
        if member.written != member.file_size:
            raise _bad(N_("{name!r} holds {written} bytes, not the {file_size} it declares"),
                          name=member.name, written=member.written, file_size=member.file_size)
        if member.crc_seen != member.crc:
            raise _bad(N_("{name!r} fails its CRC check: the archive is corrupt"), name=member.name)
        if member.file is not None:
            member.file.close()
            member.file = None
        self.members[member.offset] = member

    def close(self) -> None:
        if self._member is not None and self._member.file is not None:
            self._member.file.close()
        for member in self.members.values():
            if member.file is not None:
                member.file.close()
        if self._spool is not None:
            self._spool.close()


def _zip64_sizes(extra: bytes, file_size: int, compress_size: int) -> tuple[int, int] | None:
    """The sizes a local header leaves to its zip64 extra field (uncompressed first, as the format says)."""
    position = 0
    while position + 4 <= len(extra):
        kind, length = struct.unpack_from("<HH", extra, position)
        body = extra[position + 4:position + 4 + length]
        position += 4 + length
        if kind != 1:
            continue
        values = list(struct.unpack_from(f"<{len(body) // 8}Q", body)) if len(body) >= 8 else []
        if file_size == ZIP64_MARK:
            if not values:
                return None
            file_size = values.pop(0)
        if compress_size == ZIP64_MARK:
            if not values:
                return None
            compress_size = values.pop(0)
        return file_size, compress_size
    return None


class _SpooledTail(io.RawIOBase):
    """The archive as ``zipfile`` sees it: the spooled bytes at their offsets in the stream, zeros before
    them (already unpacked, so any directory record pointing there fails its signature check)."""

    def __init__(self, spool: BinaryIO, start: int, end: int) -> None:
        self._spool = spool
        self._start = start
        self._end = end
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._end}[whence]
        if base + offset < 0:
            raise OSError("seek before the start of the archive")
        self._position = base + offset
        return self._position

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        wanted = min(len(buffer), max(self._end - self._position, 0))
        hole = min(max(self._start - self._position, 0), wanted)
        view = memoryview(buffer)
        view[:hole] = bytes(hole)
        filled = hole
        if wanted > hole:
            self._spool.seek(self._position + hole - self._start)
            filled += self._spool.readinto(view[hole:wanted])
        self._position += filled
        return filled


def unpack_image_archive(archive: Path, destination: Path, limits: ArchiveLimits) -> UnpackedFolder:
    """Unpack a zip file of class sub-folders (what an :class:`ArchiveStream` does with an upload)."""
    stream = ArchiveStream(destination, limits, spool=destination.parent / f".{destination.name}.spool")
    try:
        with open(archive, "rb") as source:
            while chunk := source.read(CHUNK):
                stream.write(chunk)
        return stream.finish()
    except BaseException:
        stream.close()
        stream.spool_path.unlink(missing_ok=True)
        shutil.rmtree(destination, ignore_errors=True)
        raise
