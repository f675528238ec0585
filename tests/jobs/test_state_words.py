"""A job's state in the reader's language: every state has its words in both catalogs, a job's ``failed`` is
not an evaluation's (which did not pass), and the CLI's views of a job and a sweep say them."""

from __future__ import annotations

import pytest

from aitip.i18n import translator
from aitip.jobs.models import JobState
from aitip.jobs.state_words import job_state_word
from aitip.jobs.text import job_text, sweep_text

CHINESE = {"queued": "排队中", "starting": "启动中", "running": "运行中", "succeeded": "已成功", "failed": "失败",
           "cancelled": "已取消", "timed_out": "已超时"}


@pytest.mark.parametrize("state", [state.value for state in JobState])
def test_every_state_reads_in_both_languages(state: str) -> None:
    assert job_state_word(state, translator("en").pgettext) == state.replace("_", " ")
    assert job_state_word(state, translator("zh_CN").pgettext) == CHINESE[state]


def test_a_failed_job_is_not_an_evaluation_that_did_not_pass() -> None:
    chinese = translator("zh_CN")
    assert (job_state_word("failed", chinese.pgettext), chinese.gettext("failed")) == ("失败", "未通过")


def test_the_clis_job_and_sweep_say_their_states_in_chinese(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AITIP_LANG", "zh_CN")
    job = {"id": 12, "notebook_name": "train.ipynb", "project": "vision", "state": "timed_out", "max_attempts": 1,
           "owner": "ann", "kernel": "aitip-python", "resources": {"cpus": 1, "gpus": 0}, "timeout_seconds": 60,
           "priority": 50, "parameters": {}, "inputs": [], "notebook_sha256": "0" * 64, "code_version": None,
           "submitted_at": "2026-12-07T08:00:00+00:00", "started_at": None, "finished_at": None,
           "mlflow_run_id": None, "reason": None, "failed_cell": None, "tags": {}}
    assert job_text(job).splitlines()[0].endswith("已超时")
    sweep = {"id": 3, "strategy": "grid", "project": "vision", "state": "succeeded", "created_trials": 2,
             "trials": 2, "direction": "maximize", "objective": "accuracy", "best_value": 0.9, "best_job_id": 14,
             "best_parameters": {"x": 1}, "space": {"x": {}}, "trial_jobs": [
                 {"job_id": 13, "index": 0, "state": "failed", "value": None, "parameters": {"x": 0}},
                 {"job_id": 14, "index": 1, "state": "succeeded", "value": 0.9, "parameters": {"x": 1}}]}
    shown = sweep_text(sweep)
    assert "已成功" in shown.splitlines()[0]
    assert [line.split()[2] for line in shown.splitlines()[-2:]] == ["失败", "已成功"]
