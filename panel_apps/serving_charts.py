"""The Serving page's figures: an endpoint's weights as one stacked bar (a segment per version, in the version's
colour), and its live charts from ``endpoints.metrics`` — requests per second, the error rate (server errors
solid, bad requests dashed) and the p50 (solid) and p99 (dashed) latency, a line per version, over time. Drawn with
Bokeh directly (as the other pages' first-paint figures are); :class:`LiveCharts` keeps its figures and replaces
only their data when the page refreshes, so a zoom survives the refresh. Axes start at zero and their ticks
abbreviate (1.2k), so one request or a million read alike; a bucket without requests breaks the latency and
error lines instead of drawing a made-up value. The data comes from :mod:`panel_apps.serving_views`."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
import panel as pn

from panel_apps import charts
from panel_apps.language import _
from panel_apps.serving_views import variants, version_colours

HEIGHT = 260
WEIGHTS_HEIGHT = 74
SHOWN_LABEL = 7  # percent: a narrower segment is named in the legend only
MIN_BUCKETS = 8  # the time axis spans this many buckets at least


def _without_toolbar(chart: Any) -> Any:
    chart.toolbar.logo = None
    chart.toolbar_location = None
    return chart


def weights_figure(endpoint: dict[str, Any]) -> Any:
    """One horizontal bar, 0 to 100 %, a segment per version that takes traffic (named inside where it fits)."""
    from bokeh.models import ColumnDataSource, HoverTool, LabelSet, NumeralTickFormatter
    from bokeh.plotting import figure

    colours = version_colours(endpoint)
    shares = [(int(v["version"]), int(v.get("weight") or 0)) for v in variants(endpoint)
              if int(v.get("weight") or 0) > 0]
    left, rows = 0, {"version": [], "left": [], "right": [], "middle": [], "colour": [], "label": [], "weight": []}
    for version, weight in shares:
        rows["version"].append(f"v{version}")
        rows["left"].append(left)
        rows["right"].append(left + weight)
        rows["middle"].append(left + weight / 2)
        rows["colour"].append(colours[version])
        rows["label"].append(f"v{version} · {weight} %" if weight >= SHOWN_LABEL else "")
        rows["weight"].append(weight)
        left += weight
    source = ColumnDataSource(rows)
    chart = figure(height=WEIGHTS_HEIGHT, sizing_mode="stretch_width", x_range=(0, 100), y_range=(-0.5, 0.5),
                   tools="", toolbar_location=None, min_border_left=12, min_border_right=18)
    bars, = charts.plain(chart.hbar(y=0, left="left", right="right", height=0.8, color="colour",
                                    line_color="#ffffff", line_width=2, source=source))
    chart.add_layout(LabelSet(x="middle", y=0, text="label", source=source, text_align="center",
                              text_baseline="middle", text_color="#ffffff", text_font_size="10pt",
                              text_font_style="bold"))
    chart.add_tools(HoverTool(renderers=[bars], tooltips=[(_("version"), "@version"), (_("weight"), "@weight %")]))
    chart.yaxis.visible = False
    chart.xaxis.ticker = [0, 25, 50, 75, 100]
    chart.xaxis.formatter = NumeralTickFormatter(format="0")
    chart.xaxis.axis_label = _("share of the traffic (%)")
    chart.xaxis.axis_label_text_font_size = "9pt"
    chart.xgrid.grid_line_color = None
    chart.ygrid.grid_line_color = None
    chart.outline_line_color = None
    chart.css_classes = ["serving-weights", f"versions-{len(shares)}"]
    return _without_toolbar(chart)


def _columns(series: dict[str, list[Any]]) -> dict[str, Any]:
    """A version's bucketed series as a data source's columns (numbers as float arrays: NaN breaks a line)."""
    columns: dict[str, Any] = {"time": np.array(series["time"], dtype="datetime64[ms]")}
    for name in ("rate", "requests", "errors", "rejected", "p50", "p99"):
        columns[name] = np.array(series[name], dtype=float)
    return columns


def time_span(series: dict[int, dict[str, list[Any]]], width: float) -> tuple[float, float]:
    """The charts' time axis (epoch ms): the buckets drawn, at least :data:`MIN_BUCKETS` of them wide (one bucket
    of traffic is a point in a readable span, not an axis of microseconds), half a bucket of room at each end."""
    times = [moment for columns in series.values() for moment in columns["time"]]
    first, last = (min(times).replace(tzinfo=dt.timezone.utc).timestamp(),
                   max(times).replace(tzinfo=dt.timezone.utc).timestamp())
    span = max(last - first, MIN_BUCKETS * width)
    return (last - span - width / 2) * 1000, (last + width / 2) * 1000


def _figure(css_classes: list[str], title: str, y_label: str, x_range: Any, time_axis: tuple[Any, Any], *,
            y_end: float | None = None) -> Any:
    from bokeh.models import DataRange1d, Range1d
    from bokeh.plotting import figure

    y_range = Range1d(0, y_end) if y_end is not None else DataRange1d(start=0, range_padding=0.12)
    chart = figure(height=HEIGHT, sizing_mode="stretch_width", x_axis_type="datetime", x_range=x_range,
                   y_range=y_range, title=title,
                   toolbar_location="above", tools="xpan,xwheel_zoom,box_zoom,save,reset",
                   x_axis_label=_("time (UTC)"), y_axis_label=y_label, min_border_right=10)
    chart.xaxis.ticker, chart.xaxis.formatter = time_axis  # one ticker (13 models) for the charts' one time axis
    chart.toolbar.logo = None
    chart.css_classes = css_classes
    chart.title.text_font_size = "11pt"
    return chart


def _error_end(series: dict[int, dict[str, list[Any]]]) -> float:
    """The error chart's top: at least 5 % (an error-free endpoint reads as a flat line at 0, not as noise), else
    the highest rate with room above it."""
    values = [value for columns in series.values() for name in ("errors", "rejected") for value in columns[name]
              if not math.isnan(value)]
    highest = max(values, default=0.0)
    return min(100.0, max(5.0, highest * 1.15))


class LiveCharts:
    """The three charts of an endpoint, their data replaced in place on each refresh (rebuilt when the versions
    change). The requests chart may be drawn alone first (the page's first paint) and the other two added by
    :meth:`complete` once the page is shown."""

    def __init__(self) -> None:
        self.versions: tuple[int, ...] = ()
        self.colours: dict[int, str] = {}
        self.sources: dict[int, Any] = {}
        self.errors_chart: Any = None
        self.x_range: Any = None
        self.axis: tuple[Any, Any] | None = None
        self.span: tuple[float, float] = (0.0, 0.0)
        self.panes: list[Any] = []
        self.series: dict[int, dict[str, list[Any]]] = {}

    def draw(self, endpoint: dict[str, Any], series: dict[int, dict[str, list[Any]]], width: float, *,
             first_only: bool = False) -> bool:
        """Show ``series`` (buckets ``width`` seconds wide); True when the figures were rebuilt (the caller puts
        :attr:`panes` in the page: the requests chart alone when ``first_only``). On a refresh the time axis
        follows the data unless the viewer has panned or zoomed it."""
        colours = version_colours(endpoint, list(series))
        versions = tuple(sorted(series))
        self.series = series
        if versions == self.versions and self.panes and all(colours[v] == self.colours.get(v) for v in versions):
            for version in versions:
                self.sources[version].data = _columns(series[version])
            if self.errors_chart is not None:
                self.errors_chart.y_range.end = _error_end(series)
            if (self.x_range.start, self.x_range.end) == self.span:
                self.span = time_span(series, width)
                self.x_range.update(start=self.span[0], end=self.span[1])
            return False
        from bokeh.models import ColumnDataSource, DatetimeTicker, DatetimeTickFormatter, Range1d

        self.versions, self.colours, self.errors_chart = versions, colours, None
        self.sources = {version: ColumnDataSource(_columns(columns)) for version, columns in series.items()}
        self.span = time_span(series, width)
        self.x_range = Range1d(*self.span)  # one time axis: a zoom or pan moves the three charts together
        self.axis = (DatetimeTicker(), DatetimeTickFormatter())
        self.panes = [pn.pane.Bokeh(self._requests(), sizing_mode="stretch_width")]
        if not first_only:
            self.complete()
        return True

    def complete(self) -> bool:
        """The error rate and latency charts beside the requests chart drawn alone; True when added."""
        if len(self.panes) != 1:
            return False
        self.panes += [pn.pane.Bokeh(chart, sizing_mode="stretch_width") for chart in (self._errors(), self._latency())]
        return True

    def clear(self) -> None:
        self.versions, self.colours, self.sources, self.errors_chart, self.panes = (), {}, {}, None, []
        self.x_range, self.axis, self.span, self.series = None, None, (0.0, 0.0), {}

    def _chart(self, css_class: str, title: str, y_label: str, **options: Any) -> Any:
        assert self.axis is not None
        return _figure(["serving-chart", css_class, f"versions-{len(self.sources)}"], title, y_label, self.x_range,
                       self.axis, **options)

    def _finish(self, chart: Any, legend: list[Any], marks: list[Any], tooltips: list[tuple[str, str]]) -> Any:
        from bokeh.models import HoverTool, Legend

        chart.add_tools(HoverTool(renderers=marks, formatters={"@time": "datetime"}, tooltips=[
            (_("version"), "$name"), (_("time"), "@time{%H:%M:%S}"), *tooltips]))  # each mark named its version
        chart.add_layout(Legend(items=legend, click_policy="hide", label_text_font_size="8pt", spacing=0, padding=4,
                                glyph_width=18), "right")
        return chart

    def _versions(self, chart: Any, fields: list[tuple[str, Any, bool]]) -> tuple[list[Any], list[Any]]:
        """Each version's series of each field (field, its legend label from the version's name, dashed): the
        legend's items and the points the hover reads."""
        from bokeh.models import LegendItem

        legend, marks = [], []
        for version in sorted(self.sources):
            source, colour, name = self.sources[version], self.colours[version], f"v{version}"
            for field, label, dashed in fields:
                drawn = _marked_line(chart, field, source, colour, name, dashed=dashed)
                legend.append(LegendItem(label=label(name), renderers=drawn))
                marks.append(drawn[1])
        return legend, marks

    def _requests(self) -> Any:
        from bokeh.models import NumeralTickFormatter

        chart = self._chart("serving-requests", _("Requests per second"), _("requests/s"))
        chart.yaxis.formatter = NumeralTickFormatter(format="0.[00]a")
        legend, marks = self._versions(chart, [("rate", lambda name: name, False)])
        return self._finish(chart, legend, marks, [(_("requests/s"), "@rate{0.[00]}"), (_("requests"), "@requests")])

    def _errors(self) -> Any:
        from bokeh.models import NumeralTickFormatter

        chart = self.errors_chart = self._chart("serving-errors", _("Error rate"), _("% of requests"),
                                                y_end=_error_end(self.series))
        chart.yaxis.formatter = NumeralTickFormatter(format="0.[0]")
        legend, marks = self._versions(chart, [
            ("errors", lambda name: _("{version} server errors").format(version=name), False),
            ("rejected", lambda name: _("{version} bad requests").format(version=name), True)])
        return self._finish(chart, legend, marks, [
            (_("server errors"), "@errors{0.[0]} %"), (_("bad requests (4xx)"), "@rejected{0.[0]} %"),
            (_("requests"), "@requests")])

    def _latency(self) -> Any:
        from bokeh.models import NumeralTickFormatter

        chart = self._chart("serving-latency", _("Latency"), _("ms"))
        chart.yaxis.formatter = NumeralTickFormatter(format="0.[0]a")
        legend, marks = self._versions(chart, [("p50", lambda name: f"{name} p50", False),
                                               ("p99", lambda name: f"{name} p99", True)])
        return self._finish(chart, legend, marks, [("p50", "@p50{0.[0]} ms"), ("p99", "@p99{0.[0]} ms")])


empty = charts.empty_figure


def _marked_line(chart: Any, field: str, source: Any, colour: str, name: str, *, dashed: bool = False) -> list[Any]:
    """A version's series of ``field``: a line and its points (named after the version, for the hover); the second
    series of a chart dashed, with hollow squares."""
    line = chart.line("time", field, source=source, color=colour, line_width=2,
                      **({"line_dash": "dashed"} if dashed else {}))
    points = chart.scatter("time", field, source=source, color=colour, size=4, name=name,
                           **({"marker": "square", "fill_alpha": 0.3} if dashed else {}))
    return charts.plain(line, points)
