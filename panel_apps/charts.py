"""HoloViews charts the pages share (Bokeh backend). Each takes API JSON and returns an element;
none calls the API. Axis titles, legends and empty states are in the page's language."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import holoviews as hv
import pandas as pd
from bokeh.palettes import Category10_10
from holoviews.plotting.bokeh import BokehRenderer

from aitip.jobs.state_words import job_state_word

from .components import STATE_COLOURS, format_number
from .language import _, pgettext

hv.extension("bokeh", logo=False)
# Canvas, not WebGL: these charts hold a few dozen glyphs, and a WebGL figure costs the browser a GL context
# and a blit per paint (measured ~70 ms of the Datasets page's first paint in headless Chromium, which draws
# WebGL in software); Bokeh's own default is canvas too.
BokehRenderer.webgl = False

PALETTE = list(Category10_10)
HEIGHT = 280


def colour(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def to_datetime(value: Any) -> dt.datetime | None:
    """Times as the API gives them: ISO text, epoch seconds, or epoch milliseconds."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        seconds = value / 1000 if value > 1e11 else value
        return dt.datetime.fromtimestamp(seconds, tz=dt.timezone.utc).replace(tzinfo=None)
    parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed.astimezone(dt.timezone.utc).replace(tzinfo=None) if parsed.tzinfo else parsed


def _without_logo(plot: Any, _element: Any) -> None:
    plot.state.toolbar.logo = None


def _common(**extra: Any) -> dict[str, Any]:
    options: dict[str, Any] = dict(responsive=True, height=HEIGHT, toolbar="above", default_tools=["save", "reset"],
                                   hooks=[_without_logo])
    options.update(extra)
    return options


def render(element: Any) -> Any:
    """The element as a Bokeh model, drawn in a document of its own; the page then adds it to its session's.
    ``hv.render`` draws into Bokeh's global current document, which in a Panel server is whichever session set it
    last: a closed one (destroyed) or another live one (not locked by this callback) fails the drawing, and the
    rest of the callback with it."""
    from bokeh.document import Document
    from bokeh.io.doc import patch_curdoc

    own = Document()  # held here: Bokeh keeps only a weak reference to a patched document
    with patch_curdoc(own):
        return hv.render(element)


def plain(*renderers: Any) -> list[Any]:
    """Renderers drawn with their glyph only. Where no selection tool dims them and a legend click hides them
    (never mutes), the dimmed and muted copies Bokeh adds to each renderer are two more models apiece, sent to
    and built again in the browser, for nothing."""
    for renderer in renderers:
        renderer.nonselection_glyph = None
        renderer.muted_glyph = None
    return list(renderers)


def empty_figure(text: str, css_class: str) -> Any:
    """A low chart that says why it is empty, marked ``<css_class> empty``."""
    figure = render(placeholder(text))
    figure.css_classes = [css_class, "empty"]
    return figure


def placeholder(text: str) -> hv.Text:
    """A low, empty chart that says why it is empty (a chart is always drawn)."""
    return hv.Text(0.5, 0.5, text).opts(**_common(height=90, xaxis=None, yaxis=None, show_frame=False, tools=[],
                                                  toolbar=None), text_color="#777777")


def jobs_by_state(counts: Mapping[str, int]) -> hv.Bars:
    frame = pd.DataFrame({"state": [job_state_word(state, pgettext) for state in counts],
                          "jobs": [int(v) for v in counts.values()],
                          "colour": [STATE_COLOURS.get(state, "#333333") for state in counts]})
    return hv.Bars(frame, ("state", _("state")), [("jobs", _("jobs")), "colour"]).opts(
        **_common(tools=["hover"], color="colour", xlabel="", ylabel=_("jobs"), line_color=None, xrotation=30))


def utilization_over_time(history: Mapping[str, Any] | None) -> hv.Element | hv.Overlay:
    """GPU utilization per GPU over time; the host's CPU when the machine has no GPU. The history is
    column-wise: ``t`` (epoch seconds) and one list per measurement."""
    if not history:
        return placeholder(_("no resource data"))
    curves = []
    for position, device in enumerate(history.get("devices") or []):
        frame = pd.DataFrame({"time": [to_datetime(t) for t in device.get("t", [])],
                              "utilization": device.get("utilization_gpu_percent", [])})
        curves.append(hv.Curve(frame, ("time", _("time")), ("utilization", _("GPU utilization (%)")),
                               label=f"GPU {device.get('index', position)}").opts(color=colour(position)))
    if not curves:
        host = history.get("host") or {}
        frame = pd.DataFrame({"time": [to_datetime(t) for t in host.get("t", [])], "cpu": host.get("cpu_percent", [])})
        if frame.empty:
            return placeholder(_("no samples yet"))
        curves.append(hv.Curve(frame, ("time", _("time")), ("cpu", _("CPU (%)")), label=_("host CPU (no GPU)"))
                      .opts(color=colour(0)))
    return hv.Overlay(curves).opts(
        hv.opts.Curve(**_common(tools=["hover"], ylim=(0, 100), line_width=2)),
        hv.opts.Overlay(legend_position="top_left", responsive=True, height=HEIGHT, hooks=[_without_logo]))


def metric_by_run(runs: Sequence[Mapping[str, Any]], metric: str | None, max_bars: int = 40) -> Any:
    """Each run's latest value of one metric: a bar per run (oldest first), or a scatter over the
    runs' start times when there are too many runs for bars. Drawn with Bokeh directly: this chart
    is part of the Experiments page's first paint, and Bokeh builds it in a third of HoloViews' time."""
    from bokeh.models import ColumnDataSource, HoverTool
    from bokeh.plotting import figure

    rows = sorted(((run.get("start_time") or 0, run.get("run_name") or run["run_id"][:8], run["metrics"][metric],
                    run.get("status", "")) for run in runs
                   if metric and (run.get("metrics") or {}).get(metric) is not None), key=lambda row: row[0])
    if not rows:
        return render(placeholder(_("no run logged {metric}").format(metric=metric) if metric
                                     else _("no metrics logged yet")))
    names = [row[1] for row in rows]
    source = ColumnDataSource({"started": [to_datetime(row[0]) for row in rows], "run": names,
                               "value": [row[2] for row in rows], "status": [row[3] for row in rows]})
    options: dict[str, Any] = dict(height=HEIGHT, sizing_mode="stretch_width", toolbar_location="above",
                                   tools="save,reset", y_axis_label=metric)
    if len(rows) <= max_bars and len(set(names)) == len(names):
        chart = figure(x_range=names, x_axis_label=_("run"), **options)
        chart.vbar(x="run", top="value", width=0.8, source=source, color=colour(0), line_color=None)
        chart.xaxis.major_label_orientation = 0.5 if len(rows) > 8 else 0
        chart.y_range.start = min(0.0, min(row[2] for row in rows))
    else:
        chart = figure(x_axis_type="datetime", x_axis_label=_("run started"), **options)
        chart.scatter(x="started", y="value", size=8, source=source, color=colour(0))
    chart.add_tools(HoverTool(tooltips=[(_("run"), "@run"), (metric or _("value"), "@value"),
                                        (_("status"), "@status")]))
    chart.toolbar.logo = None
    chart.xgrid.grid_line_color = None
    return chart


def overlaid_curves(curves: Mapping[str, Sequence[Mapping[str, Any]]], names: Mapping[str, str],
                    key: str) -> hv.Element | hv.Overlay:
    """One metric's history, one curve per run, in the run's compare colour."""
    drawn = []
    for position, (run_id, points) in enumerate(curves.items()):
        if not points:
            continue
        frame = pd.DataFrame({"step": [p["step"] for p in points], "value": [p["value"] for p in points]})
        step = ("step", _("step"))
        drawn.append(hv.Curve(frame, step, ("value", key), label=names.get(run_id, run_id[:8]))
                     .opts(color=colour(position)))
        drawn.append(hv.Scatter(frame, step, ("value", key)).opts(color=colour(position), size=6,
                                                                    show_legend=False, tools=["hover"]))
    if not drawn:
        return placeholder(_("no history of {metric}").format(metric=key))
    return hv.Overlay(drawn).opts(
        hv.opts.Curve(**_common(tools=["hover"], line_width=2)),
        hv.opts.Overlay(legend_position="bottom_right", responsive=True, height=HEIGHT, title=key,
                        hooks=[_without_logo]))


def _axis(values: list[Any]) -> tuple[list[float | None], str, str]:
    """Positions in [0, 1] along one axis, with the labels of its bottom and top ends."""
    numbers = []
    for value in values:
        try:
            numbers.append(None if value is None or value == "" else float(value))
        except (TypeError, ValueError):
            numbers = []
            break
    if numbers and any(n is not None for n in numbers):
        present = [n for n in numbers if n is not None]
        low, high = min(present), max(present)
        span = high - low
        positions = [None if n is None else (0.5 if span == 0 else (n - low) / span) for n in numbers]
        return positions, format_number(low), format_number(high)
    categories = sorted({str(v) for v in values if v is not None})
    if len(categories) <= 1:
        return [0.5 if v is not None else None for v in values], categories[0] if categories else "", ""
    lookup = {name: i / (len(categories) - 1) for i, name in enumerate(categories)}
    return [None if v is None else lookup[str(v)] for v in values], categories[0], categories[-1]


def parallel_coordinates(runs: Sequence[Mapping[str, Any]], params: Sequence[str], metrics: Sequence[str],
                         names: Mapping[str, str]) -> hv.Element | hv.Overlay:
    """Parallel coordinates of parameters → metrics. HoloViews has no such element: each axis is
    normalized to [0, 1] and each run is a polyline across the axes, labelled with the axis ends."""
    dims = [("params", name) for name in params] + [("metrics", name) for name in metrics]
    if not dims or not runs:
        return placeholder(_("pick runs with parameters or metrics to compare"))
    columns = {(kind, name): _axis([(run.get(kind) or {}).get(name) for run in runs]) for kind, name in dims}
    layers: list[Any] = []
    for x in range(len(dims)):
        layers.append(hv.VLine(x).opts(color="#999999", line_width=1))
    labels = []
    for x, dim in enumerate(dims):
        _positions, bottom, top = columns[dim]
        labels += [(x, -0.06, bottom), (x, 1.06, top)]
    for position, run in enumerate(runs):
        points = [(x, columns[dim][0][position], format_number((run.get(dim[0]) or {}).get(dim[1])), dim[1])
                  for x, dim in enumerate(dims) if columns[dim][0][position] is not None]
        if not points:
            continue
        name = names.get(run["run_id"], run["run_id"][:8])
        frame = pd.DataFrame(points, columns=["axis", "position", "value", "dimension"])
        layers.append(hv.Curve(frame, "axis", ["position", "value", "dimension"], label=name)
                      .opts(color=colour(position), line_width=3, tools=["hover"]))
        layers.append(hv.Scatter(frame, "axis", ["position", "value", "dimension"])
                      .opts(color=colour(position), size=8, tools=["hover"]))
    layers.append(hv.Labels(pd.DataFrame(labels, columns=["axis", "position", "text"]), ["axis", "position"], "text")
                  .opts(text_font_size="9pt", text_color="#444444"))
    ticks = [(x, (_("param: {name}") if kind == "params" else _("metric: {name}")).format(name=name))
             for x, (kind, name) in enumerate(dims)]
    return hv.Overlay(layers).opts(
        hv.opts.Curve(responsive=True, height=HEIGHT + 40),
        hv.opts.Overlay(responsive=True, height=HEIGHT + 40, xticks=ticks, yaxis=None, ylim=(-0.15, 1.15),
                        xlim=(-0.3, len(dims) - 0.7), legend_position="right", toolbar="above",
                        default_tools=["save", "reset"], xlabel="", show_grid=False, hooks=[_without_logo]))


def lineage(models: Sequence[Mapping[str, Any]]) -> hv.Element | hv.Overlay:
    """Job → MLflow run → model version, one row per version (newest first, at most 30)."""
    rows = []
    for model in models:
        for version in model.get("versions", []):
            rows.append((model["name"], version))
    rows = sorted(rows, key=lambda item: item[1].get("creation_timestamp") or 0, reverse=True)[:30]
    if not rows:
        return placeholder(_("no registered model versions yet"))
    nodes, edges = [], []
    for y, (name, version) in enumerate(rows):
        run = (version.get("run_id") or "")[:8]
        job = _("job {job}").format(job=version["job_id"]) if version.get("job_id") is not None else _("no job")
        aliases = ", ".join(version.get("aliases") or [])
        label = f"{name} v{version['version']}" + (f" @{aliases}" if aliases else "")
        nodes += [(0, -y, job, "job"), (1, -y, _("run {run}").format(run=run) if run else _("no run"), "run"),
                  (2, -y, label, "version")]
        edges += [(0, -y, 1, -y), (1, -y, 2, -y)]
    frame = pd.DataFrame(nodes, columns=["x", "y", "text", "kind"])
    kind_colours = {"job": colour(1), "run": colour(0), "version": colour(2)}
    frame["colour"] = [kind_colours[k] for k in frame["kind"]]
    height = max(HEIGHT, 60 + 34 * len(rows))
    return hv.Overlay([
        hv.Segments(pd.DataFrame(edges, columns=["x0", "y0", "x1", "y1"]), ["x0", "y0", "x1", "y1"])
        .opts(color="#999999", line_width=2),
        hv.Points(frame, ["x", "y"], ["text", "kind", "colour"]).opts(color="colour", size=14, tools=["hover"]),
        hv.Labels(frame, ["x", "y"], "text").opts(yoffset=0.28, text_font_size="9pt"),
    ]).opts(hv.opts.Overlay(responsive=True, height=height, xaxis=None, yaxis=None, xlim=(-0.5, 2.6),
                            ylim=(-len(rows) + 0.4, 0.7), toolbar="above", default_tools=["save", "reset"],
                            show_frame=False, show_grid=False, hooks=[_without_logo]))


def warm_up() -> None:
    """Render each chart once, so the first viewer does not pay HoloViews' first-use costs."""
    import panel as pn

    now = dt.datetime.now(dt.timezone.utc).timestamp()
    runs = [{"run_id": f"warm{i}", "run_name": f"warm-{i}", "start_time": 1_700_000_000_000 + i, "status": "FINISHED",
             "params": {"a": i, "b": "x"}, "metrics": {"m": i / 2}} for i in range(3)]
    for element in (jobs_by_state({"queued": 1, "running": 2}),
                    utilization_over_time({"host": {"t": [now], "cpu_percent": [10.0]}, "devices": []}),
                    metric_by_run(runs, "m"),
                    overlaid_curves({"warm0": [{"step": 1, "value": 0.5}]}, {"warm0": "warm-0"}, "m"),
                    parallel_coordinates(runs, ["a", "b"], ["m"], {}),
                    lineage([{"name": "m", "versions": [{"version": 1, "run_id": "warm0", "job_id": 1}]}])):
        pn.panel(element).get_root()
