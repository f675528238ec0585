"""Dataset registrations in the background: a handle at once, followed to its end, which is recorded and
called back signed; a refused callback target or a bad request keeps nothing; a stop mid-way ends failed."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from aitip.datasets.tables import DatasetRegistrationRecord
from aitip.webhooks import verify
from tests.server.conftest import TOKENS
from tests.support.workers import start_worker
from tests.webhooks.conftest import serve

CSV = b"id,score\n1,0.5\n2,0.7\n"
REGISTRATIONS = "projects/alpha/datasets/scores/registrations"


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any]) -> dict[str, Any]:
    jp_server_config["AitipExtension"]["run_jobs"] = True  # start_worker starts the background parts with it
    # The receiver listens on loopback: allowed here as an admin would allow a network.
    jp_server_config["WebhookDispatcher"] = {"allowed_networks": ["127.0.0.1/32"], "base_delay_seconds": 0.1}
    return jp_server_config


async def follow(api: Any, handle: dict[str, Any], user: str = "ann") -> dict[str, Any]:
    for _ in range(600):
        if handle["state"] != "working":
            return handle
        await asyncio.sleep(0.05)
        status, handle = await api("GET", f"{REGISTRATIONS}/{handle['id']}", user=user)
        assert status == 200, handle
    raise AssertionError(f"registration {handle['id']} still working: {handle}")


async def make_alpha(api: Any) -> None:
    assert (await api("POST", "projects", body={"name": "alpha"}))[0] == 201
    assert (await api("POST", "projects/alpha/members", body={"user": "bob", "role": "viewer"}))[0] == 201


async def test_a_registration_answers_at_once_and_its_end_is_called_back_signed(api: Any, jp_serverapp: Any) -> None:
    await make_alpha(api)
    await start_worker(jp_serverapp)  # the platform's background parts, webhook delivery among them
    async with serve() as receiver:
        status, subscription = await api("POST", "projects/alpha/webhooks",
                                         body={"url": receiver.url("/subscribed"), "events": ["dataset.*"]})
        assert status == 201, subscription
        status, handle = await api("POST", REGISTRATIONS, raw=CSV, params={
            "filename": "scores.csv", "message": "first", "callback_url": receiver.url("/callback")})
        assert status == 202, handle
        assert (handle["state"], handle["version"], handle["bytes"], handle["created_by"]) == \
            ("working", None, len(CSV), "ann")
        assert handle["callback_secret"].startswith("whsec_")
        end = await follow(api, handle, user="bob")  # a viewer follows it too
        arrived = {request.path: request for request in await receiver.wait_for(2)}

    assert (end["state"], end["step"], end["version"], end["error"]) == ("registered", "done", 1, None)
    assert end["callback_secret"] is None and end["finished_at"] is not None  # the secret is shown once
    status, version = await api("GET", "projects/alpha/datasets/scores/versions/1")
    assert status == 200 and (version["rows"], version["message"]) == (2, "first")
    callback, published = arrived["/callback"], arrived["/subscribed"]
    verify(handle["callback_secret"], callback.headers, callback.body)
    verify(subscription["secret"], published.headers, published.body)
    assert callback.headers["X-Aitip-Event"] == published.headers["X-Aitip-Event"] == "dataset.registered"
    body = callback.json()
    data = body.get("data", body)
    assert (data["registration_id"], data["state"], data["version"], data["dataset"]) == \
        (handle["id"], "registered", 1, "scores")
    status, listed = await api("GET", REGISTRATIONS, params={"state": "registered"}, user="bob")
    assert status == 200 and [r["id"] for r in listed["registrations"]] == [handle["id"]]


async def test_a_registration_the_quality_gate_rejects_ends_rejected_with_the_failures(
        api: Any, jp_serverapp: Any) -> None:
    await make_alpha(api)
    await start_worker(jp_serverapp)
    status, first = await api("POST", REGISTRATIONS, raw=CSV, params={"filename": "scores.csv"})
    assert status == 202 and (await follow(api, first))["state"] == "registered"
    assert (await api("PATCH", "projects/alpha/datasets/scores", body={"quality_rules": {"min_rows": 5}}))[0] == 200
    async with serve() as receiver:
        status, handle = await api("POST", REGISTRATIONS, raw=CSV, params={
            "filename": "scores.csv", "callback_url": receiver.url("/callback")})
        assert status == 202, handle
        end = await follow(api, handle)
        (callback,) = await receiver.wait_for(1)

    assert (end["state"], end["version"], end["error"]["code"]) == ("rejected", None, "quality_gate_failed")
    assert "min_rows" in json.dumps(end["error"]["detail"])
    assert callback.headers["X-Aitip-Event"] == "dataset.rejected"
    verify(handle["callback_secret"], callback.headers, callback.body)
    status, versions = await api("GET", "projects/alpha/datasets/scores/versions")
    assert [v["version"] for v in versions["versions"]] == [1]


@pytest.mark.parametrize("target", ["http://10.0.0.1/hook", "http://169.254.169.254/latest", "http://[::1]:9/hook"])
async def test_a_callback_the_platform_may_not_reach_is_refused_and_nothing_is_kept(
        api: Any, jp_serverapp: Any, target: str) -> None:
    await make_alpha(api)
    status, refused = await api("POST", REGISTRATIONS, raw=CSV, params={"filename": "scores.csv",
                                                                        "callback_url": target})
    assert status == 422 and refused["error"]["code"] == "webhook_target_refused", refused
    assert await api("GET", REGISTRATIONS) == (200, {"registrations": []})
    assert await api("GET", "projects/alpha/datasets") == (200, {"datasets": []})
    staging = Path(jp_serverapp.web_app.settings["aitip"].datasets.staging_root)
    assert list(staging.iterdir()) == []


async def test_a_registration_a_stopped_platform_left_working_ends_failed_and_calls_back(
        api: Any, jp_serverapp: Any) -> None:
    """The staged file went with the process that stopped; the next start says so on the handle."""
    await make_alpha(api)
    await start_worker(jp_serverapp)
    context = jp_serverapp.web_app.settings["aitip"]
    async with serve() as receiver:
        status, handle = await api("POST", REGISTRATIONS, raw=CSV, params={
            "filename": "scores.csv", "callback_url": receiver.url("/callback")})
        assert status == 202 and (await follow(api, handle))["state"] == "registered"
        (registered,) = await receiver.wait_for(1)
        with context.catalog.session() as session:  # as a platform killed in the middle of one leaves it
            session.get(DatasetRegistrationRecord, handle["id"]).state = "working"
        assert await context.registrations.recover() == 1
        _, failed = await receiver.wait_for(2)

    status, end = await api("GET", f"{REGISTRATIONS}/{handle['id']}")
    assert (end["state"], end["error"]["code"]) == ("failed", "registration_interrupted"), end
    assert "send the file again" in end["error"]["message"]
    assert (registered.headers["X-Aitip-Event"], failed.headers["X-Aitip-Event"]) == \
        ("dataset.registered", "dataset.failed")
    verify(handle["callback_secret"], failed.headers, failed.body)


async def test_a_handle_of_another_dataset_or_project_is_not_found(api: Any, jp_serverapp: Any) -> None:
    await make_alpha(api)
    assert (await api("POST", "projects", body={"name": "beta"}))[0] == 201
    status, handle = await api("POST", REGISTRATIONS, raw=CSV, params={"filename": "scores.csv"})
    assert status == 202
    await follow(api, handle)
    for path in (f"projects/alpha/datasets/other/registrations/{handle['id']}",
                 f"projects/beta/datasets/scores/registrations/{handle['id']}"):
        status, missing = await api("GET", path)
        assert status == 404 and missing["error"]["code"] == "not_found", missing
    status, hidden = await api("GET", f"{REGISTRATIONS}/{handle['id']}", user="erin")  # not a member
    assert status == 404


async def test_the_sdk_and_cli_start_a_registration_from_a_file(api: Any, jp_http_port: int, jp_base_url: str,
                                                               tmp_path: Path) -> None:
    import contextlib
    import io

    from aitip import Client
    from aitip.cli import main

    await make_alpha(api)
    data = tmp_path / "scores.csv"
    data.write_bytes(CSV)
    url = f"http://127.0.0.1:{jp_http_port}{jp_base_url}"

    def with_the_sdk() -> Any:
        with Client(url=url, token=TOKENS["ann"]) as client:
            return client.ops.registrations.create(project="alpha", dataset="scores", file=str(data))

    def with_the_cli() -> tuple[int, str]:
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            code = main(["--url", url, "--token", TOKENS["ann"], "--json", "registrations", "create",
                         "--project", "alpha", "--dataset", "scores", "--file", str(data)])
        return code, out.getvalue()

    handle = await asyncio.to_thread(with_the_sdk)
    assert handle.state == "working" and handle.filename == "scores.csv"
    code, printed = await asyncio.to_thread(with_the_cli)
    assert code == 0, printed
    second = json.loads(printed)
    assert second["id"] == handle.id + 1 and second["state"] == "working"
    ends = [await follow(api, {"id": each, "state": "working"}) for each in (handle.id, second["id"])]
    assert sorted(end["version"] for end in ends) == [1, 2]


async def test_registrations_of_a_new_dataset_at_once_each_get_a_version(api: Any, jp_serverapp: Any) -> None:
    """They race to create the dataset's row and to claim the same number; the losers claim again."""
    await make_alpha(api)
    answers = await asyncio.gather(*(api("POST", REGISTRATIONS, raw=CSV + f"{n},0.{n}\n".encode(),
                                         params={"filename": "scores.csv", "message": f"#{n}"}) for n in range(4)))
    assert [status for status, _ in answers] == [202] * 4, answers
    ends = [await follow(api, handle) for _, handle in answers]
    assert [end["state"] for end in ends] == ["registered"] * 4, [end["error"] for end in ends]
    assert sorted(end["version"] for end in ends) == [1, 2, 3, 4]


async def test_every_registration_is_in_the_audit_trail(api: Any, jp_serverapp: Any) -> None:
    """The waiting route's and the background's: who registered which version, and the handle they got."""
    from sqlalchemy import select

    from aitip.audit import AuditEventRecord

    await make_alpha(api)
    assert (await api("POST", "projects/alpha/datasets/scores/versions", raw=CSV,
                      params={"filename": "scores.csv"}))[0] == 201
    status, handle = await api("POST", REGISTRATIONS, raw=CSV, params={"filename": "scores.csv"})
    assert status == 202 and (await follow(api, handle))["version"] == 2
    with jp_serverapp.web_app.settings["aitip"].catalog.session() as session:
        trail = [(event.actor, event.action, event.target, event.detail) for event in session.scalars(
            select(AuditEventRecord).where(AuditEventRecord.target == "dataset:alpha/scores")
            .order_by(AuditEventRecord.id))]
    assert [(actor, action, (detail or {}).get("version"), (detail or {}).get("registration"))
            for actor, action, _target, detail in trail] == [
        ("ann", "dataset.write", 1, None), ("ann", "dataset.write", None, handle["id"]),
        ("ann", "dataset.write", 2, None)]
