"""A folder streamed as a zip (what ``aitip data add NAME FOLDER`` sends): a valid archive of exactly the
announced length, whose members the platform's staging unpacks in flight, with the ZIP64 fallback."""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from pathlib import Path

import pytest
from aitip.datasets import sdk, zipstream
from aitip.datasets.staging import ArchiveLimits, StagedUpload
from aitip.datasets.zipstream import FileChanged, ZipStream

FILES = {"cats/a.png": b"\x89PNG" + os.urandom(3000), "cats/deep/b.png": b"", "dogs/c\u00e9.png": os.urandom(70_000),
         "dogs/d.png": bytes(1 << 20)}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "pets"
    for name, data in FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    (root / "dogs" / "link.png").symlink_to(root / "cats" / "a.png")
    return root


def test_the_stream_is_a_zip_of_the_regular_files_with_the_announced_length(folder: Path) -> None:
    stream = ZipStream(folder)
    data = b"".join(stream)
    assert len(data) == stream.length
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        infos = archive.infolist()
        assert [info.filename for info in infos] == sorted(FILES)  # the symlink left out
        assert all(info.compress_type == zipfile.ZIP_STORED and not info.flag_bits & 0x08 for info in infos)
        assert {info.filename: archive.read(info) for info in infos} == FILES


def test_staging_unpacks_every_member_while_it_streams(folder: Path, tmp_path: Path) -> None:
    stream = ZipStream(folder)
    upload = StagedUpload(tmp_path / "staging", "pets.zip", 1 << 30, archive_limits=ArchiveLimits())
    for chunk in stream:
        upload.write(chunk)
    streamed = upload._sink.members  # type: ignore[union-attr]
    upload.finish()
    assert len(streamed) == len(FILES)  # all unpacked in flight: only the central directory was spooled
    assert upload.folder is not None
    assert upload.folder.files == {name: hashlib.md5(data).hexdigest() for name, data in FILES.items()}
    upload.discard()


def test_past_the_classic_limits_the_sdk_sends_a_zip64_archive(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(zipstream, "MAX_MEMBERS", 3)
    assert not ZipStream(folder).fits
    with pytest.raises(ValueError, match="ZIP64"):
        next(iter(ZipStream(folder)))
    with sdk._upload_body(folder) as (body, length, filename):
        data = b"".join(body)
    assert (len(data), filename) == (length, "pets.zip")
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert {info.filename: archive.read(info) for info in archive.infolist()} == FILES


def test_a_file_is_sent_as_it_is_with_its_length(tmp_path: Path) -> None:
    source = tmp_path / "t.csv"
    source.write_bytes(b"a,b\n1,2\n" * 1000)
    with sdk._upload_body(source) as (body, length, filename):
        assert (b"".join(body), length, filename) == (source.read_bytes(), 8000, "t.csv")


def test_a_file_that_changes_size_while_being_sent_is_an_error(folder: Path) -> None:
    stream = iter(ZipStream(folder))
    next(stream)
    (folder / "cats" / "deep" / "b.png").write_bytes(b"grown")
    with pytest.raises(FileChanged, match="changed size") as raised:
        list(stream)
    # Named as any unreadable file is, so the CLI says it in one line (`aitip: <path>: <why>`), not a traceback.
    assert raised.value.filename == str(folder / "cats" / "deep" / "b.png")
    assert raised.value.strerror == "changed size while it was being sent (0 -> 5 bytes)"
