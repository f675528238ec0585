"""Datasets over REST on a real server: streaming upload, versions, diff, restore, masked preview and
download by role, and bad uploads answered 4xx with nothing left behind."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError

from tests.datasets.test_staging import make_zip
from tests.server.conftest import TOKENS

CSV_V1 = b"id,email,score\n1,ann@example.org,0.5\n2,bob@example.org,0.7\n"
CSV_V2 = b"id,email,score,label\n1,ann@example.org,0.5,a\n2,bob@example.org,0.7,b\n3,cy@example.org,0.1,a\n"


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    jp_server_config["AitipExtension"]["data_registry_path"] = str(tmp_path / "registry")
    jp_server_config["AitipExtension"]["max_upload_bytes"] = 64 * 1024
    return jp_server_config


async def upload(jp_fetch: Any, project: str, name: str, filename: str, content: bytes, *, user: str = "ann",
                 message: str = "") -> tuple[int, Any]:
    import json

    try:
        response = await jp_fetch("api", "aitip", "v1", "projects", project, "datasets", name, "versions",
                                  method="POST", body=content, params={"filename": filename, "message": message},
                                  headers={"Authorization": f"token {TOKENS[user]}",
                                           "Content-Type": "application/octet-stream"})
    except HTTPClientError as error:
        response = error.response
    return response.code, json.loads(response.body) if response.body else None


async def make_lab(api: Any) -> None:
    assert (await api("POST", "projects", body={"name": "lab"}))[0] == 201
    assert (await api("POST", "projects/lab/members", body={"user": "bob", "role": "viewer"}))[0] == 201
    assert (await api("POST", "projects/lab/members", body={"user": "dave", "role": "developer"}))[0] == 201


async def test_register_diff_restore_and_mask(api: Any, jp_fetch: Any) -> None:
    await make_lab(api)
    status, v1 = await upload(jp_fetch, "lab", "users", "users.csv", CSV_V1, message="first")
    assert status == 201 and v1["version"] == 1 and v1["rows"] == 2 and v1["tag"] == "datasets/lab/users/v1"
    status, v2 = await upload(jp_fetch, "lab", "users", "users.csv", CSV_V2, user="dave")
    assert status == 201 and v2["version"] == 2 and v2["parent_version"] == 1

    status, diff = await api("GET", "projects/lab/datasets/users/diff", user="bob", params={"from": 1, "to": 2})
    assert status == 200 and diff["row_delta"] == 1
    assert [(c["column"], c["change"]) for c in diff["schema_changes"]] == [("label", "added")]

    status, restored = await api("POST", "projects/lab/datasets/users/versions/1/restore", user="dave",
                                 body={"message": "back to v1"})
    assert status == 201 and restored["version"] == 3 and restored["content_md5"] == v1["content_md5"]

    assert (await api("PATCH", "projects/lab/datasets/users", user="dave",
                      body={"sensitive_columns": {"email": "redact"}}))[0] == 403
    status, dataset = await api("PATCH", "projects/lab/datasets/users",
                                body={"sensitive_columns": {"email": "redact"}})
    assert status == 200 and dataset["sensitive_columns"] == {"email": "redact"} and dataset["latest_version"] == 3

    _, viewer = await api("GET", "projects/lab/datasets/users/versions/3/preview", user="bob")
    _, owner = await api("GET", "projects/lab/datasets/users/versions/3/preview", user="ann")
    assert viewer["masked_columns"] == ["email"] and {row[1] for row in viewer["rows"]} == {"[redacted]"}
    assert owner["masked_columns"] == [] and owner["rows"][0][1] == "ann@example.org"

    masked = await jp_fetch("api", "aitip", "v1", "projects", "lab", "datasets", "users", "versions", "3",
                            "download", headers={"Authorization": f"token {TOKENS['bob']}"})
    assert masked.headers["X-AITIP-Masked-Columns"] == "email"
    assert b"ann@example.org" not in masked.body and b"[redacted]" in masked.body
    plain = await jp_fetch("api", "aitip", "v1", "projects", "lab", "datasets", "users", "versions", "3",
                           "download", headers={"Authorization": f"token {TOKENS['ann']}"})
    assert plain.body == CSV_V1

    status, listing = await api("GET", "projects/lab/datasets", user="bob")
    assert [(d["name"], d["versions"]) for d in listing["datasets"]] == [("users", 3)]


async def test_a_registration_reports_its_steps_timings(api: Any, jp_fetch: Any) -> None:
    """Server-Timing: how long receiving, unpacking, the quality check and the commit took (the SDK and
    the benchmark read them)."""
    await make_lab(api)
    response = await jp_fetch("api", "aitip", "v1", "projects", "lab", "datasets", "timed", "versions",
                              method="POST", body=CSV_V1, params={"filename": "users.csv"},
                              headers={"Authorization": f"token {TOKENS['ann']}",
                                       "Content-Type": "application/octet-stream"})
    assert response.code == 201
    steps = dict(part.strip().split(";dur=") for part in response.headers["Server-Timing"].split(","))
    assert list(steps) == ["receive", "unpack", "quality", "commit"]
    assert all(float(duration) >= 0 for duration in steps.values())


async def test_an_image_folder_is_unpacked_as_it_streams_in(api: Any, jp_fetch: Any, tmp_path: Path) -> None:
    import zipfile

    await make_lab(api)
    members = {"cat/1.png": b"\x89PNG" + bytes(range(256)) * 50, "cat/2.png": b"\x89PNG-2", "dog/1.png": b"\x89PNG-3"}
    for method in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        status, version = await upload(jp_fetch, "lab", "pets", "pets.zip", make_zip(members, method))
        assert status == 201 and (version["format"], version["files"]) == ("images", 3), version
        assert version["bytes"] == sum(len(data) for data in members.values())
    _, preview = await api("GET", "projects/lab/datasets/pets/versions/2/preview")
    assert [row[0] for row in preview["rows"]] == sorted(members)
    assert version["content_md5"] == (await api("GET", "projects/lab/datasets/pets/versions/1"))[1]["content_md5"]
    assert list((tmp_path / "staging").iterdir()) == []


def _zip(members: dict[str, bytes]) -> bytes:
    sink = io.BytesIO()
    with zipfile.ZipFile(sink, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return sink.getvalue()


@pytest.mark.parametrize(("user", "project", "name", "filename", "content", "status", "code"), [
    ("bob", "lab", "users", "users.csv", CSV_V1, 403, "forbidden"),  # viewers do not write
    ("erin", "lab", "users", "users.csv", CSV_V1, 404, "not_found"),  # outsiders learn nothing
    ("ann", "lab", "users", "users.csv", b"x" * (70 * 1024), 413, "payload_too_large"),
    ("ann", "lab", "users", "users.csv", b"a,b\n1,2,3\n4,5\n", 422, "bad_dataset_file"),
    ("ann", "lab", "users", "users.csv", b"a,b\n1,\xff\n", 422, "bad_dataset_file"),
    # One ragged row: DuckDB's sniffer took "a,b" for a preamble and kept a table of columns 1,2,3 and no rows.
    ("ann", "lab", "users", "users.csv", b"a,b\n1,2,3\n", 422, "bad_dataset_file"),
    ("ann", "lab", "users", "users.jsonl", b'[{"a": 1}, {"a": 2}]\n', 422, "bad_dataset_file"),  # not JSONL
    # A trailing comma: the reader named the empty column "column2" (a notebook's pandas says "Unnamed: 2").
    ("ann", "lab", "users", "users.csv", b"a,b,\n1,2,\n", 422, "bad_dataset_file"),
    ("ann", "lab", "users", "data.parquet", b"PAR1 truncated", 422, "bad_dataset_file"),
    ("ann", "lab", "pets", "pets.zip", _zip({"../escape.png": b"x"}), 422, "unsafe_archive"),
    ("ann", "lab", "pets", "pets.zip", _zip({"/abs.png": b"x"}), 422, "unsafe_archive"),
    ("ann", "lab", "pets", "pets.zip", _zip({"cat/a.png": b"x" * 5000, "cat/b.png": b"y"})[:-40], 422, "bad_archive"),
    ("ann", "lab", "pets", "pets.zip", make_zip({"cat/a.png": b"x"}, symlink="cat/b.png"), 422, "unsafe_archive"),
    ("ann", "lab", "pets", "pets.zip", make_zip({f"c/{i}.png": bytes(4000) for i in range(20)}), 413,
     "payload_too_large"),
    ("ann", "lab", "pets", "pets.csv", _zip({"cat/a.png": b"x"}), 422, "bad_dataset_file"),
    ("ann", "lab", "pets", "pets.zip", _zip({"notes.csv": b"a,b\n1,2\n", "cat/readme.txt": b"x"}), 422,
     "bad_dataset_file"),  # no image in a class folder: nothing to keep
    ("ann", "lab", "users", "users.exe", CSV_V1, 422, "unknown_format"),
    ("ann", "lab", "users", "a%2Fb.csv", CSV_V1, 422, "bad_filename"),
    ("ann", "lab", "Bad..Name", "users.csv", CSV_V1, 404, "not_found"),
    # Names Git refuses in the tag datasets/<project>/<name>/v<N>: the router's pattern (the dataset name
    # rule) does not match them, so no dataset route answers; the rule's length is the handler's 422.
    ("ann", "lab", "x.lock", "users.csv", CSV_V1, 404, "not_found"),
    ("ann", "lab", "a..b", "users.csv", CSV_V1, 404, "not_found"),
    ("ann", "lab", "x.", "users.csv", CSV_V1, 404, "not_found"),
    ("ann", "lab", "y" * 101, "users.csv", CSV_V1, 422, "invalid_input"),
    ("ann", "lab", "pets", "pets.zip", _zip({"cat/" + "a" * 300 + ".png": b"x"}), 422, "bad_archive"),
    ("ann", "lab", "pets", "pets.zip", make_zip({"cat/" + "a" * 300 + ".png": b"x"}, streamed=True), 422,
     "bad_archive"),
    ("ann", "lab", "users", "users.csv", b"", 422, "invalid_input"),
])
async def test_bad_uploads_are_refused_and_leave_nothing(api: Any, jp_fetch: Any, user: str,
                                                         project: str, name: str, filename: str, content: bytes,
                                                         status: int, code: str, tmp_path: Path) -> None:
    from urllib.parse import unquote

    await make_lab(api)
    got, body = await upload(jp_fetch, project, name, unquote(filename), content, user=user)
    assert (got, body["error"]["code"] if body else None) == (status, code), body
    listing = await api("GET", "projects/lab/datasets")
    assert listing == (200, {"datasets": []})
    staging = tmp_path / "staging"
    assert not staging.exists() or list(staging.iterdir()) == []


# ----- masking reaches every answer that carries values: the quality report -----

SENSITIVE_CSV = (b"id,email,ssn,score,born,team\n"
                 b"1,ann@example.org,987654321,12345.678,1961-02-03,red\n"
                 b"2,bob@example.org,876543210,23456.789,1972-03-04,blue\n"
                 b"3,ann@example.org,765432109,34567.891,1983-04-05,red\n")
MASKS = {"email": "hash", "ssn": "redact", "score": "hash", "born": "redact", "team": "hash"}
RAW_VALUES = ["ann@example.org", "bob@example.org", "987654321", "765432109", "12345.678", "34567.891",
              "1961-02-03", "1983-04-05"]


def _leaks(answer: Any) -> list[str]:
    import json

    text = json.dumps(answer)
    return [value for value in RAW_VALUES if value in text]


async def _sensitive_dataset(api: Any, jp_fetch: Any, jp_serverapp: Any) -> dict[str, Any]:
    """lab/people: v1 by ann, masking and a label column (the class balance) set by ann, v2 by dave, and a
    running job of dave's (a developer) whose credential reads too. Returns the answers dave's uploads got."""
    from tests.server.test_job_credentials import _start_attempt
    from tests.support.notebooks import TRIVIAL

    await make_lab(api)
    status, _ = await upload(jp_fetch, "lab", "people", "people.csv", SENSITIVE_CSV)
    assert status == 201
    status, dataset = await api("PATCH", "projects/lab/datasets/people",
                                body={"sensitive_columns": MASKS, "quality_rules": {"label_column": "team"}})
    assert status == 200, dataset
    status, registered = await upload(jp_fetch, "lab", "people", "people.csv", SENSITIVE_CSV, user="dave")
    assert status == 201, registered
    status, restored = await api("POST", "projects/lab/datasets/people/versions/1/restore", user="dave", body={})
    assert status == 201, restored
    status, job = await api("POST", "jobs", user="dave", body={"project": "lab", "notebook": TRIVIAL})
    assert status == 201, job
    TOKENS["job"] = _start_attempt(jp_serverapp, job["id"])
    return {"register": registered, "restore": restored}


@pytest.fixture
def job_token() -> Any:
    yield
    TOKENS.pop("job", None)


@pytest.mark.parametrize(("user", "masked"), [("bob", True), ("dave", True), ("job", True), ("ann", False),
                                              ("root", False)],
                         ids=["viewer", "developer", "job credential", "maintainer (project admin)",
                              "hub admin, not a member"])
async def test_quality_reports_are_masked_below_maintainer(api: Any, jp_fetch: Any, jp_serverapp: Any,
                                                           job_token: Any, user: str, masked: bool) -> None:
    writes = await _sensitive_dataset(api, jp_fetch, jp_serverapp)
    answers = {}
    for path in ("versions", "versions/1", "versions/2", "versions/3"):
        status, answers[path] = await api("GET", f"projects/lab/datasets/people/{path}", user=user)
        assert status == 200, answers[path]
    status, answers["diff"] = await api("GET", "projects/lab/datasets/people/diff", user=user,
                                        params={"from": 1, "to": 2})
    assert status == 200
    status, answers["lineage"] = await api("GET", "lineage", user=user, params={"node": "dataset:lab/people@2"})
    assert status == 200
    if masked:
        assert {path: _leaks(answer) for path, answer in answers.items()} == {path: [] for path in answers}
    else:
        assert _leaks(answers["versions/2"]) == RAW_VALUES

    report = answers["versions/2"]["quality"]
    columns = {column["name"]: column for column in report["columns"]}
    assert answers["versions/2"]["masked_columns"] == (sorted(MASKS, key=list(columns).index) if masked else [])
    assert answers["versions"]["versions"][1] == answers["versions/2"]
    # Counts stay for everyone.
    assert [(c["name"], c["null_count"], c["distinct_count"]) for c in report["columns"]][1:3] == [
        ("email", 0, 2), ("ssn", 0, 3)]
    score, email, ssn, born, team = (columns[name] for name in ("score", "email", "ssn", "born", "team"))
    assert score["numeric"]["count"] == 3 and report["class_balance"]["class_count"] == 2
    if masked:
        # hash: text values hashed with the dataset's salt, as the preview shows them
        _, preview = await api("GET", "projects/lab/datasets/people/versions/2/preview", user="bob")
        shown_emails = {row[1] for row in preview["rows"]}
        assert {entry["value"] for entry in email["top_values"]} == shown_emails
        assert [entry["count"] for entry in email["top_values"]] == [2, 1]
        assert {entry["value"] for entry in team["top_values"]} == {row[5] for row in preview["rows"]}
        assert {c["value"] for c in report["class_balance"]["classes"]} == {row[5] for row in preview["rows"]}
        # numbers cannot be hashed meaningfully: left out, whatever the method
        for column in (score, ssn):
            numeric = column["numeric"]
            assert [numeric[k] for k in ("min", "max", "mean", "std", "iqr_lower_fence", "iqr_upper_fence")] == [None] * 6
            assert set(numeric["quantiles"].values()) == {None} and numeric["histogram"] is None
        # redact: left out
        assert (born["min_value"], born["max_value"]) == (None, None)
        assert (email["masked"], ssn["masked"], born["masked"]) == ("hash", "redact", "redact")
    else:
        assert score["numeric"]["min"] == 12345.678 and born["min_value"] == "1961-02-03"
        assert "masked" not in email
    # What dave's own writes answered was masked too (he is a developer).
    assert _leaks(writes["register"]) == [] and _leaks(writes["restore"]) == []
    assert writes["register"]["masked_columns"] == writes["restore"]["masked_columns"] != []
