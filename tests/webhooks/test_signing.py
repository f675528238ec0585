"""The signature receivers check: HMAC-SHA256 over "<timestamp>.<body>", timestamped, constant-time compared."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from aitip.webhooks.signing import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureError,
    new_secret,
    signed_headers,
    verify,
)

SECRET = "whsec_test-secret"
BODY = b'{"event":"job.succeeded","data":{"id":1}}'
NOW = 1_800_000_000


def _headers(**overrides: str) -> dict[str, str]:
    headers = signed_headers(SECRET, BODY, event="job.succeeded", delivery_id="d1", timestamp=NOW)
    headers.update(overrides)
    return headers


def test_the_signature_is_the_documented_hmac() -> None:
    headers = _headers()
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert headers == {TIMESTAMP_HEADER: str(NOW), SIGNATURE_HEADER: f"v1={expected}", DELIVERY_HEADER: "d1",
                       EVENT_HEADER: "job.succeeded"}
    assert verify(SECRET, headers, BODY, now=NOW) == NOW


def test_header_names_are_matched_in_any_case() -> None:
    lowered = {key.lower(): value for key, value in _headers().items()}
    assert verify(SECRET, lowered, BODY.decode(), now=NOW + 10) == NOW


@pytest.mark.parametrize(("secret", "headers", "body", "why"), [
    ("whsec_other", _headers(), BODY, "does not match"),
    (SECRET, _headers(), BODY + b" ", "does not match"),
    (SECRET, _headers(**{TIMESTAMP_HEADER: str(NOW + 1)}), BODY, "does not match"),
    (SECRET, _headers(**{SIGNATURE_HEADER: "v0=abc"}), BODY, "does not match"),
    (SECRET, _headers(**{SIGNATURE_HEADER: "v1=zz\u00e9"}), BODY, "does not match"),
    (SECRET, _headers(**{TIMESTAMP_HEADER: "yesterday"}), BODY, "not unix seconds"),
    (SECRET, {EVENT_HEADER: "job.succeeded"}, BODY, "lacks"),
], ids=["wrong secret", "changed body", "changed timestamp", "unknown scheme", "garbage", "bad timestamp",
        "unsigned"])
def test_anything_but_the_signed_body_under_the_secret_is_refused(secret: str, headers: dict[str, str],
                                                                   body: bytes, why: str) -> None:
    with pytest.raises(SignatureError, match=why):
        verify(secret, headers, body, now=NOW)


def test_stale_and_future_timestamps_are_refused() -> None:
    headers = _headers()
    assert verify(SECRET, headers, BODY, now=NOW + 300) == NOW
    with pytest.raises(SignatureError, match="outside the 300 s tolerance"):
        verify(SECRET, headers, BODY, now=NOW + 301)
    with pytest.raises(SignatureError, match="tolerance"):
        verify(SECRET, headers, BODY, now=NOW - 301)
    assert verify(SECRET, headers, BODY, tolerance_seconds=3600, now=NOW + 3000) == NOW


def test_any_of_several_signatures_may_match_so_a_secret_can_rotate() -> None:
    old = _headers()[SIGNATURE_HEADER]
    new = signed_headers("whsec_new", BODY, event="e", delivery_id="d", timestamp=NOW)[SIGNATURE_HEADER]
    headers = _headers(**{SIGNATURE_HEADER: f"{new}, {old}"})
    assert verify(SECRET, headers, BODY, now=NOW) == NOW
    assert verify("whsec_new", headers, BODY, now=NOW) == NOW


def test_secrets_are_fresh_and_recognizable() -> None:
    first, second = new_secret(), new_secret()
    assert first != second and first.startswith("whsec_") and len(first) >= 40
