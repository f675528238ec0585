"""Where the SDK finds the platform, and how the CLI prints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aitip.cli import table
from aitip.client import NotConfigured, resolve_endpoint, save_credentials


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AITIP_URL", "AITIP_TOKEN", "JUPYTERHUB_SERVICE_URL", "JUPYTERHUB_SERVICE_PREFIX",
                 "JUPYTERHUB_API_TOKEN", "AITIP_PLATFORM_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AITIP_CONFIG_DIR", str(tmp_path / "config"))


def test_nothing_configured_says_what_to_do() -> None:
    with pytest.raises(NotConfigured, match="aitip login"):
        resolve_endpoint()


def test_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AITIP_URL", "http://h:8000/services/aitip")
    monkeypatch.setenv("AITIP_TOKEN", "t")
    assert resolve_endpoint() == ("http://h:8000/services/aitip/api/aitip/v1/", "t")


def test_inside_a_user_server_the_own_relay_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:41234/user/ann/")
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/user/ann/")
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "server-token")
    monkeypatch.setenv("AITIP_PLATFORM_URL", "http://127.0.0.1:8181/services/aitip/")
    assert resolve_endpoint() == ("http://127.0.0.1:41234/user/ann/api/aitip/v1/", "server-token")


def test_saved_login_is_used_and_private(tmp_path: Path) -> None:
    path = save_credentials("http://hub/services/aitip/", "saved", "ann")
    assert path.stat().st_mode & 0o077 == 0
    assert json.loads(path.read_text())["user"] == "ann"
    assert resolve_endpoint() == ("http://hub/services/aitip/api/aitip/v1/", "saved")


def test_tables_align_and_say_when_empty() -> None:
    assert table([], ["name"]) == "(none)"
    rendered = table([{"name": "alpha", "role": "admin", "archived": False},
                      {"name": "b", "role": None, "archived": True}], ["name", "role", "archived"])
    assert rendered.splitlines() == ["NAME   ROLE   ARCHIVED", "alpha  admin  no", "b      -      yes"]


def test_experiment_calls_send_mlflow_searches_and_parse_typed_answers() -> None:
    import httpx

    from aitip.client import Client

    run = {"run_id": "a" * 32, "run_name": "job-1", "experiment_id": "1", "status": "FINISHED", "start_time": 1,
           "end_time": 2, "user": "ann", "job_id": 1, "params": {"lr": "0.1"}, "metrics": {"acc": 0.9}, "tags": {}}
    answers = {
        "/api/aitip/v1/projects/lab/runs": [{"runs": [run], "next_page_token": "t1"},
                                            {"runs": [{**run, "run_id": "b" * 32}], "next_page_token": None}],
        "/api/aitip/v1/projects/lab/compare": [{"runs": [run, run], "params": {"lr": {"a" * 32: "0.1"}},
                                                "differing_params": [], "metrics": {}, "curves": {}}],
        f"/api/aitip/v1/runs/{'a' * 32}/metric-history": [{"key": "acc", "total_points": 1, "points": [
            {"step": 0, "timestamp": 5, "value": None}]}],
        "/api/aitip/v1/projects/lab/models": [{"models": [{"name": "m", "description": None, "aliases": {"c": 1},
                                                           "versions": []}]}],
    }
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=answers[request.url.path].pop(0))

    client = Client("http://platform", "tok")
    client._http = httpx.Client(base_url=client.url, transport=httpx.MockTransport(answer))
    runs = list(client.iter_runs("lab", filter="metrics.acc > 0.5", order_by=["metrics.acc DESC", "params.lr"]))
    assert [r.run_id for r in runs] == ["a" * 32, "b" * 32]
    first, second = seen[0].url.params, seen[1].url.params
    assert first.get_list("order_by") == ["metrics.acc DESC", "params.lr"] and first["filter"] == "metrics.acc > 0.5"
    assert "page_token" not in first and second["page_token"] == "t1"
    compared = client.compare_runs("lab", ["a" * 32, "b" * 32], keys=["acc"])
    assert seen[-1].url.params.get_list("run") == ["a" * 32, "b" * 32] and compared.params["lr"]["a" * 32] == "0.1"
    history = client.metric_history("a" * 32, "acc", max_points=10)
    assert seen[-1].url.params["max_points"] == "10" and history.points[0].value is None
    assert client.models("lab").models[0].aliases == {"c": 1}
