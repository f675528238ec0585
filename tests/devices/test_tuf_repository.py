"""The platform's TUF repository: made once with one set of keys however many threads ask for it at once, and
its metadata re-signed before it expires."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

from tuf.api.metadata import Metadata

from aitip.devices.tuf_repository import TufRepository, target_path


def test_repositories_made_at_once_share_one_root_and_its_keys(tmp_path: Path) -> None:
    """Sixteen makers of a new repository at once (registrations arriving together): every one hands out the same
    root, and what any of them publishes verifies under it."""
    with ThreadPoolExecutor(16) as pool:
        made = list(pool.map(lambda _: TufRepository(tmp_path / "repo"), range(16)))
    roots = {repository.trusted_root() for repository in made}
    assert len(roots) == 1
    made[7].publish(target_path("fw", "1.0.0"), b"image", {"release": 1})
    root = Metadata.from_bytes(roots.pop())
    for role in ("timestamp", "targets"):
        name = "timestamp.json" if role == "timestamp" else f"{made[0]._current('snapshot').signed.meta['targets.json'].version}.targets.json"
        signed = Metadata.from_file(str(tmp_path / "repo" / "metadata" / name))
        root.signed.verify_delegate(role, signed.signed_bytes, signed.signatures)


def test_expiring_metadata_is_signed_again_in_time(tmp_path: Path) -> None:
    now = [datetime(2026, 12, 1, tzinfo=timezone.utc)]
    repository = TufRepository(tmp_path / "repo", clock=lambda: now[0])
    repository.publish(target_path("fw", "1.0.0"), b"image", {"release": 1})
    assert repository.keep_fresh() == []
    now[0] += timedelta(hours=13)  # past half of the timestamp's day
    assert repository.keep_fresh() == ["timestamp"]
    timestamp = Metadata.from_file(str(repository.metadata_dir / "timestamp.json")).signed
    assert timestamp.expires == now[0] + timedelta(days=1) and timestamp.version == 3
    now[0] += timedelta(days=4)  # past half of the snapshot's week: snapshot and timestamp
    assert repository.keep_fresh() == ["snapshot", "timestamp"]
    now[0] += timedelta(days=46)  # past half of the targets' 90 days: everything below the root
    assert repository.keep_fresh() == ["targets", "snapshot", "timestamp"]
    assert repository.target(target_path("fw", "1.0.0")) is not None, "a re-signed targets role keeps its targets"
