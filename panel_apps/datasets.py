"""Datasets: a project's datasets and versions; the selected version's data (masked as the API masks it for
the viewer), thumbnails by class for image folders, quality charts (missing values in percent, class
balance, histograms), masking and quality-gate settings for maintainers, the diff between two versions, its
lineage, and annotation progress. Address: ``datasets?project=P&dataset=NAME&version=N``."""

from __future__ import annotations

import asyncio
from html import escape
from functools import partial
from typing import Any

import panel as pn

from panel_apps import charts
from aitip.client import AitipAPIError
from panel_apps.api import DashboardAPI
from panel_apps.components import (
    NotSignedIn,
    Prefetch,
    viewer_role,
    Messages,
    data_table,
    first_value,
    page_title,
    project_options,
    query_arg,
    role_at_least,
    section,
    signed_in_page,
    update_query,
)
from panel_apps.dataset_views import (
    PREVIEW_CSS,
    annotations_frame,
    chart_or_note,
    class_balance,
    diff_html,
    empty_html,
    histogram,
    histogram_default,
    lineage_html,
    masks_from,
    null_chart,
    null_columns,
    preview_html,
    rules_with,
    settings_note,
    thumbnails_html,
    versions_frame,
)
from panel_apps.language import _, ngettext, page_language, use_language

PAGE = "datasets"
PREVIEW_ROWS = 20


def show_chart(pane: pn.pane.PaneBase, note: pn.pane.HTML, chart: Any, element_id: str, why_none: str) -> None:
    """The chart, or only the note saying why there is none (an empty figure is not drawn: each costs the
    page its Bokeh figure, on the server and in the browser)."""
    drawn, note.object = chart_or_note(chart, element_id, why_none)
    pane.object = drawn if chart is not None else None


def _html(**options: Any) -> pn.pane.HTML:
    return pn.pane.HTML(sizing_mode="stretch_width", margin=(5, 10), **options)


class SettingsForm:
    """Masking (the columns to hash, the columns to redact) and the quality gate's common rules; saved by
    ``datasets.update``. Shown to everyone, enabled for maintainers only, the buttons saying why when not. Two
    pickers, not a choice per column: a table of a hundred columns stays one widget each."""

    def __init__(self) -> None:
        self.note = _html()
        self.masks = pn.Column(sizing_mode="stretch_width")
        self.hashed = pn.widgets.MultiChoice(name=_("Hash these columns"), options=[], width=420,
                                             css_classes=["mask-hash"])
        self.redacted = pn.widgets.MultiChoice(name=_("Redact these columns"), options=[], width=420,
                                               css_classes=["mask-redact"])
        self.min_rows = pn.widgets.IntInput(name=_("Fewest rows (min_rows)"), value=None, start=0, width=200,
                                             css_classes=["rule-min-rows"])
        self.max_null = pn.widgets.FloatInput(name=_("Largest missing share (max_null_fraction)"), value=None,
                                              start=0, end=1, step=0.01, width=260, css_classes=["rule-max-null"])
        self.max_duplicates = pn.widgets.FloatInput(name=_("Largest duplicate share (max_duplicate_fraction)"),
                                                    value=None, start=0, end=1, step=0.01, width=300)
        self.label_column = pn.widgets.Select(name=_("Label column (label_column)"), options=[""], width=220)
        self.min_class = pn.widgets.FloatInput(name=_("Smallest class share (min_class_fraction)"), value=None,
                                               start=0, end=1, step=0.01, width=280)
        self.save_masks = pn.widgets.Button(name=_("Save masking"), button_type="primary", width=300)
        self.save_rules = pn.widgets.Button(name=_("Save quality gate"), button_type="primary", width=300)
        self.save_masks.css_classes = ["save-masking"]
        self.save_rules.css_classes = ["save-quality"]

    def show(self, dataset: dict[str, Any], columns: list[str], may_manage: bool, role: str | None) -> None:
        self.note.object = f"<div id='settings-note' style='color:#555'>{escape(settings_note(role, may_manage))}</div>"
        masks = dataset.get("sensitive_columns") or {}
        for picker, method in ((self.hashed, "hash"), (self.redacted, "redact")):
            picker.options = list(columns)
            picker.value = [column for column in columns if masks.get(column) == method]
            picker.disabled = not may_manage
        self.masks.objects = [pn.FlexBox(self.hashed, self.redacted)] if columns else [
            _html(object=empty_html("mask-columns", _("No columns to mask (an image folder has none).")))]
        rules = dataset.get("quality_rules") or {}
        self.min_rows.value = rules.get("min_rows")
        self.max_null.value = rules.get("max_null_fraction")
        self.max_duplicates.value = rules.get("max_duplicate_fraction")
        self.label_column.options = ["", *columns]
        self.label_column.value = rules.get("label_column") if rules.get("label_column") in columns else ""
        self.min_class.value = rules.get("min_class_fraction")
        for widget in (self.min_rows, self.max_null, self.max_duplicates, self.label_column, self.min_class,
                       self.save_masks, self.save_rules):
            widget.disabled = not may_manage
        only = "" if may_manage else " — " + _("maintainers only")
        self.save_masks.name = _("Save masking") + only
        self.save_rules.name = _("Save quality gate") + only

    def masking(self) -> dict[str, str]:
        """{column: method}; a column picked in both is redacted (the stronger mask)."""
        return masks_from({**{column: "hash" for column in self.hashed.value},
                           **{column: "redact" for column in self.redacted.value}})

    def rules(self, current: dict[str, Any]) -> dict[str, Any]:
        return rules_with(current, {"min_rows": self.min_rows.value, "max_null_fraction": self.max_null.value,
                                    "max_duplicate_fraction": self.max_duplicates.value,
                                    "label_column": self.label_column.value,
                                    "min_class_fraction": self.min_class.value})

    def view(self) -> pn.Column:
        return pn.Column(
            self.note, pn.pane.HTML("<b>" + escape(_("Sensitive columns")) + "</b>", margin=(5, 10)), self.masks,
            self.save_masks,
            pn.pane.HTML("<b>" + escape(_("Quality gate")) + "</b>", margin=(5, 10)),
            pn.FlexBox(self.min_rows, self.max_null, self.max_duplicates, self.label_column, self.min_class),
            self.save_rules, sizing_mode="stretch_width")


class DatasetsPage:
    def __init__(self, api: DashboardAPI, me: dict[str, Any], messages: Messages) -> None:
        self.api = api
        self.me = me
        self.messages = messages
        projects = project_options(me)
        self.project = pn.widgets.Select(name=_("Project"), options=projects, width=220,
                                         value=first_value(list(projects.values()), query_arg("project")))
        self.dataset = pn.widgets.Select(name=_("Dataset"), options=[], width=220)
        self.version = pn.widgets.Select(name=_("Version"), options=[], width=120)
        self.compare_to = pn.widgets.Select(name=_("Compare with"), options=[], width=120)
        self.column = pn.widgets.Select(name=_("Histogram of"), options=[], width=220)
        self.summary = _html()
        self.versions = data_table(versions_frame([]), name="dataset-versions", page_size=10)
        self.preview = _html(stylesheets=[PREVIEW_CSS])
        self.thumbnails = _html()
        self.nulls = pn.pane.HoloViews(charts.placeholder(_("loading")), sizing_mode="stretch_width")
        self.nulls_note = _html()
        self.balance = pn.pane.HoloViews(charts.placeholder(_("loading")), sizing_mode="stretch_width")
        self.balance_note = _html()
        self.hist = pn.pane.Bokeh(None, sizing_mode="stretch_width")
        self.hist_note = _html()
        self.settings = SettingsForm()
        self.diff = _html()
        self.lineage = _html()
        self.tasks = data_table(annotations_frame([]), name="annotation-tasks", page_size=10)
        # The settings form (two column pickers, five rule inputs, two buttons) and the tasks table are below the
        # fold: their places hold a note on the first paint, and they are put there once the page is shown.
        self.settings_area = pn.Column(_html(object=empty_html("settings-loading", _("loading"))),
                                       sizing_mode="stretch_width")
        self.tasks_area = pn.Column(_html(object=empty_html("tasks-loading", _("loading"))),
                                    sizing_mode="stretch_width")
        self.version_records: list[dict[str, Any]] = []
        self.record: dict[str, Any] = {}
        self.latest: dict[str, int | None] = {}  # each dataset's latest version, from the list
        self.early = Prefetch()  # reads started before the version is picked (its preview)
        # The lineage walk follows the version's readers into MLflow (runs, models, evaluations), and the
        # settings hold a picker over every column: on the first paint both are drawn once the page is shown,
        # so the table and charts do not wait for them.
        self._lineage_after_load = True
        self._below_the_fold_after_load = True
        self.settings.save_masks.on_click(lambda _e: self.save(masks=True))
        self.settings.save_rules.on_click(lambda _e: self.save(masks=False))
        self.load_datasets(query_arg("dataset"), query_arg("version"))
        self._below_the_fold_after_load = False
        pn.state.onload(self.show_below_the_fold)  # after the settings' values and the lineage, set on load
        self.project.param.watch(lambda _e: self.load_datasets(), "value")
        self.dataset.param.watch(lambda _e: self.load_versions(), "value")
        self.version.param.watch(lambda _e: self.show_version(), "value")
        self.compare_to.param.watch(lambda _e: self.show_diff(), "value")
        self.column.param.watch(lambda _e: self.show_histogram(), "value")

    @property
    def role(self) -> str | None:
        return viewer_role(self.me, self.project.value)

    def load_datasets(self, wanted: str | None = None, wanted_version: str | None = None) -> None:
        self.messages.reset()
        project = self.project.value
        if not project:
            self.messages.note(_("You are not a member of any project yet: ask a project's maintainer to add you."))
            return
        # Independent reads start together (the platform answers them in parallel).
        first = Prefetch({"datasets": lambda: self.api.datasets(project),
                          "tasks": lambda: self.api.annotation_tasks(project)})
        datasets = self.messages.attempt(_("list the datasets of {project}").format(project=project),
                              lambda: first.take("datasets", lambda: self.api.datasets(project)), [])
        listed = ", ".join(f"{escape(d['name'])} (v{d['latest_version']})" for d in datasets)
        self.summary.object = "<div id='datasets-summary' style='font-family:system-ui,sans-serif'>" + (ngettext(
            "{count} dataset in {project}: {names}", "{count} datasets in {project}: {names}", len(datasets)).format(
            count=f"<b>{len(datasets)}</b>", project=escape(project), names=listed) if datasets else escape(
            _("No dataset in {project} yet: register one with `aitip data add NAME FILE -P {project}` "
              "(CSV, Parquet, JSONL, or a folder of class sub-folders).").format(project=project))) + "</div>"
        self.latest = {d["name"]: d.get("latest_version") for d in datasets}
        names = [d["name"] for d in datasets]
        self.dataset.options = names
        self.dataset.value = first_value(names, wanted)
        self.load_versions(wanted_version)  # the versions' reads start before the tasks' answer is awaited
        tasks = self.messages.attempt(_("list the annotation tasks of {project}").format(project=project),
                           lambda: first.take("tasks", lambda: self.api.annotation_tasks(project)), [])
        self.tasks.value = annotations_frame(tasks)

    def load_versions(self, wanted: str | None = None) -> None:
        project, name = self.project.value, self.dataset.value
        shown = int(wanted) if wanted and wanted.isdigit() else self.latest.get(name)
        calls: dict[Any, Any] = {"dataset": lambda: self.api.dataset(project, name),
                                 "versions": lambda: self.api.dataset_versions(project, name)} if name else {}
        if name and shown:  # the version about to be shown: its preview is read beside the rest
            calls[("preview", project, name, shown)] = lambda: self.api.dataset_preview(project, name, shown,
                                                                                       PREVIEW_ROWS)
        both = self.early = Prefetch(calls)
        self.record = self.messages.attempt(_("read dataset {dataset}").format(dataset=name),
                                 lambda: both.take("dataset", lambda: self.api.dataset(project, name)), {}) if name else {}
        self.version_records = self.messages.attempt(
            _("list the versions of {dataset}").format(dataset=name),
            lambda: both.take("versions", lambda: self.api.dataset_versions(project, name)), []) if name else []
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
        self.show_data(record)
        drawn, about_the_rest = null_columns(report) if record else (None, "")
        show_chart(self.nulls, self.nulls_note, null_chart(drawn) if drawn else None, "nulls-note",
                   about_the_rest or (_("No column statistics for this version (an image folder has none; see its "
                                        "classes below).") if record else _("Pick a dataset and a version above.")))
        if drawn and about_the_rest:
            self.nulls_note.object = empty_html("nulls-note", about_the_rest)
        show_chart(self.balance, self.balance_note, class_balance(report) if record else None, "balance-note",
                   _("No label column declared: set the quality gate's label column (label_column) below to see "
                     "the class balance."))
        numeric = [c["name"] for c in report.get("columns") or [] if c.get("numeric")]
        self.column.options = numeric
        self.column.value = histogram_default(report)
        self.show_histogram()
        if record is not None:
            node = f"dataset:{record['project']}/{record['dataset']}@{record['version']}"
            if self._lineage_after_load:
                self._lineage_after_load = False
                self.lineage.object = empty_html("dataset-lineage", _("loading"))
                pn.state.onload(partial(self.read_lineage, node, page_language()))
            else:
                self.show_lineage(node)
            older = [v for v in self.compare_to.options if v not in ("-", self.version.value)]
            self.compare_to.value = older[0] if older else "-"
        else:
            self.lineage.object = empty_html("dataset-lineage", _("Pick a dataset and a version above."))
        self.show_diff()
        update_query(project=self.project.value, dataset=self.dataset.value, version=self.version.value)

    async def read_lineage(self, node: str, language: str) -> None:
        """The lineage walked in a thread once the page is shown (it follows the version's readers into MLflow,
        ~80 ms): the server's loop, and the next page's request, are not kept waiting."""
        try:
            graph = await asyncio.to_thread(self.api.lineage, node)
        except (AitipAPIError, NotSignedIn) as error:
            graph = {"edges": [], "nodes": []}
            with use_language(language):
                self.messages.error(error, _("read the lineage"))
        with use_language(language):
            self.lineage.object = lineage_html(graph)

    def show_lineage(self, node: str) -> None:
        graph = self.messages.attempt(_("read the lineage"), lambda: self.api.lineage(node), {"edges": [], "nodes": []})
        self.lineage.object = lineage_html(graph)

    def show_data(self, record: dict[str, Any] | None) -> None:
        """The preview (masked by the platform for the viewer's role), thumbnails for images, and the settings."""
        if record is None:
            self.preview.object = empty_html("dataset-preview", _("Pick a dataset and a version above."))
            self.thumbnails.object = ""
            self.settings.show(self.record, [], False, self.role)
            return
        if self._below_the_fold_after_load:
            # The preview's read (started beside the versions) and the settings it feeds are put in once the
            # page is shown: the read of a wide file takes longer than the rest of the page together.
            self.preview.object = empty_html("dataset-preview", _("loading"))
            pn.state.onload(partial(self.show_preview, record))
        else:
            self.show_preview(record)

    def show_preview(self, record: dict[str, Any]) -> None:
        project, name, number = self.project.value, self.dataset.value, record["version"]
        masks = self.record.get("sensitive_columns") or {}
        preview = self.messages.attempt(_("preview {dataset} v{version}").format(dataset=name, version=number),
                             lambda: self.early.take(("preview", project, name, number),
                                                     lambda: self.api.dataset_preview(project, name, number,
                                                                                      PREVIEW_ROWS)), None)
        self.preview.object = preview_html(preview, masks)
        if record["format"] == "images":
            shown = self.messages.attempt(_("show the images of {dataset} v{version}").format(dataset=name, version=number),
                               lambda: self.api.dataset_thumbnails(project, name, number), None)
            self.thumbnails.object = thumbnails_html(shown)
        else:
            self.thumbnails.object = ""
        columns = [] if record["format"] == "images" else list((preview or {}).get("columns") or [])
        self.settings.show(self.record, columns, role_at_least(self.role, "maintainer"), self.role)

    def show_histogram(self) -> None:
        record = self.current()
        chart = histogram((record or {}).get("quality") or {}, self.column.value)
        show_chart(self.hist, self.hist_note, chart, "histogram-note",
                   _("No numeric column to draw: the histogram needs a column of numbers."))

    def show_diff(self) -> None:
        if not self.version.value or self.compare_to.value in (None, "-", self.version.value):
            self.diff.object = empty_html("dataset-diff", _("Pick another version to compare."))
            return
        before, after = sorted((int(self.compare_to.value), int(self.version.value)))
        diff = self.messages.attempt(_("compare versions"), lambda: self.api.dataset_diff(self.project.value, self.dataset.value,
                                                                            before, after), None)
        if diff is not None:
            self.diff.object = diff_html(diff)

    def save(self, *, masks: bool) -> None:
        project, name = self.project.value, self.dataset.value
        self.messages.reset()
        if masks:
            doing = _("change the masking of {dataset}").format(dataset=name)
            change = {"sensitive_columns": self.settings.masking()}
        else:
            doing = _("change the quality gate of {dataset}").format(dataset=name)
            change = {"quality_rules": self.settings.rules(self.record.get("quality_rules") or {})}
        saved = self.messages.attempt(doing, lambda: self.api.update_dataset(project, name, **change), None)
        if saved is None:
            return
        self.record = saved
        self.messages.info(_("Saved: masking {masks}; quality gate {rules}.").format(
            masks=", ".join(f"{c} ({m})" for c, m in saved["sensitive_columns"].items()) or "-",
            rules=", ".join(f"{r}={v}" for r, v in saved["quality_rules"].items()) or "-"))
        self.show_data(self.current())

    def show_below_the_fold(self) -> None:
        self.settings_area.objects = [self.settings.view()]
        self.tasks_area.objects = [self.tasks]

    def view(self) -> pn.Column:
        return pn.Column(
            pn.Row(self.project, self.dataset, self.version, self.compare_to),
            self.summary,
            section(_("Versions")), self.versions,
            section(_("Data of the selected version"), "data-heading"), self.preview, self.thumbnails,
            section(_("Quality of the selected version")),
            pn.Row(pn.Column(self.nulls, self.nulls_note, sizing_mode="stretch_width"),
                   pn.Column(self.balance, self.balance_note, sizing_mode="stretch_width"), sizing_mode="stretch_width"),
            self.column, self.hist, self.hist_note,
            section(_("Masking and quality gate"), "settings-heading"), self.settings_area,
            section(_("Difference")), self.diff,
            section(_("Lineage")), self.lineage,
            section(_("Annotation tasks")), self.tasks_area,
            sizing_mode="stretch_width",
        )


def page() -> pn.Column:
    return signed_in_page(PAGE, _("see your datasets"), lambda api, me, messages: DatasetsPage(api, me, messages).view())


if __name__.startswith("bokeh_app"):
    page().servable(title=page_title(PAGE))
