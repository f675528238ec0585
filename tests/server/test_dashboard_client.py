"""The dashboards' client is the operation table's: every call is a row sent by the generated SDK, none is
built by hand, and its answers are what REST answers."""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path
from typing import Any

from aitip.client import Client
from aitip.operations.table import by_name
from panel_apps.api import DashboardAPI
from tests.server.conftest import TOKENS
from tests.support.notebooks import TRIVIAL

API_SOURCE = Path(__file__).resolve().parents[2] / "panel_apps" / "api.py"


def _called_operations() -> tuple[set[str], list[str]]:
    """The operation names the client's methods send, and any call that bypasses the table."""
    names: set[str] = set()
    bypasses: list[str] = []
    for node in ast.walk(ast.parse(API_SOURCE.read_text())):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        if node.func.attr in ("op", "_optional") and node.args and isinstance(node.args[0], ast.Constant):
            names.add(node.args[0].value)
        elif node.func.attr in ("request", "upload", "download", "_get", "get", "post"):
            bypasses.append(f"line {node.lineno}: .{node.func.attr}(...)")
    return names, bypasses


def test_every_call_of_the_dashboards_client_is_an_operation_of_the_table() -> None:
    names, bypasses = _called_operations()
    assert bypasses == []
    assert names and names <= set(by_name()), sorted(names - set(by_name()))


async def test_the_dashboards_client_answers_as_rest_does(api: Any, jp_http_port: int, jp_base_url: str) -> None:
    assert (await api("POST", "projects", body={"name": "alpha"}))[0] == 201
    status, _ = await api("POST", "projects/alpha/datasets/digits/versions", raw=b"a,b\n1,2\n",
                          params={"filename": "digits.csv"})
    assert status == 201
    status, job = await api("POST", "jobs", body={"project": "alpha", "notebook": TRIVIAL})
    assert status == 201

    def pages() -> dict[str, Any]:
        dashboards = DashboardAPI(Client(url=f"http://127.0.0.1:{jp_http_port}{jp_base_url}", token=TOKENS["ann"]))
        try:
            return {"jobs": dashboards.jobs(project="alpha"), "counts": dashboards.job_counts("alpha"),
                    "job": dashboards.job(job["id"]), "datasets": dashboards.datasets("alpha"),
                    "versions": dashboards.dataset_versions("alpha", "digits"), "me": dashboards.me(),
                    "lineage": dashboards.lineage("dataset:alpha/digits@1")}
        finally:
            dashboards.close()

    seen = await asyncio.to_thread(pages)
    assert seen["jobs"] == (await api("GET", "jobs", params={"project": "alpha", "limit": "100"}))[1]
    assert seen["job"] == (await api("GET", f"jobs/{job['id']}"))[1]
    assert seen["counts"]["queued"] + seen["counts"]["starting"] + seen["counts"]["running"] + \
        seen["counts"]["succeeded"] + seen["counts"]["failed"] == 1
    assert [d["name"] for d in seen["datasets"]] == ["digits"]
    assert seen["versions"] == (await api("GET", "projects/alpha/datasets/digits/versions"))[1]["versions"]
    assert seen["me"]["name"] == "ann"
    assert seen["lineage"]["root"] == "dataset:alpha/digits@1"
