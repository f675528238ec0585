"""Experiments as W&B users expect: a project's MLflow runs, named after their notebook and job, in a
table whose columns the viewer picks (sortable, filterable in their headers, the run's name frozen);
the metric curves of the ticked runs overlaid from the first paint (the best runs are ticked for you),
on a step or time axis, smoothed, on a log scale; a parameter against a metric; parallel coordinates;
runs grouped by a parameter or tag; the parameter diff of the ticked runs.

Everything the viewer chooses is kept in the address, so a link shares the view: ``experiments?
project=P&experiment=ID&filter=...&compare=RUN,RUN&metric=KEY&x=step&smooth=0.6&log=1&group=param.lr
&columns=metric.acc,param.lr&sp=param.lr&pp=param.lr,param.depth``. The runs, and the curves of runs the
address ticks, are fetched while the session is created, so they are in the first document drawn."""

from __future__ import annotations

from typing import Any

import pandas as pd
import panel as pn

from aitip.client import AitipAPIError
from panel_apps import experiment_charts as figures
from panel_apps.api import DashboardAPI
from panel_apps.components import (
    Messages,
    NotSignedIn,
    Prefetch,
    column_titles,
    data_table,
    fast_table,
    first_value,
    page_title,
    QuietChanges,
    prefetched_page,
    project_options,
    query_arg,
    section,
    update_query,
)
from panel_apps.experiment_frames import (
    NO_GROUP,
    X_AXES,
    best_runs,
    comparison_frames,
    column_options,
    default_columns,
    group_label,
    group_options,
    groups_frame,
    header_filters,
    history_length,
    metric_keys,
    number,
    runs_frame,
    split_list,
    table_language,
    table_widths,
    unique_names,
)
from panel_apps.language import _, ngettext

PAGE = "experiments"
RUNS_PER_PAGE = 200
TABLE_PAGE_SIZE = 20
MAX_TICKED = 20  # runs.compare's limit
DEFAULT_TICKED = 5
# The default columns fit a 1,400-pixel-wide window (less the margins, the tick column and a scrollbar); the
# column picker adds the others. Fewer cells are also what Tabulator draws, twice, before the first paint.
TABLE_WIDTH = 1320
CURVE_POINTS = 1000  # per curve, after the platform's LTTB downsampling
CANDIDATE_METRICS = 5  # metrics tried, in one call, for the first chart when the address names none
ALL_EXPERIMENTS = ""
SCATTER_TAB, PARALLEL_TAB, DIFFERENCES_TAB = 1, 2, 3  # the tabs after the curves


def filter_syntax() -> str:
    return _("Filter syntax (MLflow): metrics.accuracy > 0.9, params.lr = '0.1', tags.team = 'vision', "
             "attributes.status = 'FINISHED', joined with and; text in single quotes.")


class ExperimentsPage(QuietChanges):
    """The page's state and widgets; one per browser session."""

    def __init__(self, api: DashboardAPI, me: dict[str, Any], messages: Messages,
                 prefetch: Prefetch | None = None) -> None:
        self.api = api
        self.messages = messages
        self.prefetch = prefetch or Prefetch()
        self.runs: list[dict[str, Any]] = []
        self.next_page_token: str | None = None
        self.ticked: list[str] = []
        self.curves: dict[tuple[str, str], list[dict[str, Any]]] = {}
        projects = project_options(me)
        self.project = pn.widgets.Select(name=_("Project"), options=projects, width=220,
                                         value=first_value(list(projects.values()), query_arg("project")))
        self.experiment = pn.widgets.Select(name=_("Experiment"), options={_("All experiments"): ALL_EXPERIMENTS},
                                            width=240)
        self.filter = pn.widgets.TextInput(name=_("Filter (MLflow syntax)"), value=query_arg("filter") or "",
                                           placeholder="metrics.test_accuracy > 0.9 and params.epochs = '3'",
                                           width=420)
        self.apply = pn.widgets.Button(name=_("Apply filter"), button_type="primary", align="end")
        self.count = pn.pane.HTML("", margin=(5, 10), css_classes=["runs-count"], align="end")
        self.more = pn.widgets.Button(name=_("Load more runs"), visible=False, align="end")
        self.metric = pn.widgets.Select(name=_("Metric"), options=[], width=220, css_classes=["curve-metric"])
        self.x_axis = pn.widgets.RadioButtonGroup(
            name=_("X axis"), options={_("Step"): "step", _("Relative time"): "relative", _("Wall time"): "wall"},
            value=first_value(X_AXES, query_arg("x")), css_classes=["x-axis"], align="end")
        self.smoothing = pn.widgets.FloatSlider(name=_("Smoothing (EMA)"), start=0, end=0.99, step=0.01, width=220,
                                                value=number(query_arg("smooth"), 0.0, 0.0, 0.99),
                                                css_classes=["smoothing"])
        self.log_y = pn.widgets.Checkbox(name=_("Log scale (y)"), value=query_arg("log") == "1",
                                         css_classes=["log-scale"], align="end")
        self.group_by = pn.widgets.Select(name=_("Group by"), options={_("No grouping"): NO_GROUP}, width=220,
                                          css_classes=["group-by"])
        self.columns = pn.widgets.MultiChoice(name=_("Columns"), options=[], sizing_mode="stretch_width",
                                              css_classes=["column-picker"], placeholder=_("add a column"))
        self.scatter_param = pn.widgets.Select(name=_("Parameter"), options=[], width=240,
                                               css_classes=["scatter-param"])
        self.parallel_params = pn.widgets.MultiChoice(name=_("Parameters"), options=[], sizing_mode="stretch_width",
                                                      css_classes=["parallel-params"], max_items=8)
        self.chart = pn.pane.Bokeh(sizing_mode="stretch_width")
        self.scatter = pn.pane.Bokeh(sizing_mode="stretch_width")
        self.parallel = pn.pane.Bokeh(sizing_mode="stretch_width")
        self.comparison = pn.Column(sizing_mode="stretch_width", css_classes=["comparison"])
        self.groups = pn.Column(sizing_mode="stretch_width")
        self.tabs = pn.Tabs(
            (_("Curves"), pn.Column(pn.Row(self.metric, self.x_axis, self.smoothing, self.log_y), self.chart,
                                    sizing_mode="stretch_width")),
            (_("Parameter vs metric"), pn.Column(self.scatter_param, self.scatter, sizing_mode="stretch_width")),
            (_("Parallel coordinates"), pn.Column(self.parallel_params, self.parallel, sizing_mode="stretch_width")),
            (_("Differences"), self.comparison),
            dynamic=True, sizing_mode="stretch_width", css_classes=["experiment-tabs"])
        self.stale: set[int] = set()  # tabs whose content waits until they are opened

        self.load_project(query_arg("experiment"))
        self.choose_options(columns=split_list(query_arg("columns")), group=query_arg("group"),
                            scatter=query_arg("sp"), parallel=split_list(query_arg("pp")))
        wanted_metric = query_arg("metric")
        with self.quietly():
            self.metric.value = first_value(self.metric.options, wanted_metric)
        wanted = split_list(query_arg("compare"))[:MAX_TICKED]
        self.ticked = wanted or best_runs(self.runs, self.metric.value, DEFAULT_TICKED)
        self.fetch_curves(candidates=not (wanted_metric and wanted_metric == self.metric.value))
        self.runs = [run for run in self.runs if run["run_id"] in self.ticked] + \
            [run for run in self.runs if run["run_id"] not in self.ticked]  # the ticked rows first
        settings = self.table_settings()
        self.table = data_table(settings.pop("value"), name="runs", page_size=TABLE_PAGE_SIZE, selectable="checkbox",
                                frozen_columns=["run"], configuration=table_language(), **settings)
        self.draw_charts()

        self.project.param.watch(lambda _event: self.on_project(), "value")
        self.experiment.param.watch(lambda _event: self._quiet or self.reload_runs(), "value")
        self.apply.on_click(lambda _event: self.reload_runs())
        self.filter.param.watch(lambda _event: self.reload_runs(), "enter_pressed")
        self.more.on_click(lambda _event: self.load_more())
        self.table.param.watch(lambda _event: self._quiet or self.on_ticked(), "selection")
        self.metric.param.watch(lambda _event: self._quiet or self.on_metric(), "value")
        for widget, value in ((self.x_axis, "value"), (self.smoothing, "value_throttled"), (self.log_y, "value")):
            widget.param.watch(lambda _event: self._quiet or self.redraw(curves=True), value)
        self.group_by.param.watch(lambda _event: self._quiet or self.redraw(table=True, curves=True, others=True),
                                  "value")
        self.columns.param.watch(lambda _event: self._quiet or self.redraw(table=True), "value")
        for widget in (self.scatter_param, self.parallel_params):
            widget.param.watch(lambda _event: self._quiet or self.redraw(others=True), "value")
        self.tabs.param.watch(lambda _event: self.draw_tab(), "active")

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
        """The first page of runs for the current project, experiment and filter; an empty project or
        filter says what to do next."""
        self.runs, self.next_page_token = [], None
        project = self.project.value
        search = self.filter.value.strip() or None
        if not project:
            self.messages.note(_("You are not a member of any project yet."))
        else:
            experiment_id = self.experiment.value or None
            try:
                page = self.prefetch.take(runs_key(project, experiment_id, search), lambda: self.api.runs(
                    project, experiment_id=experiment_id, filter=search, max_results=RUNS_PER_PAGE))
            except (AitipAPIError, NotSignedIn) as error:
                self.messages.error(error, _("list the runs of {project}").format(project=project))
                if search:
                    self.messages.note(filter_syntax())
            else:
                self.runs, self.next_page_token = list(page["runs"]), page.get("next_page_token")
                if not self.runs and search:
                    self.messages.note(_("No run matches the filter {filter}. Clear the filter to see every run.")
                                       .format(filter=search))
                elif not self.runs:
                    self.messages.note(_("No runs in {project} yet. Run a notebook as a job (aitip run train.ipynb "
                                         "-P {project}, or from JupyterLab): its run appears here with its "
                                         "parameters, metrics and curves.").format(project=project))
        self.show_count()

    def load_more(self) -> None:
        try:
            page = self.api.runs(self.project.value, experiment_id=self.experiment.value or None,
                                 filter=self.filter.value.strip() or None, max_results=RUNS_PER_PAGE,
                                 page_token=self.next_page_token)
        except (AitipAPIError, NotSignedIn) as error:
            self.messages.error(error, _("load more runs"))
            return
        listed = {run["run_id"] for run in self.runs}
        self.runs += [run for run in page["runs"] if run["run_id"] not in listed]
        self.next_page_token = page.get("next_page_token")
        self.show_count()
        self.choose_options()
        self.redraw(table=True, others=True)

    def fetch_curves(self, candidates: bool = False) -> None:
        """The chosen metric's history of each ticked run not fetched yet: ``runs.compare`` for two or
        more (one call), ``runs.metric_history`` for one. With ``candidates``, the first few metrics are
        fetched together and the chart opens on the first that has a history (more than one point)."""
        metric = self.metric.value
        if not metric or not self.ticked:
            return
        keys = list(self.metric.options[:CANDIDATE_METRICS]) if candidates else [metric]
        missing = [run_id for run_id in self.ticked if any((run_id, key) not in self.curves for key in keys)]
        try:
            if len(missing) >= 2:
                answer = self.prefetch.take(curves_key(self.project.value, missing, keys), lambda: self.api.compare(
                    self.project.value, missing, keys=keys, max_points=CURVE_POINTS))
                self.list_runs(answer["runs"])
                for key, by_run in answer["curves"].items():
                    self.curves.update({(run_id, key): points for run_id, points in by_run.items()})
                for run_id in missing:
                    for key in keys:
                        self.curves.setdefault((run_id, key), [])
            elif missing:
                self.list_runs([self.api.run(missing[0])] if missing[0] not in self.listed() else [])
                for key in keys:
                    self.curves[(missing[0], key)] = self.history(missing[0], key)
        except (AitipAPIError, NotSignedIn) as error:
            self.messages.error(error, _("draw the curves of the ticked runs"))
            self.ticked = [run_id for run_id in self.ticked if run_id in self.listed()]
            return
        if candidates:
            drawn = [key for key in keys if history_length(self.curves_of(key)) > 1]
            with self.quietly():
                self.metric.value = drawn[0] if drawn else metric

    def history(self, run_id: str, key: str) -> list[dict[str, Any]]:
        try:
            return list(self.api.metric_history(run_id, key, max_points=CURVE_POINTS)["points"])
        except AitipAPIError as error:
            if error.status == 404:  # the run never logged this metric
                return []
            raise

    def listed(self) -> set[str]:
        return {run["run_id"] for run in self.runs}

    def list_runs(self, runs: list[dict[str, Any]]) -> None:
        """Ticked runs the listing does not hold (an older run a shared link ticks) join the table."""
        listed = self.listed()
        self.runs = [run for run in runs if run["run_id"] not in listed] + self.runs

    def curves_of(self, metric: str | None) -> dict[str, list[dict[str, Any]]]:
        return {run_id: self.curves.get((run_id, metric or ""), []) for run_id in self.ticked}

    # ----- choices -----

    def choose_options(self, *, columns: list[str] | None = None, group: str | None = None,
                       scatter: str | None = None, parallel: list[str] | None = None) -> None:
        """Options from the runs listed; the viewer's choices (or the address's) kept where they still
        apply, sensible defaults elsewhere."""
        options = column_options(self.runs)
        defaults = [column for column in default_columns(self.runs, width=TABLE_WIDTH) if column in options]
        chosen = [c for c in (columns if columns is not None else self.columns.value) if c in options]
        params = [column for column in options if column.startswith("param.")]
        differing = [column for column in defaults if column.startswith("param.")] or params
        groups = {_("No grouping"): NO_GROUP, **{column: column for column in group_options(self.runs)}}
        keys = metric_keys(self.runs)
        with self.quietly():
            self.columns.options = options
            self.columns.value = chosen or defaults
            self.metric.options = keys
            self.metric.value = first_value(keys, self.metric.value)
            self.group_by.options = groups
            self.group_by.value = first_value(list(groups.values()), group if group is not None else self.group_by.value)
            self.scatter_param.options = params
            self.scatter_param.value = first_value(params, scatter or self.scatter_param.value or
                                                   (differing[0] if differing else None))
            self.parallel_params.options = params
            self.parallel_params.value = [p for p in (parallel or self.parallel_params.value) if p in params] or \
                differing[:4]

    def frame(self) -> pd.DataFrame:
        columns = list(self.columns.value)
        if self.group_by.value and self.group_by.value not in columns:
            columns.append(self.group_by.value)
        return runs_frame(self.runs, columns)

    def table_settings(self) -> dict[str, Any]:
        frame = self.frame()
        listed = [run["run_id"] for run in self.runs]
        return dict(value=frame, widths=table_widths(frame), titles=column_titles(frame),
                    header_filters=header_filters(frame), groupby=[self.group_by.value] if self.group_by.value else [],
                    selection=[listed.index(run_id) for run_id in self.ticked if run_id in listed])

    # ----- views -----

    def show_count(self) -> None:
        count = ngettext("{count} run", "{count} runs", len(self.runs)).format(
            count=f"<span id='runs-count'>{len(self.runs)}</span>")
        self.count.object = count + (" " + _("(more available)") if self.next_page_token else "")
        self.more.visible = bool(self.next_page_token)

    def draw_charts(self) -> None:
        names = unique_names(self.runs)
        group = self.group_by.value
        groups = {run["run_id"]: group_label(run, group) for run in self.runs} if group else None
        self.chart.object = figures.curves_figure(
            self.curves_of(self.metric.value), names, self.metric.value, x_axis=self.x_axis.value,
            smoothing=float(self.smoothing.value), log_y=bool(self.log_y.value), groups=groups)
        self.draw_others(names)

    def draw_others(self, names: dict[str, str]) -> None:
        """The groups' means under the table, and the tab shown if it is the scatter, the parallel coordinates
        or the ticked runs' diff; the other tabs are drawn when opened (the first paint shows the curves)."""
        self.draw_groups()
        self.stale = {SCATTER_TAB, PARALLEL_TAB, DIFFERENCES_TAB}
        self.draw_tab(names)

    def draw_tab(self, names: dict[str, str] | None = None) -> None:
        active = self.tabs.active
        if active not in self.stale:
            return
        self.stale.discard(active)
        names = names if names is not None else unique_names(self.runs)
        metric = self.metric.value
        if active == SCATTER_TAB:
            self.scatter.object = figures.scatter_figure(self.runs, self.scatter_param.value, metric, names,
                                                         self.ticked, self.group_by.value or None)
        elif active == PARALLEL_TAB:
            self.parallel.object = figures.parallel_figure(self.runs, list(self.parallel_params.value), metric, names,
                                                           self.ticked)
        elif active == DIFFERENCES_TAB:
            self.draw_comparison(names)

    def draw_groups(self) -> None:
        self.groups.clear()
        if self.group_by.value:
            metrics = [column for column in self.columns.value if column.startswith("metric.")]
            frame = groups_frame(self.runs, self.group_by.value, metrics)
            titles = {**column_titles(frame), "group": _("group"), "runs": _("runs")}
            self.groups.extend([section(_("Mean per {group}").format(group=self.group_by.value), "groups-title"),
                                data_table(frame, name="groups", titles=titles, widths=table_widths(frame),
                                           pagination=None, configuration=table_language())])

    def draw_comparison(self, names: dict[str, str]) -> None:
        self.comparison.clear()
        ticked = [run for run in self.runs if run["run_id"] in self.ticked]
        if len(ticked) < 2:
            self.comparison.append(pn.pane.HTML(_("Tick two runs or more in the table to see their differences."),
                                                css_classes=["comparison-empty"], margin=(10, 10)))
            return
        diff, latest = comparison_frames(ticked, names)
        self.comparison.extend([
            section(ngettext("Comparing {count} run: {names}", "Comparing {count} runs: {names}", len(ticked))
                    .format(count=len(ticked), names=", ".join(names[run["run_id"]] for run in ticked)),
                    element_id="comparison-title"),
            section(_("Parameters")), compare_table(diff, "param-diff"),
            section(_("Metrics (latest)")), compare_table(latest, "metric-compare"),
        ])

    def redraw(self, *, table: bool = False, curves: bool = False, others: bool = False) -> None:
        if table:
            with self.quietly():
                self.table.param.update(**self.table_settings())
        if curves:
            self.draw_charts()
        elif others:
            self.draw_others(unique_names(self.runs))
        self.share()

    def share(self) -> None:
        """The view's state in the address (defaults left out, so links stay short)."""
        columns = list(self.columns.value)
        update_query(project=self.project.value, experiment=self.experiment.value, filter=self.filter.value.strip(),
                     compare=",".join(self.ticked), metric=self.metric.value or "",
                     columns="" if columns == default_columns(self.runs, width=TABLE_WIDTH) else ",".join(columns),
                     x=self.x_axis.value, smooth=f"{float(self.smoothing.value):g}",
                     log="1" if self.log_y.value else "", group=self.group_by.value, sp=self.scatter_param.value or "",
                     pp=",".join(self.parallel_params.value))

    # ----- reactions -----

    def on_ticked(self) -> None:
        """Ticking a run adds its curve; the ticks are the table's rows as sent (sorting and filtering
        in the browser keep them)."""
        ticked = [self.runs[index]["run_id"] for index in sorted(self.table.selection) if index < len(self.runs)]
        if len(ticked) > MAX_TICKED:
            self.messages.note(_("Curves are drawn for {count} runs at most; untick some to add others.")
                               .format(count=MAX_TICKED))
        self.ticked = ticked[:MAX_TICKED]
        self.fetch_curves()
        self.redraw(curves=True)

    def on_metric(self) -> None:
        self.fetch_curves()
        self.redraw(curves=True)

    def on_project(self) -> None:
        self.messages.reset()
        self.load_project()
        self.reset_view()

    def reload_runs(self) -> None:
        self.messages.reset()
        self.fetch_runs()
        self.reset_view()

    def reset_view(self) -> None:
        """New runs listed: options, the best runs ticked, their curves."""
        self.choose_options()
        self.ticked = best_runs(self.runs, self.metric.value, DEFAULT_TICKED)
        self.fetch_curves(candidates=True)
        self.redraw(table=True, curves=True)

    def view(self) -> pn.Column:
        return pn.Column(
            pn.Row(self.project, self.experiment, self.filter, self.apply, sizing_mode="stretch_width"),
            self.tabs,
            pn.Row(self.group_by, self.columns, self.more, self.count, sizing_mode="stretch_width"),
            self.table,
            self.groups,
            sizing_mode="stretch_width",
        )


def compare_table(frame: pd.DataFrame, name: str) -> Any:
    """A comparison table: Bokeh's light DataTable, no selection or sorting."""
    return fast_table(frame, name=name, height=min(420, 36 + 28 * max(1, len(frame))), selectable=False,
                      sortable=False)


def runs_key(project: str, experiment_id: str | None, search: str | None) -> tuple[Any, ...]:
    return ("runs", project, experiment_id, search)


def curves_key(project: str, run_ids: list[str], keys: list[str]) -> tuple[Any, ...]:
    return ("curves", project, tuple(run_ids), tuple(keys))


def project_calls(api: DashboardAPI, project: str) -> dict[Any, Any]:
    """What the address's project needs first: its experiments, runs and the ticked runs' curves."""
    experiment_id, search = query_arg("experiment") or None, (query_arg("filter") or "").strip() or None
    calls: dict[Any, Any] = {("experiments", project): lambda: api.experiments(project)}
    calls[runs_key(project, experiment_id, search)] = lambda: api.runs(
        project, experiment_id=experiment_id, filter=search, max_results=RUNS_PER_PAGE)
    ticked, metric = split_list(query_arg("compare"))[:MAX_TICKED], query_arg("metric")
    if len(ticked) >= 2 and metric:
        calls[curves_key(project, ticked, [metric])] = lambda: api.compare(
            project, ticked, keys=[metric], max_points=CURVE_POINTS)
    return calls


def page() -> pn.Column:
    pn.extension("tabulator")
    return prefetched_page(PAGE, project_calls,
                           lambda api, me, messages, prefetch: ExperimentsPage(api, me, messages, prefetch).view())


if __name__.startswith("bokeh_app"):
    page().servable(title=page_title(PAGE))
