"""Per-endpoint API keys: ``aitip_<prefix>_<secret>``; the catalog keeps the prefix and the secret's SHA-256,
and the platform a cache of live keys, so that checking a key on every request costs no query."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

PREFIX = "aitip_"


@dataclass(frozen=True)
class KnownKey:
    endpoint_id: int
    secret_sha256: str


def new_key() -> tuple[str, str, str]:
    """(the key as given to its holder, its prefix, the secret's SHA-256)."""
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return f"{PREFIX}{prefix}_{secret}", prefix, hashlib.sha256(secret.encode()).hexdigest()


def split(key: str) -> tuple[str, str] | None:
    if not key.startswith(PREFIX):
        return None
    prefix, _, secret = key[len(PREFIX):].partition("_")
    return (prefix, secret) if prefix and secret else None


class KeyCache:
    def __init__(self) -> None:
        self.keys: dict[str, KnownKey] = {}

    def load(self, rows: list[tuple[str, int, str]]) -> None:
        self.keys = {prefix: KnownKey(endpoint_id, digest) for prefix, endpoint_id, digest in rows}

    def add(self, prefix: str, endpoint_id: int, digest: str) -> None:
        self.keys[prefix] = KnownKey(endpoint_id, digest)

    def drop(self, prefix: str) -> None:
        self.keys.pop(prefix, None)

    def endpoint_of(self, key: str) -> int | None:
        """The endpoint a live key may call, or None."""
        parts = split(key)
        if parts is None:
            return None
        known = self.keys.get(parts[0])
        if known is None:
            return None
        digest = hashlib.sha256(parts[1].encode()).hexdigest()
        return known.endpoint_id if hmac.compare_digest(digest, known.secret_sha256) else None
