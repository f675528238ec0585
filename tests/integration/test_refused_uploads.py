"""Refused uploads through the real hub's configurable-http-proxy (``aitip up``): whatever the body's size,
the client gets the platform's JSON error, never the proxy's 503 page, and the platform keeps serving.

configurable-http-proxy 5.3.0 answers 503 with the hub's HTML error page when the platform closes a
connection under a body it has not read (a reset): for a 3 MB body always, before the platform read and
dropped refused bodies. Bodies here are generated as they are sent, never held in memory."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path

import httpx
import pytest

from aitip.client import AitipAPIError, Client
from tests.support.platform import RunningPlatform

pytestmark = pytest.mark.integration

AITIP = str(Path(sys.executable).parent / "aitip")
KB, MB = 1000, 1000 * 1000
SIZES = [1 * KB, 3 * MB, 200 * MB]
PIECE = bytes(1 << 20)
OVER_THE_LIMIT = (5 << 30) + 1  # max_upload_bytes is 5 GiB by default


class Body:
    """``size`` bytes made as they are read, counting what was taken."""

    def __init__(self, size: int) -> None:
        self.size, self.taken = size, 0

    def __iter__(self) -> Iterator[bytes]:
        while self.taken < self.size:
            piece = PIECE[:min(len(PIECE), self.size - self.taken)]
            self.taken += len(piece)
            yield piece


@pytest.fixture(scope="module")
def log_start(platform: RunningPlatform) -> int:
    """Where the platform's log (hub, proxy, services) stood when this file began."""
    return len(platform.log())


@pytest.fixture(scope="module")
def project(platform: RunningPlatform, people: dict[str, str], log_start: int) -> str:
    with platform.api(people["ann"]) as ann:
        assert ann.post("projects", json={"name": "refusals"}).status_code == 201
        assert ann.post("projects/refusals/members", json={"user": "bob", "role": "viewer"}).status_code == 201
    return "refusals"


def versions_path(project: str, name: str = "d") -> str:
    return f"projects/{project}/datasets/{name}/versions"


def assert_json_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.headers.get("Content-Type", "").startswith("application/json"), response.text[:300]
    assert (response.status_code, response.json()["error"]["code"]) == (status, code), response.text[:300]


def still_serving(platform: RunningPlatform, token: str) -> None:
    with platform.api(token) as api:
        for _ in range(3):
            assert api.get("me").status_code == 200


@pytest.mark.parametrize("size", SIZES, ids=["1KB", "3MB", "200MB"])
def test_a_viewer_upload_without_expect_gets_the_json_403(platform: RunningPlatform, people: dict[str, str],
                                                          project: str, size: int) -> None:
    """A plain client (httpx: no Expect, reads the answer after sending): the platform reads the body and
    drops it, then answers; the proxy passes the answer on."""
    body = Body(size)
    with platform.api(people["bob"]) as bob:
        response = bob.post(versions_path(project), params={"filename": "d.csv"}, content=iter(body),
                            headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
                            timeout=httpx.Timeout(120))
    assert_json_error(response, 403, "forbidden")
    assert body.taken == size
    still_serving(platform, people["bob"])


@pytest.mark.parametrize("size", SIZES, ids=["1KB", "3MB", "200MB"])
def test_a_viewer_upload_from_the_sdk_is_refused_and_stopped(platform: RunningPlatform, people: dict[str, str],
                                                             project: str, size: int) -> None:
    """The SDK asks first (Expect: 100-continue). The proxy answers 100 Continue itself, so the body starts;
    the platform's refusal comes back while it is sent, and the SDK stops."""
    body = Body(size)
    with Client(f"{platform.url}/services/aitip/", people["bob"]) as client, \
            pytest.raises(AitipAPIError) as refused:
        client.upload(versions_path(project), body, size, params={"filename": "d.csv"})
    assert (refused.value.status, refused.value.code) == (403, "forbidden")
    assert "viewer" in refused.value.message
    if size == 200 * MB:
        assert body.taken < size
    still_serving(platform, people["bob"])


def test_an_upload_over_the_limit_gets_the_json_413(platform: RunningPlatform, people: dict[str, str],
                                                    project: str) -> None:
    """5 GiB and a byte, declared: refused on its headers, and the SDK stops sending at once."""
    body = Body(OVER_THE_LIMIT)
    with Client(f"{platform.url}/services/aitip/", people["ann"]) as client, \
            pytest.raises(AitipAPIError) as refused:
        client.upload(versions_path(project), body, OVER_THE_LIMIT, params={"filename": "d.csv"})
    assert (refused.value.status, refused.value.code) == (413, "payload_too_large")
    assert body.taken < 1024 * MB
    still_serving(platform, people["ann"])


@pytest.mark.parametrize("size", [3 * MB, 200 * MB], ids=["3MB", "200MB"])
def test_a_json_body_over_the_limit_gets_the_json_413(platform: RunningPlatform, people: dict[str, str],
                                                      project: str, size: int) -> None:
    """Any route, not only uploads: a JSON body over max_body_bytes (1 MiB), from a plain client."""
    body = Body(size)
    with platform.api(people["ann"]) as ann:
        response = ann.post("projects", content=iter(body), timeout=httpx.Timeout(120),
                            headers={"Content-Type": "application/json", "Content-Length": str(size)})
    assert_json_error(response, 413, "payload_too_large")
    still_serving(platform, people["ann"])


def test_requests_alongside_a_refused_upload_are_served(platform: RunningPlatform, people: dict[str, str],
                                                        project: str) -> None:
    """The proxy keeps its connections to the platform alive and shares them: a connection reset under a
    refused body could fail the requests next to it. While 200 MB are refused, others go on."""
    statuses: list[int] = []
    done = threading.Event()

    def others() -> None:
        with platform.api(people["ann"]) as ann:
            while not done.is_set():
                statuses.append(ann.get(f"projects/{project}/datasets").status_code)

    worker = threading.Thread(target=others)
    worker.start()
    try:
        with platform.api(people["bob"]) as bob:
            for _ in range(2):
                body = Body(200 * MB)
                response = bob.post(versions_path(project), params={"filename": "d.csv"}, content=iter(body),
                                    headers={"Content-Type": "application/octet-stream",
                                             "Content-Length": str(200 * MB)}, timeout=httpx.Timeout(120))
                assert_json_error(response, 403, "forbidden")
    finally:
        done.set()
        worker.join(120)
    assert statuses and set(statuses) == {200}, statuses


def test_after_the_refusals_an_upload_registers(platform: RunningPlatform, people: dict[str, str], project: str,
                                                tmp_path: Path) -> None:
    table = tmp_path / "scores.csv"
    table.write_bytes(b"id,score\n" + b"".join(b"%d,0.%d\n" % (i, i % 10) for i in range(10000)))
    with Client(f"{platform.url}/services/aitip/", people["ann"]) as client:
        version = client.datasets.add(project, "scores", table, message="after the refusals")
    assert (version.version, version.rows) == (1, 10000)


def _cli(platform: RunningPlatform, url: str, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AITIP_URL": url, "AITIP_TOKEN": token}
    return subprocess.run([AITIP, *args], env=env, capture_output=True, text=True, timeout=300)


def test_the_cli_says_a_refusal_in_one_line(platform: RunningPlatform, people: dict[str, str], project: str,
                                            tmp_path: Path) -> None:
    data = tmp_path / "big.csv"
    with data.open("wb") as handle:
        handle.truncate(200 * MB)  # sparse: read as zeros, no disk used
    refused = _cli(platform, f"{platform.url}/services/aitip/", people["bob"], "data", "add", "d", str(data),
                   "-P", project)
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.splitlines() == [f"aitip: dataset.write needs the developer role in project {project!r}; "
                                           "you are viewer (403 forbidden)"], refused.stderr


def test_a_page_that_is_not_the_api_is_told_in_words(platform: RunningPlatform, people: dict[str, str],
                                                     project: str, tmp_path: Path) -> None:
    """A URL that is not the platform's: the hub answers with its HTML error page. The SDK and the CLI say
    its status, reason and message on one line, without markup."""
    wrong = f"{platform.url}/hub/no-such-page/"
    with httpx.Client() as http:
        page = http.get(f"{wrong}api/aitip/v1/me", headers={"Authorization": f"token {people['bob']}"})
    assert page.status_code == 404 and page.headers["Content-Type"].startswith("text/html"), page.text[:300]
    assert "<div" in page.text
    table = tmp_path / "d.csv"
    table.write_bytes(b"a,b\n1,2\n")
    errors = []
    with Client(wrong, people["bob"]) as client:
        for call in (client.me, lambda: client.datasets.add(project, "d", table)):  # GET: 404; POST: 403 (XSRF)
            with pytest.raises(AitipAPIError) as refused:
                call()
            errors.append(refused.value)
    for error in errors:
        reason = HTTPStatus(error.status).phrase
        assert error.status >= 400 and error.code == "http_error"
        assert error.message.startswith(f"{reason}: ") and "<" not in error.message, error.message
        assert "\n" not in error.message and len(error.message) < 300
    assert errors[0].status == 404
    told = _cli(platform, wrong, people["bob"], "data", "add", "d", str(table), "-P", project)
    assert told.returncode == 1 and len(told.stderr.splitlines()) == 1 and "<" not in told.stderr, told.stderr
    assert told.stderr == f"aitip: {errors[1].message} ({errors[1].status} http_error)\n"


def test_a_redirect_is_told_in_words(platform: RunningPlatform, people: dict[str, str]) -> None:
    """A service that does not exist: the hub redirects. Not JSON, so one line saying where to."""
    with Client(f"{platform.url}/services/no-such-service/", people["bob"]) as client, \
            pytest.raises(AitipAPIError) as refused:
        client.me()
    assert 300 <= refused.value.status < 400 and "redirected to " in refused.value.message
    assert "\n" not in refused.value.message and "<" not in refused.value.message


def test_the_proxy_never_reset_a_connection_to_the_platform(platform: RunningPlatform, log_start: int) -> None:
    """Last in this file: nothing above made the proxy see a reset (it logs ECONNRESET and answers 503)."""
    log = platform.log()[log_start:]
    assert "ECONNRESET" not in log
    assert not [line for line in log.splitlines() if " 503 " in line and "/services/aitip/" in line]
