"""Bad input is a clear 4xx and writes nothing.

Generated: for every row of the operation table with a body or query model, the bad inputs that
tests/support/bad_inputs.py derives from the model's schema and the row's valid example (CASES in
test_role_matrix.py), sent as the project's admin on the state that example needs. Each must be refused
(400 malformed JSON, else 422) with an error code, a message and the field at fault, and leave the catalog's
tables and the platform's files as they were; the valid example, sent last, must then do what the role
matrix says it does (and, for a write, change something: the snapshot can see this operation's writes).

Hand-written (SPECIAL): what a schema does not say: encodings, content types, payload size, the checks of
model validators, integers past SQLite's, Last-Event-ID.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from aitip.operations.table import Operation, by_name, operations
from aitip.server.handlers.base import repeatable_parameters
from tests.server.conftest import TOKENS
from tests.server.test_role_matrix import CASES, PATH_VALUES, Seeding, expected, seed, seeded
from tests.support.bad_inputs import BadInput, body_inputs, query_inputs
from tests.support.operation_calls import Written, build_tracking_runs, fetch, query_pairs, row_path

# Rows with nothing a caller can get wrong beyond their path (a path value that names nothing is a 404,
# tests/server/test_role_matrix.py and the OpenAPI test's generated paths), or whose input only a job's
# own credential may send.
NO_INPUTS: dict[str, str] = {
    name: "path parameters only" for name in (
        "platform.health", "platform.me", "platform.openapi", "projects.get", "projects.archive",
        "projects.unarchive", "members.list", "members.remove", "jobs.get", "jobs.cancel", "jobs.retry",
        "jobs.notebook", "notebooks.list", "sweeps.get", "sweeps.cancel", "runs.get", "models.list", "datasets.list",
        "datasets.get",
        "datasets.versions", "datasets.version", "datasets.download", "annotations.list", "annotations.get",
        "registrations.get", "models.delete_alias", "evaluations.get", "evaluation_policies.list",
        "evaluation_policies.get", "evaluation_policies.delete", "simulation_templates.list", "simulations.get",
        "simulation_policies.list", "simulation_policies.get", "simulation_policies.delete",
        "resources.now", "resources.inventory", "webhooks.unsubscribe", "webhooks.ping", "endpoints.list",
        "endpoints.get", "endpoints.remove_version", "endpoints.delete", "endpoints.prometheus",
        "endpoint_keys.list", "endpoint_keys.revoke", "release_policy.get", "releases.get", "releases.verify",
        "releases.signing_key", "rollouts.get", "rollouts.abort", "rollouts.retry", "rollouts.rollback",
        "devices.get", "devices.delete", "devices.fleet", "device_rollouts.list", "device_rollouts.get",
        "device_rollouts.pause", "device_rollouts.resume", "endpoints.optimization", "endpoints.package")
}
NO_INPUTS["jobs.track"] = ("its body is the spool a job's kernel sends, with the job's credential only "
                           "(tests/server/test_job_credentials.py)")
# Constraints the schema states that the server checks outside the row's model, with the code it answers.
OUTSIDE_THE_MODEL: dict[str, str] = {
    "datasets.register query.filename: pattern": "bad_filename",  # checked when the upload starts
    "registrations.create query.filename: pattern": "bad_filename",
}
# Generated cases the server gets wrong, by "<operation> <label>": each is an xfail(strict=True) of its own,
# so that the fix shows.
# Generated cases the server gets wrong, each with why (a strict xfail until it is fixed). The one found by the
# generator's first run, webhooks.deliveries' unbounded subscription_id (a 500 past 64-bit integers), is fixed.
KNOWN_BUGS: dict[str, str] = {}


def generated(row: Operation) -> list[BadInput]:
    """The row's bad inputs, from its body model and its query model."""
    case = CASES[row.name]
    found = []
    if row.body is not None:
        found += body_inputs(row.body, case.body)
    if row.query is not None:
        found += query_inputs(row.query, case.query or {})
    return found


GENERATED_ROWS = [row.name for row in operations() if row.body is not None or row.query is not None]


@pytest.fixture(scope="module")
def tracking_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[str]]:
    return build_tracking_runs(tmp_path_factory.mktemp("mlflow-bad-input"))


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any], tracking_runs: tuple[str, list[str]]) -> dict[str, Any]:
    jp_server_config["AitipExtension"]["mlflow_tracking_uri"] = tracking_runs[0]
    return jp_server_config


def _fill(value: Any, values: dict[str, Any]) -> Any:
    return value.format(**values) if isinstance(value, str) and "{" in value else value


async def _send(row: Operation, seeding: Seeding, *, raw: bytes | None, query: Any) -> tuple[int, Any]:
    """The row called as the project's admin with ``raw`` as its body (or the case's upload) and ``query``."""
    case = CASES[row.name]
    values = {**PATH_VALUES, **seeding.values, **case.path}
    upload = row.body is None and case.raw is not None
    return await fetch(seeding.jp_fetch, row.method, row_path(row, values), token=TOKENS["ann"],
                       raw=case.raw if upload else raw, params=[(name, _fill(text, values)) for name, text in query],
                       content_type="application/octet-stream" if upload else "application/json")


def _refusal_problem(bad: BadInput, status: int, answer: Any, code: str | None = None) -> str | None:
    """What is wrong with the answer to a bad input; None when it is the refusal it should be (``code``: one
    checked outside the model, with its own code and no field detail)."""
    error = answer.get("error") if isinstance(answer, dict) else None
    if error is None:
        return f"{status} without an error body: {answer!r:.200}"
    if (status, error.get("code")) != (bad.status, code or bad.code):
        return f"{status} {error.get('code')} (wanted {bad.status} {code or bad.code}): {error.get('message')}"
    if not error.get("message"):
        return "the error has no message"
    if bad.field is not None and code is None:
        named = [item.get("field", "") for item in error.get("detail") or []]
        field = bad.field
        if not any(name == field or name.startswith(f"{field}.") or field.startswith(f"{name}.") for name in named):
            return f"the refusal names {named}, not {field}: {error.get('message')}"
    return None


@pytest.mark.parametrize("name", GENERATED_ROWS)
async def test_generated_bad_inputs_are_refused_and_write_nothing(api, jp_fetch, jp_serverapp, tmp_path,
                                                                  isolated_home, tracking_runs, name: str) -> None:
    """Every bad input generated for the row is refused, names its field, and writes nothing; then the valid
    example does what it should."""
    row, case = by_name()[name], CASES[name]
    seeding = await seeded(api, jp_fetch, jp_serverapp, tmp_path, tracking_runs[1], case)
    written = Written(jp_serverapp.web_app.settings["aitip"].catalog.engine, isolated_home, tracking_runs[0])
    example_raw = json.dumps(case.body).encode() if case.body is not None else None
    example_query = query_pairs(case.query)
    before = written.snapshot()
    problems = []
    for bad in generated(row):
        if f"{name} {bad.label}" in KNOWN_BUGS:
            continue
        status, answer = await _send(row, seeding, raw=bad.raw if bad.raw is not None else example_raw,
                                     query=bad.query if bad.query is not None else example_query)
        problem = _refusal_problem(bad, status, answer, OUTSIDE_THE_MODEL.get(f"{name} {bad.label}"))
        changes = Written.changes(before, written.snapshot())
        if changes:
            problem = f"{problem or status}; it wrote {changes}"
            before = written.snapshot()
        if problem:
            problems.append(f"{bad.label}: {problem}")
    assert problems == [], f"{name}:\n" + "\n".join(problems)

    status, answer = await _send(row, seeding, raw=example_raw, query=example_query)
    wanted = expected(row.action, "admin", case.allowed or row.status)
    assert status == wanted, f"{name}: the valid example got {status}: {answer!r:.300}"
    if 200 <= status < 300 and row.method != "GET":
        assert Written.changes(before, written.snapshot()), f"{name}: its write does not show in the snapshot"


def _known(name: str, label: str) -> BadInput:
    return next(bad for bad in generated(by_name()[name]) if bad.label == label)


@pytest.mark.parametrize("key", [pytest.param(key, marks=pytest.mark.xfail(strict=True, reason=reason))
                                 for key, reason in KNOWN_BUGS.items()])
async def test_known_bugs_among_generated_bad_inputs(api, jp_fetch, jp_serverapp, tmp_path, isolated_home,
                                                     tracking_runs, key: str) -> None:
    """The generated cases the server gets wrong today, one by one (they leave the test above)."""
    name, _, label = key.partition(" ")
    row, case, bad = by_name()[name], CASES[name], _known(name, label)
    seeding = await seeded(api, jp_fetch, jp_serverapp, tmp_path, tracking_runs[1], case)
    written = Written(jp_serverapp.web_app.settings["aitip"].catalog.engine, isolated_home, tracking_runs[0])
    before = written.snapshot()
    status, answer = await _send(row, seeding, raw=bad.raw if bad.raw is not None else
                                 (json.dumps(case.body).encode() if case.body is not None else None),
                                 query=bad.query if bad.query is not None else query_pairs(case.query))
    assert _refusal_problem(bad, status, answer, OUTSIDE_THE_MODEL.get(key)) is None, answer
    assert Written.changes(before, written.snapshot()) == []


def test_every_operation_is_generated_or_has_no_inputs() -> None:
    """A row is either given bad inputs from its models or listed as having none: a new row with a body or a
    query cannot miss the generator, and one listed here cannot quietly grow inputs."""
    for row in operations():
        has_inputs = row.body is not None or row.query is not None
        if row.name in NO_INPUTS:
            assert not has_inputs, f"{row.name} has a model now: drop it from NO_INPUTS"
        else:
            assert has_inputs, f"{row.name}: no body or query model; list it in NO_INPUTS with why"
            assert generated(row), f"{row.name}: no bad input generated from its models"
    assert set(NO_INPUTS) <= set(by_name()), "NO_INPUTS names operations that no longer exist"
    for key in [*KNOWN_BUGS, *OUTSIDE_THE_MODEL]:
        name, _, label = key.partition(" ")
        assert name in GENERATED_ROWS and any(bad.label == label for bad in generated(by_name()[name])), key


@pytest.mark.parametrize("name", GENERATED_ROWS)
def test_the_generated_inputs_are_bad_and_the_example_good(name: str) -> None:
    """The generator's side of the bargain, without a server: each model accepts the row's example and
    refuses every input generated from it (so a 422 above is for the fault it was made with)."""
    row, case = by_name()[name], CASES[name]
    if row.body is not None:
        row.body.model_validate_json(json.dumps(case.body))
    if row.query is not None:
        _query_model(row, query_pairs(case.query))
    for bad in generated(row):
        if f"{name} {bad.label}" in OUTSIDE_THE_MODEL:
            continue
        if bad.beyond_model:  # the model leaves it open: the server must refuse it all the same
            if bad.query is not None:
                _query_model(row, list(bad.query))
            else:
                row.body.model_validate_json(bad.raw or b"")  # type: ignore[union-attr]
            continue
        with pytest.raises((ValidationError, ValueError)):
            if bad.raw is not None:
                data = json.loads(bad.raw)  # malformed JSON raises here
                if not isinstance(data, dict):
                    raise ValueError("not a JSON object")
                row.body.model_validate_json(bad.raw)  # type: ignore[union-attr]
            else:
                _query_model(row, list(bad.query or ()))
            pytest.fail(f"{name} {bad.label}: the model accepts it")


def _query_model(row: Operation, pairs: list[tuple[str, str]]) -> Any:
    """The query as the server reads it: a parameter the model holds as a list may repeat."""
    assert row.query is not None
    filled = [(name, _fill(text, {"run": "a" * 32, "other_run": "b" * 32})) for name, text in pairs]
    raw: dict[str, Any] = {}
    for name, text in filled:
        if name in repeatable_parameters(row.query):
            raw.setdefault(name, []).append(text)
        else:
            raw[name] = text
    return row.query.model_validate(raw, strict=False)


# ----- hand-written: what a schema does not say -----

LONG_DESCRIPTION = b'{"name": "beta", "description": "' + b"d" * (1024 * 1024) + b'"}'
NOTEBOOK = b'{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'
# (method, path, raw body, extra headers, query, expected status, expected error code)
SPECIAL: list[tuple[str, str, bytes | None, dict[str, str], dict[str, str], int, str]] = [
    ("POST", "projects", b"", {}, {}, 400, "invalid_json"),
    ("POST", "projects", b'{"name": NaN}', {}, {}, 400, "invalid_json"),
    ("POST", "projects", b'{"name": "caf\xe9"}', {}, {}, 400, "invalid_encoding"),
    ("POST", "projects", b'{"name": "ok\xff\xfe"}', {}, {}, 400, "invalid_encoding"),
    ("POST", "projects", b'{"name": "beta"}', {"Content-Type": "text/plain"}, {}, 415, "unsupported_media_type"),
    ("POST", "projects", LONG_DESCRIPTION, {}, {}, 413, "payload_too_large"),
    # Names the project rule refuses that a generated pattern-breaker does not try.
    ("POST", "projects", b'{"name": "Beta"}', {}, {}, 422, "invalid_input"),
    ("POST", "projects", b'{"name": "../etc"}', {}, {}, 422, "invalid_input"),
    ("POST", "projects", b'{"name": "-beta"}', {}, {}, 422, "invalid_input"),
    ("POST", "projects/alpha/members", b'{"user": "a/b", "role": "viewer"}', {}, {}, 422, "invalid_input"),
    ("POST", "jobs", b'{"project": "alpha", "notebook": ' + NOTEBOOK + b', "inputs": [{"dataset": "a..b", '
     b'"version": 1}]}', {}, {}, 422, "invalid_input"),
    # Model validators: checks across fields.
    ("PATCH", "projects/alpha", b"{}", {}, {}, 422, "invalid_input"),
    ("PATCH", "projects/alpha", b'{"display_name": null, "description": null}', {}, {}, 422, "invalid_input"),
    ("POST", "projects/alpha/members", b'{"user": "bob", "group": "g", "role": "viewer"}', {}, {}, 422,
     "invalid_input"),
    ("POST", "projects/alpha/members", b'{"role": "viewer"}', {}, {}, 422, "invalid_input"),
    # A job runs one notebook: the document or a shipped one, by a name the library has.
    ("POST", "jobs", b'{"project": "alpha"}', {}, {}, 422, "invalid_input"),
    ("POST", "jobs", b'{"project": "alpha", "notebook": ' + NOTEBOOK + b', "shipped": "train/digits_sklearn"}', {},
     {}, 422, "invalid_input"),
    ("POST", "jobs", b'{"project": "alpha", "shipped": "train/no_such_notebook"}', {}, {}, 422, "invalid_input"),
    ("POST", "jobs", b'{"project": "alpha", "shipped": "../../etc/passwd"}', {}, {}, 422, "invalid_input"),
    ("POST", "jobs", b'{"project": "alpha", "shipped": "evaluate/classification"}', {}, {}, 422, "invalid_input"),
    # A sweep searches one notebook: the document, a shipped one or a job's.
    ("POST", "sweeps", b'{"project": "alpha", "shipped": "train/digits_sklearn", "job": 1, "objective": "y", '
     b'"space": {"x": {"type": "grid", "values": [1]}}}', {}, {}, 422, "invalid_input"),
    ("POST", "sweeps", b'{"project": "alpha", "objective": "y", "space": {"x": {"type": "grid", "values": [1]}}}',
     {}, {}, 422, "invalid_input"),
    ("POST", "sweeps", b'{"project": "alpha", "notebook": ' + NOTEBOOK + b', "job": 1, "objective": "y", '
     b'"space": {"x": {"type": "grid", "values": [1]}}}', {}, {}, 422, "invalid_input"),
    # A path value that can never name a project.
    ("GET", "projects/NOT-A-NAME", None, {}, {}, 404, "not_found"),
    # Past SQLite's integers these were 500s (found by the OpenAPI test's generated requests).
    ("GET", "jobs", None, {}, {"offset": "99999999999999999999"}, 422, "invalid_input"),
    ("GET", "jobs/1/events", None, {}, {"after": "99999999999999999999"}, 422, "invalid_input"),
    ("GET", "jobs/1/events", None, {"Last-Event-ID": "99999999999999999999"}, {}, 422, "invalid_input"),
    ("GET", "jobs/1/events", None, {"Last-Event-ID": "soon"}, {}, 422, "invalid_input"),
    # A query number past a float's range parses as inf (it was a 200 answering from "inf").
    ("GET", "resources/history", None, {}, {"since": "1e400"}, 422, "invalid_input"),
    ("GET", "resources/history", None, {}, {"since": "nan"}, 422, "invalid_input"),
]


@pytest.mark.parametrize(("method", "path", "raw", "headers", "query", "status", "code"), SPECIAL,
                         ids=[f"{c[0]} {c[1]} #{i}" for i, c in enumerate(SPECIAL)])
async def test_bad_input_is_refused_and_nothing_is_written(api, jp_serverapp, isolated_home, tracking_runs,
                                                           method: str, path: str,
                                                           raw: bytes | None, headers: dict[str, str],
                                                           query: dict[str, str], status: int, code: str) -> None:
    """What the models cannot say, refused as clearly, with nothing written."""
    await seed(api)
    written = Written(jp_serverapp.web_app.settings["aitip"].catalog.engine, isolated_home, tracking_runs[0])
    before = written.snapshot()
    got, body = await api(method, path, raw=raw, headers=headers, params=query)
    assert (got, body["error"]["code"]) == (status, code), body
    assert body["error"]["message"], "the message must say what to fix"
    assert Written.changes(before, written.snapshot()) == []


async def test_validation_errors_name_the_field(api) -> None:
    status, body = await api("POST", "projects", raw=b'{"name": "Beta"}')
    assert status == 422
    assert body["error"]["detail"][0]["field"] == "name"
    assert "name" in body["error"]["message"] and "pattern" in body["error"]["message"]


@pytest.mark.parametrize("language", ["zh-CN,zh;q=0.9,en;q=0.5", "cookie"])
async def test_a_refusal_is_told_in_the_callers_language(api, language: str) -> None:
    """The same refusal in Chinese (``Accept-Language``, or the pages' ``aitip_lang`` cookie): its message is
    translated, its code and detail are what programs read, unchanged; a caller that names no language reads
    English."""
    headers = {"Cookie": "aitip_lang=zh_CN", "Accept-Language": "en"} if language == "cookie" else \
        {"Accept-Language": language}
    english_status, english = await api("POST", "projects", raw=b'{"name": "Beta"}')
    status, chinese = await api("POST", "projects", raw=b'{"name": "Beta"}', headers=headers)
    assert (status, chinese["error"]["code"], chinese["error"]["detail"]) == \
        (english_status, english["error"]["code"], english["error"]["detail"])
    assert english["error"]["message"].startswith("invalid request body: name: String should match pattern")
    message = chinese["error"]["message"]
    assert message.startswith("请求体") and "name" in message and "should" not in message, message
    status, missing = await api("GET", "projects/nowhere", headers=headers)
    assert status == 404 and "nowhere" in missing["error"]["message"] and "exist" not in missing["error"]["message"]
