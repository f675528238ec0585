"""Opaque, tamper-proof page tokens: the position in a result list, signed (HMAC-SHA256) together with
the query it belongs to, so a forged, altered or reused-for-another-query token is a clear 400."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json

from ..errors import BadRequest

_SIGNATURE_BYTES = 16


class InvalidPageToken(BadRequest):
    code = "invalid_page_token"


def _encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class PageTokens:
    """Issues and reads page tokens with one secret key (tokens do not outlive the key)."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the page token key needs at least 16 bytes")
        self._key = key

    def _sign(self, body: str) -> str:
        return _encode(hmac.new(self._key, body.encode("ascii"), hashlib.sha256).digest()[:_SIGNATURE_BYTES])

    def issue(self, query_id: str, cursor: int | str) -> str:
        body = _encode(json.dumps({"q": query_id, "c": cursor}, separators=(",", ":")).encode("utf-8"))
        return f"{body}.{self._sign(body)}"

    def read(self, token: str, query_id: str) -> int | str:
        """The cursor in ``token``; raises :class:`InvalidPageToken` unless this service issued it for
        this very query."""
        body, _, signature = token.partition(".")
        try:
            body.encode("ascii")
            valid = bool(signature) and hmac.compare_digest(signature.encode("ascii"), self._sign(body).encode("ascii"))
        except UnicodeEncodeError:
            valid = False
        if not valid:
            raise InvalidPageToken("invalid page_token: pass the next_page_token of the previous page unchanged "
                                   "(tokens do not survive a platform restart; start again from the first page)")
        try:
            payload = json.loads(_decode(body))
            owner, cursor = payload["q"], payload["c"]
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise InvalidPageToken("invalid page_token: it cannot be read") from exc
        if owner != query_id:
            raise InvalidPageToken("this page_token belongs to another query (the experiment, filter or order "
                                   "changed); start again from the first page")
        if not isinstance(cursor, (int, str)) or isinstance(cursor, bool):
            raise InvalidPageToken("invalid page_token: it cannot be read")
        return cursor
