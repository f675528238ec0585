"""Jobs through REST on a real server with its worker: submit, follow the SSE stream, fetch the report."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from tests.server.conftest import TOKENS
from tests.support.notebooks import TRIVIAL, notebook
from tests.support.workers import start_worker
from tests.support.waiting import eventually


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any]) -> dict[str, Any]:
    jp_server_config["AitipExtension"]["run_jobs"] = True
    jp_server_config["LocalExecutor"] = {"pool_sizes": {"aitip-python": 1}, "max_concurrent_jobs": 2}
    return jp_server_config


def _parse_sse(body: str) -> list[dict[str, Any]]:
    events = []
    for block in body.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if line.startswith(":") or ":" not in line:
                continue
            key, _, value = line.partition(":")
            fields[key] = value.strip()
        if "event" in fields:
            events.append({"id": fields.get("id"), "event": fields["event"], "data": json.loads(fields["data"])})
    return events


async def _wait(api: Any, job_id: int, timeout: float = 60) -> dict[str, Any]:
    for _ in range(int(timeout * 10)):
        _, job = await api("GET", f"jobs/{job_id}")
        if job["state"] in ("succeeded", "failed", "cancelled", "timed_out"):
            return job
        await asyncio.sleep(0.1)
    raise TimeoutError(job)


async def test_submit_stream_and_fetch_the_report(api, jp_fetch, jp_serverapp) -> None:
    await start_worker(jp_serverapp)
    assert (await api("POST", "projects", body={"name": "lab"}))[0] == 201
    status, job = await api("POST", "jobs", body={"project": "lab", "notebook": TRIVIAL, "parameters": {"x": 4},
                                                  "tags": {"purpose": "test"}})
    assert status == 201 and job["state"] == "queued" and job["kernel"] == "aitip-python"
    stream = await jp_fetch("api", "aitip", "v1", "jobs", str(job["id"]), "events",
                            headers={"Authorization": f"token {TOKENS['ann']}", "Accept": "text/event-stream"},
                            request_timeout=60)
    assert stream.headers["Content-Type"].startswith("text/event-stream")
    events = _parse_sse(stream.body.decode())
    assert events[-1]["event"] == "end" and events[-1]["data"]["state"] == "succeeded"
    states = [e["data"]["data"]["state"] for e in events if e["event"] == "state"]
    assert states == ["queued", "starting", "running", "succeeded"]
    assert "result 8\n" in [e["data"]["data"]["text"] for e in events if e["event"] == "output"]

    middle = next(e for e in events if e["event"] == "cell_started")["id"]
    resumed = await jp_fetch("api", "aitip", "v1", "jobs", str(job["id"]), "events",
                             headers={"Authorization": f"token {TOKENS['ann']}", "Accept": "text/event-stream",
                                      "Last-Event-ID": middle})
    resumed_ids = [int(e["id"]) for e in _parse_sse(resumed.body.decode()) if e["id"]]
    assert resumed_ids and min(resumed_ids) > int(middle)

    report = await jp_fetch("api", "aitip", "v1", "jobs", str(job["id"]), "notebook",
                            headers={"Authorization": f"token {TOKENS['ann']}"})
    executed = json.loads(report.body)
    assert "".join(executed["cells"][-1]["outputs"][0]["text"]) == "result 8\n"
    _, listed = await api("GET", "jobs", params={"project": "lab", "state": "succeeded"})
    assert [j["id"] for j in listed["items"]] == [job["id"]]


async def test_cancel_over_rest(api, jp_serverapp) -> None:
    await start_worker(jp_serverapp)
    await api("POST", "projects", body={"name": "lab"})
    _, job = await api("POST", "jobs", body={"project": "lab", "notebook": notebook("import time; time.sleep(60)")})
    current = await eventually(lambda: api("GET", f"jobs/{job['id']}"), lambda answer: answer[1]["state"] == "running")
    assert current[1]["state"] == "running", current
    status, _ = await api("POST", f"jobs/{job['id']}/cancel")
    assert status == 200
    done = await _wait(api, job["id"])
    assert done["state"] == "cancelled" and "cancelled by ann" in done["reason"]
    status, body = await api("POST", f"jobs/{job['id']}/cancel")
    assert status == 409 and body["error"]["code"] == "job_finished"


BAD_SUBMISSIONS = [
    ({"parameters": {"undeclared": 1}}, 422, "undeclared_parameter"),
    ({"parameters": {"x": "not a number"}}, 422, "parameter_type"),
    ({"parameters": {"x": "9" * 70_000}}, 422, "parameters_too_large"),
    ({"notebook": {"not": "a notebook"}}, 422, "invalid_input"),
    ({"notebook": "print('hello')"}, 422, "invalid_input"),
    ({"notebook_name": "train.py"}, 422, "invalid_input"),
    ({"notebook": notebook("print(1)"), "parameters": {"x": 1}}, 422, "no_parameters_cell"),
    ({"kernel": "nonexistent"}, 422, "unknown_kernel"),
    ({"kernel": "../../etc"}, 422, "invalid_input"),
    ({"resources": {"gpus": -1}}, 422, "invalid_input"),
    ({"timeout_seconds": 0}, 422, "invalid_input"),
    ({"priority": 1000}, 422, "invalid_input"),
    ({"project": "nope"}, 404, "not_found"),
    ({"unknown_field": 1}, 422, "invalid_input"),
]


@pytest.mark.parametrize(("change", "status", "code"), BAD_SUBMISSIONS,
                         ids=[f"{i}-{c[2]}" for i, c in enumerate(BAD_SUBMISSIONS)])
async def test_bad_submissions_are_4xx_and_write_nothing(api, change: dict, status: int, code: str) -> None:
    await api("POST", "projects", body={"name": "lab"})
    got, body = await api("POST", "jobs", body={"project": "lab", "notebook": TRIVIAL, **change})
    assert (got, body["error"]["code"]) == (status, code), body
    _, listed = await api("GET", "jobs")
    assert listed["total"] == 0


async def test_an_oversized_notebook_is_413(api) -> None:
    await api("POST", "projects", body={"name": "lab"})
    huge = notebook("x = 1", "# " + "x" * (17 * 1024 * 1024))
    status, body = await api("POST", "jobs", body={"project": "lab", "notebook": huge})
    assert status == 413 and body["error"]["code"] == "payload_too_large"


SDK_READER = notebook(
    "import os\n"
    "import aitip.datasets\n"
    "from aitip.client import AitipAPIError, Client\n"
    "frame = aitip.datasets.to_pandas('base', 1)\n"
    "print('rows', len(frame))",
    "with Client() as client:\n"
    "    print('me', client.me().name, [p.project for p in client.me().projects])\n"
    "    try:\n"
    "        client.create_project('sneaky')\n"
    "    except AitipAPIError as refused:\n"
    "        print('create', refused.status)\n"
    "print('credential', os.environ['AITIP_TOKEN'])",
)


async def test_a_job_reads_an_undeclared_dataset_with_its_own_credential(api, jp_serverapp) -> None:
    """The kernel's SDK reaches the platform as the job (its owner, in its project) and the read is lineage."""
    await start_worker(jp_serverapp)
    for project in ("lab", "other"):
        assert (await api("POST", "projects", body={"name": project}))[0] == 201
        assert (await api("POST", f"projects/{project}/members", body={"user": "carol", "role": "developer"}))[0] == 201
    status, _ = await api("POST", "projects/lab/datasets/base/versions", raw=b"a,b\n1,2\n3,4\n5,6\n",
                          params={"filename": "base.csv"})
    assert status == 201
    status, job = await api("POST", "jobs", user="carol", body={"project": "lab", "notebook": SDK_READER})
    assert status == 201 and job["inputs"] == []
    done = await _wait(api, job["id"], timeout=120)
    assert done["state"] == "succeeded", done["reason"]
    assert [(i["dataset"], i["version"], i["how"]) for i in done["inputs"]] == [("base", 1, "sdk")]

    _, events = await api("GET", f"jobs/{job['id']}/events", params={"limit": 10_000})
    printed = "".join(e["data"].get("text", "") for e in events["items"] if e["kind"] == "output")
    assert "rows 3\n" in printed
    assert "me carol ['lab']\n" in printed  # carol is in 'other' too; the job's credential sees only 'lab'
    assert "create 403\n" in printed
    _, graph = await api("GET", "lineage", params={"node": "dataset:lab/base@1"})
    assert {"dataset:lab/base@1", f"job:{job['id']}"} <= {node["id"] for node in graph["nodes"]}

    credential = next(line.split(" ", 1)[1] for line in printed.splitlines() if line.startswith("credential "))
    status, refused = await api("GET", f"jobs/{job['id']}", user=None,
                                headers={"Authorization": f"token {credential}"})
    assert status == 403 and "not valid" in refused["error"]["message"]  # retired with the attempt
