"""Releases through the platform's API, with the evidence made for real: a training job registers a model
version, the project's evaluation policy evaluates it and its simulation policy simulates it (sandboxed jobs,
MLflow, the dataset registry). A release is refused without that evidence for its exact versions, signed when
requested, approved in the policy's order by people other than the requester, and promoted through the
environments, prod only inside a release window; a release whose content was changed is promoted nowhere."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from datetime import datetime, timedelta, timezone
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select

from aitip.audit import AuditEventRecord
from aitip.releases.signing import canonical
from aitip.releases.tables import ReleaseRecord
from tests.evaluation.conftest import digits_csv
from tests.simulation.test_simulations_api import train
from tests.support.workers import start_worker
from tests.webhooks.conftest import serve

pytestmark = pytest.mark.slow  # trained models and jobs: minutes for the file

RELEASES = "projects/alpha/releases"
POLICY = "projects/alpha/release-policy"
GATED = {"evaluation": True, "simulations": ["custom"], "ordered": True,
         "approvals": [{"role": "maintainer", "count": 1}, {"role": "admin", "count": 1}]}


class Inbox:
    """An SMTP server's handler (aiosmtpd) that keeps every message it is given."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        from email import message_from_bytes, policy

        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 Message accepted"


@pytest.fixture
def smtp_inbox() -> Iterator[tuple[int, Inbox]]:
    """A real SMTP server on this machine's loopback: (its port, what it received)."""
    import socket

    from aiosmtpd.controller import Controller

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield port, inbox
    controller.stop()


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any], tracking_uri: str, smtp_inbox: tuple[int, Inbox]
                     ) -> dict[str, Any]:
    jp_server_config["AitipExtension"]["run_jobs"] = True
    jp_server_config["AitipExtension"]["mlflow_tracking_uri"] = tracking_uri
    jp_server_config["WebhookDispatcher"] = {"allowed_networks": ["127.0.0.1/32"], "base_delay_seconds": 0.1,
                                             "smtp_host": "127.0.0.1", "smtp_port": smtp_inbox[0]}
    return jp_server_config


async def make_alpha(api: Any) -> None:
    assert (await api("POST", "projects", body={"name": "alpha"}))[0] == 201
    for user, role in (("bob", "viewer"), ("carol", "developer"), ("dave", "maintainer"), ("frank", "maintainer")):
        assert (await api("POST", "projects/alpha/members", body={"user": user, "role": role}))[0] == 201


async def evidenced_version(api: Any, jp_serverapp: Any) -> None:
    """digits-mlp version 1 trained by carol on digits version 1, evaluated and simulated (custom) by the
    project's policies; then digits version 2 registered, on which nothing was measured."""
    status, version = await api("POST", "projects/alpha/datasets/digits/versions", raw=digits_csv(),
                                params={"filename": "digits.csv"})
    assert status == 201, version
    await start_worker(jp_serverapp)
    assert (await api("PUT", "projects/alpha/evaluation-policies/digits-mlp", body={
        "dataset": "digits", "thresholds": {"accuracy_score": {"threshold": 0.5, "greater_is_better": True}}}))[0] == 200
    assert (await api("PUT", "projects/alpha/simulation-policies/digits-mlp",
                      body={"template": "custom", "dataset": "digits"}))[0] == 200
    await train(api, "digits-mlp", "mlp", epochs=3)
    for _ in range(3000):
        status, listed = await api("GET", "projects/alpha/simulations", user="bob", params={"model": "digits-mlp"})
        if listed["simulations"] and listed["simulations"][0]["state"] in ("passed", "failed", "error"):
            break
        await asyncio.sleep(0.2)
    assert listed["simulations"][0]["state"] == "passed", listed
    status, second = await api("POST", "projects/alpha/datasets/digits/versions", raw=digits_csv() + b"",
                               params={"filename": "digits.csv", "message": "again"})
    assert status == 201 and second["version"] == 2, second


def window(now: datetime, start: timedelta, end: timedelta) -> dict[str, Any]:
    return {"start": f"{now + start:%H:%M}", "end": f"{now + end:%H:%M}"}


async def test_a_model_release_needs_its_evidence_ordered_approvals_and_a_window(api: Any, jp_serverapp: Any) -> None:
    await make_alpha(api)
    await evidenced_version(api, jp_serverapp)
    status, policy = await api("GET", POLICY, user="bob")
    assert status == 200 and policy["default"] and policy["settings"]["evaluation"], policy
    assert (await api("PUT", POLICY, user="carol", body=GATED))[0] == 403
    status, policy = await api("PUT", POLICY, user="dave", body=GATED)
    assert status == 200 and not policy["default"] and policy["updated_by"] == "dave", policy

    body = {"kind": "model", "name": "digits-mlp", "version": "1.0.0", "model": "digits-mlp", "model_version": 1,
            "dataset": "digits", "changelog": "First release: an MLP on raw pixels.", "metadata": {"ticket": "AI-7"}}
    status, missing = await api("POST", RELEASES, user="carol", body={**body, "model_version": 2})
    assert status == 404 and "has no version 2" in missing["error"]["message"], missing
    # Evidence exists on dataset version 1 only: a release on version 2 lacks both gates, and says so.
    status, refused = await api("POST", RELEASES, user="carol", body={**body, "dataset_version": 2})
    assert status == 422 and refused["error"]["code"] == "evidence_missing", refused
    assert [(item["kind"], item["reason"]) for item in refused["error"]["detail"]] == [
        ("evaluation", "none ended on this dataset version (there are some on version 1)"),
        ("simulation", "none ended on this dataset version (there are some on version 1)")]
    assert "a passed simulation under custom of digits-mlp version 1 on dataset digits version 2" in \
        refused["error"]["message"]
    status, chinese = await api("POST", RELEASES, user="carol", body={**body, "dataset_version": 2},
                                headers={"Accept-Language": "zh-CN"})
    assert status == 422 and chinese["error"]["detail"] == refused["error"]["detail"], chinese
    assert "在 custom 下已通过的仿真（digits-mlp 版本 1，数据集 digits 版本 2）：此数据集版本上没有已结束的（版本 1 上有）" \
        in chinese["error"]["message"], chinese
    assert (await api("GET", RELEASES, user="bob"))[1]["releases"] == []

    status, release = await api("POST", RELEASES, user="carol", body=body)
    assert status == 201, release
    assert (release["state"], release["environment"], release["next_environment"]) == ("requested", "dev", "test")
    assert release["dataset_version"] == 1 and [e["kind"] for e in release["evidence"]] == ["evaluation", "simulation"]
    assert all(e["state"] == "passed" and e["model_version"] == 1 and e["dataset_version"] == 1
               for e in release["evidence"])
    assert release["evidence"][1]["template"].startswith("custom@")
    assert release["content"]["subject"]["model_run_id"] and release["content"]["metadata"] == {"ticket": "AI-7"}
    signature = release["signature"]
    assert signature["content_sha256"] == hashlib.sha256(canonical(release["content"])).hexdigest()
    # Anyone checks it with the public key alone.
    status, key = await api("GET", "release-signing-key", user="bob")
    assert status == 200 and key["key_id"] == signature["key_id"], key
    serialization.load_pem_public_key(key["public_key_pem"].encode()).verify(
        base64.b64decode(signature["signature"]), canonical(release["content"]))
    release_path = f"{RELEASES}/{release['id']}"

    # Ordered stages: a maintainer first, then an admin; never the requester, never twice, never a viewer.
    assert (await api("POST", f"{release_path}/decisions", user="carol", body={"decision": "approve"}))[0] == 403
    assert (await api("POST", f"{release_path}/decisions", user="bob", body={"decision": "approve"}))[0] == 403
    status, approved = await api("POST", f"{release_path}/decisions", user="dave",
                                 body={"decision": "approve", "comment": "evidence read"})
    assert status == 200 and approved["state"] == "requested" and approved["decisions"][0]["stage"] == 0, approved
    status, again = await api("POST", f"{release_path}/decisions", user="dave", body={"decision": "approve"})
    assert status == 409 and "decided on this request already" in again["error"]["message"], again
    status, not_yet = await api("POST", f"{release_path}/decisions", user="frank", body={"decision": "approve"})
    assert status == 403 and "the next approval stage needs the admin role; you are maintainer" in \
        not_yet["error"]["message"], not_yet
    # Staging needs the approval; one step at a time.
    status, early = await api("POST", f"{release_path}/promotions", user="dave", body={"environment": "test"})
    assert status == 200 and early["environment"] == "test", early
    status, skipped = await api("POST", f"{release_path}/promotions", user="dave", body={"environment": "prod"})
    assert status == 409 and skipped["error"]["code"] == "release_promotion_order", skipped
    status, unapproved = await api("POST", f"{release_path}/promotions", user="dave", body={"environment": "staging"})
    assert status == 409 and unapproved["error"]["code"] == "release_not_approved", unapproved
    status, approved = await api("POST", f"{release_path}/decisions", user="ann", body={"decision": "approve"})
    assert status == 200 and approved["state"] == "approved", approved
    assert [(d["user"], d["stage"], d["role"]) for d in approved["decisions"]] == [("dave", 0, "maintainer"),
                                                                                   ("ann", 1, "admin")]
    status, staged = await api("POST", f"{release_path}/promotions", user="dave", body={"environment": "staging"})
    assert status == 200 and staged["environment"] == "staging", staged

    # Prod only inside a window: one that opens in two hours refuses it, naming when; one open now lets it through.
    now = datetime.now(timezone.utc)
    closed = {**GATED, "windows": [window(now, timedelta(hours=2), timedelta(hours=3))]}
    assert (await api("PUT", POLICY, user="dave", body=closed))[0] == 200
    status, outside = await api("POST", f"{release_path}/promotions", user="dave", body={"environment": "prod"})
    assert status == 409 and outside["error"]["code"] == "release_window_closed", outside
    opens = datetime.fromisoformat(outside["error"]["detail"]["next_opening"])
    assert timedelta(hours=1, minutes=58) <= opens - now <= timedelta(hours=2, minutes=1), (opens, now)
    open_now = {**GATED, "windows": [window(now, timedelta(hours=-1), timedelta(hours=1))]}
    assert (await api("PUT", POLICY, user="dave", body=open_now))[0] == 200
    status, released = await api("POST", f"{release_path}/promotions", user="dave", body={"environment": "prod"})
    assert status == 200 and (released["state"], released["environment"]) == ("released", "prod"), released
    assert [p["environment"] for p in released["promotions"]] == ["test", "staging", "prod"]
    assert released["next_environment"] is None

    # The same version twice, or an older one, is refused; the policy may approve on evidence alone.
    assert (await api("POST", RELEASES, user="carol", body=body))[1]["error"]["code"] == "release_exists"
    older = await api("POST", RELEASES, user="carol", body={**body, "version": "0.9.0"})
    assert older[0] == 409 and older[1]["error"]["code"] == "release_version_not_newer", older
    assert (await api("PUT", POLICY, user="dave", body={**GATED, "auto_approve": True}))[0] == 200
    status, automatic = await api("POST", RELEASES, user="carol", body={**body, "version": "1.0.1"})
    assert status == 201 and automatic["state"] == "approved", automatic
    assert [(d["user"], d["role"]) for d in automatic["decisions"]] == [("aitip:policy", "policy")]
    status, configuration = await api("POST", RELEASES, user="carol", body={
        "kind": "configuration", "name": "thresholds", "version": "1.0.0", "configuration": {"min_score": 0.8}})
    assert status == 201 and configuration["state"] == "requested", configuration  # no evidence: people decide

    catalog = jp_serverapp.web_app.settings["aitip"].catalog
    with catalog.session() as session:
        trail = [(e.actor, e.action) for e in session.scalars(
            select(AuditEventRecord).where(AuditEventRecord.target == "release:alpha/digits-mlp@1.0.0")
            .order_by(AuditEventRecord.id))]
    assert trail == [("carol", "release.request"), ("dave", "release.approve"), ("dave", "release.promote"),
                     ("ann", "release.approve"), ("dave", "release.promote"), ("dave", "release.promote")], trail


async def test_a_changed_release_is_promoted_nowhere_and_a_rejected_one_neither(api: Any, jp_serverapp: Any) -> None:
    await make_alpha(api)
    configuration = {"kind": "configuration", "name": "limits", "version": "2.0.0-rc.1",
                     "configuration": {"max_batch": 64}, "changelog": "批大小上限 64"}
    status, release = await api("POST", RELEASES, user="carol", body=configuration)
    assert status == 201, release
    path = f"{RELEASES}/{release['id']}"
    assert (await api("GET", f"{path}/verification", user="bob"))[1]["valid"] is True
    # Someone with the catalog's file raises the limit after the request was signed.
    catalog = jp_serverapp.web_app.settings["aitip"].catalog
    with catalog.session() as session:
        found = session.get(ReleaseRecord, release["id"])
        found.content = {**found.content, "subject": {"configuration": {"max_batch": 4096}}}
    status, verdict = await api("GET", f"{path}/verification", user="bob")
    assert status == 200 and not verdict["valid"] and "SHA-256 differs" in verdict["reason"], verdict
    status, refused = await api("POST", f"{path}/promotions", user="dave", body={"environment": "test"})
    assert status == 409 and refused["error"]["code"] == "release_signature_invalid", refused
    assert (await api("GET", path, user="bob"))[1]["environment"] == "dev"

    status, other = await api("POST", RELEASES, user="carol", body={**configuration, "version": "2.0.0"})
    assert status == 201, other
    other_path = f"{RELEASES}/{other['id']}"
    status, rejected = await api("POST", f"{other_path}/decisions", user="dave",
                                 body={"decision": "reject", "comment": "too large"})
    assert status == 200 and rejected["state"] == "rejected", rejected
    assert (await api("POST", f"{other_path}/decisions", user="ann", body={"decision": "approve"}))[0] == 409
    status, nowhere = await api("POST", f"{other_path}/promotions", user="dave", body={"environment": "test"})
    assert status == 409 and nowhere["error"]["code"] == "release_rejected", nowhere


@pytest.mark.parametrize("body, field", [
    ({"kind": "model", "name": "m", "version": "1.0.0", "model": "m", "model_version": 1}, "dataset"),
    ({"kind": "configuration", "name": "c", "version": "1.0.0", "configuration": {}, "model": "m"}, "model"),
    ({"kind": "configuration", "name": "c", "version": "1.0"}, "version"),
    ({"kind": "configuration", "name": "C", "version": "1.0.0", "configuration": {}}, "name"),
    ({"kind": "configuration", "name": "c", "version": "1.0.0", "configuration": {}, "metadata": {"a b": "x"}},
     "metadata"),
    ({"kind": "firmware", "name": "c", "version": "1.0.0"}, "firmware_base64 and hardware"),
    ({"kind": "firmware", "name": "c", "version": "1.0.0", "hardware": "b", "firmware_base64": "bm90 base64!"},
     "not base64"),
    ({"kind": "firmware", "name": "c", "version": "1.0.0", "hardware": "b", "firmware_base64": ""}, "empty"),
    ({"kind": "firmware", "name": "c", "version": "1.0.0", "hardware": "b", "firmware_base64": "AA==",
      "model": "m"}, "all three"),
    ({"kind": "configuration", "name": "c", "version": "1.0.0", "configuration": {}, "hardware": "b"}, "hardware"),
    ({"kind": "device", "name": "c", "version": "1.0.0"}, "kind"),
])
async def test_bad_requests_are_refused_and_write_nothing(api: Any, jp_serverapp: Any, body: dict[str, Any],
                                                          field: str) -> None:
    await make_alpha(api)
    status, refused = await api("POST", RELEASES, user="carol", body=body)
    assert status == 422 and field in str(refused["error"]["detail"]) + refused["error"]["message"], refused
    assert (await api("GET", RELEASES, user="bob"))[1]["releases"] == []


async def test_release_events_reach_the_projects_webhook_subscribers_and_mailboxes(
        api: Any, jp_serverapp: Any, smtp_inbox: tuple[int, Inbox]) -> None:
    await make_alpha(api)
    await start_worker(jp_serverapp)  # the platform's background parts, webhook delivery among them
    async with serve() as receiver:
        status, subscription = await api("POST", "projects/alpha/webhooks",
                                         body={"url": receiver.url("/releases"), "events": ["release.*"]})
        assert status == 201, subscription
        status, mailing = await api("POST", "projects/alpha/webhooks", body={
            "url": "mailto:ml-releases@example.com", "events": ["release.approved", "release.released"]})
        assert status == 201, mailing
        body = {"kind": "configuration", "name": "limits", "version": "1.0.0", "configuration": {"max_batch": 64}}
        status, release = await api("POST", RELEASES, user="carol", body=body)
        assert status == 201, release
        path = f"{RELEASES}/{release['id']}"
        assert (await api("POST", f"{path}/decisions", user="dave", body={"decision": "approve"}))[0] == 200
        for environment in ("test", "staging", "prod"):
            assert (await api("POST", f"{path}/promotions", user="dave", body={"environment": environment}))[0] == 200
        arrived = sorted((request.json() for request in await receiver.wait_for(5)),
                         key=lambda event: event["created_at"])  # sent as they come, not always in order
    assert [(event["event"], event["data"]["environment"], event["data"]["by"]) for event in arrived] == [
        ("release.requested", "dev", "carol"), ("release.approved", "dev", "dave"),
        ("release.promoted", "test", "dave"), ("release.promoted", "staging", "dave"),
        ("release.released", "prod", "dave")]
    assert {event["data"]["content_sha256"] for event in arrived} == {release["signature"]["content_sha256"]}
    status, deliveries = await api("GET", "projects/alpha/webhook-deliveries")
    mailed = [d for d in deliveries["items"] if d["url"].startswith("mailto:")]
    dispatcher = jp_serverapp.web_app.settings["aitip"].webhook_dispatcher
    assert [await dispatcher.wait_settled(d["id"], 60) for d in mailed] == ["delivered", "delivered"], mailed
    inbox = smtp_inbox[1]
    assert sorted(message["Subject"] for message in inbox.messages) == [
        "[AITIP alpha] release.approved of name limits", "[AITIP alpha] release.released of name limits"]
    mail = next(m for m in inbox.messages if m["X-AITIP-Event"] == "release.released")
    assert mail["To"] == "ml-releases@example.com" and mail["From"] == "aitip@localhost"
    text = mail.get_content()
    assert "environment: prod" in text and f"content_sha256: {release['signature']['content_sha256']}" in text
    status, deliveries = await api("GET", "projects/alpha/webhook-deliveries")
    mailed = [d for d in deliveries["items"] if d["url"].startswith("mailto:")]
    assert len(mailed) == 2 and {(d["state"], d["last_status_code"]) for d in mailed} == {("delivered", 250)}, mailed


async def test_a_policys_test_runs_count_only_on_the_exact_versions_and_pinned_content(
        api: Any, jp_serverapp: Any) -> None:
    """A test notebook of the project's own, named by the policy: its newest run on digits-mlp version 1 that read
    digits version 1 must have succeeded (and, pinned, run that content); a run on another version does not
    count, a failed newest run withdraws the evidence."""
    from tests.evaluation.conftest import wait_job
    from tests.support.notebooks import notebook

    await make_alpha(api)
    await evidenced_version(api, jp_serverapp)
    smoke = notebook("assert model_version >= 1 and should_pass, 'the smoke test failed'",
                     parameters="model_name = ''\nmodel_version = 0\nshould_pass = True")

    async def run(version: int, should_pass: bool = True) -> dict[str, Any]:
        status, job = await api("POST", "jobs", user="carol", body={
            "project": "alpha", "notebook": smoke, "notebook_name": "smoke.ipynb",
            "parameters": {"model_name": "digits-mlp", "model_version": version, "should_pass": should_pass},
            "inputs": [{"dataset": "digits", "version": 1}]})
        assert status == 201, job
        return await wait_job(api, job["id"])

    policy = {"evaluation": True, "test_runs": [{"notebook": "smoke.ipynb"}]}
    assert (await api("PUT", POLICY, user="dave", body=policy))[0] == 200
    body = {"kind": "model", "name": "digits-mlp", "version": "1.0.0", "model": "digits-mlp", "model_version": 1,
            "dataset": "digits", "dataset_version": 1}
    status, refused = await api("POST", RELEASES, user="carol", body=body)
    assert status == 422 and [m["kind"] for m in refused["error"]["detail"]] == ["test_run"], refused
    assert (await run(2))["state"] == "succeeded"  # another model version: not evidence for version 1
    status, refused = await api("POST", RELEASES, user="carol", body=body)
    assert status == 422 and "no run with parameters" in refused["error"]["detail"][0]["reason"], refused
    passed = await run(1)
    assert passed["state"] == "succeeded", passed
    failed = await run(1, should_pass=False)
    assert failed["state"] == "failed", failed
    status, refused = await api("POST", RELEASES, user="carol", body=body)
    assert status == 422 and f"job {failed['id']}, failed" in refused["error"]["detail"][0]["reason"], refused
    assert (await run(1))["state"] == "succeeded"
    pinned = {**policy, "test_runs": [{"notebook": "smoke.ipynb", "notebook_sha256": "0" * 64}]}
    assert (await api("PUT", POLICY, user="dave", body=pinned))[0] == 200
    status, refused = await api("POST", RELEASES, user="carol", body=body)
    assert status == 422 and "ran other content" in refused["error"]["detail"][0]["reason"], refused
    status, job = await api("GET", f"jobs/{passed['id']}", user="carol")
    assert (await api("PUT", POLICY, user="dave", body={**policy, "test_runs": [
        {"notebook": "smoke.ipynb", "notebook_sha256": job["notebook_sha256"]}]}))[0] == 200
    status, release = await api("POST", RELEASES, user="carol", body=body)
    assert status == 201, release
    test_runs = [item for item in release["evidence"] if item["kind"] == "test_run"]
    assert len(test_runs) == 1 and test_runs[0]["notebook"] == "smoke.ipynb", release["evidence"]
