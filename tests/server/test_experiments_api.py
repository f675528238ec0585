"""The experiments API on a real server reading a real MLflow store: every route, who may call it,
and bad input as a clear 4xx."""

from __future__ import annotations

from typing import Any

import pytest

from tests.experiments.test_service import LAB_RUNS, TrackingStore, build_tracking_store


@pytest.fixture(scope="module")
def tracking_store(tmp_path_factory: pytest.TempPathFactory) -> TrackingStore:
    root = tmp_path_factory.mktemp("mlflow-api")
    return build_tracking_store(f"sqlite:///{root / 'mlflow.sqlite'}", root / "artifacts")


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any], tracking_store: TrackingStore) -> dict[str, Any]:
    jp_server_config["AitipExtension"]["mlflow_tracking_uri"] = tracking_store.uri
    return jp_server_config


async def _seed(api: Any) -> Any:
    for name in ("lab", "other"):
        assert (await api("POST", "projects", user="ann", body={"name": name}))[0] == 201
    status, _ = await api("POST", "projects/lab/members", user="ann", body={"user": "bob", "role": "viewer"})
    assert status == 201
    return api


async def test_every_route(api: Any, tracking_store: TrackingStore) -> None:
    api = await _seed(api)
    store = tracking_store
    status, body = await api("GET", "projects/lab/experiments")
    assert status == 200
    assert [(e["name"], e["run_count"]) for e in body["experiments"]] == [("aitip/lab", LAB_RUNS - 1),
                                                                          ("lab-extra", 4)]
    assert set(body["experiments"][0]) == {"experiment_id", "name", "lifecycle_stage", "tags", "run_count"}

    status, page = await api("GET", "projects/lab/runs", params={"max_results": 5})
    assert status == 200 and len(page["runs"]) == 5 and page["next_page_token"]
    assert set(page["runs"][0]) == {"run_id", "run_name", "experiment_id", "status", "start_time", "end_time",
                                    "user", "job_id", "params", "metrics", "tags"}
    status, following = await api("GET", "projects/lab/runs", params={"max_results": 5,
                                                                      "page_token": page["next_page_token"]})
    assert status == 200 and not {r["run_id"] for r in page["runs"]} & {r["run_id"] for r in following["runs"]}

    status, ordered = await api("GET", "projects/lab/runs", params=[
        ("filter", "params.lr = '0.1' and metrics.accuracy > 0.1"), ("order_by", "params.optimizer DESC"),
        ("order_by", "metrics.accuracy ASC"), ("experiment_id", store.lab), ("max_results", "1000")])
    assert status == 200 and ordered["next_page_token"] is None
    keys = [(r["params"]["optimizer"], r["metrics"]["accuracy"]) for r in ordered["runs"]]
    assert keys and keys == sorted(keys, key=lambda k: (-ord(k[0][0]), k[1]))
    assert all(r["params"]["lr"] == "0.1" and r["experiment_id"] == store.lab for r in ordered["runs"])

    status, run = await api("GET", f"runs/{store.lab_runs[0]}")
    assert status == 200 and run["project"] == "lab" and run["job_id"] == 100 and run["job"] is None
    assert {"notebook/report.txt", "report.txt"} <= {a["path"] for a in run["artifacts"]}
    assert run["metric_keys"] == ["accuracy", "curve", "loss", "odd", "sparse"] and run["metrics"]["odd"] is None

    status, history = await api("GET", f"runs/{store.lab_runs[0]}/metric-history",
                                params={"key": "curve", "max_points": 100})
    assert status == 200 and history["total_points"] == 3000 and len(history["points"]) == 100
    assert set(history["points"][0]) == {"step", "timestamp", "value"}

    status, compared = await api("GET", "projects/lab/compare", params=[
        ("run", store.lab_runs[0]), ("run", store.lab_runs[1]), ("key", "curve"), ("max_points", "50")])
    assert status == 200 and [r["run_id"] for r in compared["runs"]] == store.lab_runs[:2]
    assert compared["params"]["lr"] == {store.lab_runs[0]: "0.1", store.lab_runs[1]: "0.01"}
    assert "lr" in compared["differing_params"] and set(compared["metrics"]) >= {"accuracy", "loss"}
    assert [len(points) for points in compared["curves"]["curve"].values()] == [50, 50]

    status, models = await api("GET", "projects/lab/models")
    assert status == 200
    (digits,) = models["models"]
    assert digits["aliases"] == {"champion": 3} and [v["version"] for v in digits["versions"]] == [3, 1]
    assert set(digits["versions"][0]) == {"version", "run_id", "job_id", "status", "creation_timestamp", "aliases",
                                          "source"}


def _routes(store: TrackingStore) -> list[tuple[str, dict[str, Any] | list[tuple[str, str]]]]:
    return [
        ("projects/lab/experiments", {}),
        ("projects/lab/runs", {"filter": "metrics.accuracy > 0.5"}),
        (f"runs/{store.lab_runs[0]}", {}),
        (f"runs/{store.lab_runs[0]}/metric-history", {"key": "loss"}),
        ("projects/lab/compare", [("run", store.lab_runs[0]), ("run", store.lab_runs[2])]),
        ("projects/lab/models", {}),
    ]


@pytest.mark.parametrize("caller", ["viewer", "admin", "hub-admin", "outsider", "no token"])
async def test_who_may_read(api: Any, tracking_store: TrackingStore, caller: str) -> None:
    api = await _seed(api)
    user = {"viewer": "bob", "admin": "ann", "hub-admin": "root", "outsider": "erin", "no token": None}[caller]
    expected = {"outsider": 404, "no token": 403}.get(caller, 200)
    for path, params in _routes(tracking_store):
        status, body = await api("GET", path, user=user, params=params)
        assert status == expected, (path, body)
        if status == 404:
            assert body["error"]["code"] == "not_found" and "lab" not in str(body["error"].get("detail"))


def _bad_inputs(store: TrackingStore) -> list[tuple[str, Any, int, str, str]]:
    lab0, lab1, theirs = store.lab_runs[0], store.lab_runs[1], store.other_runs[0]
    many = [("run", f"{i:032x}") for i in range(21)]
    return [
        ("projects/lab/runs", {"filter": "metrics.accuracy >"}, 400, "invalid_search", "invalid filter"),
        ("projects/lab/runs", {"filter": "params.lr > '1'"}, 400, "invalid_search", "Invalid comparator"),
        ("projects/lab/runs", {"filter": "metrics.a > 1 OR metrics.b > 1"}, 400, "invalid_search", "filter"),
        ("projects/lab/runs", {"order_by": "metrics.accuracy SIDEWAYS"}, 400, "invalid_search", "order_by"),
        ("projects/lab/runs", [("order_by", "metrics.a"), ("order_by", "metrics.a DESC")], 400, "invalid_search",
         "twice"),
        ("projects/lab/runs", {"max_results": 0}, 422, "invalid_input", "max_results"),
        ("projects/lab/runs", {"max_results": 10001}, 422, "invalid_input", "max_results"),
        ("projects/lab/runs", {"max_results": "many"}, 422, "invalid_input", "max_results"),
        ("projects/lab/runs", [("max_results", "5"), ("max_results", "6")], 422, "invalid_input", "once"),
        ("projects/lab/runs", {"page_token": "forged"}, 400, "invalid_page_token", "page_token"),
        ("projects/lab/runs", {"experiment_id": store.other}, 404, "not_found", "experiment"),
        ("projects/lab/runs", {"unknown": "1"}, 422, "invalid_input", "unknown"),
        ("projects/NOPE/runs", {}, 404, "not_found", "project"),
        ("projects/ghost/runs", {}, 404, "not_found", "ghost"),
        ("projects/lab/experiments", {"include_deleted": "maybe"}, 422, "invalid_input", "include_deleted"),
        (f"runs/{'0' * 32}", {}, 404, "not_found", "does not exist"),
        ("runs/not-a-run-id", {}, 404, "not_found", "'not-a-run-id' is not a run"),
        (f"runs/{lab0}/metric-history", {}, 422, "invalid_input", "key"),
        (f"runs/{lab0}/metric-history", {"key": "nope"}, 404, "not_found", "no metric"),
        (f"runs/{lab0}/metric-history", {"key": "loss", "max_points": 2}, 422, "invalid_input", "max_points"),
        ("projects/lab/compare", [("run", lab0)], 422, "invalid_input", "run"),
        ("projects/lab/compare", many, 422, "invalid_input", "run"),
        ("projects/lab/compare", [("run", lab0), ("run", "x" * 32)], 422, "invalid_input", "run"),
        ("projects/lab/compare", [("run", lab0), ("run", lab0)], 422, "invalid_input", "more than once"),
        ("projects/lab/compare", [("run", lab0), ("run", theirs)], 404, "not_found", theirs),
        ("projects/lab/compare", [("run", lab0), ("run", lab1), ("max_points", "0")], 422, "invalid_input",
         "max_points"),
    ]


@pytest.mark.parametrize("case", range(26))
async def test_bad_input_is_a_clear_4xx(api: Any, tracking_store: TrackingStore, case: int) -> None:
    cases = _bad_inputs(tracking_store)
    assert len(cases) == 26
    path, params, status, code, message = cases[case]
    api = await _seed(api)
    got, body = await api("GET", path, params=params)
    assert (got, body["error"]["code"]) == (status, code), body
    assert message in body["error"]["message"], body
