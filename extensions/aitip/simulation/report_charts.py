"""The security assessment's curves: the metric against each condition's parameter, one chart per family of
conditions (every ε attack together, since their ε is the same budget; each corruption on its own, since their
parameters are not comparable), with the template's thresholds drawn where they apply.

Also the words every part of the report names conditions with (labels, axes, the value that leaves the data as
it is), and the reading of a threshold string (the grammar of the scenario templates).
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from ..i18n import N_, Translator
from ..report_charts import chart, finite

EPSILON_AXIS = N_("ε (fraction of the pixel range)")


class ConditionWords(NamedTuple):
    label: str  # marked for translation, or a proper name
    parameter: str  # the parameter's name in the condition registry ("" for conditions without one)
    axis: str  # the parameter's axis label
    identity: float | None  # the parameter's value that leaves the data unchanged: the curve starts at "clean"


CONDITIONS = {
    "gaussian_noise": ConditionWords(N_("Gaussian noise"), "sigma", N_("σ (fraction of the pixel range)"), 0.0),
    "blur": ConditionWords(N_("Gaussian blur"), "sigma", N_("σ (pixels)"), 0.0),
    "brightness": ConditionWords(N_("Brightness"), "delta", N_("Δ (fraction of the pixel range)"), 0.0),
    "contrast": ConditionWords(N_("Contrast"), "factor", N_("Contrast factor"), 1.0),
    "jpeg": ConditionWords(N_("JPEG compression"), "quality", N_("JPEG quality"), None),
    "occlusion": ConditionWords(N_("Occlusion (worst position)"), "size", N_("Patch size (pixels)"), None),
    "fgsm": ConditionWords("FGSM", "eps", EPSILON_AXIS, 0.0),
    "pgd": ConditionWords("PGD", "eps", EPSILON_AXIS, 0.0),
    "square": ConditionWords(N_("Square attack"), "eps", EPSILON_AXIS, 0.0),
    "hopskipjump": ConditionWords("HopSkipJump", "eps", EPSILON_AXIS, 0.0),
    "feature_noise": ConditionWords(N_("Feature noise"), "sigma", N_("σ (standard deviations)"), 0.0),
    "missing_values": ConditionWords(N_("Missing values"), "fraction", N_("Fraction of the values"), 0.0),
    "category_swap": ConditionWords(N_("Category swaps"), "fraction", N_("Fraction of the rows"), 0.0),
    "feature_shift": ConditionWords(N_("Feature shift"), "magnitude", N_("Shift (standard deviations)"), 0.0),
    "drift": ConditionWords(N_("Drift from a reference version"), "version", N_("Reference version"), None),
    "prompt_injection": ConditionWords(N_("Prompt injection"), "", "", None),
    "jailbreak": ConditionWords(N_("Jailbreak"), "", "", None),
    "data_exfiltration": ConditionWords(N_("Data exfiltration"), "", "", None),
    "custom": ConditionWords(N_("Custom"), "", "", None),
}
# Attacks whose parameter is the same L-infinity budget ε: drawn on one chart, so they can be compared.
EPSILON_ATTACKS = ("fgsm", "pgd", "square", "hopskipjump")
PARAMETERS = {"eps": "ε", "epsilon": "ε", "sigma": "σ", "delta": "Δ", "factor": N_("factor"),
              "quality": N_("quality"), "size": N_("size"), "fraction": N_("fraction"),
              "magnitude": N_("magnitude"), "version": N_("version")}
METRICS = {"accuracy": N_("Accuracy"), "attack_success_rate": N_("Attack success rate")}
LOWER_IS_BETTER = {"attack_success_rate"}
THRESHOLD = re.compile(r"^\s*(?P<metric>[a-z_][a-z0-9_]*)\s+under\s+(?P<condition>[a-z_][a-z0-9_]*)"
                       r"(?:\s+(?P<parameter>[a-z_][a-z0-9_]*)\s*=\s*(?P<value>[-+0-9.eE]+))?"
                       r"\s*(?P<op>>=|<=|>|<)\s*(?P<bound>[-+0-9.eE]+)\s*$")
OPERATORS = {">=": "≥", "<=": "≤", ">": ">", "<": "<"}
MAX_TICKS = 8  # a grid of more values is marked at every quarter of the axis instead
PASSED_COLOUR, FAILED_COLOUR, CLEAN_COLOUR = "#1a7f37", "#cf222e", "#8c959f"


def condition_label(name: Any, _: Translator) -> str:
    """The condition as a reader names it; a custom notebook's own condition as it is."""
    if name == "clean":
        return _("clean")
    words = CONDITIONS.get(str(name))
    return _(words.label) if words else str(name)


def metric_label(name: Any, _: Translator) -> str:
    return _(METRICS[name]) if name in METRICS else str(name or "")


def parameter_label(name: Any, _: Translator) -> str:
    """A parameter's symbol (ε, σ) or its name in the reader's words; an unknown one as it is."""
    return _(PARAMETERS[name]) if name in PARAMETERS else str(name or "")


def value_text(value: Any) -> str:
    """A parameter's value as the template writes it: 0.1, 50, -0.2."""
    value = finite(value)
    return "–" if value is None else f"{value:g}"


def parse_threshold(text: Any) -> dict[str, Any] | None:
    """A threshold string's parts (metric, condition, parameter, value, op, bound), or None where it does not
    read as the grammar says (it is then shown as it is)."""
    found = THRESHOLD.match(text) if isinstance(text, str) else None
    if found is None:
        return None
    parts = found.groupdict()
    try:
        value = None if parts["value"] is None else float(parts["value"])
        bound = float(parts["bound"])
    except ValueError:
        return None
    return {**parts, "value": value, "bound": bound, "symbol": OPERATORS[parts["op"]]}


def _family(condition: str) -> str:
    return "epsilon" if condition in EPSILON_ATTACKS else condition


def _span(values: list[float], padding: float = 0.0) -> tuple[float, float]:
    low, high = min(values), max(values)
    if low == high:
        low, high = low - (abs(low) or 1) * 0.1, high + (abs(high) or 1) * 0.1
    return low - padding * (high - low), high + padding * (high - low)


def curves(result: dict[str, Any], checks: list[dict[str, Any]], _: Translator) -> list[dict[str, Any]]:
    """One chart per family of conditions with at least two points to join; ``checks`` are the verdict's, whose
    thresholds are drawn (green where met, red where not)."""
    clean = finite(result.get("clean"))
    metric = str(result.get("metric") or "")
    families: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for row in result.get("conditions") or []:
        if not isinstance(row, dict) or finite(row.get("value")) is None or finite(row.get("metric")) is None:
            continue
        name = str(row.get("condition"))
        families.setdefault(_family(name), {}).setdefault(name, []).append((row["value"], row["metric"]))
    charts = []
    for family, members in families.items():
        series, xs, ys = [], [], []
        for name, points in members.items():
            points = sorted(points)
            identity = CONDITIONS[name].identity if name in CONDITIONS else None
            if clean is not None and identity is not None and all(x != identity for x, _y in points):
                points = sorted([(identity, clean), *points])
            series.append({"label": condition_label(name, _), "x": [x for x, _y in points],
                           "y": [y for _x, y in points], "draw": "both"})
            xs += [x for x, _y in points]
            ys += [y for _x, y in points]
        if len(xs) < 2:
            continue
        if len(series) == 1:
            series[0]["label"] = ""  # the chart's title names it
        references, notes = _threshold_lines(members, checks, _)
        ys += [line["y"] for line in references]
        starts_clean = clean is not None and all(
            name in CONDITIONS and CONDITIONS[name].identity is not None for name in members)
        if clean is not None and not starts_clean:
            references.append({"label": _("clean"), "y": clean, "colour": CLEAN_COLOUR})
            ys.append(clean)
        first = next(iter(members))
        axis = _(CONDITIONS[first].axis) if first in CONDITIONS and CONDITIONS[first].axis else \
            parameter_label(next((row.get("parameter") for row in result.get("conditions") or []
                                  if isinstance(row, dict) and row.get("condition") == first), ""), _)
        title = _("Adversarial attacks") if family == "epsilon" else condition_label(first, _)
        unit_range = all(0 <= y <= 1 for y in ys)
        grid = sorted(set(xs))
        charts.append(chart(title, axis, metric_label(metric, _), series, x_range=_span(xs),
                            y_range=(0, 1) if unit_range else _span(ys, 0.05), references=references,
                            note="; ".join(notes), x_ticks=grid if len(grid) <= MAX_TICKS else ()))
    return charts


def _threshold_lines(members: dict[str, list], checks: list[dict[str, Any]],
                     _: Translator) -> tuple[list[dict[str, Any]], list[str]]:
    """The thresholds on these conditions as dashed lines: across the chart where the worst value over the grid
    is meant, a short stroke at the value where one value is named."""
    lines, notes = [], []
    xs = [x for points in members.values() for x, _y in points]
    low, high = _span(xs)
    for check in checks:
        parsed = parse_threshold(check.get("threshold"))
        if parsed is None or parsed["condition"] not in members:
            continue
        colour = PASSED_COLOUR if check.get("passed") else FAILED_COLOUR
        label = f"{parsed['symbol']} {value_text(parsed['bound'])}"
        line = {"label": label, "y": parsed["bound"], "colour": colour}
        if parsed["value"] is not None:
            reach = 0.06 * (high - low)
            line.update(x_from=max(low, parsed["value"] - reach), x_to=min(high, parsed["value"] + reach))
        lines.append(line)
        notes.append(str(check.get("threshold")))
    if notes:
        notes = [_("Dashed: the thresholds {thresholds} (green: met, red: not met).").format(
            thresholds=", ".join(notes))]
    return lines, notes
