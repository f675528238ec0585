"""The Experiments page's charts: overlaid metric curves (part of the first paint), a parameter against a
metric, and parallel coordinates over all listed runs. Drawn with Bokeh directly, as
:func:`panel_apps.charts.metric_by_run` is, for the first paint's sake; empty states are the shared
:func:`panel_apps.charts.placeholder`. Each takes API JSON and returns a figure; none calls the API."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy

from panel_apps import charts
from panel_apps.experiment_frames import column_value, curve_series, group_of, lower_is_better
from panel_apps.language import _

CURVES_HEIGHT = 340


_empty = charts.empty_figure


def _figure(css_classes: list[str], **options: Any) -> Any:
    from bokeh.plotting import figure

    chart = figure(height=options.pop("height", charts.HEIGHT), sizing_mode="stretch_width", toolbar_location="above",
                   tools="pan,box_zoom,wheel_zoom,save,reset", **options)
    chart.toolbar.logo = None
    chart.css_classes = css_classes
    return chart


def colours_by(keys: Sequence[str], groups: Mapping[str, str] | None) -> tuple[dict[str, str], dict[str, str]]:
    """Each key's colour and legend label: its own (a run's name) or its group's, groups coloured in
    the order they first appear."""
    if not groups:
        return {key: charts.colour(i) for i, key in enumerate(keys)}, {}
    order = list(dict.fromkeys(groups[key] for key in keys))
    return {key: charts.colour(order.index(groups[key])) for key in keys}, {key: groups[key] for key in keys}


def curves_figure(curves: Mapping[str, Sequence[Mapping[str, Any]]], names: Mapping[str, str], metric: str | None,
                  *, x_axis: str = "step", smoothing: float = 0.0, log_y: bool = False,
                  groups: Mapping[str, str] | None = None) -> Any:
    """One metric's history of each ticked run, overlaid: the smoothed line over a faint raw one (as W&B
    draws smoothing), in the run's colour or its group's. The figure's classes tell its state
    (``y-log``, ``smoothed``, ``grouped``, ``curves-N``)."""
    from bokeh.models import ColumnDataSource, HoverTool

    drawn = {run_id: curve_series(points, x_axis, smoothing, log_y) for run_id, points in curves.items()}
    drawn = {run_id: series for run_id, series in drawn.items() if series["x"]}
    if not metric:
        return _empty(_("no metrics logged yet"), "runs-chart")
    if not curves:
        return _empty(_("tick runs in the table to draw their {metric} curves").format(metric=metric), "runs-chart")
    if not drawn:
        return _empty(_("the ticked runs have no history of {metric}").format(metric=metric), "runs-chart")
    state = ["runs-chart", f"curves-{len(drawn)}", f"x-{x_axis}"] + (["y-log"] if log_y else []) + \
        (["smoothed"] if smoothing > 0 else []) + (["grouped"] if groups else [])
    x_labels = {"step": _("step"), "relative": _("time since the run's first point (s)"), "wall": _("time")}
    chart = _figure(state, height=CURVES_HEIGHT, x_axis_type="datetime" if x_axis == "wall" else "linear",
                    y_axis_type="log" if log_y else "linear", x_axis_label=x_labels.get(x_axis, x_axis),
                    y_axis_label=metric + (" " + _("(smoothed)") if smoothing > 0 else ""))
    colours, labels = colours_by(list(drawn), groups)
    labelled: set[str] = set()
    lines = []
    for run_id, series in drawn.items():
        # Typed arrays (Bokeh sends them as binary, the browser reads them without parsing numbers); the run's
        # name is the line's own (the tooltip's $name), not a column repeated for every point; the raw values
        # only when smoothing makes them differ from the line.
        data = {"x": numpy.asarray([charts.to_datetime(x) for x in series["x"]], dtype="datetime64[ms]")
                if x_axis == "wall" else numpy.asarray(series["x"], dtype=float),
                "y": numpy.asarray(series["y"], dtype=float)}
        if smoothing > 0:
            data["raw"] = numpy.asarray(series["raw"], dtype=float)
        source = ColumnDataSource(data)
        name = names.get(run_id, run_id[:8])
        if smoothing > 0:
            charts.plain(chart.line("x", "raw", source=source, color=colours[run_id], alpha=0.2, line_width=1,
                                    name=name))
        label = labels.get(run_id, name)
        extra = {"legend_label": label} if label not in labelled else {}
        labelled.add(label)
        lines += charts.plain(chart.line("x", "y", source=source, color=colours[run_id], line_width=2, name=name,
                                         **extra))
    tooltips = [(_("run"), "$name"), (metric, "@y{0.[0000]}")] + \
        ([(_("raw"), "@raw{0.[0000]}")] if smoothing > 0 else [])
    chart.add_tools(HoverTool(tooltips=tooltips, mode="mouse", renderers=lines))
    chart.legend.location = "top_right" if lower_is_better(metric) else "bottom_right"
    chart.legend.click_policy = "hide"
    chart.legend.label_text_font_size = "9pt"
    return chart


def _numbers(values: Sequence[Any]) -> list[float] | None:
    try:
        return [float(v) for v in values]
    except (TypeError, ValueError):
        return None


def scatter_figure(runs: Sequence[Mapping[str, Any]], param: str | None, metric: str | None, names: Mapping[str, str],
                   ticked: Sequence[str], group_by: str | None = None) -> Any:
    """Each listed run's latest ``metric`` against its ``param`` (a numeric or a category axis), in its
    group's colour when grouped; ticked runs ringed."""
    from bokeh.models import ColumnDataSource, HoverTool

    if not param or not metric:
        return _empty(_("choose a parameter and a metric"), "param-scatter")
    rows = [(run, column_value(run, param), (run.get("metrics") or {}).get(metric)) for run in runs]
    rows = [(run, x, y) for run, x, y in rows if x not in ("", None) and isinstance(y, (int, float))]
    if not rows:
        return _empty(_("no listed run has both {param} and {metric}").format(param=param, metric=metric),
                      "param-scatter")
    xs: list[Any] = _numbers([x for _run, x, _y in rows]) or [str(x) for _run, x, _y in rows]
    numeric = isinstance(xs[0], float)
    options: dict[str, Any] = {} if numeric else {"x_range": sorted(set(xs))}
    chart = _figure(["param-scatter"], x_axis_label=param, y_axis_label=metric, **options)
    ids = [run["run_id"] for run, _x, _y in rows]
    groups = {run["run_id"]: group_of(run, group_by) for run, _x, _y in rows} if group_by else None
    colours = colours_by(ids, groups)[0] if groups else {key: charts.colour(0) for key in ids}
    source = ColumnDataSource({"x": xs, "y": [y for _run, _x, y in rows], "run": [names.get(i, i[:8]) for i in ids],
                               "colour": [colours[i] for i in ids],
                               "ring": ["#000000" if i in ticked else None for i in ids]})
    chart.scatter("x", "y", source=source, size=9, color="colour", line_color="ring", line_width=2, alpha=0.8)
    chart.add_tools(HoverTool(tooltips=[(_("run"), "@run"), (param, "@x"), (metric, "@y{0.[0000]}")]))
    return chart


def parallel_figure(runs: Sequence[Mapping[str, Any]], params: Sequence[str], metric: str | None,
                    names: Mapping[str, str], ticked: Sequence[str]) -> Any:
    """Parallel coordinates of the chosen parameters → the metric, one line per listed run coloured by
    the metric (a colour bar beside), ticked runs drawn bold. Axes are normalized to [0, 1] and labelled
    with their ends, as :func:`panel_apps.charts.parallel_coordinates` does for a comparison."""
    from bokeh.models import ColumnDataSource, FixedTicker, HoverTool, LinearColorMapper, ColorBar
    from bokeh.palettes import Viridis256

    axes = [*params, *([f"metric.{metric}"] if metric else [])]
    if len(axes) < 2 or not runs:
        return _empty(_("choose parameters and a metric to draw parallel coordinates"), "param-parallel")
    columns = {axis: charts._axis([column_value(run, axis) if column_value(run, axis) != "" else None for run in runs])
               for axis in axes}
    scores = [(run.get("metrics") or {}).get(metric) for run in runs] if metric else [None] * len(runs)
    present = [s for s in scores if isinstance(s, (int, float))]
    low, high = (min(present), max(present)) if present else (0.0, 1.0)
    palette = list(reversed(Viridis256)) if lower_is_better(metric) else list(Viridis256)
    mapper = LinearColorMapper(palette=palette, low=low, high=high if high > low else low + 1)
    lines: dict[str, list[Any]] = {"xs": [], "ys": [], "run": [], "score": [], "width": [], "alpha": []}
    for position, run in enumerate(runs):
        points = [(x, columns[axis][0][position]) for x, axis in enumerate(axes) if columns[axis][0][position] is not None]
        if len(points) < 2:
            continue
        bold = run["run_id"] in ticked
        lines["xs"].append([x for x, _y in points])
        lines["ys"].append([y for _x, y in points])
        lines["run"].append(names.get(run["run_id"], run["run_id"][:8]))
        lines["score"].append(scores[position] if isinstance(scores[position], (int, float)) else float("nan"))
        lines["width"].append(4 if bold else 1.5)
        lines["alpha"].append(1.0 if bold else 0.5)
    if not lines["xs"]:
        return _empty(_("no listed run has these parameters"), "param-parallel")
    chart = _figure(["param-parallel"], height=charts.HEIGHT + 40, x_range=(-0.3, len(axes) - 0.7), y_range=(-0.15, 1.15))
    for x in range(len(axes)):
        chart.line([x, x], [0, 1], color="#999999", line_width=1)
        _positions, bottom, top = columns[axes[x]]
        chart.text([x, x], [-0.08, 1.04], text=[bottom, top], text_font_size="9pt", text_align="center",
                   text_color="#444444")
    source = ColumnDataSource(lines)
    chart.multi_line("xs", "ys", source=source, line_color={"field": "score", "transform": mapper},
                     line_width="width", line_alpha="alpha")
    chart.add_tools(HoverTool(tooltips=[(_("run"), "@run"), (metric or _("metric"), "@score{0.[0000]}")]))
    chart.xaxis.ticker = FixedTicker(ticks=list(range(len(axes))))
    chart.xaxis.major_label_overrides = {x: axis.partition(".")[2] or axis for x, axis in enumerate(axes)}
    chart.yaxis.visible = False
    chart.grid.visible = False
    chart.add_layout(ColorBar(color_mapper=mapper, title=metric, width=10), "right")
    return chart
