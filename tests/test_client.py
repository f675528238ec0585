"""Where the SDK finds the platform, and how the CLI prints."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from aitip.cli import main as cli_main
from aitip.cli import table
from aitip.client import AitipAPIError, Client, NotConfigured, resolve_endpoint, save_credentials


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AITIP_URL", "AITIP_TOKEN", "JUPYTERHUB_SERVICE_URL", "JUPYTERHUB_SERVICE_PREFIX",
                 "JUPYTERHUB_API_TOKEN", "AITIP_PLATFORM_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AITIP_CONFIG_DIR", str(tmp_path / "config"))


def test_nothing_configured_says_what_to_do() -> None:
    with pytest.raises(NotConfigured, match="aitip login"):
        resolve_endpoint()


def test_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AITIP_URL", "http://h:8000/services/aitip")
    monkeypatch.setenv("AITIP_TOKEN", "t")
    assert resolve_endpoint() == ("http://h:8000/services/aitip/api/aitip/v1/", "t")


def test_inside_a_user_server_the_own_relay_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:41234/user/ann/")
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/user/ann/")
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "server-token")
    monkeypatch.setenv("AITIP_PLATFORM_URL", "http://127.0.0.1:8181/services/aitip/")
    assert resolve_endpoint() == ("http://127.0.0.1:41234/user/ann/api/aitip/v1/", "server-token")


def test_saved_login_is_used_and_private(tmp_path: Path) -> None:
    path = save_credentials("http://hub/services/aitip/", "saved", "ann")
    assert path.stat().st_mode & 0o077 == 0
    assert json.loads(path.read_text())["user"] == "ann"
    assert resolve_endpoint() == ("http://hub/services/aitip/api/aitip/v1/", "saved")


def test_tables_align_and_say_when_empty() -> None:
    assert table([], ["name"]) == "(none)"
    rendered = table([{"name": "alpha", "role": "admin", "archived": False},
                      {"name": "b", "role": None, "archived": True}], ["name", "role", "archived"])
    assert rendered.splitlines() == ["NAME   ROLE   ARCHIVED", "alpha  admin  no", "b      -      yes"]


def test_experiment_calls_send_mlflow_searches_and_parse_typed_answers() -> None:
    run = {"run_id": "a" * 32, "run_name": "job-1", "experiment_id": "1", "status": "FINISHED", "start_time": 1,
           "end_time": 2, "user": "ann", "job_id": 1, "params": {"lr": "0.1"}, "metrics": {"acc": 0.9}, "tags": {}}
    answers = {
        "/api/aitip/v1/projects/lab/runs": [{"runs": [run], "next_page_token": "t1"},
                                            {"runs": [{**run, "run_id": "b" * 32}], "next_page_token": None}],
        "/api/aitip/v1/projects/lab/compare": [{"runs": [run, run], "params": {"lr": {"a" * 32: "0.1"}},
                                                "differing_params": [], "metrics": {}, "curves": {}}],
        f"/api/aitip/v1/runs/{'a' * 32}/metric-history": [{"key": "acc", "total_points": 1, "points": [
            {"step": 0, "timestamp": 5, "value": None}]}],
        "/api/aitip/v1/projects/lab/models": [{"models": [{"name": "m", "description": None, "aliases": {"c": 1},
                                                           "versions": []}]}],
    }
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=answers[request.url.path].pop(0))

    client = Client("http://platform", "tok")
    client._http = httpx.Client(base_url=client.url, transport=httpx.MockTransport(answer))
    runs = list(client.iter_runs("lab", filter="metrics.acc > 0.5", order_by=["metrics.acc DESC", "params.lr"]))
    assert [r.run_id for r in runs] == ["a" * 32, "b" * 32]
    first, second = seen[0].url.params, seen[1].url.params
    assert first.get_list("order_by") == ["metrics.acc DESC", "params.lr"] and first["filter"] == "metrics.acc > 0.5"
    assert "page_token" not in first and second["page_token"] == "t1"
    compared = client.compare_runs("lab", ["a" * 32, "b" * 32], keys=["acc"])
    assert seen[-1].url.params.get_list("run") == ["a" * 32, "b" * 32] and compared.params["lr"]["a" * 32] == "0.1"
    history = client.metric_history("a" * 32, "acc", max_points=10)
    assert seen[-1].url.params["max_points"] == "10" and history.points[0].value is None
    assert client.models("lab").models[0].aliases == {"c": 1}


# ----- uploads that ask first (Expect: 100-continue), and answers that are not the API's -----

WAIT = 60.0  # seconds any step of a scripted server may take on a loaded machine


class Peer:
    """One accepted connection of a scripted server: read the request's head and body, answer by hand."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.sock.settimeout(WAIT)
        self.buffer = b""
        self.head: dict[str, str] = {}
        self.body_bytes = 0

    def read_head(self) -> dict[str, str]:
        while b"\r\n\r\n" not in self.buffer:
            data = self.sock.recv(65536)
            assert data, "the client closed before sending its headers"
            self.buffer += data
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        self.head = {"request-line": lines[0]}
        self.head.update({k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])})
        return self.head

    def read_body(self, size: int) -> None:
        """Read ``size`` bytes of body (or until the client closes)."""
        taken = min(len(self.buffer), size)
        self.buffer = self.buffer[taken:]
        self.body_bytes += taken
        while self.body_bytes < size:
            data = self.sock.recv(min(1 << 20, size - self.body_bytes))
            if not data:
                return
            self.body_bytes += len(data)

    def read_until_closed(self) -> None:
        """Drop what comes until the client closes (the client's close is the event waited on)."""
        self.body_bytes += len(self.buffer)
        self.buffer = b""
        while data := self.sock.recv(1 << 20):
            self.body_bytes += len(data)

    def answer(self, status: str, body: bytes = b"", content_type: str = "application/json", *,
               interim: bool = False) -> None:
        if interim:
            self.sock.sendall(f"HTTP/1.1 {status}\r\n\r\n".encode())
            return
        self.sock.sendall(f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
                          f"\r\n".encode() + body)


class ScriptedServer:
    """A real TCP server on loopback; each connection is handed to the next script, in a thread."""

    def __init__(self, *scripts: Callable[[Peer], None]) -> None:
        self.scripts = list(scripts)
        self.peers: list[Peer] = []
        self.errors: list[BaseException] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/services/aitip/"
        self.threads: list[threading.Thread] = []
        self.acceptor = threading.Thread(target=self._accept, daemon=True)
        self.acceptor.start()

    def _accept(self) -> None:
        for script in self.scripts:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            peer = Peer(sock)
            self.peers.append(peer)
            thread = threading.Thread(target=self._run, args=(script, peer), daemon=True)
            thread.start()
            self.threads.append(thread)

    def _run(self, script: Callable[[Peer], None], peer: Peer) -> None:
        try:
            script(peer)
        except BaseException as error:  # noqa: BLE001 - reported by done()
            self.errors.append(error)
        finally:
            peer.sock.close()

    def done(self) -> list[Peer]:
        self.acceptor.join(WAIT)
        for thread in self.threads:
            thread.join(WAIT)
        self.listener.close()
        assert not self.errors, self.errors
        return self.peers


class CountingBody:
    """An upload body of ``chunks`` MiB made as it is read, counting what was taken."""

    def __init__(self, chunks: int) -> None:
        self.chunks = chunks
        self.taken = 0

    @property
    def length(self) -> int:
        return self.chunks << 20

    def __iter__(self) -> Iterator[bytes]:
        piece = bytes(1 << 20)
        for _ in range(self.chunks):
            self.taken += 1
            yield piece


FORBIDDEN = json.dumps({"error": {"code": "forbidden", "message": "viewers cannot add dataset versions",
                                  "detail": None}}).encode()
HUB_PAGE = b"""<!DOCTYPE HTML>
<html><head><meta charset="utf-8"><title>JupyterHub</title>
<link rel="stylesheet" href="/hub/static/css/style.min.css"/><script>window.hub = {"base": "/hub/"};</script>
</head><body><nav class="navbar"><a href="/hub/home">Home</a><a href="/hub/token">Token</a></nav>
<div id="main"><div class="error"><h1>503 : Service Unavailable</h1>
<p>Your server appears to be down. Try restarting it <a href="/hub/home">from the hub</a></p></div></div>
<script type="text/javascript">function _remove_redirects_from_url() { return "<p>"; }</script></body></html>"""


def upload(server: ScriptedServer, body: CountingBody, **options: float) -> Any:
    from aitip.http_expect import send_expecting_continue

    with httpx.Client(base_url=server.url) as http:
        request = http.build_request("POST", "api/aitip/v1/projects/lab/datasets/d/versions",
                                     params={"filename": "d.csv"}, headers={"Authorization": "token t"})
        return send_expecting_continue(http, request, iter(body), body.length,
                                       timeout=httpx.Timeout(WAIT), **options)


def test_a_refusal_before_100_continue_means_the_body_is_not_sent() -> None:
    def refuse(peer: Peer) -> None:
        head = peer.read_head()
        assert head["expect"] == "100-continue" and head["content-length"] == str(8 << 20)
        peer.answer("403 Forbidden", FORBIDDEN)
        peer.read_until_closed()

    server = ScriptedServer(refuse)
    body = CountingBody(8)
    response = upload(server, body)
    (peer,) = server.done()
    assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden"
    assert (body.taken, peer.body_bytes) == (0, 0)


def test_after_100_continue_the_body_is_sent_whole() -> None:
    def accept(peer: Peer) -> None:
        head = peer.read_head()
        assert head["request-line"].startswith("POST /services/aitip/api/aitip/v1/projects/lab/datasets/d/versions"
                                               "?filename=d.csv ")
        assert head["authorization"] == "token t" and head["content-length"] == str(3 << 20)
        peer.answer("100 Continue", interim=True)
        peer.read_body(3 << 20)
        peer.answer("201 Created", b'{"version": 1}')

    server = ScriptedServer(accept)
    response = upload(server, CountingBody(3))
    (peer,) = server.done()
    assert (response.status_code, response.json(), peer.body_bytes) == (201, {"version": 1}, 3 << 20)


def test_a_server_that_ignores_the_expectation_gets_the_body_after_a_while() -> None:
    def silent(peer: Peer) -> None:
        assert "expect" in peer.read_head()
        peer.read_body(2 << 20)
        peer.answer("201 Created", b"{}")

    server = ScriptedServer(silent)
    response = upload(server, CountingBody(2), continue_timeout=0.2)
    (peer,) = server.done()
    assert (response.status_code, peer.body_bytes) == (201, 2 << 20)


def test_a_refusal_while_the_body_is_sent_stops_it() -> None:
    """configurable-http-proxy says 100 Continue itself; the platform's refusal then comes mid-body."""
    def proxy_like(peer: Peer) -> None:
        peer.read_head()
        peer.answer("100 Continue", interim=True)
        peer.read_body(1 << 20)
        peer.answer("403 Forbidden", FORBIDDEN)
        peer.read_until_closed()

    server = ScriptedServer(proxy_like)
    body = CountingBody(2000)  # 2 GB if it were all sent
    response = upload(server, body)
    (peer,) = server.done()
    assert response.status_code == 403
    assert body.taken < 200 and peer.body_bytes < (200 << 20), (body.taken, peer.body_bytes)


def test_expectation_failed_is_retried_plainly() -> None:
    def no_expectations(peer: Peer) -> None:
        peer.read_head()
        peer.answer("417 Expectation Failed", b"")

    def plain(peer: Peer) -> None:
        assert "expect" not in peer.read_head()
        peer.read_body(1 << 20)
        peer.answer("201 Created", b"{}")

    server = ScriptedServer(no_expectations, plain)
    response = upload(server, CountingBody(1))
    first, second = server.done()
    assert (response.status_code, first.body_bytes, second.body_bytes) == (201, 0, 1 << 20)


def test_sdk_and_cli_say_an_html_error_page_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """An answer that is not the API's (here a page like the hub's, behind the proxy) becomes one line of
    words: the status, its reason and what the page says, never its markup."""
    def html_page(peer: Peer) -> None:
        peer.read_head()
        peer.answer("503 Service Unavailable", HUB_PAGE, "text/html; charset=UTF-8")
        peer.read_until_closed()

    data = tmp_path / "d.csv"
    data.write_bytes(b"a,b\n" * 1000)
    server = ScriptedServer(html_page, html_page, html_page)
    with Client(server.url, "t") as client:
        with pytest.raises(AitipAPIError) as refused:
            client.datasets.add("lab", "d", data)
        with pytest.raises(AitipAPIError) as listing:
            client.datasets.list("lab")
    for error in (refused.value, listing.value):
        assert (error.status, error.code) == (503, "http_error")
        assert error.message == ("Service Unavailable: Your server appears to be down. Try restarting it from "
                                 "the hub")
    monkeypatch.setenv("AITIP_URL", server.url)
    monkeypatch.setenv("AITIP_TOKEN", "t")
    assert cli_main(["data", "add", "d", str(data), "-P", "lab"]) == 1
    server.done()
    err = capsys.readouterr().err
    assert err.splitlines() == ["aitip: Service Unavailable: Your server appears to be down. Try restarting it "
                                "from the hub (503 http_error)"]
    assert "<" not in err


@pytest.mark.parametrize(("content_type", "body", "message"), [
    ("text/plain", b"upstream connect error\n\nreset before headers", "Bad Gateway: upstream connect error reset "
                                                                          "before headers"),
    ("application/json", b'{"detail": "not ours"}', 'Bad Gateway: {"detail": "not ours"}'),
    ("application/octet-stream", b"\x00\x01", "Bad Gateway: (2 bytes of application/octet-stream)"),
    ("text/html", b"<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1>"
                  b"</center><hr><center>nginx</center></body></html>", "Bad Gateway"),
    ("text/html", b"<html><body>" + b"<p>word</p>" * 200 + b"</body></html>", None),
])
def test_other_answers_are_summed_up_in_one_line(content_type: str, body: bytes, message: str | None) -> None:
    def answer(peer: Peer) -> None:
        peer.read_head()
        peer.answer("502 Bad Gateway", body, content_type)

    server = ScriptedServer(answer)
    with Client(server.url, "t") as client, pytest.raises(AitipAPIError) as refused:
        client.me()
    server.done()
    text = refused.value.message
    assert "\n" not in text and "<" not in text
    if message is not None:
        assert text == message
    else:
        assert text.startswith("Bad Gateway: word — word") and len(text) < 300 and text.endswith("…")


@pytest.mark.parametrize(("status", "headers", "body", "message"), [
    ("200 OK", "", b"<html><head><title>Welcome to nginx!</title></head><body><h1>Welcome to nginx!</h1>"
                   b"</body></html>", "OK: Welcome to nginx!"),
    ("302 Found", "Location: /hub/login?next=%2Fservices%2Faitip%2F\r\n", b"",
     "Found: redirected to /hub/login?next=%2Fservices%2Faitip%2F"),
])
def test_a_success_that_is_not_json_is_told_in_words_too(status: str, headers: str, body: bytes,
                                                         message: str) -> None:
    """A URL pointing at something else may answer 200 with a page, or redirect: no traceback, one line."""
    def answer(peer: Peer) -> None:
        peer.read_head()
        peer.sock.sendall(f"HTTP/1.1 {status}\r\n{headers}Content-Type: text/html\r\nContent-Length: {len(body)}"
                          f"\r\n\r\n".encode() + body)

    server = ScriptedServer(answer)
    with Client(server.url, "t") as client, pytest.raises(AitipAPIError) as told:
        client.me()
    server.done()
    assert (told.value.code, told.value.message) == ("http_error", message)


def test_behind_an_environment_proxy_the_upload_goes_through_httpx(monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTP_PROXY applies: the request goes to the proxy through the caller's httpx client (no expectation,
    its Content-Length kept), as before."""
    def proxy(peer: Peer) -> None:
        head = peer.read_head()
        assert head["request-line"].startswith("POST http://platform.invalid/services/aitip/api/aitip/v1/")
        assert "expect" not in head and head["content-length"] == str(1 << 20)
        peer.read_body(1 << 20)
        peer.answer("201 Created", b"{}")

    server = ScriptedServer(proxy)
    monkeypatch.setenv("HTTP_PROXY", server.url.split("/services/")[0])
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with Client("http://platform.invalid/services/aitip/", "t") as client:
        assert client.upload("projects/lab/datasets/d/versions", CountingBody(1), 1 << 20) == {}
    (peer,) = server.done()
    assert peer.body_bytes == 1 << 20


def test_a_body_that_fails_to_read_raises_its_own_error() -> None:
    """A folder's file that changes while it is sent (ZipStream's FileChanged, an OSError) is that error,
    not a connection failure waited on for an answer."""
    from aitip.datasets.zipstream import FileChanged
    from aitip.http_expect import send_expecting_continue

    def accept(peer: Peer) -> None:
        peer.read_head()
        peer.answer("100 Continue", interim=True)
        peer.read_until_closed()

    def body() -> Iterator[bytes]:
        yield bytes(1 << 20)
        raise FileChanged(Path("pets/cat/1.png"), 10, 20)

    server = ScriptedServer(accept)
    with httpx.Client(base_url=server.url) as http, pytest.raises(FileChanged, match="changed size"):
        send_expecting_continue(http, http.build_request("POST", "x"), body(), 2 << 20, timeout=httpx.Timeout(WAIT))
    (peer,) = server.done()
    assert peer.body_bytes == 1 << 20


def test_import_aitip_offers_the_client_and_what_it_raises_without_importing_them_at_once() -> None:
    """``import aitip`` stays cheap (kernels, the hub); ``aitip.Client`` and the errors a program catches come
    with the first use."""
    import subprocess
    import sys

    import aitip

    assert aitip.Client is Client and aitip.AitipAPIError is AitipAPIError and aitip.NotConfigured is NotConfigured
    with pytest.raises(AttributeError, match="no attribute 'Klient'"):
        aitip.Klient  # noqa: B018
    loaded = subprocess.run([sys.executable, "-c", "import aitip, sys; print('aitip.client' in sys.modules)"],
                            capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "False"


def sse_head(peer: Peer) -> None:
    peer.sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                      b"Connection: close\r\n\r\nretry: 2000\n\n")


def sse_event(peer: Peer, event_id: int) -> None:
    data = {"id": event_id, "job_id": 7, "attempt": 1, "at": "2026-12-07T10:00:00Z", "kind": "output",
            "data": {"text": f"tick {event_id}\n"}}
    peer.sock.sendall(f"id: {event_id}\nevent: output\ndata: {json.dumps(data)}\n\n".encode())


def test_a_followed_job_survives_a_broken_stream_and_the_proxy_saying_the_platform_is_down() -> None:
    """The stream breaks after two events, then the hub's proxy answers 503 (the platform service restarting):
    the follower reconnects with the last event's id each time and reads on to the end, nothing twice."""
    asked_after: list[str | None] = []

    def two_then_reset(peer: Peer) -> None:
        asked_after.append(peer.read_head().get("last-event-id"))
        sse_head(peer)
        sse_event(peer, 1)
        sse_event(peer, 2)
        peer.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST, not FIN

    def proxy_down(peer: Peer) -> None:
        asked_after.append(peer.read_head().get("last-event-id"))
        peer.answer("503 Service Unavailable", HUB_PAGE, "text/html")

    def the_rest(peer: Peer) -> None:
        asked_after.append(peer.read_head().get("last-event-id"))
        sse_head(peer)
        sse_event(peer, 3)
        peer.sock.sendall(b'event: end\ndata: {"state": "succeeded"}\n\n')

    server = ScriptedServer(two_then_reset, proxy_down, the_rest)
    client = Client(server.url, "tok")
    seen = [event.id for event in client.follow_job(7)]
    server.done()
    assert seen == [1, 2, 3]
    assert asked_after == [None, "2", "2"]


def test_following_gives_up_on_a_refusal_at_once_and_on_a_platform_down_for_too_long() -> None:
    def not_yours(peer: Peer) -> None:
        peer.read_head()
        peer.answer("403 Forbidden", FORBIDDEN)

    server = ScriptedServer(not_yours)
    with pytest.raises(AitipAPIError) as refused:
        list(Client(server.url, "tok").follow_job(7))
    assert refused.value.status == 403 and len(server.done()) == 1

    def proxy_down(peer: Peer) -> None:
        peer.read_head()
        peer.answer("503 Service Unavailable", HUB_PAGE, "text/html")

    server = ScriptedServer(*[proxy_down] * 4)
    started = time.monotonic()
    with pytest.raises(AitipAPIError) as down:
        list(Client(server.url, "tok").follow_job(7, give_up_after=1.0))
    given_up_after = time.monotonic() - started
    server.listener.shutdown(socket.SHUT_RDWR)  # no fourth call comes: wake the accepting thread
    tries = len(server.done())
    # Tried at 0, 0.5 and 1.5 s (the third past the second allowed): three, or two when a try was slow.
    assert down.value.status == 503 and tries in (2, 3) and 1.0 < given_up_after < WAIT, (tries, given_up_after)
