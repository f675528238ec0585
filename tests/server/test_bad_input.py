"""Bad input is a clear 4xx and writes nothing."""

from __future__ import annotations

from typing import Any

import pytest

LONG = "x" * 201
# (method, path, raw body, extra headers, query, expected status, expected error code)
CASES: list[tuple[str, str, bytes | None, dict[str, str], dict[str, str], int, str]] = [
    ("POST", "projects", b'{"name": ', {}, {}, 400, "invalid_json"),
    ("POST", "projects", b"", {}, {}, 400, "invalid_json"),
    ("POST", "projects", b'{"name": NaN}', {}, {}, 400, "invalid_json"),
    ("POST", "projects", b'{"name": "caf\xe9"}', {}, {}, 400, "invalid_encoding"),
    ("POST", "projects", b'{"name": "ok\xff\xfe"}', {}, {}, 400, "invalid_encoding"),
    ("POST", "projects", b'["beta"]', {}, {}, 422, "invalid_input"),
    ("POST", "projects", b'{"name": 5}', {}, {}, 422, "invalid_input"),
    ("POST", "projects", b'{"name": "beta", "description": ["a"]}', {}, {}, 422, "invalid_input"),
    ("POST", "projects", b'{"name": "beta", "owner": "eve"}', {}, {}, 422, "invalid_input"),
    ("POST", "projects", b'{"name": "' + b"a" * 64 + b'"}', {}, {}, 422, "invalid_input"),
    ("POST", "projects", b'{"name": "beta", "display_name": "' + LONG.encode() + b'"}', {}, {}, 422,
     "invalid_input"),
    ("POST", "projects", b'{"name": "beta", "display_name": "two\\nlines"}', {}, {}, 422, "invalid_input"),
    ("POST", "projects", b'{"name": "Beta"}', {}, {}, 422, "invalid_input"),
    ("POST", "projects", b'{"name": "../etc"}', {}, {}, 422, "invalid_input"),
    ("POST", "projects", b'{"name": "-beta"}', {}, {}, 422, "invalid_input"),
    ("POST", "projects", b'{"name": "beta"}', {"Content-Type": "text/plain"}, {}, 415, "unsupported_media_type"),
    ("POST", "projects", b'{"name": "beta", "description": "' + b"d" * (1024 * 1024) + b'"}', {}, {}, 413,
     "payload_too_large"),
    ("PATCH", "projects/alpha", b"{}", {}, {}, 422, "invalid_input"),
    ("PATCH", "projects/alpha", b'{"display_name": null, "description": null}', {}, {}, 422, "invalid_input"),
    ("POST", "projects/alpha/members", b'{"user": "bob", "group": "g", "role": "viewer"}', {}, {}, 422,
     "invalid_input"),
    ("POST", "projects/alpha/members", b'{"role": "viewer"}', {}, {}, 422, "invalid_input"),
    ("POST", "projects/alpha/members", b'{"user": "bob", "role": "owner"}', {}, {}, 422, "invalid_input"),
    ("POST", "projects/alpha/members", b'{"user": "bob"}', {}, {}, 422, "invalid_input"),
    ("POST", "projects/alpha/members", b'{"user": "a/b", "role": "viewer"}', {}, {}, 422, "invalid_input"),
    ("POST", "projects/alpha/members", b'{"user": "' + b"u" * 256 + b'", "role": "viewer"}', {}, {}, 422,
     "invalid_input"),
    ("PATCH", "projects/alpha/members/users/ann", b'{"role": 3}', {}, {}, 422, "invalid_input"),
    ("GET", "projects", None, {}, {"limit": "0"}, 422, "invalid_input"),
    ("GET", "projects", None, {}, {"limit": "many"}, 422, "invalid_input"),
    ("GET", "projects", None, {}, {"sort": "name"}, 422, "invalid_input"),
    ("GET", "projects/NOT-A-NAME", None, {}, {}, 404, "not_found"),
    # Past SQLite's integers these were 500s (found by the OpenAPI test's generated requests).
    ("GET", "jobs", None, {}, {"offset": "99999999999999999999"}, 422, "invalid_input"),
    ("GET", "jobs/1/events", None, {}, {"after": "99999999999999999999"}, 422, "invalid_input"),
    ("GET", "jobs/1/events", None, {"Last-Event-ID": "99999999999999999999"}, {}, 422, "invalid_input"),
    ("POST", "jobs", b'{"project": "alpha", "notebook": {"cells": [], "metadata": {}, "nbformat": 4, '
     b'"nbformat_minor": 5}, "inputs": [{"dataset": "a..b", "version": 1}]}', {}, {}, 422, "invalid_input"),
]


@pytest.mark.parametrize(("method", "path", "raw", "headers", "query", "status", "code"), CASES,
                         ids=[f"{c[0]} {c[1]} #{i}" for i, c in enumerate(CASES)])
async def test_bad_input_is_refused_and_nothing_is_written(api, method: str, path: str, raw: bytes | None,
                                                           headers: dict[str, str], query: dict[str, str],
                                                           status: int, code: str) -> None:
    assert (await api("POST", "projects", body={"name": "alpha"}))[0] == 201
    before = await _state(api)
    got, body = await api(method, path, raw=raw, headers=headers, params=query)
    assert (got, body["error"]["code"]) == (status, code), body
    assert body["error"]["message"], "the message must say what to fix"
    assert await _state(api) == before


async def test_validation_errors_name_the_field(api) -> None:
    status, body = await api("POST", "projects", raw=b'{"name": "Beta"}')
    assert status == 422
    assert body["error"]["detail"][0]["field"] == "name"
    assert "name" in body["error"]["message"] and "pattern" in body["error"]["message"]


async def _state(api: Any) -> Any:
    _, projects = await api("GET", "projects", params={"include_archived": "true"})
    _, members = await api("GET", "projects/alpha/members")
    return projects["total"], [(p["name"], p["description"], p["display_name"]) for p in projects["items"]], \
        members["items"]
