"""Datasets: a project's datasets and versions, a version's quality report as charts (null map,
histograms, class balance), the diff between two versions, its lineage, and annotation progress.
Address: ``datasets?project=P&dataset=NAME&version=N``."""

from __future__ import annotations

from html import escape
from typing import Any

import holoviews as hv
import pandas as pd
import panel as pn

from aitip.client import AitipAPIError
from panel_apps import charts
from panel_apps.api import DashboardAPI
from panel_apps.components import (
    signed_in_page,
    Messages,
    NotSignedIn,
    data_table,
    first_value,
    format_bytes,
    format_time,
    page_title,
    project_options,
    query_arg,
    section,
    update_query,
)
from panel_apps.language import _, ngettext

PAGE = "datasets"


def versions_frame(versions: list[dict[str, Any]]) -> pd.DataFrame:
    rows = [{"version": v["version"], "format": v["format"], "rows": v.get("rows"), "size": format_bytes(v["bytes"]),
             "files": v["files"], "author": v["author"], "message": v["message"], "tag": v.get("tag") or "",
             "from": (_("restore of v{version}").format(version=v["restored_from"]) if v.get("restored_from")
                      else v.get("derived_from") or ""),
             "created": format_time(v["created_at"])} for v in sorted(versions, key=lambda v: -v["version"])]
    return pd.DataFrame(rows, columns=["version", "format", "rows", "size", "files", "author", "message", "tag",
                                       "from", "created"])


def null_map(report: dict[str, Any]) -> Any:
    """Share of nulls per column (a column at 0 still shows, as a bar of no height)."""
    columns = report.get("columns") or []
    if not columns:
        return charts.placeholder(_("no column statistics for this version"))
    frame = pd.DataFrame({"column": [c["name"] for c in columns],
                          "null share": [float(c.get("null_fraction") or 0.0) for c in columns]})
    return hv.Bars(frame, ("column", _("column")), ("null share", _("null share"))).opts(
        responsive=True, height=220, ylim=(0, 1), xrotation=30, tools=["hover"], color="#c06030",
        title=_("nulls per column"), toolbar="above")


def histogram(report: dict[str, Any], column: str | None) -> Any:
    by_name = {c["name"]: c for c in report.get("columns") or []}
    numeric = (by_name.get(column) or {}).get("numeric") or {}
    bins = numeric.get("histogram") or {}
    edges, counts = bins.get("edges") or [], bins.get("counts") or []
    if len(edges) < 2 or not counts:
        return charts.placeholder(_("pick a numeric column"))
    return hv.Histogram((edges, counts), kdims=[column or "value"], vdims=[("rows", _("rows"))]).opts(
        responsive=True, height=220, tools=["hover"], color="#2070b0",
        title=_("{column}: distribution").format(column=column), toolbar="above")


def class_balance(report: dict[str, Any]) -> Any:
    balance = report.get("class_balance") or {}
    classes = balance.get("classes") or []
    if not classes:
        return charts.placeholder(_("no label column declared (quality rule label_column)"))
    frame = pd.DataFrame({"class": [str(c["value"]) for c in classes], "rows": [int(c["count"]) for c in classes]})
    return hv.Bars(frame, ("class", _("class")), ("rows", _("rows"))).opts(
        responsive=True, height=220, tools=["hover"], color="#208050", toolbar="above",
        title=_("class balance ({column})").format(column=balance.get("column") or _("folders")))


def diff_html(diff: dict[str, Any]) -> str:
    rows = (_("rows {before} → {after} ({delta})").format(before=diff["rows_before"], after=diff["rows_after"],
                                                          delta=f"{diff['row_delta']:+d}") + ", "
            if diff.get("row_delta") is not None else "")
    content = _("content changed") if diff["content_changed"] else _("content unchanged")
    lines = [f"<b>v{diff['from_version']} → v{diff['to_version']}</b>: " + rows
             + _("bytes {delta}, {content}").format(delta=f"{diff['bytes_delta']:+d}", content=content)]
    lines += [_("column {column} {change} ({before} → {after})").format(
        column=f"<code>{escape(c['column'])}</code>", change=c["change"].replace("_", " "),
        before=escape(c["before"] or "-"), after=escape(c["after"] or "-")) for c in diff["schema_changes"]]
    for sign, key in (("+", "files_added"), ("−", "files_removed"), ("~", "files_modified")):
        files = diff.get(key) or []
        if files:
            lines.append(f"{sign} " + ngettext("{count} file", "{count} files", len(files)).format(count=len(files))
                         + ": " + ", ".join(escape(f) for f in files[:10]) + (" …" if len(files) > 10 else ""))
    return "<div id='dataset-diff'>" + "<br>".join(lines) + "</div>"


def lineage_html(graph: dict[str, Any]) -> str:
    if not graph.get("edges"):
        return ("<div id='dataset-lineage' style='color:#555'>" + escape(_("No job has read this version yet."))
                + "</div>")
    labels = {node["id"]: node["label"] for node in graph["nodes"]}
    items = "".join(f"<li>{escape(labels.get(e['source'], e['source']))} <i>{escape(e['relation'].replace('_', ' '))}</i>"
                    f" {escape(labels.get(e['target'], e['target']))}</li>" for e in graph["edges"])
    return f"<ul id='dataset-lineage'>{items}</ul>"


def annotations_frame(tasks: list[dict[str, Any]]) -> pd.DataFrame:
    rows = [{"task": t["name"], "dataset": f"{t['dataset']} v{t['version']}", "items": t["items"],
             "labelled": f"{t['labelled']}/{t['assignments']}", "accepted": t["accepted"], "rejected": t["rejected"],
             "agreement": (f"{100 * t['agreement']['percent_agreement']:.0f}%"
                           if t["agreement"].get("percent_agreement") is not None else "-"),
             "state": t["state"]} for t in tasks]
    return pd.DataFrame(rows, columns=["task", "dataset", "items", "labelled", "accepted", "rejected", "agreement",
                                       "state"])


class DatasetsPage:
    def __init__(self, api: DashboardAPI, me: dict[str, Any], messages: Messages) -> None:
        self.api = api
        self.messages = messages
        projects = project_options(me)
        self.project = pn.widgets.Select(name=_("Project"), options=projects, width=220,
                                         value=first_value(list(projects.values()), query_arg("project")))
        self.dataset = pn.widgets.Select(name=_("Dataset"), options=[], width=220)
        self.version = pn.widgets.Select(name=_("Version"), options=[], width=120)
        self.compare_to = pn.widgets.Select(name=_("Compare with"), options=[], width=120)
        self.column = pn.widgets.Select(name=_("Histogram of"), options=[], width=220)
        self.summary = pn.pane.HTML(sizing_mode="stretch_width", margin=(5, 10))
        self.versions = data_table(versions_frame([]), name="dataset-versions", page_size=10)
        self.nulls = pn.pane.HoloViews(charts.placeholder(_("loading")), sizing_mode="stretch_width")
        self.hist = pn.pane.HoloViews(charts.placeholder(_("loading")), sizing_mode="stretch_width")
        self.balance = pn.pane.HoloViews(charts.placeholder(_("loading")), sizing_mode="stretch_width")
        self.diff = pn.pane.HTML(sizing_mode="stretch_width", margin=(5, 10))
        self.lineage = pn.pane.HTML(sizing_mode="stretch_width", margin=(5, 10))
        self.tasks = data_table(annotations_frame([]), name="annotation-tasks", page_size=10)
        self.version_records: list[dict[str, Any]] = []
        self.load_datasets(query_arg("dataset"), query_arg("version"))
        self.project.param.watch(lambda _e: self.load_datasets(), "value")
        self.dataset.param.watch(lambda _e: self.load_versions(), "value")
        self.version.param.watch(lambda _e: self.show_version(), "value")
        self.compare_to.param.watch(lambda _e: self.show_diff(), "value")
        self.column.param.watch(lambda _e: self.show_histogram(), "value")

    def _call(self, doing: str, call: Any, default: Any) -> Any:
        try:
            return call()
        except (AitipAPIError, NotSignedIn) as error:
            self.messages.error(error, doing)
            return default

    def load_datasets(self, wanted: str | None = None, wanted_version: str | None = None) -> None:
        self.messages.reset()
        project = self.project.value
        if not project:
            self.messages.note(_("You are not a member of any project yet."))
            return
        datasets = self._call(_("list the datasets of {project}").format(project=project),
                              lambda: self.api.datasets(project), [])
        listed = ", ".join(f"{escape(d['name'])} (v{d['latest_version']})" for d in datasets)
        self.summary.object = "<div id='datasets-summary'>" + ngettext(
            "{count} dataset in {project}: {names}", "{count} datasets in {project}: {names}", len(datasets)).format(
            count=f"<b>{len(datasets)}</b>", project=escape(project), names=listed) + "</div>"
        tasks = self._call(_("list the annotation tasks of {project}").format(project=project),
                           lambda: self.api.annotation_tasks(project), [])
        self.tasks.value = annotations_frame(tasks)
        names = [d["name"] for d in datasets]
        self.dataset.options = names
        self.dataset.value = first_value(names, wanted)
        self.load_versions(wanted_version)

    def load_versions(self, wanted: str | None = None) -> None:
        project, name = self.project.value, self.dataset.value
        self.version_records = self._call(_("list the versions of {dataset}").format(dataset=name),
                                          lambda: self.api.dataset_versions(project, name), []) if name else []
        self.versions.value = versions_frame(self.version_records)
        numbers = [str(v["version"]) for v in sorted(self.version_records, key=lambda v: -v["version"])]
        self.version.options = numbers
        self.compare_to.options = ["-", *numbers]
        self.version.value = first_value(numbers, wanted)
        self.show_version()

    def current(self) -> dict[str, Any] | None:
        return next((v for v in self.version_records if str(v["version"]) == self.version.value), None)

    def show_version(self) -> None:
        record = self.current()
        report = (record or {}).get("quality") or {}
        self.nulls.object = null_map(report) if record else charts.placeholder(_("no version"))
        self.balance.object = class_balance(report) if record else charts.placeholder(_("no version"))
        numeric = [c["name"] for c in report.get("columns") or [] if c.get("numeric")]
        self.column.options = numeric
        self.column.value = numeric[0] if numeric else None
        self.show_histogram()
        if record is not None:
            node = f"dataset:{record['project']}/{record['dataset']}@{record['version']}"
            graph = self._call(_("read the lineage"), lambda: self.api.lineage(node), {"edges": [], "nodes": []})
            self.lineage.object = lineage_html(graph)
            older = [v for v in self.compare_to.options if v not in ("-", self.version.value)]
            self.compare_to.value = older[0] if older else "-"
        self.show_diff()
        update_query(project=self.project.value, dataset=self.dataset.value, version=self.version.value)

    def show_histogram(self) -> None:
        record = self.current()
        self.hist.object = histogram((record or {}).get("quality") or {}, self.column.value)

    def show_diff(self) -> None:
        if not self.version.value or self.compare_to.value in (None, "-", self.version.value):
            self.diff.object = ("<div id='dataset-diff' style='color:#555'>" + escape(_("Pick another version to compare."))
                                + "</div>")
            return
        before, after = sorted((int(self.compare_to.value), int(self.version.value)))
        diff = self._call(_("compare versions"), lambda: self.api.dataset_diff(self.project.value, self.dataset.value,
                                                                            before, after), None)
        if diff is not None:
            self.diff.object = diff_html(diff)

    def view(self) -> pn.Column:
        return pn.Column(
            pn.Row(self.project, self.dataset, self.version, self.compare_to),
            self.summary,
            section(_("Versions")), self.versions,
            section(_("Quality of the selected version")),
            pn.Row(self.nulls, self.balance, sizing_mode="stretch_width"),
            self.column, self.hist,
            section(_("Difference")), self.diff,
            section(_("Lineage")), self.lineage,
            section(_("Annotation tasks")), self.tasks,
            sizing_mode="stretch_width",
        )


def page() -> pn.Column:
    return signed_in_page(PAGE, _("see your datasets"), lambda api, me, messages: DatasetsPage(api, me, messages).view())


if __name__.startswith("bokeh_app"):
    page().servable(title=page_title(PAGE))
