"""Runs and models as the CLI writes them for a person, from the API's own answers (the models dumped as JSON)."""

from __future__ import annotations

import pytest

from aitip.experiments.models import ModelList, RegisteredModel, RunComparison, RunDetail, RunList
from aitip.experiments.text import comparison_text, duration, model_text, models_text, run_text, runs_text


def run(run_id: str, metrics: dict[str, float], **more: object) -> dict[str, object]:
    return {"run_id": run_id, "run_name": f"train · {run_id}", "experiment_id": "1", "status": "FINISHED",
            "start_time": 1_796_568_183_349, "end_time": 1_796_568_190_086, "user": "ann", "job_id": 3,
            "params": {"lr": "0.1"}, "metrics": metrics, "tags": {"mlflow.user": "ann"}, **more}


def test_durations_read_in_the_largest_units_that_fit() -> None:
    assert duration(0, 6_737) == "6.7 s" and duration(0, 200_000) == "3 min 20 s"
    assert duration(0, 3_900_000) == "1 h 5 min" and duration(0, None) == "-"


def test_a_page_of_runs_shows_the_metrics_most_runs_have_in_the_order_they_logged_them() -> None:
    page = RunList.model_validate({"runs": [run("a" * 32, {"loss": 0.25, "acc": 0.91234, "lr_now": 1e-3, "t": 2.0}),
                                            run("b" * 32, {"loss": 0.5, "acc": 0.8})],
                                   "next_page_token": "tok"}).model_dump(mode="json")
    header, first, second, *notes = runs_text(page).splitlines()
    assert header.split() == ["RUN_ID", "NAME", "STATUS", "STARTED", "DURATION", "JOB", "LOSS", "ACC", "LR_NOW"]
    assert first.split()[-3:] == ["0.25", "0.9123", "0.001"] and second.split()[-3:] == ["0.5", "0.8", "-"]
    assert "6.7 s" in first
    assert notes == ["1 more metrics: `aitip runs get --run ID` or --json shows them", "more runs: --page-token tok"]
    assert runs_text({"runs": [], "next_page_token": None}) == "(none)"


def test_one_run_shows_its_params_metrics_tags_artifacts_and_job() -> None:
    detail = RunDetail.model_validate(run("c" * 32, {"acc": 0.9}, project="alpha", artifacts=[
        {"path": "model", "is_dir": True, "file_size": None}, {"path": "model/model.pkl", "is_dir": False,
                                                               "file_size": 123456}],
        artifacts_truncated=True, metric_keys=["acc"], job={
            "id": 3, "project": "alpha", "owner": "ann", "state": "succeeded", "notebook_name": "train.ipynb",
            "notebook_sha256": "0" * 64, "kernel": "aitip-python", "attempt": 1, "submitted_at": "2026-12-06T14:43:00Z",
            "started_at": None, "finished_at": None})).model_dump(mode="json")
    shown = run_text(detail)
    assert shown.startswith(f"run {'c' * 32}: train · {'c' * 32} — FINISHED\n")
    for line in ("job:        3 (succeeded, train.ipynb, attempt 1)", "duration:   6.7 s", "lr     0.1",
                 "acc     0.9", "mlflow.user  ann", "model/           -", "model/model.pkl  123,456",
                 "(more artifacts than are listed)"):
        assert line in shown, line


def test_runs_side_by_side_show_what_differs_and_keep_names_as_written() -> None:
    runs = [run("Ab" + "0" * 30, {"acc": 0.9}), run("Cd" + "0" * 30, {"acc": 0.95})]
    comparison = RunComparison.model_validate({
        "runs": runs, "differing_params": ["lr"], "curves": {},
        "params": {"lr": {runs[0]["run_id"]: "0.1", runs[1]["run_id"]: None},
                   "seed": {runs[0]["run_id"]: "0", runs[1]["run_id"]: "0"}},
        "metrics": {"acc": {runs[0]["run_id"]: 0.9, runs[1]["run_id"]: 0.95}}}).model_dump(mode="json")
    header, params, acc, note = comparison_text(comparison).splitlines()
    assert "(Ab000000)" in header and "(Cd000000)" in header  # as written, not in capitals
    assert params.split() == ["param", "lr", "0.1", "-"] and acc.split() == ["acc", "0.9", "0.95"]
    assert note == "1 parameters are the same in every run (--json shows them)"


def test_model_versions_newest_first_with_their_aliases() -> None:
    listing = ModelList.model_validate({"models": [
        {"name": "digits", "description": None, "aliases": {"champion": 1},
         "versions": [{"version": 1, "run_id": "r1", "job_id": 1, "status": "READY", "creation_timestamp": 0,
                       "aliases": ["champion"], "source": None},
                      {"version": 2, "run_id": "r2", "job_id": None, "status": "READY", "creation_timestamp": 0,
                       "aliases": [], "source": None}]},
        {"name": "empty", "description": None, "aliases": {}, "versions": []}]}).model_dump(mode="json")
    lines = models_text(listing).splitlines()
    assert [line.split()[:4] for line in lines[1:]] == [["digits", "2", "READY", "-"],
                                                         ["digits", "1", "READY", "champion"],
                                                         ["empty", "-", "-", "-"]]


def test_an_alias_change_answers_where_each_alias_points() -> None:
    model = RegisteredModel.model_validate({
        "name": "digits", "description": "the digits classifier", "aliases": {"champion": 1, "candidate": 2},
        "versions": [{"version": 1, "run_id": "r1", "job_id": 1, "status": "READY", "creation_timestamp": 0,
                      "aliases": ["champion"], "source": None}]}).model_dump(mode="json")
    lines = model_text(model).splitlines()
    assert lines[:2] == ["model digits: candidate → v2, champion → v1", "the digits classifier"]
    assert lines[4].split()[:4] == ["digits", "1", "READY", "champion"]
    assert model_text({**model, "aliases": {}, "description": None}).splitlines()[0] == "model digits: no aliases"


def test_a_chinese_shell_reads_the_tables_in_chinese(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AITIP_LANG", "zh_CN")
    page = RunList.model_validate({"runs": [run("a" * 32, {"acc": 0.9})], "next_page_token": None})
    shown = runs_text(page.model_dump(mode="json"))
    assert shown.startswith("运行 ID") and "名称" in shown and "耗时" in shown and "6.7 秒" in shown
    assert "RUN_ID" not in shown and "DURATION" not in shown
