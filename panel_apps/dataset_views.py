"""What the Datasets page draws from API answers, without the page: tables, charts and HTML for a version's
data, quality, masking, thumbnails, diff and lineage. Notes are HTML (escaped), not text drawn on a chart's
canvas, so names keep their underscores and can be read, selected and tested; every empty part says what to
do next."""

from __future__ import annotations

import re
from html import escape
from typing import Any

import holoviews as hv
import pandas as pd

from panel_apps import charts
from panel_apps.components import format_bytes, format_time, role_words
from panel_apps.language import _, ngettext

# Quality rules the page edits field by field; any other rule the dataset has is kept as it is.
EDITED_RULES = ("min_rows", "max_null_fraction", "max_duplicate_fraction", "label_column", "min_class_fraction")
_ID_NAME = re.compile(r"(^|[_\-\s])(id|idx|index|key|uuid|row)$|^(id|idx|index|key|uuid|row_?number)$", re.IGNORECASE)
_MUTED = "color:#555;font-family:system-ui,sans-serif"


def empty_html(element_id: str, text: str) -> str:
    """A part of the page with nothing to show, saying why and what to do."""
    return f"<div id='{element_id}' class='aitip-empty' style='{_MUTED}'>{escape(text)}</div>"


def versions_frame(versions: list[dict[str, Any]]) -> pd.DataFrame:
    rows = [{"version": v["version"], "format": v["format"], "rows": v.get("rows"), "size": format_bytes(v["bytes"]),
             "files": v["files"], "author": v["author"], "message": v["message"], "tag": v.get("tag") or "",
             "from": (_("restore of v{version}").format(version=v["restored_from"]) if v.get("restored_from")
                      else v.get("derived_from") or ""),
             "created": format_time(v["created_at"])} for v in sorted(versions, key=lambda v: -v["version"])]
    return pd.DataFrame(rows, columns=["version", "format", "rows", "size", "files", "author", "message", "tag",
                                       "from", "created"])


def is_id_column(name: str) -> bool:
    """``id``, ``user_id``, ``row_number``...: numbers that name rows rather than measure anything."""
    return bool(_ID_NAME.search(name.strip()))


def histogram_default(report: dict[str, Any]) -> str | None:
    """The first numeric column that is not an id; an id column only when nothing else is numeric."""
    numeric = [c["name"] for c in report.get("columns") or [] if c.get("numeric")]
    return next((name for name in numeric if not is_id_column(name)), numeric[0] if numeric else None)


def null_percentages(report: dict[str, Any]) -> pd.DataFrame:
    columns = report.get("columns") or []
    return pd.DataFrame({"column": [str(c["name"]) for c in columns],
                         "percent": [round(100 * float(c.get("null_fraction") or 0.0), 2) for c in columns]})


def percent_label(percent: float) -> str:
    return "0%" if percent == 0 else ("<0.1%" if percent < 0.1 else f"{percent:.1f}%".replace(".0%", "%"))


MAX_NULL_BARS = 30  # a wider table shows its columns with the most missing values


def null_columns(report: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
    """The part of the report the missing-values chart draws, and what to say of the rest: every column of a
    table up to MAX_NULL_BARS; of a wider one, those with the most missing values (none drawn, and said so,
    when no column misses any)."""
    columns = report.get("columns") or []
    if len(columns) <= MAX_NULL_BARS:
        return report, ""
    missing = sorted((c for c in columns if float(c.get("null_fraction") or 0.0) > 0),
                     key=lambda c: -float(c.get("null_fraction") or 0.0))
    if not missing:
        return None, _("No missing values in any of the {count} columns.").format(count=len(columns))
    shown = missing[:MAX_NULL_BARS]
    return {**report, "columns": shown}, _("The {shown} columns with the most missing values; the other {rest} have "
                                           "fewer or none.").format(shown=len(shown), rest=len(columns) - len(shown))


def null_chart(report: dict[str, Any]) -> Any:
    """Missing values as a percentage per column: a horizontal bar each, its value written beside it, on an axis
    fitted to the largest share (so 0.3% is visible next to 0%)."""
    frame = null_percentages(report)
    if frame.empty:
        return None
    frame["text"] = [percent_label(p) for p in frame["percent"]]
    top = max(1.0, float(frame["percent"].max()) * 1.3)
    frame["where"] = frame["percent"] + top * 0.02
    height = 70 + 26 * len(frame)
    bars = hv.Bars(frame, ("column", _("column")), [("percent", _("missing values (%)")), "text"]).opts(
        color="#c06030", tools=["hover"], line_color=None)
    labels = hv.Labels(frame, ["column", "where"], "text").opts(text_align="left", text_font_size="9pt",
                                                                  text_color="#333333", text_baseline="middle")
    return (bars * labels).opts(hv.opts.Overlay(
        invert_axes=True, responsive=True, height=height, ylim=(0, top), toolbar="above",
        default_tools=["save", "reset"], title=_("missing values per column (%)"), show_grid=False))


def histogram(report: dict[str, Any], column: str | None) -> Any:
    """One numeric column's distribution as bars over its bins. Drawn with Bokeh directly: it is on the page's
    first paint, and HoloViews took a sixth of the page's server time to build it."""
    from bokeh.models import ColumnDataSource, HoverTool
    from bokeh.plotting import figure

    by_name = {c["name"]: c for c in report.get("columns") or []}
    bins = ((by_name.get(column) or {}).get("numeric") or {}).get("histogram") or {}
    edges, counts = bins.get("edges") or [], bins.get("counts") or []
    if len(edges) < 2 or not counts:
        return None
    counts = list(counts)[:len(edges) - 1]
    source = ColumnDataSource({"left": list(edges[:len(counts)]), "right": list(edges[1:len(counts) + 1]),
                               "rows": counts})
    name = column or "value"
    chart = figure(height=240, sizing_mode="stretch_width", toolbar_location="above",
                   tools="pan,wheel_zoom,box_zoom,save,reset", x_axis_label=name, y_axis_label=_("rows"),
                   title=_("{column}: distribution").format(column=column))
    chart.quad(left="left", right="right", bottom=0, top="rows", source=source, color="#2070b0",
               line_color="#ffffff", line_width=0.5)
    chart.add_tools(HoverTool(tooltips=[(name, "@left{0.[0000]} – @right{0.[0000]}"), (_("rows"), "@rows")]))
    chart.y_range.start = 0
    chart.toolbar.logo = None
    chart.css_classes = ["dataset-histogram"]
    return chart


def class_balance(report: dict[str, Any]) -> Any:
    balance = report.get("class_balance") or {}
    classes = balance.get("classes") or []
    if not classes:
        return None
    frame = pd.DataFrame({"class": [str(c["value"]) for c in classes], "rows": [int(c["count"]) for c in classes]})
    return hv.Bars(frame, ("class", _("class")), ("rows", _("rows"))).opts(
        responsive=True, height=240, tools=["hover"], color="#208050", toolbar="above",
        title=_("class balance ({column})").format(column=balance.get("column") or _("folders")))


def chart_or_note(chart: Any, element_id: str, note: str) -> tuple[Any, str]:
    """The chart to draw (a placeholder when there is none) and the HTML note under it."""
    if chart is None:
        return charts.placeholder(""), empty_html(element_id, note)
    return chart, f"<div id='{element_id}'></div>"


def preview_html(preview: dict[str, Any] | None, masks: dict[str, str]) -> str:
    """The first rows as a plain table; masked columns marked in their header and named above it."""
    if not preview or not preview.get("columns"):
        return empty_html("dataset-preview", _("This version has no rows to preview."))
    masked = list(preview.get("masked_columns") or [])
    tip = escape(_("masked for your role"))
    header = "".join(
        f"<th class='{'masked' if column in masked else ''}'>{escape(str(column))}"
        + (f" <span class='mask-tag' title='{tip}'>🔒 {escape(masks.get(column, ''))}"
           "</span>" if column in masked else "") + "</th>" for column in preview["columns"])
    body = "".join("<tr>" + "".join(f"<td>{escape('' if value is None else str(value))}</td>" for value in row)
                   + "</tr>" for row in preview["rows"])
    if masked:
        note = _("Masked for your role (maintainers see the values): {columns}.").format(columns=", ".join(masked))
    elif masks:
        note = _("You see every value; below maintainer these are masked: {columns}.").format(
            columns=", ".join(f"{column} ({method})" for column, method in masks.items()))
    else:
        note = _("No column is masked.")
    count = ngettext("first {count} row", "first {count} rows", len(preview["rows"])).format(count=len(preview["rows"]))
    return (f"<div id='dataset-preview' style='font-family:system-ui,sans-serif'>"
            f"<div id='preview-masking' style='color:#555;margin-bottom:.3rem'>{escape(count)} · {escape(note)}</div>"
            "<div style='overflow-x:auto;max-height:360px'><table class='aitip-preview' style='border-collapse:collapse;"
            f"font-size:.85rem'><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table></div></div>")


PREVIEW_CSS = """
table.aitip-preview th, table.aitip-preview td { border-bottom: 1px solid #ddd; padding: .2rem .6rem; text-align: left;
  white-space: nowrap; max-width: 24rem; overflow: hidden; text-overflow: ellipsis; }
table.aitip-preview th { background: #f3f4f6; position: sticky; top: 0; }
table.aitip-preview th.masked { background: #fff3cd; }
.mask-tag { font-weight: normal; color: #7a5b00; font-size: .75rem; }
"""


def thumbnails_html(thumbnails: dict[str, Any] | None) -> str:
    """A row of small images per class, each class with its file count."""
    classes = (thumbnails or {}).get("classes") or []
    if not classes:
        return empty_html("dataset-thumbnails", _("No images in this version."))
    rows = []
    for group in classes:
        name = group["name"] or _("(no folder)")
        images = "".join(f"<img src='{escape(t['data_url'])}' title='{escape(t['path'])}' alt='{escape(t['path'])}' "
                         f"width='{t['width']}' height='{t['height']}' style='margin:2px;border:1px solid #ddd'>"
                         for t in group["thumbnails"])
        unreadable = (" · " + ngettext("{count} unreadable", "{count} unreadable", group["unreadable"])
                      .format(count=group["unreadable"])) if group.get("unreadable") else ""
        files = ngettext("{count} file", "{count} files", group["files"]).format(count=group["files"])
        rows.append(f"<div class='thumbnail-class' data-class='{escape(group['name'])}' style='margin:.3rem 0'>"
                    f"<b>{escape(name)}</b> <span style='color:#555'>({escape(files)}{escape(unreadable)})</span>"
                    f"<div>{images}</div></div>")
    more = thumbnails.get("more_classes") if thumbnails else 0
    if more:
        rows.append(empty_html("more-classes", ngettext("and {count} more class", "and {count} more classes", more)
                               .format(count=more)))
    return "<div id='dataset-thumbnails' style='font-family:system-ui,sans-serif'>" + "".join(rows) + "</div>"


def settings_note(role: str | None, may_manage: bool) -> str:
    if may_manage:
        return _("You may change masking and the quality gate: each change applies to the next reads and "
                 "registrations.")
    return _("Only maintainers of this project may change masking and the quality gate; your role is {role}.").format(
        role=role_words(role))


def rules_with(rules: dict[str, Any], edited: dict[str, Any]) -> dict[str, Any]:
    """The dataset's rules with the page's fields applied: an empty field removes its rule."""
    merged = {name: value for name, value in rules.items() if name not in EDITED_RULES}
    merged.update({name: value for name, value in edited.items() if value not in (None, "")})
    return merged


def masks_from(choices: dict[str, str]) -> dict[str, str]:
    return {column: method for column, method in choices.items() if method}


def diff_html(diff: dict[str, Any]) -> str:
    rows = (_("rows {before} → {after} ({delta})").format(before=diff["rows_before"], after=diff["rows_after"],
                                                          delta=f"{diff['row_delta']:+d}") + ", "
            if diff.get("row_delta") is not None else "")
    content = _("content changed") if diff["content_changed"] else _("content unchanged")
    lines = [f"<b>v{diff['from_version']} → v{diff['to_version']}</b>: " + escape(rows)
             + escape(_("bytes {delta}, {content}").format(delta=f"{diff['bytes_delta']:+d}", content=content))]
    changes = {"added": _("added"), "removed": _("removed"), "type_changed": _("type changed")}
    lines += [_("column {column} {change} ({before} → {after})").format(
        column=f"<code>{escape(c['column'])}</code>", change=escape(changes.get(c["change"], c["change"])),
        before=escape(c["before"] or "-"), after=escape(c["after"] or "-")) for c in diff["schema_changes"]]
    for sign, key in (("+", "files_added"), ("−", "files_removed"), ("~", "files_modified")):
        files = diff.get(key) or []
        if files:
            lines.append(f"{sign} " + ngettext("{count} file", "{count} files", len(files)).format(count=len(files))
                         + ": " + ", ".join(escape(f) for f in files[:10]) + (" …" if len(files) > 10 else ""))
    return "<div id='dataset-diff' style='font-family:system-ui,sans-serif'>" + "<br>".join(lines) + "</div>"


def lineage_html(graph: dict[str, Any]) -> str:
    if not graph.get("edges"):
        return empty_html("dataset-lineage", _("No job has read this version yet: declare it as an input when you "
                                               "submit a job (inputs), and the job and its runs appear here."))
    labels = {node["id"]: node["label"] for node in graph["nodes"]}
    items = "".join(f"<li>{escape(labels.get(e['source'], e['source']))} <i>{escape(e['relation'])}</i>"
                    f" {escape(labels.get(e['target'], e['target']))}</li>" for e in graph["edges"])
    return f"<ul id='dataset-lineage' style='font-family:system-ui,sans-serif'>{items}</ul>"


def annotations_frame(tasks: list[dict[str, Any]]) -> pd.DataFrame:
    rows = [{"task": t["name"], "dataset": f"{t['dataset']} v{t['version']}", "items": t["items"],
             "labelled": f"{t['labelled']}/{t['assignments']}", "accepted": t["accepted"], "rejected": t["rejected"],
             "agreement": (f"{100 * t['agreement']['percent_agreement']:.0f}%"
                           if t["agreement"].get("percent_agreement") is not None else "-"),
             "state": t["state"]} for t in tasks]
    return pd.DataFrame(rows, columns=["task", "dataset", "items", "labelled", "accepted", "rejected", "agreement",
                                       "state"])
