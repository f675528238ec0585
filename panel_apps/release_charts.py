"""The Releases page's figure: a rollout's analysis runs — each run's measure of the canary (error rate; else p99
latency or accuracy, whichever a step bounds) as a point coloured by its outcome, the step's bound as a dashed
line — so why a rollout went on or was aborted is seen at a glance. Drawn with Bokeh directly, as the other pages' figures are."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from panel_apps import charts
from panel_apps.components import parse_time
from panel_apps.language import _
from panel_apps.release_views import OUTCOME_WORDS

HEIGHT = 240
# The least time shown either side of the runs: one run alone, or runs seconds apart, would otherwise be drawn on
# an axis of microseconds.
LEAST_MARGIN = timedelta(minutes=1)
OUTCOME_COLOURS = {"passed": "#228822", "failed": "#cc0000", "inconclusive": "#aa6600"}


def bound_of(rollout: dict[str, Any], metric: str) -> float | None:
    """The tightest bound any analysis step puts on ``metric`` (a floor for accuracy, a ceiling otherwise)."""
    side = "min" if metric == "accuracy" else "max"
    bounds = [condition[side] for step in rollout["steps"] if step.get("analysis")
              for condition in step["analysis"].get("conditions", []) if condition["metric"] == metric]
    if not bounds:
        return None
    return max(bounds) if metric == "accuracy" else min(bounds)


def measured_metric(rollout: dict[str, Any]) -> str:
    """The error rate where it is bounded; else latency, else accuracy."""
    for metric in ("error_rate", "latency_p99_ms", "accuracy"):
        if bound_of(rollout, metric) is not None:
            return metric
    return "error_rate"


def analysis_figure(rollout: dict[str, Any]) -> Any:
    from bokeh.models import ColumnDataSource, HoverTool, Range1d, Span
    from bokeh.plotting import figure

    timed = [(at, run) for run in rollout.get("analysis_runs") or [] if (at := parse_time(run["at"])) is not None]
    if not timed:
        return charts.empty_figure(_("No analysis has run yet."), "rollout-analysis")
    times, runs = [at for at, _run in timed], [run for _at, run in timed]
    margin = max(LEAST_MARGIN, (max(times) - min(times)) / 10)
    metric = measured_metric(rollout)
    label = {"error_rate": _("error rate"), "latency_p99_ms": _("p99 latency (ms)"), "accuracy": _("accuracy")}[metric]
    values = [run.get(metric) if run.get(metric) is not None else 0.0 for run in runs]
    source = ColumnDataSource({
        "at": times, "value": values, "outcome": [_(OUTCOME_WORDS.get(run["outcome"], run["outcome"])) for run in runs],
        "colour": [OUTCOME_COLOURS.get(run["outcome"], "#333333") for run in runs],
        "requests": [run["requests"] for run in runs], "step": [run["step"] + 1 for run in runs]})
    chart = figure(height=HEIGHT, sizing_mode="stretch_width", x_axis_type="datetime", toolbar_location="above",
                   tools="save,reset", x_axis_label=_("analysis run"), y_axis_label=label,
                   x_range=Range1d(min(times) - margin, max(times) + margin))
    chart.toolbar.logo = None
    chart.css_classes = ["rollout-analysis", f"runs-{len(runs)}"]
    chart.scatter(x="at", y="value", size=11, color="colour", source=source)
    bound = bound_of(rollout, metric)
    if bound is not None:
        chart.add_layout(Span(location=bound, dimension="width", line_dash="dashed", line_color="#cc0000",
                              line_width=2))
    chart.y_range.end = max([*values, bound or 0.0]) * 1.2 or 1.0
    chart.y_range.start = -chart.y_range.end / 25  # a run that measured 0 is drawn whole, above the axis
    chart.add_tools(HoverTool(tooltips=[(_("step"), "@step"), (label, "@value"), (_("requests"), "@requests"),
                                        (_("outcome"), "@outcome")]))
    return chart
