"""The device client against an attacker who controls the mirror it downloads from (not the platform's keys):
each of TUF's classic attacks is refused, and nothing reaches a slot. The repository is the platform's own
(:class:`TufRepository`); the mirror serves a copy of it that each test tampers with."""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from securesystemslib.signer import CryptoSigner, SSlibKey
from tuf.api.metadata import Metadata
from tuf.api.serialization.json import JSONSerializer

from aitip.device_client.updater import DeviceUpdater, InstallRefused, Provisioned
from aitip.devices.tuf_repository import TufRepository, target_path
from aitip.releases.signing import ReleaseSigner

HARDWARE = "board-x1"


class Mirror:
    """A plain HTTP server over ``root`` (``ota/<project>/metadata|targets``); extra files override paths."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.served: dict[str, bytes] = {}
        mirror = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                if self.path in mirror.served:
                    data = mirror.served[self.path]
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    try:
                        self.wfile.write(data)
                    except ConnectionError:  # the device stopped reading an endless answer, as it should
                        pass
                    return
                super().do_GET()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                      functools.partial(Handler, directory=str(root)))
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def platform(tmp_path: Path) -> dict[str, Any]:
    repository = TufRepository(tmp_path / "repo")
    return {"repository": repository, "signer": ReleaseSigner(tmp_path / "signing")}


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[Mirror]:
    served = tmp_path / "mirror"
    served.mkdir()
    mirror = Mirror(served)
    yield mirror
    mirror.close()


def sync(repository: TufRepository, mirror: Mirror) -> Path:
    """Copy the repository's public files to the mirror, as the platform serves them."""
    where = mirror.root / "ota" / "p"
    shutil.rmtree(where, ignore_errors=True)
    where.mkdir(parents=True)
    shutil.copytree(repository.metadata_dir, where / "metadata")
    shutil.copytree(repository.targets_dir, where / "targets")
    return where


def release(platform: dict[str, Any], version: str, image: bytes) -> dict[str, Any]:
    """Publish a firmware image and the update a check-in would name for it."""
    import hashlib

    content = {"kind": "firmware", "name": "fw", "version": version,
               "subject": {"firmware": {"sha256": hashlib.sha256(image).hexdigest(), "length": len(image),
                                        "hardware": HARDWARE}}}
    signature = platform["signer"].sign(content)
    platform["repository"].publish(target_path("fw", version), image, {"release": 1})
    return {"rollout": 1, "release": 1, "name": "fw", "version": version, "target": target_path("fw", version),
            "content": content, "signature": signature.value, "key_id": signature.key_id}


def device(platform: dict[str, Any], mirror: Mirror, tmp_path: Path) -> DeviceUpdater:
    provisioned = Provisioned(platform_url=mirror.url, project="p", token="aitipdev_test",
                              trusted_root=platform["repository"].trusted_root(),
                              release_key_pem=platform["signer"].public_pem(), hardware=HARDWARE)
    return DeviceUpdater(provisioned, tmp_path / "device")


def refused(updater: DeviceUpdater, update: dict[str, Any], reason: str) -> None:
    before = updater.slots.state.copy()
    with pytest.raises(InstallRefused, match=reason):
        updater.verified_image(update)
    assert updater.install(update) is False
    assert updater.report is not None and updater.report["state"] == "failed"
    assert updater.slots.state == before, "a refused update touched the slots"


def test_an_honest_update_installs_into_the_other_slot(platform, mirror, tmp_path) -> None:
    update = release(platform, "1.0.0", b"firmware one" * 100)
    sync(platform["repository"], mirror)
    updater = device(platform, mirror, tmp_path)
    assert updater.install(update) is True
    assert (updater.slots.active, updater.slots.version) == ("b", "1.0.0")
    assert updater.slots.image("b") == b"firmware one" * 100
    assert updater.report == {"rollout": 1, "state": "installed", "message": "running 1.0.0 from slot b"}


def test_a_rollback_attack_is_refused(platform, mirror, tmp_path) -> None:
    """The mirror serves an older timestamp than the device has seen."""
    first = release(platform, "1.0.0", b"one")
    where = sync(platform["repository"], mirror)
    old_timestamp = (where / "metadata" / "timestamp.json").read_bytes()
    updater = device(platform, mirror, tmp_path)
    assert updater.install(first)
    second = release(platform, "1.1.0", b"two")
    sync(platform["repository"], mirror)
    assert updater.install(second)
    mirror.served["/ota/p/metadata/timestamp.json"] = old_timestamp
    refused(updater, second, "BadVersionNumberError")


def test_a_freeze_attack_is_refused(platform, mirror, tmp_path) -> None:
    """The mirror keeps serving a timestamp that has expired (the platform re-signs before expiry; a frozen
    mirror does not pass that on)."""
    platform["repository"] = TufRepository(tmp_path / "short", lifetimes={"timestamp": timedelta(seconds=2)})
    update = release(platform, "1.0.0", b"one")
    sync(platform["repository"], mirror)
    updater = device(platform, mirror, tmp_path)
    expires = Metadata.from_file(str(platform["repository"].metadata_dir / "timestamp.json")).signed.expires
    time.sleep(max(0.0, (expires - datetime.now(timezone.utc)).total_seconds()) + 0.5)
    refused(updater, update, "ExpiredMetadataError")


def test_a_tampered_target_is_refused(platform, mirror, tmp_path) -> None:
    update = release(platform, "1.0.0", b"good image" * 50)
    where = sync(platform["repository"], mirror)
    for path in (where / "targets").rglob("*.bin"):
        path.write_bytes(b"evil image" * 50)
    refused(device(platform, mirror, tmp_path), update, "LengthOrHashMismatchError|hash")


def test_a_mix_and_match_attack_is_refused(platform, mirror, tmp_path) -> None:
    """The mirror serves the targets metadata of an earlier publication where the snapshot names a later one."""
    release(platform, "1.0.0", b"one")
    where = sync(platform["repository"], mirror)
    old_targets = sorted((where / "metadata").glob("*.targets.json"))[-1].read_bytes()
    update = release(platform, "1.1.0", b"two")
    where = sync(platform["repository"], mirror)
    newest = sorted((where / "metadata").glob("*.targets.json"), key=lambda p: int(p.name.split(".")[0]))[-1]
    mirror.served[f"/ota/p/metadata/{newest.name}"] = old_targets
    refused(device(platform, mirror, tmp_path), update, "BadVersionNumberError")


def test_an_arbitrary_key_is_refused(platform, mirror, tmp_path) -> None:
    """The attacker signs a timestamp of its own with a key the root never named."""
    update = release(platform, "1.0.0", b"one")
    where = sync(platform["repository"], mirror)
    forged = Metadata.from_file(str(where / "metadata" / "timestamp.json"))
    forged.signed.version += 1
    private = Ed25519PrivateKey.generate()
    forged.signatures.clear()
    forged.sign(CryptoSigner(private, SSlibKey.from_crypto(private.public_key())))
    mirror.served["/ota/p/metadata/timestamp.json"] = forged.to_bytes(JSONSerializer())
    refused(device(platform, mirror, tmp_path), update, "UnsignedMetadataError")


def test_endless_data_is_refused(platform, mirror, tmp_path) -> None:
    """The mirror answers the timestamp with far more bytes than a timestamp may have."""
    update = release(platform, "1.0.0", b"one")
    sync(platform["repository"], mirror)
    mirror.served["/ota/p/metadata/timestamp.json"] = b"{" + b" " * (20 * 1024 * 1024)
    refused(device(platform, mirror, tmp_path), update, "DownloadLengthMismatchError")


def test_a_release_signed_by_another_key_is_refused_after_tuf_passed(platform, mirror, tmp_path) -> None:
    """TUF vouches for the bytes; the release signature for what the platform released: both must hold."""
    update = release(platform, "1.0.0", b"one")
    sync(platform["repository"], mirror)
    other = ReleaseSigner(tmp_path / "other-signing").sign(update["content"])
    updater = device(platform, mirror, tmp_path)
    assert updater.verified_image(update) == b"one"  # TUF passes it
    assert updater.install({**update, "signature": other.value}) is False
    assert "release signature does not hold" in updater.report["message"] and updater.slots.version is None


def test_a_device_keeps_its_slot_when_the_new_image_does_not_boot(platform, mirror, tmp_path) -> None:
    update = release(platform, "1.0.0", b"bad boot")
    sync(platform["repository"], mirror)
    updater = device(platform, mirror, tmp_path)
    updater.boot_check = lambda image: "kernel panic" if image == b"bad boot" else None
    assert updater.install(update) is False
    assert updater.slots.active == "a" and updater.slots.version is None
    assert "did not boot: kernel panic" in updater.report["message"]


def test_the_repository_keeps_its_keys_private(platform) -> None:
    keys = platform["repository"].keys_dir
    assert {path.name for path in keys.iterdir()} == {"root.pem", "targets.pem", "snapshot.pem", "timestamp.pem"}
    assert all(path.stat().st_mode & 0o077 == 0 for path in keys.iterdir())
    assert keys.stat().st_mode & 0o077 == 0
    root = json.loads(platform["repository"].trusted_root())
    assert root["signed"]["consistent_snapshot"] is True
    assert all(isinstance(serialization.load_pem_private_key(path.read_bytes(), None), Ed25519PrivateKey)
               for path in keys.iterdir())
