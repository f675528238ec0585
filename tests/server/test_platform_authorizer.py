"""In platform mode only the aitip API is served: contents, kernels, terminals and the rest are refused."""

from __future__ import annotations

import pytest
from tornado.httpclient import HTTPClientError

REFUSED = [
    ("GET", ("api", "contents")),
    ("POST", ("api", "contents")),
    ("GET", ("api", "kernels")),
    ("POST", ("api", "kernels")),
    ("GET", ("api", "terminals")),
    ("POST", ("api", "terminals")),
    ("GET", ("api", "sessions")),
    ("GET", ("api", "kernelspecs")),
    ("GET", ("api", "config", "x")),
]


@pytest.mark.parametrize(("method", "parts"), REFUSED, ids=["/".join(p) + f" {m}" for m, p in REFUSED])
async def test_jupyter_apis_are_refused_to_authenticated_users(jp_fetch, method: str, parts: tuple[str, ...]) -> None:
    kwargs = {"method": method, "headers": {"Authorization": "token tok-root"}}
    if method == "POST":
        kwargs["body"] = b"{}"
    with pytest.raises(HTTPClientError) as refused:
        await jp_fetch(*parts, **kwargs)
    assert refused.value.code == 403


async def test_the_aitip_api_is_still_served(jp_fetch) -> None:
    response = await jp_fetch("api", "aitip", "v1", "me", headers={"Authorization": "token tok-root"})
    assert response.code == 200
