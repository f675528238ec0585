"""The Releases page's pure parts without a browser: the evidence chain, the approval stages and decisions, who
may decide and promote and why not, a rollout's steps and its analysis chart — on answers shaped by the
releases API's own models."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from aitip.releases.models import Release
from aitip.releases.rollout_models import Rollout
from panel_apps import release_charts
from panel_apps.language import use_language
from panel_apps.release_views import (approvals_html, decide_refusal, environments_html, evidence_html,
                                      promote_refusal, releases_frame, rollouts_frame, steps_html)

AT = datetime(2026, 12, 5, 9, 30, tzinfo=timezone.utc)
SIGNATURE = {"algorithm": "ed25519", "key_id": "0123456789abcdef", "content_sha256": "ab" * 32, "signature": "c2ln"}


def release(**changes: Any) -> dict[str, Any]:
    evidence = [{"kind": "evaluation", "id": 3, "state": "passed", "model": "digits", "model_version": 2,
                 "dataset": "digits", "dataset_version": 1, "dataset_md5": "f" * 32, "template": None,
                 "notebook_sha256": "e" * 64, "job_id": 7, "finished_at": AT},
                {"kind": "simulation", "id": 5, "state": "passed", "model": "digits", "model_version": 2,
                 "dataset": "digits", "dataset_version": 1, "dataset_md5": "f" * 32, "template": "custom@1",
                 "notebook_sha256": "d" * 64, "job_id": 9, "finished_at": AT}]
    fields = dict(id=1, project="vision", kind="model", name="digits", version="1.2.0", state="requested",
                  environment="dev", next_environment="test", model="digits", model_version=2, dataset="digits",
                  dataset_version=1, configuration=None, changelog="", metadata={}, evidence=evidence,
                  approvals_needed=[{"role": "maintainer", "count": 1}, {"role": "admin", "count": 1}], ordered=True,
                  decisions=[], promotions=[], signature=SIGNATURE,
                  content={"subject": {"model_run_id": "a1b2c3d4e5f6"}}, created_by="carol", created_at=AT)
    fields.update(changes)
    return Release.model_validate(fields).model_dump(mode="json")


ME = {"name": "dave", "admin": False, "projects": [{"project": "vision", "role": "maintainer"}]}


def test_the_evidence_chain_runs_from_the_data_to_the_signed_release() -> None:
    with use_language("en"):
        chain = evidence_html(release())
        assert chain.index("dataset digits version 1") < chain.index("model digits version 2, run a1b2c3d4") < \
            chain.index("evaluation 3: passed") < chain.index("simulation 5 under custom@1: passed") < \
            chain.index("release 1.2.0, signed (key 0123456789abcdef, SHA-256 abababababab…)")
        assert "carries no evidence" in evidence_html(release(kind="configuration", model=None, model_version=None,
                                                              dataset=None, dataset_version=None, evidence=[],
                                                              configuration={"limit": 1}))
    with use_language("zh_CN"):
        assert "数据集 digits 版本 1" in evidence_html(release())


def test_stages_fill_and_the_decisions_are_listed() -> None:
    decided = release(decisions=[{"user": "dave", "decision": "approve", "stage": 0, "role": "maintainer",
                                  "comment": "read the evidence", "at": AT}])
    with use_language("en"):
        shown = approvals_html(decided)
    assert "data-stage='0' data-complete='true'" in shown and "data-stage='1' data-complete='false'" in shown
    assert "dave (maintainer) approved 2026-12-05" in shown and "“read the evidence”" in shown
    assert "in this order" in shown


@pytest.mark.parametrize("me, shown, reason", [
    (ME, release(), None),
    ({**ME, "name": "carol"}, release(), "Nobody decides on their own release request."),
    (ME, release(decisions=[{"user": "dave", "decision": "approve", "stage": 0, "role": "maintainer",
                             "comment": "", "at": AT}]), "You have decided on this request already."),
    ({**ME, "projects": [{"project": "vision", "role": "viewer"}]}, release(),
     "Deciding needs the developer role or above; you are viewer."),
    (ME, release(state="approved"), "This release is approved: there is nothing to decide."),
])
def test_who_may_decide(me: dict[str, Any], shown: dict[str, Any], reason: str | None) -> None:
    with use_language("en"):
        assert decide_refusal(me, "vision", shown) == reason


@pytest.mark.parametrize("shown, reason", [
    (release(), None),
    (release(environment="test", next_environment="staging"), "It reaches staging only once approved."),
    (release(state="approved", environment="test", next_environment="staging"), None),
    (release(state="released", environment="prod", next_environment=None), "This release is in prod already."),
    (release(state="rejected"), "A rejected release goes nowhere."),
])
def test_who_may_promote_and_where(shown: dict[str, Any], reason: str | None) -> None:
    with use_language("en"):
        assert promote_refusal(ME, "vision", shown) == reason
        assert promote_refusal({**ME, "projects": [{"project": "vision", "role": "developer"}]}, "vision",
                               release()) == "Promoting needs the maintainer role or above; you are developer."


def test_the_environments_reached_are_marked() -> None:
    shown = environments_html(release(environment="staging", promotions=[
        {"environment": "test", "by": "dave", "at": AT}, {"environment": "staging", "by": "dave", "at": AT}]))
    assert shown.count("data-reached='true'") == 3 and "data-environment='prod' data-reached='false'" in shown


def rollout(**changes: Any) -> dict[str, Any]:
    fields = dict(id=4, project="vision", release_id=1, release="digits 1.2.0", endpoint="digits", model="digits",
                  stable_version=1, canary_version=2, step=3, weight=20, state="progressing", message="",
                  steps=[{"set_weight": 5}, {"analysis": {"interval_seconds": 10, "count": 3,
                                                           "conditions": [{"metric": "error_rate", "max": 0.01}]}},
                         {"set_weight": 20}, {"pause": {}}, {"set_weight": 100}],
                  analysis_runs=[{"step": 1, "at": AT, "requests": 40, "errors": 0, "error_rate": 0.0,
                                  "latency_p99_ms": 8.0, "outcome": "passed", "failures": []}],
                  created_by="dave", created_at=AT, updated_at=AT)
    fields.update(changes)
    return Rollout.model_validate(fields).model_dump(mode="json")


def test_a_rollouts_steps_and_its_analysis_chart() -> None:
    with use_language("en"):
        steps = steps_html(rollout())
        frame = rollouts_frame([rollout()])
        chart = release_charts.analysis_figure(rollout())
        empty = release_charts.analysis_figure(rollout(analysis_runs=[]))
    assert steps.count("data-where='done'") == 3 and "data-where='current'" in steps and "pause until promoted" in steps
    assert frame.loc[0, "versions"] == "v1 → v2" and frame.loc[0, "step"] == "4 / 5"
    assert chart.css_classes == ["rollout-analysis", "runs-1"] and chart.yaxis[0].axis_label == "error rate"
    assert chart.x_range.end - chart.x_range.start == timedelta(minutes=2)  # one run: not an axis of microseconds
    assert empty.css_classes == ["rollout-analysis", "empty"]
    assert list(releases_frame([release()]).columns)[:3] == ["id", "release", "kind"]


def test_a_service_release_shows_its_endpoint_and_an_accuracy_analysis_its_floor() -> None:
    from panel_apps.release_views import title_html

    service = release(kind="service", endpoint="digits", settings={"backend": "python", "max_batch_size": 32})
    judged = rollout(steps=[{"set_weight": 20}, {"analysis": {"interval_seconds": 30, "count": 2, "conditions": [
        {"metric": "accuracy", "min": 0.9, "min_labelled": 50}]}}, {"set_weight": 100}],
        analysis_runs=[{"step": 1, "at": AT, "requests": 400, "errors": 0, "error_rate": 0.0, "latency_p99_ms": 8.0,
                        "labelled": 120, "accuracy": 0.85, "outcome": "failed",
                        "failures": ["accuracy 0.85 is below 0.9"]}])
    with use_language("en"):
        assert "endpoint digits: model digits version 2" in title_html(service)
        assert "endpoint digits: backend python, max_batch_size 32" in evidence_html(service)
        chart = release_charts.analysis_figure(judged)
        assert chart.yaxis[0].axis_label == "accuracy"
        assert release_charts.bound_of(judged, "accuracy") == 0.9
    with use_language("zh_CN"):
        assert "端点 digits：模型 digits 版本 2" in title_html(service)
        assert release_charts.analysis_figure(judged).yaxis[0].axis_label == "准确率"
