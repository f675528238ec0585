"""A job's end goes out as signed webhooks: to its own ``callback`` and to the project's subscribers; a
callback target the platform may not reach is refused before anything is written."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from aitip.webhooks import verify
from tests.support.notebooks import TRIVIAL
from tests.support.workers import start_worker
from tests.webhooks.conftest import serve


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any]) -> dict[str, Any]:
    jp_server_config["AitipExtension"]["run_jobs"] = True
    jp_server_config["LocalExecutor"] = {"pool_sizes": {"aitip-python": 1}, "max_concurrent_jobs": 2}
    # The receiver listens on loopback: allowed here as an admin would allow a network.
    jp_server_config["WebhookDispatcher"] = {"allowed_networks": ["127.0.0.1/32"], "base_delay_seconds": 0.1}
    return jp_server_config


async def test_a_job_calls_back_signed_and_its_project_subscribers_hear_of_it(api: Any, jp_serverapp: Any) -> None:
    assert (await api("POST", "projects", body={"name": "alpha"}))[0] == 201
    async with serve() as receiver:
        status, subscription = await api("POST", "projects/alpha/webhooks",
                                         body={"url": receiver.url("/subscribed"), "events": ["job.*"]})
        assert status == 201, subscription
        status, job = await api("POST", "jobs", body={"project": "alpha", "notebook": TRIVIAL,
                                                      "callback": {"url": receiver.url("/callback")}})
        assert status == 201, job
        assert job["callback_url"] == receiver.url("/callback") and job["callback_secret"].startswith("whsec_")
        assert (await api("GET", f"jobs/{job['id']}"))[1]["callback_secret"] is None  # shown once
        await start_worker(jp_serverapp)
        arrived = {request.path: request for request in await receiver.wait_for(2)}

    callback, published = arrived["/callback"], arrived["/subscribed"]
    verify(job["callback_secret"], callback.headers, callback.body)
    verify(subscription["secret"], published.headers, published.body)
    assert callback.headers["X-Aitip-Event"] == published.headers["X-Aitip-Event"] == "job.succeeded"
    body = callback.json()
    data = body.get("data", body)
    assert data["job_id"] == job["id"] and data["state"] == "succeeded" and data["project"] == "alpha"
    with pytest.raises(Exception, match="signature"):
        verify(subscription["secret"], callback.headers, callback.body)  # each receiver its own secret


# (A name resolving to loopback is refused too, where loopback is not allowed: tests/webhooks/test_targets.py.)
@pytest.mark.parametrize("target", ["http://10.0.0.1/hook", "http://169.254.169.254/latest", "http://[::1]/hook"])
async def test_a_callback_the_platform_may_not_reach_is_refused_and_no_job_is_made(api: Any, target: str) -> None:
    assert (await api("POST", "projects", body={"name": "alpha"}))[0] == 201
    status, refused = await api("POST", "jobs", body={"project": "alpha", "notebook": TRIVIAL,
                                                      "callback": {"url": target}})
    assert status == 422 and refused["error"]["code"] == "webhook_target_refused", json.dumps(refused)
    assert (await api("GET", "jobs"))[1]["total"] == 0


async def test_a_sweep_calls_back_with_its_end_and_subscribers_hear_of_it(api: Any, jp_serverapp: Any) -> None:
    """No trial logs the objective here (tracking is off), so the sweep ends failed, and says why."""
    assert (await api("POST", "projects", body={"name": "alpha"}))[0] == 201
    async with serve() as receiver:
        status, subscription = await api("POST", "projects/alpha/webhooks",
                                         body={"url": receiver.url("/subscribed"), "events": ["sweep.*"]})
        assert status == 201, subscription
        status, sweep = await api("POST", "sweeps", body={
            "project": "alpha", "notebook": TRIVIAL, "strategy": "grid", "objective": "y",
            "space": {"x": {"type": "grid", "values": [1, 2]}}, "callback": {"url": receiver.url("/callback")}})
        assert status == 201, sweep
        assert sweep["callback_url"] == receiver.url("/callback") and sweep["callback_secret"].startswith("whsec_")
        assert (await api("GET", f"sweeps/{sweep['id']}"))[1]["callback_secret"] is None  # shown once
        await start_worker(jp_serverapp)
        arrived = {request.path: request for request in await receiver.wait_for(2)}

    callback, published = arrived["/callback"], arrived["/subscribed"]
    verify(sweep["callback_secret"], callback.headers, callback.body)
    verify(subscription["secret"], published.headers, published.body)
    assert callback.headers["X-Aitip-Event"] == published.headers["X-Aitip-Event"] == "sweep.failed"
    body = callback.json()
    data = body.get("data", body)
    assert data["sweep_id"] == sweep["id"] and data["state"] == "failed" and data["trials"] == 2
    assert "no trial reported the metric 'y'" in data["reason"]


async def test_a_registered_dataset_version_is_published_to_subscribers(api: Any, jp_serverapp: Any) -> None:
    assert (await api("POST", "projects", body={"name": "alpha"}))[0] == 201
    await start_worker(jp_serverapp)  # the platform's background parts, webhook delivery among them
    async with serve() as receiver:
        status, subscription = await api("POST", "projects/alpha/webhooks",
                                         body={"url": receiver.url("/data"), "events": ["dataset.registered"]})
        assert status == 201, subscription
        status, version = await api("POST", "projects/alpha/datasets/scores/versions", raw=b"a,b\n1,2\n3,4\n",
                                    params={"filename": "scores.csv", "message": "first"})
        assert status == 201, version
        (delivery,) = await receiver.wait_for(1)

    verify(subscription["secret"], delivery.headers, delivery.body)
    assert delivery.headers["X-Aitip-Event"] == "dataset.registered"
    body = delivery.json()
    data = body.get("data", body)
    assert (data["dataset"], data["version"], data["rows"], data["content_md5"]) == \
        ("scores", 1, 2, version["content_md5"])


async def test_a_sweep_callback_the_platform_may_not_reach_is_refused_and_no_sweep_is_made(api: Any) -> None:
    assert (await api("POST", "projects", body={"name": "alpha"}))[0] == 201
    status, refused = await api("POST", "sweeps", body={
        "project": "alpha", "notebook": TRIVIAL, "strategy": "grid", "objective": "y",
        "space": {"x": {"type": "grid", "values": [1]}}, "callback": {"url": "http://169.254.169.254/latest"}})
    assert status == 422 and refused["error"]["code"] == "webhook_target_refused", json.dumps(refused)
    assert (await api("GET", "sweeps", params={"project": "alpha"}))[1]["total"] == 0


async def test_the_cli_submits_with_a_callback_and_prints_the_made_secret_once(
        api: Any, jp_serverapp: Any, jp_http_port: int, jp_base_url: str, tmp_path: Any) -> None:
    import contextlib
    import io

    from aitip.cli import main
    from tests.server.conftest import TOKENS

    assert (await api("POST", "projects", body={"name": "alpha"}))[0] == 201
    notebook = tmp_path / "trivial.ipynb"
    notebook.write_text(json.dumps(TRIVIAL))
    async with serve() as receiver:
        def submit() -> tuple[int, str]:
            err = io.StringIO()
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
                code = main(["--url", f"http://127.0.0.1:{jp_http_port}{jp_base_url}", "--token", TOKENS["ann"],
                             "run", str(notebook), "-P", "alpha", "--callback-url", receiver.url("/cli")])
            return code, err.getvalue()

        code, err = await asyncio.to_thread(submit)
        assert code == 0, err
        secret = err.split("callback secret (shown once; verify each callback with it): ")[1].split()[0]
        await start_worker(jp_serverapp)
        (callback,) = await receiver.wait_for(1)
    verify(secret, callback.headers, callback.body)
    assert callback.headers["X-Aitip-Event"] == "job.succeeded"
