"""Registered versions reach the DVC remote off the registration path, and can be read back through
``dvc.api`` from a clone of the registry that has only Git and the remote: the SDK's direct path."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from aitip.client import AitipAPIError
from aitip.datasets.registry import DataRegistry
from aitip.datasets.sdk import fetch_with_dvc
from aitip.datasets.service import DatasetService
from tests.jobs.conftest import ANN, make_platform

pytestmark = pytest.mark.asyncio
CONTENTS = (b"id,score\n1,0.5\n2,0.25\n", b"id,score\n1,0.5\n2,0.25\n3,0.125\n")


async def _register(datasets: DatasetService, content: bytes):  # noqa: ANN202
    upload = datasets.start_upload("scores.csv")
    upload.write(content)
    upload.finish()
    return await datasets.register(ANN, "lab", "scores", upload)


def _remote_objects(remote: Path) -> set[str]:
    return {f"{p.parent.name}{p.name}" for p in (remote / "files" / "md5").glob("*/*")} if remote.exists() else set()


async def test_versions_are_pushed_and_read_through_dvc_api_from_a_clone(tmp_path: Path) -> None:
    platform = await make_platform(tmp_path)
    remote = tmp_path / "remote"
    datasets = DatasetService(platform.catalog, DataRegistry(tmp_path / "registry", str(remote)), tmp_path / "staging")
    try:
        versions = [await _register(datasets, content) for content in CONTENTS]
        assert datasets.registry.wait_pushed(60) and datasets.registry.push_error is None
        assert _remote_objects(remote) == {v.content_md5 for v in versions}
        clone = tmp_path / "clone"
        subprocess.run(["git", "clone", "-q", str(tmp_path / "registry"), str(clone)], check=True)
        assert not (clone / ".dvc" / "cache").exists()
        for version, content in zip(versions, CONTENTS, strict=True):
            target = tmp_path / "read" / f"v{version.version}.csv"
            assert fetch_with_dvc(str(clone), version, target, remote=str(remote)).read_bytes() == content
        tampered = versions[0].model_copy(update={"content_md5": "0" * 32})
        with pytest.raises(AitipAPIError, match="MD5"):
            fetch_with_dvc(str(clone), tampered, tmp_path / "read" / "bad.csv", remote=str(remote))
        assert not (tmp_path / "read" / "bad.csv").exists() and len(list((tmp_path / "read").iterdir())) == 2
    finally:
        datasets.registry.close()
        platform.catalog.dispose()


async def test_a_failed_push_is_reported_and_retried_with_the_next_version(tmp_path: Path) -> None:
    platform = await make_platform(tmp_path)
    remote = tmp_path / "remote"
    datasets = DatasetService(platform.catalog, DataRegistry(tmp_path / "registry", str(remote)), tmp_path / "staging")
    try:
        shutil.rmtree(remote)
        remote.write_text("not a directory")
        first = await _register(datasets, CONTENTS[0])  # registering does not wait for, or fail with, the push
        assert datasets.registry.wait_pushed(60)
        assert datasets.registry.push_error is not None
        remote.unlink()
        remote.mkdir()
        second = await _register(datasets, CONTENTS[1])
        assert datasets.registry.wait_pushed(60) and datasets.registry.push_error is None
        assert _remote_objects(remote) == {first.content_md5, second.content_md5}
    finally:
        datasets.registry.close()
        platform.catalog.dispose()
