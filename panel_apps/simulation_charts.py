"""The Simulation page's curves and comparisons: the metric against each family of conditions' parameter — every
ε attack on one chart (their ε is the same budget) and first, each corruption on its own — from the clean value,
with the template's thresholds as dashed lines (green where met, red where not); two simulations side by side, as a
table of each condition's change and as their curves overlaid. The data comes from the API's JSON and calls no API
(tests check it without a browser); the figures are drawn with Bokeh directly (as the Evaluation page's are, for
the first paint's sake), their CSS classes saying what they show; empty states are
:func:`panel_apps.charts.placeholder` with a sentence."""

from __future__ import annotations

from html import escape
from typing import Any

import panel as pn

from aitip.report_charts import finite
from aitip.simulation.report_charts import (CONDITIONS, EPSILON_ATTACKS, LOWER_IS_BETTER, condition_label,
                                            metric_label, parameter_label, parse_threshold, value_text)
from panel_apps import charts
from panel_apps.evaluation_views import reader
from panel_apps.language import _
from panel_apps.simulation_views import (CELL, JUDGED, TONE_COLOURS, html_table, metric_text, state_label,
                                         target_text)

HEIGHT = 300
PASSED_COLOUR, FAILED_COLOUR, CLEAN_COLOUR = "#1a7f37", "#cf222e", "#8c959f"


def family_of(condition: str) -> str:
    """Attacks sharing the ε budget are one family (drawn together); every other condition is its own."""
    return "epsilon" if condition in EPSILON_ATTACKS else condition


def curve_families(result: dict[str, Any], checks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The metric against each condition's parameter, one family per chart: each condition's points (from the
    clean value where the parameter has one that leaves the data as it is), the thresholds naming one of the
    family's conditions, and the clean value as a line where no curve starts from it."""
    words = reader()
    clean = finite(result.get("clean"))
    members: dict[str, dict[str, list[tuple[float, float]]]] = {}
    parameters: dict[str, str] = {}
    for row in [row for row in result.get("conditions") or [] if isinstance(row, dict)]:
        value, metric = finite(row.get("value")), finite(row.get("metric"))
        if value is None or metric is None:
            continue
        name = str(row.get("condition"))
        members.setdefault(family_of(name), {}).setdefault(name, []).append((value, metric))
        parameters.setdefault(name, str(row.get("parameter") or ""))
    families = []
    for family, conditions in members.items():
        series, all_from_clean = [], True
        for name, points in conditions.items():
            identity = CONDITIONS[name].identity if name in CONDITIONS else None
            from_clean = clean is not None and identity is not None
            all_from_clean = all_from_clean and from_clean
            if from_clean and all(x != identity for x, _y in points):
                points = [(identity, clean), *points]
            points = sorted(points)
            series.append({"condition": name, "label": condition_label(name, words), "x": [x for x, _y in points],
                           "y": [y for _x, y in points]})
        first = next(iter(conditions))
        axis = words(CONDITIONS[first].axis) if first in CONDITIONS and CONDITIONS[first].axis else \
            parameter_label(parameters.get(first), words)
        thresholds = []
        for check in checks:
            parsed = parse_threshold(check.get("threshold"))
            if parsed and parsed["condition"] in conditions:
                thresholds.append({"text": str(check["threshold"]), "y": parsed["bound"], "at": parsed["value"],
                                   "label": f"{parsed['symbol']} {value_text(parsed['bound'])}",
                                   "passed": bool(check.get("passed"))})
        families.append({"family": family, "title": _("Adversarial attacks") if family == "epsilon" else
                         condition_label(first, words), "axis": axis, "metric": metric_label(result.get("metric"),
                                                                                              words),
                         "series": series, "thresholds": thresholds,
                         "clean": None if all_from_clean else clean})
    return sorted(families, key=lambda family: family["family"] != "epsilon")  # the attacks first


def comparison_results(comparison: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The two simulations' measures as results (what :func:`curve_families` draws), from the comparison."""
    def side(which: str, simulation: dict[str, Any]) -> dict[str, Any]:
        return {"metric": comparison.get("metric"), "clean": simulation.get("clean"), "conditions": [
            {"condition": change["condition"], "parameter": change.get("parameter"), "value": change.get("value"),
             "metric": change[which]} for change in comparison.get("changes") or []
            if change.get(which) is not None and change["condition"] != "clean"]}

    return side("before", comparison["before"]), side("after", comparison["after"])


def overlaid_families(comparison: dict[str, Any]) -> list[dict[str, Any]]:
    """Per family, the curves of the later simulation (``after``) and of the earlier one (``before``)."""
    before, after = (curve_families(result, []) for result in comparison_results(comparison))
    by_family = {"before": {f["family"]: f for f in before}, "after": {f["family"]: f for f in after}}
    families = []
    for family in dict.fromkeys([*by_family["after"], *by_family["before"]]):
        shown = by_family["after"].get(family) or by_family["before"][family]
        families.append({**shown, "after": by_family["after"].get(family), "before": by_family["before"].get(family)})
    return families


# ----- comparison -----

def side_label(simulation: dict[str, Any]) -> str:
    return f"#{simulation['id']} {target_text(simulation)}"


def comparison_rows(comparison: dict[str, Any]) -> list[dict[str, Any]]:
    """The clean value and each condition's metric before and after, the change coloured better or worse, and
    whether the drop is beyond the template's tolerance."""
    words = reader()
    lower = comparison.get("metric") in LOWER_IS_BETTER
    tolerance = finite(comparison.get("tolerance"))
    rows = []
    for change in comparison.get("changes") or []:  # the clean value's first, as the platform compares it
        before, after = finite(change.get("before")), finite(change.get("after"))
        delta = None if before is None or after is None else after - before
        drop = None if delta is None else (delta if lower else -delta)
        tone = "neutral" if not delta else "worse" if drop > 0 else "better"
        at = "" if finite(change.get("value")) is None else \
            f"{parameter_label(change.get('parameter'), words)}={value_text(change['value'])}"
        rows.append({"condition": change["condition"], "label": words("clean") if change["condition"] == "clean"
                     else condition_label(change["condition"], words), "at": at, "value": finite(change.get("value")),
                     "before": before, "after": after,
                     "change": delta, "tone": tone,
                     "beyond": drop is not None and tolerance is not None and drop > tolerance + 1e-9})
    return rows


def comparison_html(comparison: dict[str, Any]) -> str:
    rows, too_far = [], _("beyond the tolerance")
    for row in comparison_rows(comparison):
        colour = TONE_COLOURS[row["tone"]]
        beyond = f" <b style='color:#cc0000'>{escape(too_far)}</b>" if row["beyond"] else ""
        change = "–" if row["change"] is None else f"{row['change']:+.3f}"
        rows.append(f"<tr data-condition='{escape(row['condition'])}' data-tone='{row['tone']}'>"
                    f"<td style='{CELL}'>{escape(row['label'])}</td><td style='{CELL}'>{escape(row['at'])}</td>"
                    f"<td style='{CELL}'>{metric_text(row['before'])}</td><td style='{CELL}'>{metric_text(row['after'])}"
                    f"</td><td style='{CELL};color:{colour}'>{change}{beyond}</td></tr>")
    tolerance = finite(comparison.get("tolerance"))
    note = _("{metric}: {after} against {before}; the template's tolerance is {tolerance}.").format(
        metric=metric_label(comparison.get("metric"), reader()), after=side_label(comparison["after"]),
        before=side_label(comparison["before"]), tolerance="–" if tolerance is None else f"{tolerance:g}")
    return f"<p class='comparison-note' style='margin:.3rem 0'>{escape(note)}</p>" + html_table(
        "simulation-comparison", [_("condition"), _("parameter"), side_label(comparison["before"]),
                                  side_label(comparison["after"]), _("change")], rows)


def comparison_options(simulation: dict[str, Any], simulations: list[dict[str, Any]]) -> dict[str, str]:
    """What a simulation can be compared with: the version it was judged against (``""``, the API's default),
    and every other judged simulation of its template."""
    options = {_("the version it was judged against"): ""} if simulation.get("previous_id") else {}
    for other in simulations:
        if other["template_name"] == simulation["template_name"] and int(other["id"]) != int(simulation["id"]) \
                and other.get("state") in JUDGED:
            options[f"{side_label(other)} · {state_label(other['state'])}"] = str(other["id"])
    return options


def no_comparison_html(simulation: dict[str, Any]) -> str:
    text = _("No other judged simulation of {template} to compare with.").format(
        template=simulation["template_name"])
    return f"<p class='comparison-none'>{escape(text)}</p>"


empty = charts.empty_figure


def _figure(css_classes: list[str], **options: Any) -> Any:
    from bokeh.plotting import figure

    chart = figure(height=HEIGHT, sizing_mode="stretch_width", toolbar_location="above",
                   tools="pan,box_zoom,wheel_zoom,save,reset", **options)
    chart.toolbar.logo = None
    chart.css_classes = css_classes
    return chart


def _span(values: list[float], padding: float) -> tuple[float, float]:
    low, high = min(values), max(values)
    if low == high:
        low, high = low - (abs(low) or 1) * 0.1, high + (abs(high) or 1) * 0.1
    return low - padding * (high - low), high + padding * (high - low)


def _ranges(families: list[dict[str, Any]]) -> tuple[tuple[float, float], tuple[float, float]]:
    """x spans the grid; y is 0 to 1 for fractions (so curves of different charts read alike), else the values."""
    xs = [x for family in families for line in family["series"] for x in line["x"]]
    ys = [y for family in families for line in family["series"] for y in line["y"]]
    ys += [t["y"] for family in families for t in family["thresholds"]]
    ys += [family["clean"] for family in families if family["clean"] is not None]
    y_range = (-0.02, 1.02) if all(0 <= y <= 1 for y in ys) else _span(ys, 0.05)
    return _span(xs, 0.04), y_range


def _references(chart: Any, family: dict[str, Any], x_range: tuple[float, float]) -> None:
    """Thresholds as dashed lines — across the chart where the worst value over the grid is meant, a short stroke
    at the value a threshold names — and the clean value, each labelled at its right end."""
    from bokeh.models import Label

    reach = 0.08 * (x_range[1] - x_range[0])
    lines = [(t["at"] - reach if t["at"] is not None else x_range[0], t["at"] + reach if t["at"] is not None
              else x_range[1], t["y"], PASSED_COLOUR if t["passed"] else FAILED_COLOUR, t["label"])
             for t in family["thresholds"]]
    if family["clean"] is not None:
        lines.append((x_range[0], x_range[1], family["clean"], CLEAN_COLOUR, _("clean")))
    for start, end, y, colour, text in lines:
        charts.plain(chart.line([start, end], [y, y], color=colour, line_dash="dashed", line_width=2))
        chart.add_layout(Label(x=end, y=y, text=text, text_color=colour, text_font_size="8pt", x_offset=-4,
                               y_offset=3, text_align="right"))


def family_figure(family: dict[str, Any]) -> Any:
    """One family's curves: the metric at each value of the parameter, a line and a mark per condition."""
    from bokeh.models import HoverTool, Legend, LegendItem

    series = family["series"]
    x_range, y_range = _ranges([family])
    chart = _figure(["simulation-curves", f"family-{family['family']}", f"series-{len(series)}",
                     f"thresholds-{len(family['thresholds'])}"], x_range=x_range, y_range=y_range,
                    title=family["title"], x_axis_label=family["axis"], y_axis_label=family["metric"])
    items, marks = [], []
    for position, line in enumerate(series):
        colour = charts.colour(position)
        drawn, mark = charts.plain(chart.line(line["x"], line["y"], color=colour, line_width=2),
                                   chart.scatter(line["x"], line["y"], color=colour, size=7, name=line["label"]))
        marks.append(mark)
        items.append(LegendItem(label=line["label"], renderers=[drawn, mark]))
    _references(chart, family, x_range)
    if len(series) > 1:
        chart.add_layout(Legend(items=items, click_policy="hide", label_text_font_size="8pt", spacing=0, padding=4),
                         "right")
    chart.add_tools(HoverTool(renderers=marks, tooltips=[(_("condition"), "$name"), (family["axis"], "@x{0.[000]}"),
                                                         (family["metric"], "@y{0.000}")]))
    return chart


def overlaid_figure(family: dict[str, Any], before_label: str, after_label: str) -> Any:
    """A family's curves of two simulations: the later one solid, the earlier dashed, a colour per condition."""
    from bokeh.models import HoverTool, Legend, LegendItem

    sides = [(side, family[side]) for side in ("after", "before") if family.get(side)]
    x_range, y_range = _ranges([shown for _side, shown in sides])
    conditions = list(dict.fromkeys(line["condition"] for _side, shown in sides for line in shown["series"]))
    chart = _figure(["comparison-curves", f"family-{family['family']}", f"sides-{len(sides)}"], x_range=x_range,
                    y_range=y_range, title=family["title"], x_axis_label=family["axis"],
                    y_axis_label=family["metric"])
    items, marks = [], []
    for side, shown in sides:
        label = after_label if side == "after" else before_label
        for line in shown["series"]:
            colour = charts.colour(conditions.index(line["condition"]))
            name = f"{line['label']} · {label}" if len(conditions) > 1 else label
            drawn, mark = charts.plain(
                chart.line(line["x"], line["y"], color=colour, line_width=2,
                           line_dash="solid" if side == "after" else "dashed"),
                chart.scatter(line["x"], line["y"], color=colour, size=7, name=name,
                              marker="circle" if side == "after" else "square", fill_alpha=1 if side == "after" else 0.2))
            marks.append(mark)
            items.append(LegendItem(label=name, renderers=[drawn, mark]))
    chart.add_layout(Legend(items=items, click_policy="hide", label_text_font_size="8pt", spacing=0, padding=4),
                     "right")
    chart.add_tools(HoverTool(renderers=marks, tooltips=[(_("simulation"), "$name"), (family["axis"], "@x{0.[000]}"),
                                                         (family["metric"], "@y{0.000}")]))
    return chart


def curves_panes(simulation: dict[str, Any]) -> list[Any]:
    """A simulation's curves, one pane per family, or a pane saying why there are none."""
    families = curve_families(simulation.get("result") or {}, (simulation.get("verdict") or {}).get("checks") or [])
    if families:
        return [pn.pane.Bokeh(family_figure(family), sizing_mode="stretch_width") for family in families]
    why = _("no curves: the simulation has no result yet") if simulation.get("state") not in ("passed", "failed") \
        else _("no curves: an LLM simulation measures each suite (see Probes)") if simulation.get("kind") == "llm" \
        else _("no curves: no condition of this simulation has a parameter")
    return [pn.pane.Bokeh(empty(why, "simulation-curves"), sizing_mode="stretch_width")]


def comparison_panes(comparison: dict[str, Any]) -> list[Any]:
    """Two simulations' curves overlaid, one pane per family, or a pane saying why there are none."""
    before, after = side_label(comparison["before"]), side_label(comparison["after"])
    families = overlaid_families(comparison)
    if families:
        return [pn.pane.Bokeh(overlaid_figure(family, before, after), sizing_mode="stretch_width")
                for family in families]
    return [pn.pane.Bokeh(empty(_("no curves: no condition of these simulations has a parameter"),
                                "comparison-curves"), sizing_mode="stretch_width")]
