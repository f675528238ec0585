"""The Experiments page's logic without a browser: run names, default columns, the best runs, groups,
curve series (axes, smoothing, log scale), the charts' states, and the page built against a fake API
(which operations it calls, what it ticks and draws). The browser tests check the same end to end."""

from __future__ import annotations

from typing import Any

import pytest

from aitip.client import AitipAPIError
from panel_apps import experiment_charts, experiment_frames as frames, experiments
from panel_apps.components import Messages
from panel_apps.language import use_language

ME = {"name": "ann", "projects": [{"project": "p", "role": "developer"}]}


def run(index: int, params: dict, metrics: dict, name: str | None = None, tags: dict | None = None) -> dict:
    return {"run_id": f"{index:032x}", "run_name": name, "experiment_id": "1", "status": "FINISHED",
            "start_time": 1_700_000_000_000 + index, "end_time": None, "user": "ann", "job_id": None,
            "params": params, "metrics": metrics, "tags": tags or {}}


def curve(length: int) -> list[dict]:
    return [{"step": step, "timestamp": 1_700_000_000_000 + 500 * step, "value": 1.0 / (step + 1)}
            for step in range(length)]


SWEEP = [run(i, {"lr": str(10 ** -(1 + i % 3)), "opt": ("adam", "sgd")[i % 2], "seed": "0"},
             {"final_accuracy": 0.5 + i / 20, "loss": 1 - i / 10}, name=f"train · job {i}") for i in range(8)]


class FakeAPI:
    """The operations the page calls, answering from ``SWEEP`` and recording each call."""

    def __init__(self, runs: list[dict] = SWEEP, fail_runs: AitipAPIError | None = None) -> None:
        self.listing, self.fail_runs, self.calls = runs, fail_runs, []

    def experiments(self, project: str) -> list[dict]:
        return [{"experiment_id": "1", "name": f"aitip/{project}", "run_count": len(self.listing)}]

    def runs(self, project: str, **options: Any) -> dict:
        self.calls.append(("runs.list", options.get("filter")))
        if self.fail_runs:
            raise self.fail_runs
        return {"runs": self.listing, "next_page_token": None}

    def compare(self, project: str, run_ids: list[str], max_points: int = 500, keys: list[str] | None = None) -> dict:
        self.calls.append(("runs.compare", tuple(run_ids), tuple(keys or ())))
        return {"runs": [r for r in self.listing if r["run_id"] in run_ids],
                "curves": {key: {r: curve(20 if key == "loss" else 1) for r in run_ids} for key in keys or ()}}

    def metric_history(self, run_id: str, key: str, max_points: int = 1000) -> dict:
        self.calls.append(("runs.metric_history", run_id, key))
        return {"key": key, "total_points": 20, "points": curve(20)}

    def run(self, run_id: str) -> dict:
        raise AssertionError("every run the tests tick is listed")


@pytest.mark.parametrize(("name", "tags", "job", "expected"), [
    ("digits_sklearn · job 12", {}, 12, "digits_sklearn · job 12"),
    ("job-7", {"mlflow.source.name": "train/digits.ipynb"}, 7, "digits · job 7"),
    ("job-7-attempt-2", {"mlflow.source.name": "digits.ipynb"}, 7, "digits · job 7 · attempt 2"),
    (None, {"aitip.job_id": "9", "mlflow.source.name": "eval.ipynb"}, None, "eval · job 9"),
    ("bold-cat-42", {}, None, "bold-cat-42"),
    (None, {}, None, "0" * 8),
])
def test_runs_are_named_after_their_notebook_and_job(name: str | None, tags: dict, job: int | None,
                                                     expected: str) -> None:
    assert frames.run_title({**run(0, {}, {}, name, tags), "job_id": job}) == expected


def test_default_columns_are_the_differing_params_and_the_metrics_most_runs_have() -> None:
    runs = SWEEP + [run(9, {"lr": "0.1", "opt": "adam", "seed": "0"}, {"loss": 0.3, "rare": 1.0})]
    columns = frames.default_columns(runs)
    assert columns == ["status", "user", "job", "started", "metric.loss", "metric.final_accuracy", "param.lr",
                       "param.opt"], "seed never differs and rare is logged by one run of nine"
    assert "tag.mlflow.runName" not in frames.column_options([run(0, {}, {}, tags={"mlflow.runName": "x", "team": "v"})])
    assert frames.group_options(runs) == ["param.lr", "param.opt"]


def test_default_columns_fit_the_width_given_taking_metrics_and_parameters_in_turn() -> None:
    wide = [run(i, {f"parameter_{p}": str(i * (p + 1)) for p in range(6)}, {f"metric_number_{m}": i / 7 for m in range(6)},
                name=f"train · job {i}") for i in range(4)]
    everything = frames.default_columns(wide)
    assert len(everything) == 4 + 12
    widths = {column: frames.column_width(wide, column) for column in ["run", *everything]}
    identity = sum(widths[column] for column in ["run", *frames.IDENTITY_COLUMNS])
    room = identity + widths["metric.metric_number_0"] + widths["param.parameter_0"] + widths["metric.metric_number_1"]
    fitted = frames.default_columns(wide, width=room)
    assert fitted == [*frames.IDENTITY_COLUMNS, "metric.metric_number_0", "metric.metric_number_1",
                      "param.parameter_0"], "the first metric, the first parameter, the second metric, in turn"
    assert sum(widths[column] for column in ["run", *fitted]) <= room
    assert frames.default_columns(wide, width=10) == [*frames.IDENTITY_COLUMNS, "metric.metric_number_0",
                                                      "param.parameter_0"], "one of each however narrow"


def test_a_column_width_is_the_width_its_table_gives_it() -> None:
    runs = SWEEP + [run(9, {"lr": "0.000123456789", "opt": "adam"}, {"loss": 123456.789}, name="a much longer run name")]
    for column in ["run", *frames.column_options(runs)]:
        frame = frames.runs_frame(runs, [column])
        assert frames.column_width(runs, column) == frames.table_widths(frame)[column], column


def test_the_best_runs_are_ticked_lowest_first_for_a_loss() -> None:
    assert frames.best_runs(SWEEP, "loss", 2) == [SWEEP[7]["run_id"], SWEEP[6]["run_id"]]
    assert frames.best_runs(SWEEP, "final_accuracy", 1) == [SWEEP[7]["run_id"]]
    assert frames.best_runs(SWEEP, "absent", 2) == [SWEEP[0]["run_id"], SWEEP[1]["run_id"]], "the newest otherwise"


def test_groups_have_their_runs_counted_and_metrics_averaged() -> None:
    frame = frames.groups_frame(SWEEP, "param.opt", ["metric.loss"])
    assert frame.to_dict("records") == [{"group": "adam", "runs": 4, "metric.loss": 0.7},
                                        {"group": "sgd", "runs": 4, "metric.loss": 0.6}]


def test_smoothing_is_a_debiased_ema_and_log_scale_drops_what_it_cannot_draw() -> None:
    assert frames.ema([2.0, 2.0, 2.0], 0.9) == pytest.approx([2.0, 2.0, 2.0]), "a constant stays where it is"
    assert frames.ema([0.0, 1.0], 0.0) == [0.0, 1.0]
    assert frames.ema([0.0, 1.0, 1.0], 0.5)[1] == pytest.approx(2 / 3)
    points = [{"step": 1, "timestamp": 5000, "value": 0.0}, {"step": 2, "timestamp": 6500, "value": 1.0},
              {"step": 3, "timestamp": 8000, "value": None}, {"step": 4, "timestamp": 9000, "value": 10.0}]
    series = frames.curve_series(points, "relative", 0.0, log_y=True)
    assert series == {"x": [0.0, 2.5], "y": [1.0, 10.0], "raw": [1.0, 10.0]}
    assert frames.curve_series(points, "step", 0.0, log_y=False)["x"] == [1, 2, 4]


def test_the_address_is_read_defensively() -> None:
    assert frames.split_list("a,,b") == ["a", "b"] and frames.split_list(None) == []
    assert frames.number("0.6", 0.0, 0.0, 0.99) == 0.6
    assert frames.number("7", 0.0, 0.0, 0.99) == 0.99 and frames.number("nan", 0.1, 0.0, 0.99) == 0.1
    assert frames.number("x", 0.2, 0.0, 0.99) == 0.2


def test_header_filters_compare_numbers_and_match_text() -> None:
    filters = frames.header_filters(frames.runs_frame(SWEEP, ["metric.loss", "param.opt"]))
    assert filters["metric.loss"]["func"] == ">=" and filters["param.opt"]["func"] == "like"


def test_the_charts_say_what_they_draw() -> None:
    names = frames.unique_names(SWEEP)
    curves = {SWEEP[0]["run_id"]: curve(5), SWEEP[1]["run_id"]: curve(5)}
    chart = experiment_charts.curves_figure(curves, names, "loss", x_axis="wall", smoothing=0.6, log_y=True,
                                            groups={SWEEP[0]["run_id"]: "adam", SWEEP[1]["run_id"]: "sgd"})
    assert chart.css_classes == ["runs-chart", "curves-2", "x-wall", "y-log", "smoothed", "grouped"]
    assert [item.label["value"] for item in chart.legend.items] == ["adam", "sgd"], "one legend entry a group"
    assert "empty" in experiment_charts.curves_figure({}, names, "loss").css_classes
    scatter = experiment_charts.scatter_figure(SWEEP, "param.opt", "loss", names, [], "param.opt")
    assert list(scatter.x_range.factors) == ["adam", "sgd"], "text parameters are categories"
    assert "empty" in experiment_charts.scatter_figure(SWEEP, "param.absent", "loss", names, []).css_classes
    parallel = experiment_charts.parallel_figure(SWEEP, ["param.lr", "param.opt"], "loss", names, [SWEEP[0]["run_id"]])
    assert parallel.css_classes == ["param-parallel"]


def test_the_page_ticks_the_best_runs_and_draws_their_curves_from_one_call() -> None:
    api = FakeAPI()
    page = experiments.ExperimentsPage(api, ME, Messages())
    best = frames.best_runs(SWEEP, "final_accuracy", experiments.DEFAULT_TICKED)
    assert page.ticked == best and sorted(page.table.selection) == list(range(len(best))), "ticked rows come first"
    compares = [call for call in api.calls if call[0] == "runs.compare"]
    assert len(compares) == 1 and set(compares[0][1]) == set(best)
    assert page.metric.value == "loss", "the chart opens on a metric with a history, not a one-point one"
    assert "curves-5" in page.chart.object.css_classes
    assert page.scatter.object is None and page.parallel.object is None, "hidden tabs are drawn when opened"
    page.tabs.active = experiments.SCATTER_TAB
    assert page.scatter.object.css_classes == ["param-scatter"] and page.parallel.object is None
    page.tabs.active = experiments.DIFFERENCES_TAB
    assert page.comparison.objects[0].object.startswith("<h3 id='comparison-title'")
    page.tabs.active = 0
    page.table.selection = [0]
    assert "curves-1" in page.chart.object.css_classes and len(api.calls) == 2, "unticking fetches nothing"
    page.table.selection = [0, 7]
    assert api.calls[-1] == ("runs.metric_history", page.runs[7]["run_id"], "loss"), "one new run: its history"
    assert "curves-2" in page.chart.object.css_classes
    page.group_by.value = "param.opt"
    assert "grouped" in page.chart.object.css_classes and page.table.groupby == ["param.opt"]
    assert page.groups.objects[1].value["group"].tolist() == ["sgd", "adam"]


def address(monkeypatch: pytest.MonkeyPatch, **arguments: str) -> dict[str, Any]:
    """The page's address holds ``arguments``; returns what the page writes back to it."""
    written: dict[str, Any] = {}
    monkeypatch.setattr(experiments, "query_arg", lambda name: arguments.get(name))
    monkeypatch.setattr(experiments, "update_query", lambda **values: written.update(values))
    return written


def test_the_address_restores_the_view_and_keeps_the_viewers_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    ticked = [SWEEP[2]["run_id"], SWEEP[5]["run_id"]]
    written = address(monkeypatch, project="p", compare=",".join(ticked), metric="loss", x="relative", smooth="0.6",
                      log="1", group="param.opt", columns="metric.loss,param.seed", sp="param.lr", pp="param.opt")
    page = experiments.ExperimentsPage(FakeAPI(), ME, Messages())
    assert page.ticked == ticked and [page.runs[i]["run_id"] for i in page.table.selection] == ticked
    assert (page.metric.value, page.x_axis.value, page.smoothing.value, page.log_y.value) == ("loss", "relative", 0.6, True)
    assert page.group_by.value == "param.opt" and page.columns.value == ["metric.loss", "param.seed"]
    assert (page.scatter_param.value, page.parallel_params.value) == ("param.lr", ["param.opt"])
    assert page.chart.object.css_classes == ["runs-chart", "curves-2", "x-relative", "y-log", "smoothed", "grouped"]
    page.log_y.value = False
    page.table.selection = [0, 1, 2]
    assert written["log"] == "" and written["compare"].split(",") == [page.runs[i]["run_id"] for i in (0, 1, 2)]
    assert written["columns"] == "metric.loss,param.seed" and written["group"] == "param.opt"


def test_an_empty_project_and_a_bad_filter_say_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    messages = Messages()
    experiments.ExperimentsPage(FakeAPI(runs=[]), ME, messages)
    assert "aitip run train.ipynb -P p" in messages.objects[0].object
    messages = Messages()
    address(monkeypatch, project="p", filter="metrics.loss >> 1")
    bad = AitipAPIError(400, "invalid_input", "invalid filter: metrics.loss >> 1")
    with use_language("zh_CN"):
        page = experiments.ExperimentsPage(FakeAPI(fail_runs=bad), ME, messages)
        texts = [banner.object for banner in messages.objects]
        assert "aitip-error" in texts[0] and "筛选语法" in texts[1] and "metrics.accuracy &gt; 0.9" in texts[1]
        assert "empty" in page.chart.object.css_classes
