"""The device side of over-the-air updates: check in, and install what the platform names only once TUF verified
it (the project's metadata chain from the provisioned root, then the target's length and hashes) and the
release's Ed25519 signature holds over content naming that image's SHA-256. The image goes into the inactive
A/B slot; the device "reboots" into it (simulated), checks it, and keeps it or falls back to the slot it came
from. Every refusal is reported with its reason.

Nothing here imports the platform's server code: it is what runs on a device (tuf, urllib3, cryptography)."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import urllib3
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from tuf.api import exceptions as tuf_errors
from tuf.ngclient import FetcherInterface, Updater, UpdaterConfig

from ..releases.signing import Signature, check, digest, key_id
from .slots import Slots

log = logging.getLogger(__name__)


class InstallRefused(Exception):
    """The update was not installed: why, for the device's report."""


class DeviceFetcher(FetcherInterface):
    """TUF's downloads with the device's token, held in memory (metadata is small; targets are bounded by the
    signed length, which TUF enforces while reading)."""

    def __init__(self, token: str, *, pool: urllib3.PoolManager | None = None, timeout: float = 30.0) -> None:
        self.headers = {"Authorization": f"Bearer {token}", "User-Agent": "aitip-device"}
        self.pool = pool or urllib3.PoolManager(maxsize=4)
        self.timeout = timeout

    def _fetch(self, url: str) -> Iterator[bytes]:
        try:
            response = self.pool.request("GET", url, headers=self.headers, preload_content=False,
                                         timeout=urllib3.Timeout(self.timeout), retries=False)
        except urllib3.exceptions.TimeoutError as error:
            raise tuf_errors.SlowRetrievalError from error
        if response.status >= 400:
            response.release_conn()
            raise tuf_errors.DownloadHTTPError(f"HTTP {response.status} for {url}", response.status)
        return self._chunks(response)

    @staticmethod
    def _chunks(response: Any) -> Iterator[bytes]:
        try:
            yield from response.stream(65536)
        finally:
            response.release_conn()

    def download_bytes(self, url: str, max_length: int) -> bytes:
        received = bytearray()
        for chunk in self.fetch(url):
            received += chunk
            if len(received) > max_length:
                raise tuf_errors.DownloadLengthMismatchError(f"more than the {max_length} bytes allowed from {url}")
        return bytes(received)


@dataclass(frozen=True)
class Provisioned:
    """What a device was provisioned with (the platform's ``devices.register`` answer)."""

    platform_url: str  # the platform service's base, e.g. http://hub:8000/services/aitip/
    project: str
    token: str
    trusted_root: bytes
    release_key_pem: str
    hardware: str

    @property
    def base(self) -> str:
        return f"{self.platform_url.rstrip('/')}/ota/{self.project}/"

    @classmethod
    def from_answer(cls, platform_url: str, answer: dict[str, Any]) -> Provisioned:
        return cls(platform_url=platform_url, project=answer["device"]["project"], token=answer["token"],
                   trusted_root=json.dumps(answer["trusted_root"]).encode("utf-8"),
                   release_key_pem=answer["release_key_pem"], hardware=answer["device"]["hardware"])


def verify_release(update: dict[str, Any], image: bytes, public_key: Ed25519PublicKey, hardware: str) -> None:
    """The release's signature holds over its content, and the content names exactly this image for this
    hardware; otherwise :class:`InstallRefused`."""
    content = update["content"]
    checked = check(public_key, key_id(public_key), content,
                    Signature(update["key_id"], digest(content), update["signature"]))
    if not checked.valid:
        raise InstallRefused(f"the release signature does not hold: {checked.english}")
    firmware = content.get("subject", {}).get("firmware") or {}
    if firmware.get("sha256") != hashlib.sha256(image).hexdigest() or firmware.get("length") != len(image):
        raise InstallRefused("the image is not the one the signed release names")
    if firmware.get("hardware") != hardware:
        raise InstallRefused(f"the release is for {firmware.get('hardware')!r} hardware, this device is {hardware!r}")


class DeviceUpdater:
    """One device: its TUF metadata cache and A/B slots under ``state_dir``."""

    def __init__(self, provisioned: Provisioned, state_dir: Path, *, pool: urllib3.PoolManager | None = None,
                 boot_check: Callable[[bytes], str | None] | None = None, simulated: bool = False) -> None:
        self.provisioned = provisioned
        self.state_dir = state_dir
        self.metadata_dir = state_dir / "tuf"
        self.metadata_dir.mkdir(parents=True, exist_ok=True)
        self.slots = Slots(state_dir / "slots", durable=not simulated, keep_images=not simulated)
        self.fetcher = DeviceFetcher(provisioned.token, pool=pool)
        self.pool = self.fetcher.pool
        self.public_key = serialization.load_pem_public_key(provisioned.release_key_pem.encode("ascii"))
        # What the new image must pass after the simulated reboot; a message is a failure (the slot falls back).
        self.boot_check = boot_check or (lambda image: None)
        self.report: dict[str, Any] | None = None

    # ----- talking to the platform -----

    def check_in_body(self) -> bytes:
        """What the device says at a check-in: what runs, and how the last update went."""
        body: dict[str, Any] = {"version": self.slots.version, "slot": self.slots.active}
        if self.report is not None:
            body["report"] = self.report
        return json.dumps(body).encode("utf-8")

    def answered(self, status: int, data: bytes) -> dict[str, Any]:
        """The platform's answer to a check-in (the report it carried is delivered once this returns)."""
        if status != 200:
            raise RuntimeError(f"check-in refused: HTTP {status} {data[:300]!r}")
        self.report = None
        return json.loads(data)  # type: ignore[no-any-return]

    def check_in(self, wait: float = 0.0) -> dict[str, Any]:
        """Check in; with ``wait``, the platform holds the call open up to that long until it has something for
        this device (a long poll: an update or a stop arrives at once)."""
        response = self.pool.request("POST", self.provisioned.base + f"check-in?wait={wait:g}",
                                     body=self.check_in_body(),
                                     headers={**self.fetcher.headers, "Content-Type": "application/json"},
                                     retries=False, timeout=wait + 30.0)
        return self.answered(response.status, response.data)

    def poll(self, wait: float = 0.0) -> dict[str, Any]:
        """One round: check in, install an update if told to, and report at once."""
        answer = self.check_in(wait)
        if answer["action"] == "update":
            self.install(answer["update"])
            self.check_in()
        return answer

    # ----- installing -----

    def verified_image(self, update: dict[str, Any]) -> bytes:
        """The target's bytes once TUF verified them, or :class:`InstallRefused` with TUF's reason."""
        base = self.provisioned.base
        try:
            updater = Updater(str(self.metadata_dir), base + "metadata/", None, base + "targets/",
                              fetcher=self.fetcher, config=UpdaterConfig(), bootstrap=self.provisioned.trusted_root)
            updater.refresh()
            info = updater.get_targetinfo(update["target"])
            if info is None:
                raise InstallRefused(f"{update['target']} is not in the signed targets metadata")
            url = f"{base}targets/{Path(info.path).parent}/{info.hashes['sha256']}.{Path(info.path).name}"
            image = self.fetcher.download_bytes(url, info.length)
            info.verify_length_and_hashes(image)
        except tuf_errors.RepositoryError as error:
            raise InstallRefused(f"TUF refused the repository's metadata: {type(error).__name__}: {error}") from error
        except tuf_errors.DownloadError as error:
            raise InstallRefused(f"TUF refused a download: {type(error).__name__}: {error}") from error
        except Exception as error:  # noqa: BLE001 - e.g. a hash mismatch; never installed, always reported
            if isinstance(error, InstallRefused):
                raise
            raise InstallRefused(f"{type(error).__name__}: {error}") from error
        return image

    def _refused(self, update: dict[str, Any], refusal: InstallRefused) -> bool:
        log.warning("update %s refused: %s", update.get("version"), refusal)
        self.report = {"rollout": update["rollout"], "state": "failed", "message": str(refusal)}
        return False

    def install(self, update: dict[str, Any]) -> bool:
        """Verify, write the inactive slot, reboot into it and keep it if it boots; the report says how it went."""
        try:
            image = self.verified_image(update)
            verify_release(update, image, self.public_key, self.provisioned.hardware)
            self.slots.write_inactive(image, update["version"])
        except InstallRefused as refusal:
            return self._refused(update, refusal)
        except OSError as error:  # the slot could not be written: the device keeps what it runs
            return self._refused(update, InstallRefused(f"writing slot {self.slots.inactive} failed: {error}"))
        failure = self.boot_check(image)
        if failure is not None:
            self.slots.fall_back()
            return self._refused(update, InstallRefused(
                f"the new image did not boot: {failure}; back on slot {self.slots.active}"))
        self.slots.commit()
        self.report = {"rollout": update["rollout"], "state": "installed",
                       "message": f"running {update['version']} from slot {self.slots.active}"}
        return True
