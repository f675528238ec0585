"""Runs and models in a terminal, against the real platform server and an MLflow store: times on the local
clock, the metrics as columns, one run whole, runs side by side, each model version — and a reader that goes
away (`aitip ... | head`) ends the CLI quietly."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from aitip.cli import main
from tests.server.conftest import TOKENS
from tests.support.cli import cli_runner
from tests.support.operation_calls import build_tracking_runs


@pytest.fixture(scope="module")
def tracking(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[str]]:
    """Two finished runs of project alpha with metric y (0.5 and 0.7), params that differ in one, and version 1
    of model digits from the second run."""
    from mlflow.tracking import MlflowClient

    uri, runs = build_tracking_runs(tmp_path_factory.mktemp("mlflow-cli"))
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    for run, rate in zip(runs, ("0.1", "0.01"), strict=True):
        client.log_param(run, "learning_rate", rate)
        client.log_param(run, "seed", "0")
    client.create_registered_model("digits")
    client.create_model_version("digits", f"runs:/{runs[1]}/model", run_id=runs[1])
    return uri, runs


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any], tracking: tuple[str, list[str]]) -> dict[str, Any]:
    jp_server_config["AitipExtension"]["mlflow_tracking_uri"] = tracking[0]
    return jp_server_config


async def test_runs_and_models_read_as_tables_on_the_local_clock(
        api: Any, jp_http_port: int, jp_base_url: str, tracking: tuple[str, list[str]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Shanghai")  # UTC+8 all year: the tables' times are the shell's clock
    time.tzset()
    try:
        status, _ = await api("POST", "projects", body={"name": "alpha"})
        assert status == 201
        first, second = tracking[1]
        aitip = cli_runner(f"http://127.0.0.1:{jp_http_port}{jp_base_url}")

        def session() -> dict[str, tuple[int, str, str]]:
            return {"list": aitip("runs", "list", "--project", "alpha"),
                    "list_json": aitip("--json", "runs", "list", "--project", "alpha"),
                    "get": aitip("runs", "get", "--run", first),
                    "compare": aitip("runs", "compare", "--project", "alpha", "--run", first, "--run", second),
                    "models": aitip("models", "list", "--project", "alpha")}

        done = await asyncio.to_thread(session)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    runs = json.loads(done["list_json"][1])["runs"]
    started = {run["run_id"]: run["start_time"] for run in runs}
    shanghai = timezone(timedelta(hours=8))

    def clock(ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000, shanghai).strftime("%Y-%m-%d %H:%M:%S")

    code, shown, _ = done["list"]
    header, *rows = shown.splitlines()
    assert code == 0 and header.split() == ["RUN_ID", "NAME", "STATUS", "STARTED", "DURATION", "JOB", "Y"]
    assert any(first in row and clock(started[first]) in row and "0.5" in row for row in rows), shown
    code, shown, _ = done["get"]
    assert code == 0 and shown.startswith(f"run {first}: ") and f"started:    {clock(started[first])}" in shown
    assert "learning_rate  0.1" in shown and "y       0.5" in shown.replace("METRIC  VALUE", "")
    code, shown, _ = done["compare"]
    lines = shown.splitlines()
    assert code == 0 and f"({first[:8]})" in lines[0] and f"({second[:8]})" in lines[0]
    assert lines[1].split() == ["param", "learning_rate", "0.1", "0.01"] and lines[2].split() == ["y", "0.5", "0.7"]
    assert "1 parameters are the same in every run" in shown
    code, shown, _ = done["models"]
    assert code == 0 and shown.splitlines()[0].split() == ["MODEL", "VERSION", "STATUS", "ALIASES", "CREATED", "JOB",
                                                           "RUN_ID"]
    assert shown.splitlines()[1].split()[:3] == ["digits", "1", "READY"] and second in shown


class _ClosedPipe(io.StringIO):
    """Standard output whose reader has gone (``| head`` done): every write fails as a closed pipe does."""

    def __init__(self) -> None:
        super().__init__()
        self.read_end, self._write_end = os.pipe()

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    def fileno(self) -> int:
        return self._write_end


async def test_a_reader_that_goes_away_ends_the_cli_quietly(
        api: Any, jp_http_port: int, jp_base_url: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    status, _ = await api("POST", "projects", body={"name": "alpha"})
    assert status == 201
    closed = _ClosedPipe()
    monkeypatch.setattr("sys.stdout", closed)
    url = f"http://127.0.0.1:{jp_http_port}{jp_base_url}"
    code = await asyncio.to_thread(main, ["--url", url, "--token", TOKENS["ann"], "--json", "runs", "list",
                                          "--project", "alpha"])
    assert code == 128 + signal.SIGPIPE
    # Standard output now goes nowhere (the pipe lost its writer), so Python's flush at exit cannot fail too.
    assert os.write(closed.fileno(), b"x") == 1 and os.read(closed.read_end, 1) == b""
    assert "Traceback" not in capsys.readouterr().err
