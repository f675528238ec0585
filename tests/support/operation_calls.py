"""Calling one row of the operation table over HTTP, and what the platform has written, for the tests that
are generated from the table (tests/server/test_role_matrix.py, tests/server/test_bad_input.py)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, create_engine, inspect, select, text
from tornado.httpclient import HTTPClientError

from aitip.operations.table import Operation


def query_pairs(query: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """A query as the (name, value) pairs of a query string: a list is its parameter repeated, a boolean
    is ``true``/``false``, as the server reads them."""
    pairs: list[tuple[str, str]] = []
    for name, value in (query or {}).items():
        for item in value if isinstance(value, list) else [value]:
            pairs.append((name, json.dumps(item) if isinstance(item, bool) else str(item)))
    return pairs


def row_path(row: Operation, values: Mapping[str, Any]) -> str:
    """The row's path with its parameters filled in from ``values``."""
    return row.path.format(**{name: values[name] for name in row.parameters})


async def fetch(jp_fetch: Any, method: str, path: str, *, token: str | None, body: Any = None,
                raw: bytes | None = None, params: Iterable[tuple[str, str]] = (),
                headers: Mapping[str, str] | None = None,
                content_type: str = "application/json") -> tuple[int, Any]:
    """(status, answer) of one call under ``api/aitip/v1/``; the answer is its JSON, or its bytes when the
    answer is not JSON (a download, a notebook). Unlike the ``api`` fixture's calls it takes repeated query
    parameters and answers that are not JSON."""
    sent = {"Authorization": f"token {token or 'nobody'}"}
    payload = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    if payload is not None:
        sent["Content-Type"] = content_type
    sent.update(headers or {})
    kwargs: dict[str, Any] = {"method": method, "headers": sent, "params": list(params)}
    if payload is not None or method in ("POST", "PUT", "PATCH"):
        kwargs["body"] = payload if payload is not None else b""
    if method == "DELETE":
        kwargs["allow_nonstandard_methods"] = True
    try:
        response = await jp_fetch("api", "aitip", "v1", *path.strip("/").split("/"), **kwargs)
    except HTTPClientError as error:
        response = error.response
        assert response is not None, error
    data = response.body or b""
    if response.headers.get("Content-Type", "").startswith("application/json") and data:
        return response.code, json.loads(data)
    return response.code, data


class Written:
    """What the platform has written: every table of its catalog, read straight from the database (so a write
    anywhere shows, in a table no GET lists too), and every file under its home (the dataset registry and
    its staging area), and, given its URL, every table of the MLflow store (a model's aliases)."""

    def __init__(self, engine: Any, home: Path, tracking_url: str | None = None) -> None:
        self.engine, self.home = engine, home
        self.tracking = create_engine(tracking_url) if tracking_url else None
        # Reflected once per schema: reflecting every table on every snapshot was most of a snapshot's time
        # (and new Table objects defeat SQLAlchemy's statement cache). A schema that changes is reflected again.
        self._reflected: dict[str, tuple[Any, MetaData]] = {}

    @staticmethod
    def schema(engine: Any) -> Any:
        """What the database's schema is made of: on SQLite every table, index, view and trigger with its
        SQL (so an added column shows); elsewhere the tables' names."""
        if engine.dialect.name == "sqlite":
            with engine.connect() as connection:
                return tuple(connection.execute(text(
                    "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name")).all())
        return tuple(sorted(inspect(engine).get_table_names()))

    def _metadata(self, prefix: str, engine: Any) -> tuple[Any, MetaData]:
        schema = self.schema(engine)
        cached = self._reflected.get(prefix)
        if cached is None or cached[0] != schema:
            metadata = MetaData()
            metadata.reflect(engine)
            cached = self._reflected[prefix] = (schema, metadata)
        return cached

    def tables(self) -> dict[str, tuple[int, str]]:
        """Each table's row count and a hash of its rows in key order (the MLflow store's as ``mlflow:<name>``),
        and a hash of each database's schema (as ``schema:`` and ``mlflow:schema:``)."""
        found: dict[str, tuple[int, str]] = {}
        for prefix, engine in (("", self.engine), ("mlflow:", self.tracking)):
            if engine is None:
                continue
            schema, metadata = self._metadata(prefix, engine)
            found[f"{prefix}schema:"] = (len(schema), hashlib.sha256(repr(schema).encode()).hexdigest())
            with engine.connect() as connection:
                for name, table in sorted(metadata.tables.items()):
                    key = list(table.primary_key.columns) or list(table.columns)
                    rows = connection.execute(select(table).order_by(*key)).all()
                    found[prefix + name] = (len(rows),
                                            hashlib.sha256(repr([tuple(row) for row in rows]).encode()).hexdigest())
        return found

    def files(self) -> dict[str, str]:
        """Each file's path under the home, and a hash of its content."""
        found: dict[str, str] = {}
        for directory, _, names in os.walk(self.home):
            for name in names:
                path = Path(directory) / name
                try:
                    found[str(path.relative_to(self.home))] = hashlib.sha256(path.read_bytes()).hexdigest()
                except OSError:  # a socket, or a file removed while walking
                    continue
        return found

    def snapshot(self) -> tuple[dict[str, tuple[int, str]], dict[str, str]]:
        return self.tables(), self.files()

    @staticmethod
    def changes(before: tuple[dict[str, Any], dict[str, Any]], after: tuple[dict[str, Any], dict[str, Any]]
                ) -> list[str]:
        """The tables and files that differ, by name: empty when nothing was written."""
        changed = []
        for kind, old, new in (("table", before[0], after[0]), ("file", before[1], after[1])):
            changed += [f"{kind} {name}" for name in sorted(set(old) | set(new)) if old.get(name) != new.get(name)]
        return changed


def build_tracking_runs(root: Path, project: str = "alpha") -> tuple[str, list[str]]:
    """An MLflow store under ``root`` with two finished runs in experiment ``aitip/<project>`` (tagged with its
    project, as the platform makes them), each with a metric ``y``: its URI and the runs' ids."""
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{root / 'mlflow.sqlite'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.create_experiment(f"aitip/{project}", artifact_location=(root / "artifacts").as_uri(),
                                          tags={"aitip.project": project})
    runs = []
    for value in (0.5, 0.7):
        run = client.create_run(experiment).info.run_id
        client.log_metric(run, "y", value, step=0)
        client.set_terminated(run, "FINISHED")
        runs.append(run)
    return uri, runs
