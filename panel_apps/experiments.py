"""Experiments: a project's MLflow runs with filters, and a comparison of the runs picked
(parallel coordinates of parameters → metrics, overlaid metric curves, the parameter diff).

The runs table and the chart are built from data fetched while the session is created, so they are
in the first document the browser draws; nothing is fetched per row. Address: ``experiments?project=P
&experiment=ID&filter=...&metric=KEY&compare=RUN,RUN``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pandas as pd
import panel as pn

from aitip.client import AitipAPIError
from panel_apps import charts
from panel_apps.api import DashboardAPI
from panel_apps.components import (
    Messages,
    NotSignedIn,
    Prefetch,
    column_widths,
    fast_table,
    first_value,
    format_time,
    page_frame,
    page_title,
    project_options,
    query_arg,
    section,
    session_api,
    update_query,
)
from panel_apps.language import _, ngettext

PAGE = "experiments"
RUNS_PER_PAGE = 200
RUNS_TABLE_HEIGHT = 420
MAX_COMPARED = 10
MAX_METRIC_AXES = 4
ALL_EXPERIMENTS = ""


def rounded(value: Any) -> Any:
    """Floats to 4 significant digits for display; the table still sorts them as numbers."""
    return float(f"{value:.4g}") if isinstance(value, float) else value


def runs_frame(runs: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per run: identity columns, then ``metric.*`` and ``param.*`` columns."""
    params = sorted({name for run in runs for name in run.get("params") or {}})
    metrics = sorted({name for run in runs for name in run.get("metrics") or {}})
    rows = []
    for run in runs:
        job = run.get("job_id")
        row: dict[str, Any] = {"run": run.get("run_name") or run["run_id"][:8], "status": run.get("status", ""),
                               "user": run.get("user") or "", "job": "" if job is None else str(job),
                               "started": format_time(run.get("start_time")), "run_id": run["run_id"]}
        row.update({f"metric.{name}": rounded((run.get("metrics") or {}).get(name)) for name in metrics})
        row.update({f"param.{name}": (run.get("params") or {}).get(name, "") for name in params})
        rows.append(row)
    columns = ["run", "status", "user", "job", "started", "run_id"] + [f"metric.{m}" for m in metrics] + \
        [f"param.{p}" for p in params]
    return pd.DataFrame(rows, columns=columns)


OBJECTIVE_WORDS = ("accuracy", "auc", "f1", "precision", "recall", "loss", "error", "score")


def metric_keys(runs: list[dict[str, Any]]) -> list[str]:
    """Metric names: the ones most runs logged first, and among those the ones that look like an
    objective (accuracy, loss, ...) first, so the chart opens on something worth seeing."""
    counts = Counter(name for run in runs for name in run.get("metrics") or {})

    def rank(item: tuple[str, int]) -> tuple[int, int, str]:
        name, count = item
        return (-count, 0 if any(word in name.lower() for word in OBJECTIVE_WORDS) else 1, name)

    return [name for name, _count in sorted(counts.items(), key=rank)]


def curve_order(comparison: dict[str, Any], preferred: str | None) -> list[str]:
    """Curve keys, the one worth drawing first: the chart's metric when it has a history (more
    than one point), else objective-like metrics with the longest history."""
    curves = comparison.get("curves", {})
    length = {key: max((len(points) for points in runs.values()), default=0) for key, runs in curves.items()}

    def rank(key: str) -> tuple[int, int, int, str]:
        objective = any(word in key.lower() for word in OBJECTIVE_WORDS)
        return (0 if key == preferred and length[key] > 1 else 1, 0 if length[key] > 1 else 1,
                0 if objective else 1, key)

    return sorted(curves, key=rank)


def diff_frame(comparison: dict[str, Any], names: dict[str, str]) -> pd.DataFrame:
    """Parameters by run, the differing ones first."""
    run_ids = [run["run_id"] for run in comparison["runs"]]
    differing = list(comparison.get("differing_params") or [])
    ordered = differing + sorted(name for name in comparison.get("params", {}) if name not in differing)
    rows = []
    for name in ordered:
        values = comparison["params"].get(name, {})
        row = {"parameter": name, "differs": _("yes") if name in differing else ""}
        row.update({names[run_id]: values.get(run_id, "") for run_id in run_ids})
        rows.append(row)
    return pd.DataFrame(rows, columns=["parameter", "differs", *[names[r] for r in run_ids]])


def metrics_frame(comparison: dict[str, Any], names: dict[str, str]) -> pd.DataFrame:
    run_ids = [run["run_id"] for run in comparison["runs"]]
    rows = []
    for key in sorted(comparison.get("metrics", {})):
        row = {"metric": key}
        row.update({names[run_id]: rounded(comparison["metrics"][key].get(run_id)) for run_id in run_ids})
        rows.append(row)
    return pd.DataFrame(rows, columns=["metric", *[names[r] for r in run_ids]])


def unique_names(runs: list[dict[str, Any]]) -> dict[str, str]:
    """Run names for legends and columns; duplicates get their run id's start appended."""
    seen = Counter(run.get("run_name") or "" for run in runs)
    unnamed = _("run")
    return {run["run_id"]: (run.get("run_name") if run.get("run_name") and seen[run.get("run_name")] == 1
                            else f"{run.get('run_name') or unnamed} {run['run_id'][:6]}") for run in runs}


class ExperimentsPage:
    """The page's state and widgets; one per browser session."""

    def __init__(self, api: DashboardAPI, me: dict[str, Any], messages: Messages,
                 prefetch: Prefetch | None = None) -> None:
        self.api = api
        self.messages = messages
        self.prefetch = prefetch or Prefetch()
        projects = project_options(me)
        self.project = pn.widgets.Select(name=_("Project"), options=projects, width=220,
                                         value=first_value(list(projects.values()), query_arg("project")))
        self.experiment = pn.widgets.Select(name=_("Experiment"), options={_("All experiments"): ALL_EXPERIMENTS},
                                            width=240)
        self.filter = pn.widgets.TextInput(name=_("Filter (MLflow syntax)"), value=query_arg("filter") or "",
                                           placeholder="metrics.test_accuracy > 0.9 and params.epochs = '3'",
                                           width=420)
        self.apply = pn.widgets.Button(name=_("Apply filter"), button_type="primary", align="end")
        self.metric = pn.widgets.Select(name=_("Chart metric"), options=[], width=220)
        self.count = pn.pane.HTML("", margin=(5, 10), css_classes=["runs-count"], align="end")
        self.more = pn.widgets.Button(name=_("Load more runs"), visible=False, align="end")
        self.compare_button = pn.widgets.Button(name=_("Compare selected runs"), button_type="success",
                                                disabled=True, css_classes=["compare-button"], align="end")
        self.comparison = pn.Column(sizing_mode="stretch_width", css_classes=["comparison"])
        self.runs: list[dict[str, Any]] = []
        self.next_page_token: str | None = None

        self.load_project(query_arg("experiment"))
        frame = runs_frame(self.runs).drop(columns=["run_id"])
        self.table = fast_table(frame, name="runs", height=table_height(len(frame)))
        self.metric.value = first_value(self.metric.options, query_arg("metric"))
        self.chart = pn.pane.Bokeh(self.runs_chart(), sizing_mode="stretch_width")
        wanted = [run_id for run_id in (query_arg("compare") or "").split(",") if run_id]
        if len(wanted) >= 2:
            self.compare(wanted)

        self.project.param.watch(lambda _event: self.on_project(), "value")
        self.experiment.param.watch(lambda _event: self._quiet or self.reload_runs(), "value")
        self.apply.on_click(lambda _event: self.reload_runs())
        self.filter.param.watch(lambda _event: self.reload_runs(), "enter_pressed")
        self.metric.param.watch(lambda _event: self._quiet or self.draw_chart(), "value")
        self.table.param.watch(self.on_selection, "selection")
        self.more.on_click(lambda _event: self.load_more())
        self.compare_button.on_click(lambda _event: self.compare(self.selected_run_ids()))

    _quiet = False

    @contextmanager
    def quietly(self) -> Iterator[None]:
        """Widget changes made by the page itself, which must not trigger the viewer's reactions."""
        self._quiet = True
        try:
            yield
        finally:
            self._quiet = False

    # ----- data -----

    def load_project(self, wanted_experiment: str | None = None) -> None:
        project = self.project.value
        options = {_("All experiments"): ALL_EXPERIMENTS}
        if project:
            try:
                for experiment in self.prefetch.take(("experiments", project), lambda: self.api.experiments(project)):
                    count = experiment.get("run_count")
                    runs = ngettext("{count} run", "{count} runs", count).format(count=count) \
                        if isinstance(count, int) else "?"
                    options[f"{experiment['name']} ({runs})"] = str(experiment["experiment_id"])
            except (AitipAPIError, NotSignedIn) as error:
                self.messages.error(error, _("list the experiments of {project}").format(project=project))
        with self.quietly():  # chosen here, not by the viewer: no reload
            self.experiment.options = options
            self.experiment.value = first_value(list(options.values()), wanted_experiment)
        self.fetch_runs()

    def fetch_runs(self) -> None:
        """The first page of runs for the current project, experiment and filter."""
        self.runs, self.next_page_token = [], None
        project = self.project.value
        if not project:
            self.messages.note(_("You are not a member of any project yet."))
        else:
            experiment_id, search = self.experiment.value or None, self.filter.value.strip() or None
            try:
                page = self.prefetch.take(runs_key(project, experiment_id, search), lambda: self.api.runs(
                    project, experiment_id=experiment_id, filter=search, max_results=RUNS_PER_PAGE))
            except (AitipAPIError, NotSignedIn) as error:
                self.messages.error(error, _("list the runs of {project}").format(project=project))
            else:
                self.runs, self.next_page_token = list(page["runs"]), page.get("next_page_token")
        keys = metric_keys(self.runs)
        with self.quietly():
            self.metric.options = keys
            self.metric.value = first_value(keys, self.metric.value)
        self.show_count()

    def load_runs(self) -> None:
        self.fetch_runs()
        self.show_runs()

    def load_more(self) -> None:
        try:
            page = self.api.runs(self.project.value, experiment_id=self.experiment.value or None,
                                 filter=self.filter.value.strip() or None, max_results=RUNS_PER_PAGE,
                                 page_token=self.next_page_token)
        except (AitipAPIError, NotSignedIn) as error:
            self.messages.error(error, _("load more runs"))
            return
        self.runs += page["runs"]
        self.next_page_token = page.get("next_page_token")
        self.show_count()
        self.show_runs()
        self.draw_chart()

    # ----- views -----

    def show_count(self) -> None:
        count = ngettext("{count} run", "{count} runs", len(self.runs)).format(
            count=f"<span id='runs-count'>{len(self.runs)}</span>")
        self.count.object = count + (" " + _("(more available)") if self.next_page_token else "")
        self.more.visible = bool(self.next_page_token)

    def show_runs(self) -> None:
        frame = runs_frame(self.runs).drop(columns=["run_id"])
        self.table.param.update(value=frame, widths=column_widths(frame), selection=[],
                                height=table_height(len(frame)))

    def runs_chart(self) -> Any:
        figure = charts.metric_by_run(self.runs, self.metric.value)
        figure.css_classes = ["runs-chart"]
        return figure

    def draw_chart(self) -> None:
        self.chart.object = self.runs_chart()

    def on_project(self) -> None:
        self.messages.reset()
        self.comparison.clear()
        self.load_project()
        self.show_runs()
        self.draw_chart()
        update_query(project=self.project.value, experiment=None, compare=None)

    def reload_runs(self) -> None:
        self.messages.reset()
        self.load_runs()
        self.draw_chart()
        update_query(project=self.project.value, experiment=self.experiment.value, filter=self.filter.value.strip())

    def selected_run_ids(self) -> list[str]:
        """Selection indices are rows of the data as sent (sorting in the browser keeps them)."""
        return [self.runs[index]["run_id"] for index in sorted(self.table.selection) if index < len(self.runs)]

    def on_selection(self, _event: Any) -> None:
        chosen = len(self.table.selection)
        self.compare_button.disabled = not 2 <= chosen <= MAX_COMPARED
        self.compare_button.name = (ngettext("Compare {count} selected run", "Compare {count} selected runs",
                                             chosen).format(count=chosen) if chosen else _("Compare selected runs"))

    def compare(self, run_ids: list[str]) -> None:
        self.comparison.clear()
        run_ids = list(dict.fromkeys(run_ids))[:MAX_COMPARED]
        try:
            comparison = self.api.compare(self.project.value, run_ids)
        except (AitipAPIError, NotSignedIn) as error:
            self.messages.error(error, _("compare these runs"))
            return
        names = unique_names(comparison["runs"])
        metrics = sorted(comparison.get("metrics", {}))
        chosen_metric = self.metric.value if self.metric.value in metrics else (metrics[0] if metrics else None)
        metric_axes = ([chosen_metric] if chosen_metric else []) + \
            [m for m in metrics if m != chosen_metric][:MAX_METRIC_AXES - 1]
        params = list(comparison.get("differing_params") or []) or sorted(comparison.get("params", {}))
        curve_keys = curve_order(comparison, chosen_metric)
        curve_key = pn.widgets.Select(name=_("Curve"), options=curve_keys, width=220,
                                      value=curve_keys[0] if curve_keys else None)
        curves = pn.pane.HoloViews(self._curves(comparison, names, curve_key.value), sizing_mode="stretch_width",
                                   css_classes=["compare-curves"])
        curve_key.param.watch(lambda event: setattr(curves, "object", self._curves(comparison, names, event.new)),
                              "value")
        self.comparison.extend([
            section(ngettext("Comparing {count} run: {names}", "Comparing {count} runs: {names}",
                             len(comparison["runs"])).format(count=len(comparison["runs"]), names=", ".join(
                                 names[r["run_id"]] for r in comparison["runs"])), element_id="comparison-title"),
            pn.pane.HoloViews(charts.parallel_coordinates(comparison["runs"], params, metric_axes, names),
                              sizing_mode="stretch_width", css_classes=["compare-parallel"]),
            pn.Row(curve_key),
            curves,
            section(_("Parameters")),
            compare_table(diff_frame(comparison, names), "param-diff"),
            section(_("Metrics (latest)")),
            compare_table(metrics_frame(comparison, names), "metric-compare"),
        ])
        update_query(project=self.project.value, compare=",".join(run_ids))

    @staticmethod
    def _curves(comparison: dict[str, Any], names: dict[str, str], key: str | None) -> Any:
        if not key:
            return charts.placeholder(_("no metric history to draw"))
        return charts.overlaid_curves(comparison["curves"].get(key, {}), names, key)

    def view(self) -> pn.Column:
        return pn.Column(
            pn.Row(self.project, self.experiment, self.filter, self.apply, sizing_mode="stretch_width"),
            pn.Row(self.metric, self.compare_button, self.more, self.count),
            self.chart,
            self.table,
            self.comparison,
            sizing_mode="stretch_width",
        )


def table_height(rows: int, most: int = RUNS_TABLE_HEIGHT) -> int:
    """A fixed height (the grid then lays out once) that fits a short table."""
    return min(most, 36 + 28 * max(1, rows))


def compare_table(frame: pd.DataFrame, name: str) -> Any:
    """A comparison table, as light as the runs table (this page loads no Tabulator)."""
    return fast_table(frame, name=name, height=table_height(len(frame)), selectable=False, sortable=False)


def runs_key(project: str, experiment_id: str | None, search: str | None) -> tuple[Any, ...]:
    return ("runs", project, experiment_id, search)


def page() -> pn.Column:
    pn.extension()
    messages = Messages()
    try:
        api = session_api()
    except NotSignedIn as error:
        messages.error(error, _("see your projects"))
        return page_frame(PAGE, None, messages)
    calls: dict[Any, Any] = {"me": api.me}
    project = query_arg("project")
    if project:
        # The address names the project: its experiments and runs are fetched while ``me`` is.
        experiment_id, search = query_arg("experiment") or None, (query_arg("filter") or "").strip() or None
        calls[("experiments", project)] = lambda: api.experiments(project)
        calls[runs_key(project, experiment_id, search)] = lambda: api.runs(
            project, experiment_id=experiment_id, filter=search, max_results=RUNS_PER_PAGE)
    prefetch = Prefetch(calls)
    try:
        me = prefetch.take("me", api.me)
    except AitipAPIError as error:
        messages.error(error, _("see your projects"))
        return page_frame(PAGE, None, messages)
    return page_frame(PAGE, me["name"], messages, ExperimentsPage(api, me, messages, prefetch).view())


if __name__.startswith("bokeh_app"):
    page().servable(title=page_title(PAGE))
