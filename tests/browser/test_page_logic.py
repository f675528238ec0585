"""The pages' logic without a browser: how API data becomes tables, charts, banners and the
permission a page shows (fast; the browser tests check the same things end to end)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from aitip.client import AitipAPIError
from panel_apps import charts, components, datasets, experiment_frames, jobs, models, overview
from panel_apps.language import use_language
from panel_apps.serve import MODE_VARIABLE


def run(run_id: str, name: str, params: dict, metrics: dict) -> dict:
    return {"run_id": run_id, "run_name": name, "experiment_id": "1", "status": "FINISHED", "start_time": 1_700_000_000_000,
            "end_time": None, "user": "ann", "job_id": 7, "params": params, "metrics": metrics, "tags": {}}


@pytest.mark.parametrize(("status", "expected"), [
    (403, "You may not cancel job 3: only the owner"),
    (404, "Not found while trying to cancel job 3"),
    (400, "Could not cancel job 3: only the owner"),
    (503, "The platform is unreachable"),
    (500, "The platform failed to cancel job 3 (500 boom)"),
])
def test_api_errors_read_as_sentences(status: int, expected: str) -> None:
    error = AitipAPIError(status, "boom", "only the owner")
    assert components.describe_error(error, "cancel job 3").startswith(expected)


def test_a_hub_session_without_a_token_is_not_signed_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MODE_VARIABLE, "hub")
    monkeypatch.setenv("AITIP_URL", "http://127.0.0.1:9/services/aitip/")
    monkeypatch.setenv("AITIP_TOKEN", "a-token-the-dashboards-must-not-use")
    with pytest.raises(components.NotSignedIn):
        components.session_api()


@pytest.mark.parametrize(("me", "job", "allowed"), [
    ({"name": "ann", "projects": [{"project": "p", "role": "developer"}]}, {"owner": "ann", "project": "p"}, True),
    ({"name": "bob", "projects": [{"project": "p", "role": "viewer"}]}, {"owner": "bob", "project": "p"}, False),
    ({"name": "bob", "projects": [{"project": "p", "role": "developer"}]}, {"owner": "ann", "project": "p"}, False),
    ({"name": "max", "projects": [{"project": "p", "role": "maintainer"}]}, {"owner": "ann", "project": "p"}, True),
    ({"name": "root", "admin": True, "projects": []}, {"owner": "ann", "project": "p"}, True),
])
def test_cancel_and_retry_are_offered_as_the_platform_allows(me: dict, job: dict, allowed: bool) -> None:
    assert components.may_control_job(me, job) is allowed


def test_numbers_and_widths() -> None:
    assert components.format_number(0.904444444) == "0.9044"
    assert components.format_number(None) == "" and components.format_number(float("nan")) == ""
    assert components.format_bytes(3 * 1024**3) == "3.0 GiB"
    assert components.format_duration(75) == "1 min 15 s"
    widths = components.column_widths(pd.DataFrame({"run": ["a-much-longer-run-name"], "x": [1]}))
    assert widths["run"] > widths["x"] >= 60


def test_runs_become_one_row_each_with_the_columns_chosen() -> None:
    runs = [run("a" * 32, "first", {"lr": "0.1"}, {"acc": 0.123456}),
            run("b" * 32, "second", {"lr": "0.01", "depth": "3"}, {"acc": 0.5, "loss": None})]
    frame = experiment_frames.runs_frame(runs, ["job", "metric.acc", "param.depth"])
    assert list(frame.columns) == ["run", "job", "metric.acc", "param.depth"], "the run's name always comes first"
    assert frame.loc[0, "metric.acc"] == 0.1235 and frame.loc[1, "param.depth"] == "3"
    assert experiment_frames.metric_keys(runs) == ["acc", "loss"]


def test_a_comparison_lists_differing_parameters_first() -> None:
    runs = [run("a" * 32, "first", {"lr": "0.1", "seed": "1"}, {"acc": 0.5}),
            run("b" * 32, "first", {"lr": "0.01", "seed": "1"}, {"acc": 0.75})]
    names = experiment_frames.unique_names(runs)
    assert names == {"a" * 32: "first aaaaaa", "b" * 32: "first bbbbbb"}, "duplicate names are told apart"
    diff, latest = experiment_frames.comparison_frames(runs, names)
    assert diff["parameter"].tolist() == ["lr", "seed"] and diff["differs"].tolist() == ["yes", ""]
    assert latest.to_dict("records") == [{"metric": "acc", "first aaaaaa": 0.5, "first bbbbbb": 0.75}]
    chart = charts.parallel_coordinates(runs, ["lr", "seed"], ["acc"], names)
    assert chart is not None


def test_parallel_axes_are_normalized() -> None:
    positions, low, high = charts._axis(["0.1", "0.3", None])
    assert positions == [0.0, pytest.approx(1.0), None] and (low, high) == ("0.1", "0.3")
    positions, low, high = charts._axis(["adam", "sgd", "adam"])
    assert positions == [0.0, 1.0, 0.0] and (low, high) == ("adam", "sgd")


def test_job_history_and_log_come_from_the_events() -> None:
    events = [{"kind": "state", "at": "2026-01-01T00:00:00Z", "attempt": 0, "data": {"state": "queued", "by": "ann"}},
              {"kind": "cell_started", "at": "2026-01-01T00:00:01Z", "attempt": 1, "data": {"index": 1}},
              {"kind": "output", "at": "2026-01-01T00:00:02Z", "attempt": 1, "data": {"text": "hello\n"}},
              {"kind": "cancel_requested", "at": "2026-01-01T00:00:03Z", "attempt": 1, "data": {"by": "ann"}}]
    history = jobs.history_frame(events)
    assert history["state"].tolist() == ["queued", "cancel requested"] and history["detail"][0] == "by=ann"
    assert jobs.log_text(events).endswith("hello\n")


def test_resources_without_a_monitor_or_a_gpu() -> None:
    assert "no resource data" in overview.resources_html(None)
    host = {"hostname": "vm", "cpu_percent": 12.0, "cpu_count": 2, "memory_used_bytes": 2**30,
            "memory_total_bytes": 2**32}
    now = {"gpu_available": False, "no_gpu_reason": "no GPU: NVML unavailable", "host": host, "devices": []}
    text = overview.resources_html(now)
    assert "no GPU" in text and "NVML unavailable" in text and "12%" in text and "of 2 cores" in text
    device = {"index": 0, "name": "H100", "utilization_gpu_percent": 87.0, "memory_used_bytes": 2**33,
              "memory_total_bytes": 2**36, "temperature_c": 61.0, "power_w": 301.0,
              "processes": [{"pid": 5, "used_memory_bytes": 2**30, "os_user": "ann",
                             "job": {"id": 12, "project": "p", "owner": "ann", "gpus": 1}},
                            {"pid": 6, "used_memory_bytes": 2**30, "os_user": "eve", "job": {"hidden": True}}]}
    text = overview.resources_html({**now, "gpu_available": True, "devices": [device]})
    assert "H100" in text and "87%" in text and "jobs?job=12" in text and "eve" not in text
    assert "a project you are not in" in text


def test_the_timeline_draws_gpus_or_else_the_host() -> None:
    history = {"host": {"t": [1.0e9, 1.0e9 + 5], "cpu_percent": [10.0, 20.0]},
               "devices": [{"index": 0, "t": [1.0e9], "utilization_gpu_percent": [50.0]}]}
    assert [curve.label for curve in charts.utilization_over_time(history)] == ["GPU 0"]
    assert [curve.label for curve in charts.utilization_over_time({**history, "devices": []})] == ["host CPU (no GPU)"]
    frame = overview.usage_frame({"items": [{"name": "ann", "gpu_hours": 1.234, "jobs": 2, "running_jobs": 1}]}, "user")
    assert frame.to_dict("records") == [{"user": "ann", "GPU hours": 1.23, "jobs": 2, "running": 1}]


def test_the_pages_speak_chinese_when_asked() -> None:
    """Labels, banners, empty states and column titles in Chinese; data (states, names) as they are."""
    error = AitipAPIError(403, "forbidden", "only the owner")
    with use_language("zh_CN"):
        assert components.describe_error(error, jobs._("cancel job {job}").format(job=3)) == \
            "您无权取消作业 3：only the owner"
        assert components.format_duration(75) == "1 分 15 秒"
        nav = components.navigation("jobs", "ann").object
        assert ">概览</a>" in nav and ">作业</a>" in nav and "已登录：<b>ann</b>" in nav
        assert 'id="lang-en"' in nav and 'id="lang-zh_CN"' in nav and "aitip_lang=en" in nav
        assert jobs.history_frame([{"kind": "cancel_requested", "at": None, "attempt": 1, "data": {}}])["state"][0] \
            == "已请求取消"
        assert "无资源数据" in overview.resources_html(None)
        assert "还没有作业读取过此版本" in datasets.lineage_html({"edges": []})
        assert "此项目中还没有注册的模型" in models.models_html([], "p")
        table = components.data_table(jobs.jobs_frame([]), name="jobs")
        assert table.titles["state"] == "状态" and list(table.value.columns)[0] == "id", "fields keep their names"
        me = {"projects": [{"project": "alpha", "role": "developer"}, {"project": "beta", "role": "viewer"}]}
        assert components.project_options(me, include_all=True) == {"我的全部项目": "", "alpha (开发者)": "alpha",
                                                                    "beta (查看者)": "beta"}
    with use_language("en"):
        assert components.project_options(me) == {"alpha (developer)": "alpha", "beta (viewer)": "beta"}
        assert components.describe_error(error, "cancel job 3") == "You may not cancel job 3: only the owner"
        assert ">Overview</a>" in components.navigation("jobs", "ann").object



def test_a_refusal_names_the_roles_in_the_readers_language() -> None:
    """Each page's "needs the X role; you are Y" says both roles as the role selector does."""
    from panel_apps import evaluation_views, job_rerun, job_submit, model_aliases, serving_views, simulation_views

    def refusals(me: dict[str, Any]) -> list[str | None]:
        return [evaluation_views.evaluate_refusal(me, "alpha"), simulation_views.simulate_refusal(me, "alpha"),
                job_rerun.rerun_refusal(me, "alpha"), job_submit.submit_refusal(me, "alpha"),
                serving_views.deploy_refusal(me, "alpha"), model_aliases.alias_refusal(me, "alpha", "m")]

    viewer, stranger = {"projects": [{"project": "alpha", "role": "viewer"}]}, {"projects": []}
    with use_language("en"):
        english = refusals(viewer)
    with use_language("zh_CN"):
        chinese, strangers = refusals(viewer), refusals(stranger)
    assert all(refusal is not None and "; you are viewer." in refusal for refusal in english), english
    for refusal, least in zip(chinese, ["开发者"] * 5 + ["维护者"]):
        assert refusal is not None and least in refusal and "查看者" in refusal, refusal
        assert not any(word in refusal for word in ("developer", "maintainer", "viewer")), refusal
    assert all(refusal is not None and "非成员" in refusal for refusal in strangers), strangers



def test_an_empty_chart_draws_although_bokehs_current_document_was_closed() -> None:
    """In a Panel server Bokeh's global current document can be a closed session's; drawing into it failed a
    page's callback half-way (the Simulation page then never followed the simulation it had just started)."""
    from bokeh.document import Document
    from bokeh.io import curdoc
    from bokeh.io.doc import set_curdoc

    before = curdoc()
    closed = Document()
    session = lambda event: None  # noqa: E731 - what a server session registers on its document
    closed.on_change(session)
    set_curdoc(closed)
    closed.destroy(session)
    try:
        figure = charts.empty_figure("nothing yet", "simulation-curves")
    finally:
        set_curdoc(before)
    assert figure.css_classes == ["simulation-curves", "empty"]
