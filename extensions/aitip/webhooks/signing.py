"""Signatures on outgoing webhooks, and the check a receiver runs on them.

Every delivery carries ``X-Aitip-Timestamp`` (unix seconds) and ``X-Aitip-Signature: v1=<hex>``, the
HMAC-SHA256 of ``"<timestamp>.<raw body>"`` under the subscriber's secret. Signing the timestamp with the
body lets a receiver refuse replays of an old delivery; ``X-Aitip-Delivery`` (stable across retries) lets it
drop duplicates, since delivery is at least once.

This module needs only the standard library, so a receiver can use :func:`verify` on its own::

    from aitip.webhooks.signing import verify, SignatureError

    try:
        verify(secret, request.headers, request.body)
    except SignatureError:
        return 400
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping

TIMESTAMP_HEADER = "X-Aitip-Timestamp"
SIGNATURE_HEADER = "X-Aitip-Signature"
DELIVERY_HEADER = "X-Aitip-Delivery"
EVENT_HEADER = "X-Aitip-Event"
SCHEME = "v1"
SECRET_PREFIX = "whsec_"
DEFAULT_TOLERANCE_SECONDS = 300


class SignatureError(ValueError):
    """The delivery is not signed with the secret, or is too old (or too far ahead) to trust."""


def new_secret() -> str:
    """A fresh signing secret: 256 random bits, prefixed so that it is recognizable in a leak scan."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def _as_bytes(value: bytes | str) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


def signature(secret: str, timestamp: int, body: bytes | str) -> str:
    """The hex HMAC-SHA256 of ``"<timestamp>.<body>"`` under ``secret``."""
    message = str(int(timestamp)).encode("ascii") + b"." + _as_bytes(body)
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signed_headers(secret: str, body: bytes, *, event: str, delivery_id: str,
                   timestamp: int | None = None) -> dict[str, str]:
    """The four ``X-Aitip-*`` headers of one delivery attempt (a fresh timestamp per attempt)."""
    stamp = int(time.time()) if timestamp is None else int(timestamp)
    return {
        TIMESTAMP_HEADER: str(stamp),
        SIGNATURE_HEADER: f"{SCHEME}={signature(secret, stamp, body)}",
        DELIVERY_HEADER: delivery_id,
        EVENT_HEADER: event,
    }


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Look a header up whatever the mapping's case rules (a dict, tornado's or httpx's headers)."""
    value = headers.get(name)
    if value is not None:
        return value
    wanted = name.lower()
    for key, candidate in headers.items():
        if key.lower() == wanted:
            return candidate
    return None


def verify(secret: str, headers: Mapping[str, str], body: bytes | str,
           tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS, *, now: float | None = None) -> int:
    """Check a delivery's signature; return its timestamp, or raise :class:`SignatureError` saying why.

    ``body`` must be the raw bytes received (not re-serialized JSON). The timestamp must lie within
    ``tolerance_seconds`` of ``now`` either way. Several ``v1=`` values (comma-separated) are accepted, any
    one matching, so that a secret can be rotated without a gap."""
    stamp_text = _header(headers, TIMESTAMP_HEADER)
    signed = _header(headers, SIGNATURE_HEADER)
    if not stamp_text or not signed:
        raise SignatureError(f"the request lacks {TIMESTAMP_HEADER} or {SIGNATURE_HEADER}")
    try:
        stamp = int(stamp_text.strip())
    except ValueError:
        raise SignatureError(f"{TIMESTAMP_HEADER} is not unix seconds: {stamp_text[:40]!r}") from None
    age = (time.time() if now is None else now) - stamp
    if abs(age) > tolerance_seconds:
        raise SignatureError(f"the timestamp is {int(age)} s from now, outside the {tolerance_seconds} s "
                             "tolerance (a replay, or a clock that is off)")
    expected = signature(secret, stamp, body).encode("ascii")
    offered = [part.strip()[len(SCHEME) + 1:] for part in signed.split(",")
               if part.strip().startswith(f"{SCHEME}=")]
    matched = False
    for candidate in offered:  # every candidate is compared, so timing says nothing about which matched
        matched |= hmac.compare_digest(expected, candidate.encode("ascii", "replace"))
    if not matched:
        raise SignatureError("the signature does not match the body and timestamp under this secret")
    return stamp
