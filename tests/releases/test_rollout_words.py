"""A rollout's own words (its message, each analysis run's broken conditions) are kept in English as it wrote
them, and read back in the reader's language in the CLI and on the pages; a person's own reason stays as written."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from aitip import i18n
from aitip.devices.waves import FAILED, INSTALLED, RolloutProgress, WaveProgress
from aitip.releases import progress as machine
from aitip.releases.rollout_models import Analysis, Condition, Step
from aitip.releases.rollout_words import failures_said, message_said
from aitip.releases.text import rollout_text

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=timezone.utc)
ZH = i18n.translator("zh_CN").gettext
FAILING = machine.Measured(requests=200, errors=30, error_rate=0.15, latency_p99_ms=180.0, labelled=80,
                           accuracy=0.7)
QUIET = machine.Measured(requests=0, errors=0, error_rate=None, latency_p99_ms=None)
UNLABELLED = machine.Measured(requests=40, errors=0, error_rate=0.0, latency_p99_ms=5.0)


def analysed(measured: machine.Measured) -> machine.Progress:
    conditions = [Condition(metric="error_rate", max=0.01), Condition(metric="latency_p99_ms", max=150),
                  Condition(metric="accuracy", min=0.9, min_labelled=50)]
    steps = [Step(set_weight=10), Step(analysis=Analysis(interval_seconds=5, count=1, failure_limit=0,
                                                         conditions=conditions)), Step(set_weight=100)]
    current = machine.advance(steps, machine.Progress("progressing", 0, T0, 0), T0, lambda *_: measured).progress
    return machine.advance(steps, current, T0 + timedelta(seconds=5), lambda *_: measured).progress


def test_an_abort_by_analysis_reads_in_chinese_with_each_broken_condition() -> None:
    aborted = analysed(FAILING)
    assert aborted.message == ("aborted by analysis: error_rate 0.15 is above 0.01; latency_p99_ms 180 is above "
                               "150; accuracy 0.7 is below 0.9")
    assert message_said(aborted.message, ZH) == ("分析后中止：error_rate 0.15 高于 0.01；latency_p99_ms 180 高于 150；"
                                                  "准确率 0.7 低于 0.9")
    assert message_said(aborted.message, i18n.translator("en").gettext) == aborted.message


def test_an_inconclusive_run_and_peoples_actions_read_in_chinese() -> None:
    paused = analysed(QUIET)
    assert message_said(paused.message, ZH) == "分析无定论：金丝雀请求 0 次，少于所需的 1 次；晋级以继续，或中止"
    unlabelled = analysed(UNLABELLED)
    assert failures_said(unlabelled.runs[-1]["failures"], ZH) == ["0 行已标注，少于评判准确率所需的 50 行"]
    assert message_said(machine.rollback(paused).progress.message, ZH) == "已手动回滚：稳定版本承担全部流量"
    assert message_said(machine.abort(paused).progress.message, ZH) == "已手动中止"


def test_a_device_rollouts_end_and_a_persons_reason() -> None:
    groups = {"canary": {1}, "field": {2, 3}}
    rollout = RolloutProgress(id=1, version="2.0.0", state="running", group_index=0,
                              waves=[WaveProgress("canary", 100, 0), WaveProgress("field", 100, 40)])
    rollout.evaluate(groups.__getitem__, {}.get)
    rollout.report(1, INSTALLED)
    rollout.evaluate(groups.__getitem__, {}.get)
    rollout.report(2, FAILED)
    rollout.evaluate(groups.__getitem__, {}.get)
    assert rollout.state == "stopped", rollout.message
    assert message_said(rollout.message, ZH) == "紧急停止：分组 'field' 的 2 台设备中有 1 台安装失败，超过其 40 % 的失败阈值"
    done = RolloutProgress(id=2, version="2.0.0", state="running", group_index=0,
                           waves=[WaveProgress("canary", 100, 0)])
    done.evaluate(groups.__getitem__, {1: "2.0.0"}.get)
    assert done.state == "succeeded" and message_said(done.message, ZH) == "所有分组均已达到成功阈值（1 个）"
    assert message_said("field reports from Shenzhen", ZH) == "field reports from Shenzhen"


@pytest.fixture
def chinese_shell(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(i18n.ENVIRONMENT_VARIABLE, "zh_CN")


def test_the_cli_says_a_rollout_in_chinese(chinese_shell: None) -> None:
    aborted = analysed(FAILING)
    run = aborted.runs[-1]
    rollout = {"id": 3, "release": 1, "endpoint": "digits", "state": "degraded", "canary_version": 2, "weight": 0,
               "stable_version": 1, "message": aborted.message, "step": aborted.step,
               "steps": [{"set_weight": 10}, {"analysis": {"count": 1, "interval_seconds": 5}}, {"set_weight": 100}],
               "analysis_runs": [{**run, "step": 1}]}
    text = rollout_text(rollout)
    assert "分析后中止：error_rate 0.15 高于 0.01" in text and "准确率 0.7 低于 0.9" in text
