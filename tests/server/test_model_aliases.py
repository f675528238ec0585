"""A maintainer points a model's aliases at the project's own versions; another project's alias is not theirs."""

from __future__ import annotations

import contextlib
import dataclasses
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.experiments.test_service import TrackingStore, build_tracking_store

MODEL = "projects/lab/models/digits/aliases"


@pytest.fixture(scope="module")
def built_tracking_store(tmp_path_factory: pytest.TempPathFactory) -> TrackingStore:
    """Model digits: v1 and v3 from lab's runs (champion on v3), v2 from project other's (theirs on v2)."""
    root = tmp_path_factory.mktemp("mlflow-aliases")
    return build_tracking_store(f"sqlite:///{root / 'mlflow.sqlite'}", root / "artifacts")


@pytest.fixture
def tracking_store(built_tracking_store: TrackingStore, tmp_path: Path) -> TrackingStore:
    """The module's store, built once, copied for each test (each moves aliases in its own copy; the artifacts,
    which no test here reads or writes, stay the module's)."""
    path = tmp_path / "mlflow.sqlite"
    with contextlib.closing(sqlite3.connect(built_tracking_store.uri.removeprefix("sqlite:///"))) as source, \
            contextlib.closing(sqlite3.connect(path)) as copy:
        source.backup(copy)
    return dataclasses.replace(built_tracking_store, uri=f"sqlite:///{path}")


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any], tracking_store: TrackingStore) -> dict[str, Any]:
    jp_server_config["AitipExtension"]["mlflow_tracking_uri"] = tracking_store.uri
    return jp_server_config


async def seed(api: Any) -> None:
    for name in ("lab", "other"):
        assert (await api("POST", "projects", body={"name": name}))[0] == 201
    for user, role in (("dave", "maintainer"), ("carol", "developer")):
        assert (await api("POST", "projects/lab/members", body={"user": user, "role": role}))[0] == 201


async def test_a_maintainer_moves_and_removes_an_alias_of_the_projects_versions(api: Any, jp_serverapp: Any) -> None:
    from sqlalchemy import select

    from aitip.audit import AuditEventRecord

    await seed(api)
    status, model = await api("PUT", f"{MODEL}/champion", body={"version": 1}, user="dave")
    assert status == 200, model
    assert model["aliases"] == {"champion": 1}  # the project sees its own versions' aliases only
    assert [(v["version"], v["aliases"]) for v in model["versions"]] == [(3, []), (1, ["champion"])]
    status, model = await api("PUT", f"{MODEL}/staging", body={"version": 3}, user="dave")
    assert status == 200 and model["aliases"] == {"champion": 1, "staging": 3}
    status, model = await api("DELETE", f"{MODEL}/champion", user="dave")
    assert status == 200 and model["aliases"] == {"staging": 3}
    status, listed = await api("GET", "projects/lab/models", user="carol")
    assert [m["aliases"] for m in listed["models"] if m["name"] == "digits"] == [{"staging": 3}]
    with jp_serverapp.web_app.settings["aitip"].catalog.session() as session:
        trail = [(event.actor, event.target, event.detail) for event in session.scalars(
            select(AuditEventRecord).where(AuditEventRecord.action == "model.manage").order_by(AuditEventRecord.id))]
    assert trail == [
        ("dave", "model:digits", {"project": "lab", "alias": "champion", "version": 1, "was": 3}),
        ("dave", "model:digits", {"project": "lab", "alias": "staging", "version": 3, "was": None}),
        ("dave", "model:digits", {"project": "lab", "alias": "champion", "version": None, "was": 1})]


@pytest.mark.parametrize(("method", "path", "body", "user", "status", "code"), [
    ("PUT", "champion", {"version": 2}, "dave", 404, "not_found"),  # v2 is project other's
    ("PUT", "theirs", {"version": 1}, "dave", 409, "alias_of_another_project"),
    ("DELETE", "theirs", None, "dave", 409, "alias_of_another_project"),
    ("DELETE", "nothing", None, "dave", 404, "not_found"),
    ("PUT", "latest", {"version": 1}, "dave", 422, "invalid_input"),
    ("PUT", "v3", {"version": 1}, "dave", 422, "invalid_input"),
    ("PUT", "champion", {"version": 1}, "carol", 403, "forbidden"),
    ("PUT", "champion", {"version": 0}, "dave", 422, "invalid_input"),
], ids=["another project's version", "another project's alias", "removing another project's alias",
        "no such alias", "reserved latest", "reserved v3", "developer", "version 0"])
async def test_refused_alias_changes_change_nothing(api: Any, tracking_store: TrackingStore, method: str, path: str,
                                                    body: Any, user: str, status: int, code: str) -> None:
    from mlflow import MlflowClient

    await seed(api)
    got, answer = await api(method, f"{MODEL}/{path}", body=body, user=user)
    assert (got, answer["error"]["code"]) == (status, code), answer
    client = MlflowClient(tracking_uri=tracking_store.uri, registry_uri=tracking_store.uri)
    assert client.get_registered_model("digits").aliases == {"champion": 3, "theirs": 2}


async def test_an_archived_projects_aliases_stay_as_they_are(api: Any) -> None:
    await seed(api)
    assert (await api("POST", "projects/lab/archive"))[0] == 200
    status, refused = await api("PUT", f"{MODEL}/champion", body={"version": 1})
    assert (status, refused["error"]["code"]) == (409, "project_archived")
