"""A job's own credential over HTTP: its owner's role in the job's project, nothing elsewhere, and only
while the attempt it was minted for runs. Credentials are minted here as the worker mints them
(``aitip.jobs.credentials``); a kernel using one for real is in test_jobs_api.py."""

from __future__ import annotations

from typing import Any

import pytest

from aitip.jobs import credentials
from aitip.jobs.tables import JobRecord
from aitip.server.job_identity import JOB_CREDENTIAL_ACTIONS
from tests.support.notebooks import TRIVIAL


async def _seed(api: Any) -> None:
    for project in ("alpha", "beta"):
        assert (await api("POST", "projects", user="ann", body={"name": project}))[0] == 201
        status, _ = await api("POST", f"projects/{project}/members", user="ann",
                              body={"user": "carol", "role": "developer"})
        assert status == 201
    for content in (b"a,b\n1,2\n", b"a,b\n1,2\n3,4\n"):
        status, version = await api("POST", "projects/alpha/datasets/base/versions", user="ann", raw=content,
                                    params={"filename": "base.csv"})
        assert status == 201, version
    status, _ = await api("POST", "projects/beta/datasets/secret/versions", user="ann", raw=b"a\n1\n",
                          params={"filename": "secret.csv"})
    assert status == 201
    for owner in ("carol", "carol"):
        status, job = await api("POST", "jobs", user=owner, body={"project": "alpha", "notebook": TRIVIAL})
        assert status == 201, job


def _catalog(jp_serverapp: Any) -> Any:
    return jp_serverapp.web_app.settings["aitip"].catalog


def _start_attempt(jp_serverapp: Any, job_id: int, state: str = "running") -> str:
    """What the worker's claim does to the job's row: a new attempt with a fresh credential."""
    token, token_sha256 = credentials.mint(job_id)
    with _catalog(jp_serverapp).session() as session:
        job = session.get(JobRecord, job_id)
        job.state, job.attempt, job.credential_sha256 = state, job.attempt + 1, token_sha256
    return token


def _set_state(jp_serverapp: Any, job_id: int, state: str) -> None:
    with _catalog(jp_serverapp).session() as session:
        session.get(JobRecord, job_id).state = state


async def _as_job(api: Any, jp_serverapp: Any) -> Any:
    """Seeds the projects and jobs, then calls the API with the credential of job 1's running attempt."""
    await _seed(api)
    token = _start_attempt(jp_serverapp, 1)

    async def call(method: str, path: str, *, credential: str | None = None, **kwargs: Any) -> tuple[int, Any]:
        headers = {"Authorization": f"token {credential or token}", **kwargs.pop("headers", {})}
        if "body" in kwargs:
            headers.setdefault("Content-Type", "application/json")
        return await api(method, path, user=None, headers=headers, **kwargs)

    call.token = token  # type: ignore[attr-defined]
    return call


# (method, path, body, status): the credential of carol's job 1 in alpha; carol is a developer in alpha
# and in beta, so every refusal below is the credential's limit, not hers.
CREDENTIAL_MATRIX: list[tuple[str, str, Any, int]] = [
    ("GET", "me", None, 200),
    ("GET", "projects/alpha", None, 200),
    ("GET", "projects/alpha/datasets/base/versions/1/preview", None, 200),
    ("GET", "jobs/1", None, 200),
    ("GET", "projects/beta", None, 404),
    ("GET", "projects/beta/datasets/secret/versions/1/preview", None, 404),
    ("POST", "jobs", {"project": "beta", "notebook": TRIVIAL}, 404),
    ("PATCH", "projects/alpha", {"description": "new"}, 403),  # her own role (developer) still applies
    ("POST", "projects", {"name": "sneaky"}, 403),
    ("GET", "jobs", None, 403),
    ("GET", "resources/now", None, 403),
]


@pytest.mark.parametrize(("method", "path", "body", "status"), CREDENTIAL_MATRIX,
                         ids=[f"{m} {p}" for m, p, _, _ in CREDENTIAL_MATRIX])
async def test_a_job_credential_acts_as_its_owner_in_its_project_only(api: Any, jp_serverapp: Any, method: str,
                                                                      path: str, body: Any, status: int) -> None:
    job_api = await _as_job(api, jp_serverapp)
    got, response = await job_api(method, path, **({"body": body} if body is not None else {}))
    assert got == status, response
    if status == 200 and path == "me":
        assert response["name"] == "carol"
    if status in (403, 404):
        assert response["error"]["code"] in ("forbidden", "not_found")


def test_credential_actions_outside_projects_are_a_short_list() -> None:
    assert JOB_CREDENTIAL_ACTIONS == {"platform.health", "platform.me", "platform.openapi", "project.list",
                                      "lineage.read"}


async def test_project_listing_shows_only_the_jobs_project(api: Any, jp_serverapp: Any) -> None:
    job_api = await _as_job(api, jp_serverapp)
    status, listed = await job_api("GET", "projects")
    assert status == 200 and [p["name"] for p in listed["items"]] == ["alpha"]


async def test_the_job_records_what_it_read(api: Any, jp_serverapp: Any) -> None:
    job_api = await _as_job(api, jp_serverapp)
    status, job = await job_api("POST", "jobs/1/inputs", body={"dataset": "base", "version": 2})
    assert status == 200, job
    assert [(i["dataset"], i["version"], i["how"]) for i in job["inputs"]] == [("base", 2, "sdk")]
    again, job = await job_api("POST", "jobs/1/inputs", body={"dataset": "base", "version": 2})
    assert again == 200 and len(job["inputs"]) == 1
    _, events = await api("GET", "jobs/1/events", user="carol")
    assert [e["data"] for e in events["items"] if e["kind"] == "input_read"] == [{"dataset": "base", "version": 2}]
    _, graph = await api("GET", "lineage", user="carol", params={"node": "dataset:alpha/base@2"})
    assert {"dataset:alpha/base@2", "job:1"} <= {node["id"] for node in graph["nodes"]}


BAD_RECORDS: list[tuple[Any, int, str]] = [
    ({"dataset": "nope", "version": 1}, 422, "unknown_dataset"),
    ({"dataset": "base", "version": 9}, 422, "unknown_dataset_version"),
    ({"dataset": "secret", "version": 1}, 422, "unknown_dataset"),  # beta's dataset is not in the job's project
    ({"dataset": "base", "version": 0}, 422, "invalid_input"),
    ({"dataset": "../base"}, 422, "invalid_input"),
    ({"version": 1}, 422, "invalid_input"),
    ({"dataset": "base", "extra": True}, 422, "invalid_input"),
]


@pytest.mark.parametrize(("body", "status", "code"), BAD_RECORDS, ids=[str(b) for b, _, _ in BAD_RECORDS])
async def test_bad_records_are_refused_and_leave_nothing(api: Any, jp_serverapp: Any, body: Any, status: int,
                                                        code: str) -> None:
    job_api = await _as_job(api, jp_serverapp)
    got, response = await job_api("POST", "jobs/1/inputs", body=body)
    assert (got, response["error"]["code"]) == (status, code), response
    _, job = await job_api("GET", "jobs/1")
    assert job["inputs"] == []


async def test_a_record_needs_json(api: Any, jp_serverapp: Any) -> None:
    job_api = await _as_job(api, jp_serverapp)
    status, response = await job_api("POST", "jobs/1/inputs", raw=b"dataset=base",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 415, response


async def test_only_the_job_itself_records_its_reads(api: Any, jp_serverapp: Any) -> None:
    job_api = await _as_job(api, jp_serverapp)
    status, response = await api("POST", "jobs/1/inputs", user="carol", body={"dataset": "base", "version": 1})
    assert status == 403 and "only job" in response["error"]["message"]
    status, response = await job_api("POST", "jobs/2/inputs", body={"dataset": "base", "version": 1})
    assert status == 403 and "only job" in response["error"]["message"]
    status, response = await api("POST", "jobs/1/inputs", user="erin", body={"dataset": "base", "version": 1})
    assert status == 404


@pytest.mark.parametrize("ended", ["succeeded", "failed", "cancelled", "timed_out", "queued"])
async def test_a_credential_ends_with_its_attempt(api: Any, jp_serverapp: Any, ended: str) -> None:
    job_api = await _as_job(api, jp_serverapp)
    assert (await job_api("GET", "jobs/1"))[0] == 200
    _set_state(jp_serverapp, 1, ended)
    status, response = await job_api("GET", "jobs/1")
    assert status == 403 and "not valid" in response["error"]["message"]


async def test_a_new_attempt_retires_the_last_ones_credential(api: Any, jp_serverapp: Any) -> None:
    job_api = await _as_job(api, jp_serverapp)
    newer = _start_attempt(jp_serverapp, 1)
    assert (await job_api("GET", "jobs/1", credential=newer))[0] == 200
    assert (await job_api("GET", "jobs/1"))[0] == 403


@pytest.mark.parametrize("forged", ["wrong-secret", "other-job", "malformed", "truncated"])
async def test_forged_credentials_are_refused(api: Any, jp_serverapp: Any, forged: str) -> None:
    job_api = await _as_job(api, jp_serverapp)
    token = job_api.token
    prefix, job_id, secret = token.split(".")
    credential = {
        "wrong-secret": f"{prefix}.{job_id}.{secret[::-1]}",
        "other-job": f"{prefix}.2.{secret}",
        "malformed": f"{prefix}.x.{secret}",
        "truncated": f"{prefix}.{job_id}.{secret[:10]}",
    }[forged]
    status, response = await job_api("GET", "jobs/1", credential=credential)
    assert status == 403 and response["error"]["code"] == "forbidden"
