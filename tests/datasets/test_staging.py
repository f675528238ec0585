"""The staging area on its own: uploads hashed as they arrive (directly or through the worker thread that
``feed`` hands them to), and zip archives unpacked while they stream in. Every archive a streamed unzip
cannot trust is refused (bombs, escaping names, symlinks, a central directory that disagrees with the
local headers, truncation, bad CRCs, hidden members), whatever the size of the pieces it arrives in."""

from __future__ import annotations

import asyncio
import hashlib
import io
import stat
import struct
import zipfile
from pathlib import Path

import pytest
from aitip.datasets.staging import ArchiveLimits, StagedUpload, unpack_image_archive
from aitip.errors import AitipError, PayloadTooLarge

LIMITS = ArchiveLimits(max_members=50, max_total_bytes=16 << 20)
CD = struct.Struct(zipfile.structCentralDir)


class Unseekable(io.RawIOBase):
    """Where ``zipfile`` must write sizes and CRCs after each member's data (data descriptors)."""

    def __init__(self) -> None:
        self.sink = io.BytesIO()

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        return self.sink.write(data)


def make_zip(members: dict[str, bytes], method: int = zipfile.ZIP_STORED, *, streamed: bool = False,
             zip64: bool = False, symlink: str | None = None) -> bytes:
    target = Unseekable() if streamed else io.BytesIO()
    with zipfile.ZipFile(target, "w", method) as archive:
        for name, data in members.items():
            if zip64:
                with archive.open(zipfile.ZipInfo(name), "w", force_zip64=True) as member:
                    member.write(data)
            else:
                archive.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
    return target.sink.getvalue() if isinstance(target, Unseekable) else target.getvalue()


def patch_directory(data: bytes, index: int, **changes: object) -> bytes:
    """Rewrite fields of the ``index``-th central directory record (``name`` of the same length)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        position = archive.start_dir
    out = bytearray(data)
    for _ in range(index):
        fields = CD.unpack_from(out, position)
        position += CD.size + fields[12] + fields[13] + fields[14]
    fields = list(CD.unpack_from(out, position))
    names = {"crc": 9, "compress_size": 10, "file_size": 11, "external_attr": 17, "header_offset": 18}
    for key, value in changes.items():
        if key == "name":
            assert isinstance(value, bytes) and len(value) == fields[12]
            out[position + CD.size:position + CD.size + len(value)] = value
        else:
            fields[names[key]] = value
    CD.pack_into(out, position, *fields)
    return bytes(out)


def drop_last_directory_record(data: bytes) -> bytes:
    """The archive with its last member still in the body but missing from the central directory."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        start, infos = archive.start_dir, archive.infolist()
    records, position = [], start
    for _ in infos:
        fields = CD.unpack_from(data, position)
        length = CD.size + fields[12] + fields[13] + fields[14]
        records.append(data[position:position + length])
        position += length
    directory = b"".join(records[:-1])
    end = struct.pack(zipfile.structEndArchive, zipfile.stringEndArchive, 0, 0, len(records) - 1,
                      len(records) - 1, len(directory), start, 0)
    return data[:start] + directory + end


MEMBERS = {"cat/1.png": b"\x89PNG" + bytes(range(256)) * 40, "cat/2.png": b"\x89PNG-two",
           "dog/1.png": b"\x89PNG" + b"woof" * 5000, "dog/empty.png": b"", "dog/": b"",
           "__MACOSX/cat/._1.png": b"fork", "cat/.DS_Store": b"junk"}
EXPECTED = {name: hashlib.md5(data).hexdigest() for name, data in MEMBERS.items()
            if not name.endswith("/") and not name.startswith("__MACOSX") and "/." not in name}


def stage(tmp_path: Path, data: bytes, piece: int = 1 << 16, limits: ArchiveLimits = LIMITS) -> StagedUpload:
    upload = StagedUpload(tmp_path / "staging", "d.zip", 64 << 20, archive_limits=limits)
    try:
        for start in range(0, len(data), piece):
            upload.write(data[start:start + piece])
        upload.finish()
    except BaseException:
        upload.discard()
        raise
    return upload


def refused(tmp_path: Path, data: bytes, piece: int = 1 << 16, limits: ArchiveLimits = LIMITS) -> AitipError:
    with pytest.raises(AitipError) as raised:
        stage(tmp_path, data, piece, limits)
    assert list((tmp_path / "staging").iterdir()) == []  # nothing left: no member, no spool
    return raised.value


@pytest.mark.parametrize("piece", [1, 7, 4096, 1 << 16, 1 << 30])
@pytest.mark.parametrize(("method", "streamed", "zip64"), [
    (zipfile.ZIP_STORED, False, False), (zipfile.ZIP_DEFLATED, False, False),
    (zipfile.ZIP_DEFLATED, True, False),  # sizes after the data: deflate ends itself
    (zipfile.ZIP_STORED, True, False),  # a stored member of unknown length: spooled, unpacked at the end
    (zipfile.ZIP_STORED, False, True), (zipfile.ZIP_DEFLATED, True, True),
    (zipfile.ZIP_BZIP2, False, False),  # not unpacked in flight: spooled
], ids=["stored", "deflated", "deflated-descriptor", "stored-descriptor", "zip64", "zip64-descriptor", "bzip2"])
def test_archives_unpack_as_they_stream_in(tmp_path: Path, method: int, streamed: bool, zip64: bool,
                                           piece: int) -> None:
    upload = stage(tmp_path, make_zip(MEMBERS, method, streamed=streamed, zip64=zip64), piece)
    folder = upload.folder
    assert folder is not None and folder.files == EXPECTED
    assert folder.bytes == sum(len(MEMBERS[name]) for name in EXPECTED)
    for name in EXPECTED:
        assert (folder.root / name).read_bytes() == MEMBERS[name]
    assert sorted(p.name for p in upload.directory.iterdir()) == ["data"]  # no copy of the archive kept
    upload.discard()
    assert not upload.directory.exists()


def test_stored_and_deflated_members_are_not_spooled(tmp_path: Path) -> None:
    data = make_zip(MEMBERS, zipfile.ZIP_DEFLATED, streamed=True)
    upload = StagedUpload(tmp_path / "staging", "d.zip", 1 << 30, archive_limits=LIMITS)
    upload.write(data)
    stream = upload._sink
    assert len(stream.members) == len(MEMBERS)  # type: ignore[union-attr]
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert stream._spool_start == archive.start_dir  # type: ignore[union-attr] - only the directory
    upload.finish()
    upload.discard()


def test_the_file_based_unpack_streams_the_same_way(tmp_path: Path) -> None:
    archive = tmp_path / "a.zip"
    archive.write_bytes(make_zip(MEMBERS))
    folder = unpack_image_archive(archive, tmp_path / "out" / "data", LIMITS)
    assert folder.files == EXPECTED and sorted(p.name for p in (tmp_path / "out").iterdir()) == ["data"]
    archive.write_bytes(make_zip({"../x.png": b"x"}))
    with pytest.raises(AitipError):
        unpack_image_archive(archive, tmp_path / "bad" / "data", LIMITS)
    assert list((tmp_path / "bad").iterdir()) == []


def _overwrite(data: bytes, position: int, replacement: bytes) -> bytes:
    return data[:position] + replacement + data[position + len(replacement):]


def _good() -> bytes:
    return make_zip({"cat/a.png": b"A" * 3000, "cat/b.png": b"B" * 3000})


BAD = [
    ("zip bomb", make_zip({"cat/bomb.png": b"\x00" * (6 << 20)}, zipfile.ZIP_DEFLATED), "unsafe_archive"),
    ("zip bomb, sizes after the data",
     make_zip({"cat/bomb.png": b"\x00" * (6 << 20)}, zipfile.ZIP_DEFLATED, streamed=True), "unsafe_archive"),
    ("too many bytes", make_zip({f"c/{i}.png": bytes(1 << 20) for i in range(17)}), "unsafe_archive"),
    ("too many bytes, sizes after the data",
     make_zip({f"c/{i}.png": bytes(1 << 20) for i in range(17)}, zipfile.ZIP_DEFLATED, streamed=True),
     "unsafe_archive"),
    ("too many members", make_zip({f"c/{i}.png": b"x" for i in range(51)}), "unsafe_archive"),
    ("..", make_zip({"cat/../../evil.png": b"x"}), "unsafe_archive"),
    ("absolute", make_zip({"/etc/evil.png": b"x"}), "unsafe_archive"),
    ("backslash absolute", make_zip({"\\evil.png": b"x"}), "unsafe_archive"),
    ("drive letter", make_zip({"C:evil.png": b"x"}), "unsafe_archive"),
    (".. in a spooled member", make_zip({"cat/a.png": b"a", "../evil.png": b"x"}, streamed=True),
     "unsafe_archive"),
    ("symlink", make_zip({"cat/a.png": b"x"}, symlink="cat/link.png"), "unsafe_archive"),
    ("symlink, deflated", make_zip({"cat/a.png": b"x"}, zipfile.ZIP_DEFLATED, symlink="cat/link.png"),
     "unsafe_archive"),
    ("a name twice", make_zip({"cat/a.png": b"1", "cat//a.png": b"2"}), "unsafe_archive"),
    ("a file where a folder is", make_zip({"cat": b"1", "cat/a.png": b"2"}), "unsafe_archive"),
    ("directory renames a member", patch_directory(_good(), 1, name=b"cat/x.png"), "bad_archive"),
    ("directory escapes where the header does not", patch_directory(_good(), 1, name=b"../bb.png"),
     "unsafe_archive"),
    ("directory CRC differs", patch_directory(_good(), 0, crc=1234), "bad_archive"),
    ("directory size differs", patch_directory(_good(), 0, file_size=2999, compress_size=2999), "bad_archive"),
    ("directory points between members", patch_directory(_good(), 1, header_offset=7), "bad_archive"),
    ("directory names a member twice", patch_directory(_good(), 1, header_offset=0), "bad_archive"),
    ("a member hidden from the directory", drop_last_directory_record(_good()), "bad_archive"),
    ("directory marks a member a symlink", patch_directory(_good(), 0, external_attr=(stat.S_IFLNK | 0o777) << 16),
     "unsafe_archive"),
    ("corrupt stored data", _good().replace(b"A" * 10, b"A" * 9 + b"Z", 1), "bad_archive"),
    ("corrupt deflate data", _overwrite(make_zip({"cat/a.png": bytes(range(256)) * 20}, zipfile.ZIP_DEFLATED),
                                        30 + len("cat/a.png"), b"\xff" * 8), "bad_archive"),
    ("not a zip", b"this is not a zip at all", "bad_archive"),
    ("no files", make_zip({"cat/": b"", "cat/.hidden": b"x"}), "bad_archive"),
    ("empty archive", make_zip({}), "bad_archive"),
    ("encrypted", _overwrite(_good(), 6, b"\x01\x00"), "bad_archive"),
]


@pytest.mark.parametrize(("case", "data", "code"), BAD, ids=[case[0] for case in BAD])
@pytest.mark.parametrize("piece", [5, 1 << 16])
def test_bad_archives_are_refused_and_leave_nothing(tmp_path: Path, case: str, data: bytes, code: str,
                                                    piece: int) -> None:
    error = refused(tmp_path, data, piece)
    assert (error.status, error.code) == (422, code), error.message


@pytest.mark.parametrize("cut", ["mid local header", "mid data", "before the directory", "mid directory",
                                 "without the end record", "last byte"])
@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_truncated_archives_are_refused(tmp_path: Path, cut: str, method: int) -> None:
    data = make_zip({"cat/a.png": bytes(range(256)) * 50, "cat/b.png": b"B" * 5000}, method)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        start, second = archive.start_dir, archive.infolist()[1].header_offset
    end = {"mid local header": second + 10, "mid data": second + 100, "before the directory": start,
           "mid directory": start + 30, "without the end record": len(data) - 22, "last byte": len(data) - 1}[cut]
    error = refused(tmp_path, data[:end])
    assert (error.status, error.code) == (422, "bad_archive"), error.message


def test_uploads_are_hashed_through_the_worker_with_back_pressure(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from aitip.datasets import staging

    monkeypatch.setattr(staging, "MAX_PENDING", 1 << 16)
    data = bytes(range(256)) * 40_000  # ~10 MB

    async def run() -> tuple[StagedUpload, int]:
        upload = StagedUpload(tmp_path / "staging", "d.csv", 64 << 20)
        paused = 0
        for start in range(0, len(data), 1 << 14):
            waiting = upload.feed(data[start:start + (1 << 14)])
            if waiting is not None:
                paused += 1
                await waiting
        await upload.complete()
        return upload, paused

    upload, paused = asyncio.run(run())
    assert paused > 0 and upload.md5 == hashlib.md5(data).hexdigest() and upload.path.read_bytes() == data
    upload.discard()
    assert list((tmp_path / "staging").iterdir()) == []


def test_fed_archives_unpack_and_refusals_surface(tmp_path: Path) -> None:
    async def run(data: bytes, limit: int = 64 << 20) -> StagedUpload:
        upload = StagedUpload(tmp_path / "staging", "d.zip", limit, archive_limits=LIMITS)
        try:
            for start in range(0, len(data), 1000):
                waiting = upload.feed(data[start:start + 1000])
                if waiting is not None:
                    await waiting
            await upload.complete()
        except BaseException:
            upload.discard()
            raise
        return upload

    upload = asyncio.run(run(make_zip(MEMBERS, zipfile.ZIP_DEFLATED)))
    assert upload.folder is not None and upload.folder.files == EXPECTED
    upload.discard()
    with pytest.raises(AitipError) as raised:
        asyncio.run(run(make_zip({"cat/a.png": b"x" * 5000, "../b.png": b"y"})))
    assert raised.value.code == "unsafe_archive"
    with pytest.raises(PayloadTooLarge):
        asyncio.run(run(make_zip({"cat/a.png": b"x" * 5000}), limit=4000))
    assert list((tmp_path / "staging").iterdir()) == []


def test_discard_while_the_worker_writes_leaves_nothing(tmp_path: Path) -> None:
    async def run() -> StagedUpload:
        upload = StagedUpload(tmp_path / "staging", "d.zip", 1 << 30, archive_limits=LIMITS)
        data = make_zip({f"c/{i}.png": bytes(range(256)) * 400 for i in range(40)})
        for start in range(0, len(data), 1 << 16):
            upload.feed(data[start:start + (1 << 16)])
        upload.discard()  # the client went away mid-upload
        await asyncio.sleep(0.2)
        return upload

    upload = asyncio.run(run())
    assert not upload.directory.exists()


def test_an_empty_upload_is_refused(tmp_path: Path) -> None:
    for archive_limits in (None, LIMITS):
        upload = StagedUpload(tmp_path / "staging", "d.zip", 1 << 20, archive_limits=archive_limits)
        with pytest.raises(AitipError, match="empty"):
            upload.finish()
        upload.discard()
    assert list((tmp_path / "staging").iterdir()) == []


def test_inflated_members_are_hashed_behind_in_bounded_lots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from aitip.datasets import staging

    monkeypatch.setattr(staging, "MAX_PENDING", 1 << 16)
    members = {f"c/{i}.png": (bytes(1 << 20) if i % 2 else bytes(range(256)) * 4096) for i in range(6)}
    data = make_zip(members, zipfile.ZIP_DEFLATED, streamed=True)  # ~6 MB from a few KB

    async def run() -> StagedUpload:
        upload = StagedUpload(tmp_path / "staging", "d.zip", 1 << 30, archive_limits=LIMITS)
        for start in range(0, len(data), 1 << 12):
            waiting = upload.feed(data[start:start + (1 << 12)])
            if waiting is not None:
                await waiting
            assert upload._hashing.size <= 2 << 20  # never the whole inflated member waiting
        await upload.complete()
        return upload

    upload = asyncio.run(run())
    assert upload.folder is not None
    assert upload.folder.files == {name: hashlib.md5(content).hexdigest() for name, content in members.items()}
    upload.discard()
