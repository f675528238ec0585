"""The Evaluation page's charts, drawn with Bokeh directly (as the Experiments page's are, for the first paint's
sake): the confusion matrix as a heatmap, ROC and precision-recall curves one line per class, the candidate's
change against its baseline per metric, and a metric's trend across a model's versions. Each takes the API's
JSON (or the frames of :mod:`panel_apps.evaluation_views`) and returns a figure whose CSS classes say what it
shows; empty states are :func:`panel_apps.charts.placeholder` with a sentence."""

from __future__ import annotations

import statistics
from typing import Any

import pandas as pd

from panel_apps import charts
from panel_apps.evaluation_views import STATE_COLOURS, TONE_COLOURS, state_label
from panel_apps.language import _

SQUARE = 360


_empty = charts.empty_figure


def _figure(css_classes: list[str], **options: Any) -> Any:
    from bokeh.plotting import figure

    chart = figure(height=options.pop("height", charts.HEIGHT), sizing_mode=options.pop("sizing_mode", "stretch_width"),
                   toolbar_location="above",
                   tools=options.pop("tools", "pan,box_zoom,wheel_zoom,save,reset"), **options)
    chart.toolbar.logo = None
    chart.css_classes = css_classes
    return chart


def confusion_figure(plots: dict[str, Any] | None) -> Any:
    """Counts of true (rows, top to bottom) against predicted classes (columns), each cell shaded by its share
    of its true class, so a small class's mistakes show as plainly as a large one's."""
    from bokeh.models import ColumnDataSource, HoverTool, LinearColorMapper
    from bokeh.palettes import Blues256

    confusion = (plots or {}).get("confusion_matrix")
    matrix = confusion.get("matrix") if isinstance(confusion, dict) else None
    if not matrix:
        return _empty(_("no confusion matrix: this evaluation has none"), "confusion-chart")
    labels = [str(label) for label in confusion.get("labels") or range(len(matrix))]
    cells: dict[str, list[Any]] = {"true": [], "predicted": [], "count": [], "share": [], "text_colour": []}
    for truth, counts in zip(labels, matrix):
        total = sum(counts) or 1
        for predicted, count in zip(labels, counts):
            share = count / total
            cells["true"].append(truth)
            cells["predicted"].append(predicted)
            cells["count"].append(int(count))
            cells["share"].append(share)
            cells["text_colour"].append("#ffffff" if share > 0.5 else "#222222")
    side = max(SQUARE, 40 * len(labels) + 90)
    chart = _figure(["confusion-chart", f"classes-{len(labels)}"], height=side, width=side + 40, sizing_mode="fixed",
                    x_range=labels, y_range=list(reversed(labels)), x_axis_label=_("Predicted class"),
                    y_axis_label=_("True class"), tools="save,reset", title=_("Confusion matrix"))
    mapper = LinearColorMapper(palette=list(reversed(Blues256)), low=0, high=1)
    source = ColumnDataSource(cells)
    chart.rect("predicted", "true", 1, 1, source=source, fill_color={"field": "share", "transform": mapper},
               line_color="#ffffff")
    if len(labels) <= 20:
        chart.text("predicted", "true", text="count", source=source, text_align="center", text_baseline="middle",
                   text_font_size="9pt", text_color="text_colour")
    chart.add_tools(HoverTool(tooltips=[(_("True class"), "@true"), (_("Predicted class"), "@predicted"),
                                        (_("rows"), "@count"), (_("share of the true class"), "@share{0.0%}")]))
    chart.grid.visible = False
    chart.axis.major_tick_line_color = None
    return chart


CURVES = {
    "roc": ("fpr", "tpr", "roc-chart"),
    "pr": ("recall", "precision", "pr-chart"),
}


def curves_figure(plots: dict[str, Any] | None, kind: str) -> Any:
    """The ROC (``roc``) or precision-recall (``pr``) curve of each class, one-vs-rest, its AUC in the legend
    (clicking a class hides it); the ROC's diagonal is a coin's."""
    from bokeh.models import HoverTool, Legend, LegendItem

    x_key, y_key, css_class = CURVES[kind]
    curves = [curve for curve in (plots or {}).get(kind) or [] if isinstance(curve, dict) and curve.get(x_key)]
    title = _("ROC curve") if kind == "roc" else _("Precision–recall curve")
    if not curves:
        return _empty(_("no {title}: the model gave no probabilities").format(title=title), css_class)
    x_label, y_label = ((_("False positive rate"), _("True positive rate")) if kind == "roc"
                        else (_("Recall"), _("Precision")))
    chart = _figure([css_class, f"curves-{len(curves)}"], height=SQUARE, x_range=(-0.02, 1.02), y_range=(-0.02, 1.02),
                    x_axis_label=x_label, y_axis_label=y_label, title=title)
    if kind == "roc":
        chart.line([0, 1], [0, 1], color="#aaaaaa", line_dash="dashed")
    items, lines = [], []
    for position, curve in enumerate(curves):
        auc = curve.get("auc")
        label = _("{label} (AUC {auc})").format(label=curve.get("label", ""),
                                                 auc=f"{auc:.3f}" if isinstance(auc, int | float) else "–")
        line = chart.line(curve[x_key], curve[y_key], color=charts.colour(position), line_width=2, name=label)
        lines.append(line)
        items.append(LegendItem(label=label, renderers=[line]))
    legend = Legend(items=items, click_policy="hide", label_text_font_size="8pt", spacing=0, padding=4)
    chart.add_layout(legend, "right")
    chart.add_tools(HoverTool(tooltips=[(_("class"), "$name"), (x_label, "$x{0.000}"), (y_label, "$y{0.000}")],
                              renderers=lines))
    return chart


def comparison_figure(rows: pd.DataFrame, baseline_version: Any) -> Any:
    """Each metric's change against the baseline in percent of the baseline's value, so metrics of any scale
    read on one axis and a 0.97 against a 0.96 shows as the 1 % it is: bars right of zero went up, coloured
    better (green) or worse (red) by whether the metric is better higher; each bar labelled with both values."""
    from bokeh.models import ColumnDataSource, HoverTool, Span

    shown = rows[rows["relative"].notna()] if not rows.empty else rows
    shown = shown[shown["tone"] != "neutral"] if not shown.empty else shown
    shown = shown[~((shown["delta"] == 0) & ~shown["gated"])] if not shown.empty else shown
    if baseline_version is None:
        return _empty(_("no baseline: this evaluation was not compared with another version"), "comparison-chart")
    if shown.empty:
        return _empty(_("no metric differs from the baseline's"), "comparison-chart")
    shown = shown.iloc[::-1]  # Bokeh draws the first category at the bottom: the gated metrics go on top
    names = [f"{label}{' ◆' if gated else ''}" for label, gated in zip(shown["label"], shown["gated"])]
    relative = shown["relative"].astype(float)
    extent = axis_extent(relative.abs().tolist())
    drawn = relative.clip(-extent, extent)  # a change far beyond the others is cut at the edge, its label says it
    source = ColumnDataSource({
        "metric": names, "relative": relative.tolist(), "drawn": drawn.tolist(),
        "candidate": shown["candidate"].astype(float).tolist(), "baseline": shown["baseline"].astype(float).tolist(),
        "delta": shown["delta"].astype(float).tolist(),
        "colour": [TONE_COLOURS[tone] for tone in shown["tone"]],
        "text": [f"{c:.4g} ← {b:.4g} ({r:+.2f} %){' ▸' if abs(r) > extent else ''}"
                 for c, b, r in zip(shown["candidate"], shown["baseline"], relative)],
        "anchor": ["left" if value >= 0 else "right" for value in relative],
        "offset": [4 if value >= 0 else -4 for value in relative],
    })
    chart = _figure(["comparison-chart", f"metrics-{len(names)}"], height=max(200, 30 * len(names) + 90),
                    y_range=names, x_range=(-extent * 2.2, extent * 2.2), tools="save,reset",
                    x_axis_label=_("change against baseline v{version} (% of its value)").format(
                        version=baseline_version))
    chart.hbar(y="metric", right="drawn", height=0.6, source=source, color="colour", line_color=None)
    chart.text(x="drawn", y="metric", text="text", source=source, text_align="anchor", text_baseline="middle",
               text_font_size="8pt", x_offset="offset", text_color="#333333")
    chart.add_layout(Span(location=0, dimension="height", line_color="#555555", line_width=1))
    chart.add_tools(HoverTool(tooltips=[(_("metric"), "@metric"), (_("candidate"), "@candidate{0.[0000]}"),
                                        (_("baseline"), "@baseline{0.[0000]}"), (_("difference"), "@delta{+0.[0000]}"),
                                        (_("relative"), "@relative{+0.00} %")]))
    chart.ygrid.grid_line_color = None
    return chart


def axis_extent(magnitudes: list[float]) -> float:
    """Half the axis: the largest change, leaving out changes more than five times the median one (a calibration
    error up 400 % would flatten every 8 % bar); those bars are cut at the edge and their labels give the value."""
    present = sorted(value for value in magnitudes if value > 0)
    if not present:
        return 1.0
    limit = 5 * statistics.median(present)
    return max(value for value in present if value <= limit)


def trend_figure(points: pd.DataFrame, metric: str | None, model: str | None) -> Any:
    """``metric`` by model version, each point's mark saying whether that version passed (green circle) or failed
    (red cross); the axis spans the values, not 0 to 1, so small changes show."""
    from bokeh.models import ColumnDataSource, FixedTicker, HoverTool

    if not model:
        return _empty(_("choose a model to see its trend"), "trend-chart")
    if not metric or points.empty:
        return _empty(_("no judged evaluation of {model} yet").format(model=model), "trend-chart")
    low, high = float(points["value"].min()), float(points["value"].max())
    pad = (high - low) * 0.15 or abs(high) * 0.01 or 0.01
    versions = points["version"].astype(int).tolist()
    chart = _figure(["trend-chart", f"points-{len(points)}"], height=charts.HEIGHT,
                    x_range=(min(versions) - 0.5, max(versions) + 0.5), y_range=(low - pad, high + pad),
                    x_axis_label=_("{model} version").format(model=model), y_axis_label=metric,
                    tools="pan,wheel_zoom,save,reset")
    chart.line(versions, points["value"].tolist(), color="#888888", line_width=2)
    hovered = []
    for state, marker in (("passed", "circle"), ("failed", "x")):
        chosen = points[points["state"] == state]
        if chosen.empty:
            continue
        source = ColumnDataSource({"version": chosen["version"].astype(int).tolist(),
                                   "value": chosen["value"].tolist(), "evaluation": chosen["evaluation"].tolist(),
                                   "dataset": chosen["dataset"].tolist()})
        hovered.append(chart.scatter("version", "value", source=source, marker=marker, size=14, line_width=3,
                                     color=STATE_COLOURS[state], legend_label=state_label(state)))
    chart.xaxis.ticker = FixedTicker(ticks=versions)
    chart.xaxis.major_label_overrides = {version: f"v{version}" for version in versions}
    chart.add_tools(HoverTool(renderers=hovered, tooltips=[
        (_("version"), "v@version"), (metric, "@value{0.[0000]}"), (_("evaluation"), "@evaluation"),
        (_("dataset"), "@dataset")]))
    chart.legend.location = "top_left"
    chart.legend.label_text_font_size = "9pt"
    return chart
