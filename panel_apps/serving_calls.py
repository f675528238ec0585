"""The Serving page's calls to an endpoint's own route (``<platform>/serve/<project>/<endpoint>/``), which speaks the
inference protocols and is not a row of the operation table: sent with the pages' client, so with the same identity
as every other call (the hub's OAuth token of the viewer, or inside JupyterLab the user server's own token)."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import httpx

from aitip.client import API_PATH
from aitip.errors import Phrase
from aitip.i18n import N_
from panel_apps.api import DashboardAPI
from panel_apps.serve import MODE_VARIABLE

CALL_TIMEOUT = 30.0


def serve_base(api: DashboardAPI) -> str:
    """``<platform>/serve/``: beside the API the pages' client calls; inside JupyterLab the server's relay forwards
    only the API, so the platform's own address the server was given (with the server's token, its owner's)."""
    platform = os.environ.get("AITIP_PLATFORM_URL", "")
    if os.environ.get(MODE_VARIABLE) == "workspace" and platform:
        return platform.rstrip("/") + "/serve/"
    url = api.client.url
    return (url[:-len(API_PATH)] if url.endswith(API_PATH) else url) + "serve/"


def call_endpoint(api: DashboardAPI, project: str, endpoint: str, path: str, body: dict[str, Any] | None = None,
                  language: str | None = None) -> tuple[int, str | None, float, bytes]:
    """One request to the endpoint with the viewer's identity (the pages' client carries it): the status, the
    version that answered (``X-Model-Version``), the round trip in ms and the body, whose refusal is in
    ``language`` (the page's)."""
    url = f"{serve_base(api)}{project}/{endpoint}/{path}"
    http: httpx.Client = api.client._http  # the viewer's token, and its kept-alive connection to the platform
    headers = {"Accept-Language": language} if language else None
    started = time.perf_counter()
    try:
        if body is None:
            response = http.get(url, headers=headers, timeout=CALL_TIMEOUT)
        else:
            response = http.post(url, json=body, headers=headers, timeout=CALL_TIMEOUT)
    except httpx.HTTPError as error:
        said = Phrase(N_("cannot reach {url}: {error}"), url=url, error=str(error)).in_language(language)
        message = json.dumps({"error": said}).encode()
        return 503, None, (time.perf_counter() - started) * 1000, message
    return (response.status_code, response.headers.get("X-Model-Version"), (time.perf_counter() - started) * 1000,
            response.content)
