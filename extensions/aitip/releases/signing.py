"""The platform's release signature: Ed25519 over the release's content in canonical JSON.

The private key lives in the platform's own home (mode 0600, made on first use); its public half is served, so
anyone can check a release without the platform. Every promotion checks the signature again first, so a
release whose content was changed after it was signed (in the catalog, say) goes no further."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ..atomic_files import write_atomic
from ..errors import Phrase
from ..i18n import N_

ALGORITHM = "ed25519"


def canonical(content: dict[str, Any]) -> bytes:
    """One byte string per content: keys sorted, no spaces, UTF-8 (what is hashed and signed)."""
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def digest(content: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(content)).hexdigest()


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True)
class Signature:
    key_id: str
    content_sha256: str
    value: str  # base64 of the 64-byte Ed25519 signature of the canonical content


@dataclass(frozen=True)
class Check:
    valid: bool
    reason: Phrase | None = None  # why not

    @property
    def english(self) -> str:
        return str(self.reason or "")


class ReleaseSigner:
    """The platform's signing key, loaded from (or made in) ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "ed25519-private.pem"
        self._private = self._load_or_make()
        self.public_key = self._private.public_key()
        self.key_id = key_id(self.public_key)

    def _load_or_make(self) -> Ed25519PrivateKey:
        if self.path.is_file():
            loaded = serialization.load_pem_private_key(self.path.read_bytes(), password=None)
            if not isinstance(loaded, Ed25519PrivateKey):
                raise ValueError(f"{self.path} holds no Ed25519 key")
            return loaded
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.path.parent, 0o700)
        made = Ed25519PrivateKey.generate()
        pem = made.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())
        write_atomic(self.path, pem, mode=0o600)
        return made

    def public_pem(self) -> str:
        return self.public_key.public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")

    def sign(self, content: dict[str, Any]) -> Signature:
        value = self._private.sign(canonical(content))
        return Signature(self.key_id, digest(content), base64.b64encode(value).decode("ascii"))

    def check(self, content: dict[str, Any], signature: Signature) -> Check:
        """Whether ``signature`` is this key's over exactly ``content``."""
        return check(self.public_key, self.key_id, content, signature)


def check(public_key: Ed25519PublicKey, expected_key_id: str, content: dict[str, Any],
          signature: Signature) -> Check:
    if signature.key_id != expected_key_id:
        return Check(False, Phrase(N_("signed with key {key}, not the platform's key {platform_key}"),
                                   key=signature.key_id, platform_key=expected_key_id))
    if digest(content) != signature.content_sha256:
        return Check(False, Phrase(N_("the content is not what was signed: its SHA-256 differs from the signed one")))
    try:
        raw = base64.b64decode(signature.value, validate=True)
        public_key.verify(raw, canonical(content))
    except (InvalidSignature, ValueError):
        return Check(False, Phrase(N_("the signature does not verify against the content")))
    return Check(True)
