"""Sandboxed jobs (how simulations run): a kernel in a network of its own, run as its owner, reaching nothing
but the endpoint under test (through the platform's egress proxy), holding no platform credential, reading
only the inputs staged for it, under memory, CPU-time and core limits."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from aitip.isolation.accounts import Accounts
from aitip.jobs.egress import EgressProxy
from aitip.jobs.models import JobState, JobSubmit, Sandbox
from aitip.projects.models import ProjectCreate
from tests.jobs.conftest import ANN, BOB, make_platform
from tests.support.notebooks import notebook
from tests.support.paths import open_to_all_accounts

pytestmark = pytest.mark.asyncio


@contextmanager
def http_server(answer: bytes) -> Iterator[tuple[str, list[str]]]:
    """A server on the platform's loopback that records the paths asked of it."""
    asked: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            asked.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", asked
    finally:
        server.shutdown()
        server.server_close()


PROBE = """
import json, os, resource, socket
import httpx
from aitip.isolation.network import interfaces

report = {"interfaces": interfaces(), "uid": os.getuid(),
          "credential": sorted(name for name in ("AITIP_TOKEN", "AITIP_URL") if name in os.environ),
          "memory": resource.getrlimit(resource.RLIMIT_AS)[0], "cpu": resource.getrlimit(resource.RLIMIT_CPU)[0],
          "cores": len(os.sched_getaffinity(0))}

def connect(host, port):
    try:
        socket.create_connection((host, port), timeout=3).close()
        return "connected"
    except OSError as error:
        return type(error).__name__

report["direct_endpoint"] = connect("127.0.0.1", ENDPOINT_PORT)
report["direct_other"] = connect("127.0.0.1", OTHER_PORT)
report["outside"] = connect("192.0.2.1", 80)
try:
    report["platform_home"] = sorted(os.listdir(PLATFORM_HOME))
except OSError as error:
    report["platform_home"] = type(error).__name__
client = httpx.Client(transport=httpx.HTTPTransport(uds=os.environ["AITIP_EGRESS_SOCKET"]))
endpoint = client.get(ENDPOINT + "/probe")
other = client.get(OTHER + "/probe")
report["through_proxy"] = [endpoint.status_code, endpoint.text, other.status_code, other.headers.get("x-aitip-egress")]
print("REPORT" + json.dumps(report))
"""


async def _platform(tmp_path: Path):
    home = open_to_all_accounts(tmp_path)
    platform = await make_platform(home)
    platform.worker.accounts = Accounts.of_platform(home)
    platform.worker.workspaces.separate_accounts = True
    await platform.worker.start()
    return platform


async def _report(platform, job_id: int) -> dict:
    events, _ = await platform.jobs.events(ANN, job_id)
    text = "".join(e.data.get("text", "") for e in events if e.kind == "output")
    return json.loads(text.split("REPORT", 1)[1])


async def test_a_sandboxed_job_reaches_only_its_endpoint_and_holds_no_credential(tmp_path: Path) -> None:
    platform = await _platform(tmp_path)
    try:
        with http_server(b"endpoint") as (endpoint, endpoint_asked), http_server(b"other") as (other, other_asked):
            source = (PROBE.replace("ENDPOINT_PORT", endpoint.rsplit(":", 1)[1])
                      .replace("OTHER_PORT", other.rsplit(":", 1)[1])
                      .replace("PLATFORM_HOME", repr(str(platform.home)))
                      .replace("ENDPOINT +", f"{endpoint!r} +").replace("OTHER +", f"{other!r} +"))
            job = await platform.jobs.submit(ANN, JobSubmit(
                project="lab", notebook=notebook(source),
                sandbox=Sandbox(egress=[endpoint], memory_mb=3072, cpu_seconds=120, cpus=1)))
            done = await platform.wait(job.id, JobState.succeeded, JobState.failed)
            assert done.state is JobState.succeeded, done.reason
            assert done.sandbox is not None and done.sandbox["egress"] == [endpoint]
            report = await _report(platform, job.id)
        assert endpoint_asked == ["/probe"], "the endpoint under test was reached once, through the proxy"
        assert other_asked == [], "nothing else on the platform's network was reached"
    finally:
        await platform.worker.stop()
        platform.catalog.dispose()
    ann = platform.worker.accounts.lookup("ann")
    assert report["uid"] == ann.uid
    assert report["interfaces"] == ["lo"]
    assert report["direct_endpoint"] == "ConnectionRefusedError", "the platform's loopback is not the kernel's"
    assert report["direct_other"] == "ConnectionRefusedError"
    assert report["outside"] == "OSError", "no route out at all (Network is unreachable)"
    assert report["credential"] == [], "a sandboxed job holds no platform credential"
    assert report["platform_home"] == "PermissionError"
    assert report["through_proxy"] == [200, "endpoint", 403, "refused"]
    assert report["memory"] == 3072 * 1024 * 1024 and report["cpu"] == 120 and report["cores"] == 1


async def test_a_sandboxed_job_cannot_read_another_projects_data(tmp_path: Path) -> None:
    """What Bob's job in his own project wrote (another account's workspace, a project Ann is not in) is out of
    reach of Ann's sandboxed job, as the platform's state is."""
    platform = await _platform(tmp_path)
    try:
        await platform.projects.create(BOB, ProjectCreate(name="vault"))
        holder = await platform.jobs.submit(BOB, JobSubmit(project="vault", notebook=notebook(
            "import os, time\nopen('secret.txt', 'w').write('bob only')\nprint('READY' + os.getcwd())\n"
            "time.sleep(120)")))
        bob_dir = None
        for _ in range(1200):  # until Bob's kernel says where it wrote
            events, _ = await platform.jobs.events(BOB, holder.id)
            text = "".join(e.data.get("text", "") for e in events if e.kind == "output")
            if "READY" in text:
                bob_dir = text.split("READY", 1)[1].strip()
                break
            await asyncio.sleep(0.05)
        assert bob_dir is not None
        job = await platform.jobs.submit(ANN, JobSubmit(project="lab", notebook=notebook(
            f"import json\ntry:\n    found = open({bob_dir + '/secret.txt'!r}).read()\n"
            "except OSError as error:\n    found = type(error).__name__\nprint('REPORT' + json.dumps({'read': found}))"),
            sandbox=Sandbox()))
        done = await platform.wait(job.id, JobState.succeeded, JobState.failed)
        assert done.state is JobState.succeeded, done.reason
        assert (await _report(platform, job.id))["read"] == "PermissionError"
        await platform.jobs.cancel(BOB, holder.id)
    finally:
        await platform.worker.stop()
        platform.catalog.dispose()


async def test_the_egress_proxy_refuses_other_hosts_and_says_why_an_endpoint_is_down(tmp_path: Path) -> None:
    with http_server(b"up") as (endpoint, asked):
        proxy = EgressProxy([endpoint, "http://127.0.0.1:9"])
        await proxy.start()
        try:
            assert len(str(proxy.socket_path)) < 100 and oct(os.stat(proxy.socket_path).st_mode)[-3:] == "600"
            transport = httpx.AsyncHTTPTransport(uds=str(proxy.socket_path))
            async with httpx.AsyncClient(transport=transport) as client:
                assert (await client.get(endpoint + "/a")).text == "up"
                refused = await client.get("http://example.org/")
                down = await client.get("http://127.0.0.1:9/")
        finally:
            await proxy.close()
        assert not proxy.socket_path.exists() and not proxy.socket_path.parent.exists()
    assert asked == ["/a"]
    assert refused.status_code == 403 and "example.org:80" in refused.text and endpoint[7:] in refused.text
    assert down.status_code == 502 and "could not be reached" in down.text
