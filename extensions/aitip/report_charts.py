"""The report's charts as SVG geometry in the SVG's own units: scaled here, drawn by the template, so that the
HTML is one self-contained file and WeasyPrint draws it fast (no plotting library, no image files)."""

from __future__ import annotations

import math
from typing import Any

# Ten colours that stay apart on screen and on paper (matplotlib's tab10).
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf")
LEGEND_ENTRIES = 12


def finite(value: Any) -> float | None:
    """``value`` as a float when it is a finite number (JSON may hold anything), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def chart(title: str, x_label: str, y_label: str, series: list[dict[str, Any]] = (), *, bars: list[tuple] = (),
          x_range: tuple[float, float] = (0, 1), y_range: tuple[float, float] = (0, 1), diagonal: bool = False,
          legend: bool = True, note: str = "", references: list[dict[str, Any]] = (),
          x_ticks: list[float] = ()) -> dict[str, Any]:
    """An SVG chart's geometry in the SVG's own units, so the template only draws: ``series`` of {label, x, y,
    draw: "line" | "dots" | "both"}, ``bars`` of (x from, x to, height), ``references`` of {label, y, x_from,
    x_to} (dashed horizontal lines, e.g. a pass threshold; without x_from/x_to across the whole chart); ``x_ticks``
    where the x axis is marked (by default at every quarter). A series without a label stays out of the legend."""
    left, top, width, height = 48, 8, 196, 180
    (x0, x1), (y0, y1) = x_range, y_range

    def at(x: float, y: float) -> tuple[float, float]:
        return (round(left + width * (x - x0) / ((x1 - x0) or 1.0), 1),
                round(top + height * (1 - (y - y0) / ((y1 - y0) or 1.0)), 1))

    drawn = []
    for index, line in enumerate(series):
        points = [at(x, y) for x, y in zip(line.get("x") or [], line.get("y") or [])
                  if finite(x) is not None and finite(y) is not None]
        style = line.get("draw", "line")
        drawn.append({"label": line["label"], "colour": line.get("colour") or PALETTE[index % len(PALETTE)],
                      "points": " ".join(f"{x},{y}" for x, y in points) if style != "dots" else "",
                      "dots": points if style != "line" else []})
    shapes = []
    for start, end, value in bars:
        (left_x, bar_top), (right_x, base) = at(start, value), at(end, y0)
        shapes.append({"x": left_x, "y": bar_top, "width": max(right_x - left_x - 0.5, 0.5), "height": base - bar_top})
    lines = []
    for reference in references:
        if finite(reference.get("y")) is None:
            continue
        start = x0 if finite(reference.get("x_from")) is None else reference["x_from"]
        end = x1 if finite(reference.get("x_to")) is None else reference["x_to"]
        (left_x, y), (right_x, _) = at(start, reference["y"]), at(end, reference["y"])
        lines.append({"label": reference.get("label", ""), "colour": reference.get("colour", "#cf222e"),
                      "x1": left_x, "x2": right_x, "y": y})
    labelled = [line for line in drawn if line["label"]]
    shown = labelled[:LEGEND_ENTRIES] if legend else []
    ticks = [step / 4 for step in range(5)]
    marks = [{"at": at(x, y0)[0], "text": f"{x:.3g}"} for x in x_ticks] or \
        [{"at": at(x0 + (x1 - x0) * t, y0)[0], "text": f"{x0 + (x1 - x0) * t:.3g}"} for t in ticks]
    return {"title": title, "x_label": x_label, "y_label": y_label, "series": drawn, "bars": shapes, "note": note,
            "width": 330, "height": top + height + 34,
            "box": {"left": left, "top": top, "right": left + width, "bottom": top + height},
            "x_ticks": marks,
            "y_ticks": [{"at": at(x0, y0 + (y1 - y0) * t)[1], "text": f"{y0 + (y1 - y0) * t:.3g}"} for t in ticks],
            "diagonal": diagonal and {"from": at(x0, y0), "to": at(x1, y1)},
            "references": lines,
            "legend": [dict(label=line["label"], colour=line["colour"], y=top + 5 + 12 * row, dashed=dashed)
                       for row, (line, dashed) in enumerate([(line, False) for line in shown] +
                                                            [(line, True) for line in lines if legend])],
            "more": len(labelled) - len(shown) if legend else 0}
