"""Labelling: an annotator works through the items of a task assigned to them, one at a time (an image, or a
row's fields), with a button and keys per label, skip and undo, and their progress; a reviewer (developer or
above) accepts or rejects other annotators' labels and exports the accepted ones as a dataset version.
Address: ``annotate?project=P&task=ID``.

The platform gives an annotator their own items blind (no path, folder or label column) and never anyone
else's labels; this page shows only what it is given."""

from __future__ import annotations

from html import escape
from typing import Any

import panel as pn

from panel_apps.annotate_views import (
    KeyboardShortcuts,
    action_for,
    button_name,
    item_html,
    new_keys,
    next_index,
    progress_html,
    review_frame,
    shortcut_keys,
    shortcuts_html,
)
from panel_apps.api import DashboardAPI
from panel_apps.components import (
    viewer_role,
    Messages,
    data_table,
    first_value,
    page_title,
    project_options,
    query_arg,
    role_at_least,
    role_words,
    section,
    signed_in_page,
    update_query,
)
from panel_apps.language import _

PAGE = "annotate"


def _html(element_id: str = "", text: str = "") -> pn.pane.HTML:
    return pn.pane.HTML(f"<div id='{element_id}' style='color:#555;font-family:system-ui,sans-serif'>"
                        f"{escape(text)}</div>" if element_id else "", sizing_mode="stretch_width", margin=(5, 10))


class AnnotatePage:
    def __init__(self, api: DashboardAPI, me: dict[str, Any], messages: Messages) -> None:
        self.api = api
        self.me = me
        self.messages = messages
        projects = project_options(me)
        self.project = pn.widgets.Select(name=_("Project"), options=projects, width=220,
                                         value=first_value(list(projects.values()), query_arg("project")))
        self.task = pn.widgets.Select(name=_("Task"), options={}, width=320)
        self.instructions = _html()
        self.progress = _html()
        self.item = _html()
        self.keys_help = _html()
        self.label_buttons = pn.FlexBox()
        self.skip = pn.widgets.Button(name=_("Skip (Space)"), width=140, css_classes=["annotate-skip"])
        self.undo = pn.widgets.Button(name=_("Undo (Backspace)"), width=160, css_classes=["annotate-undo"])
        self.keys = KeyboardShortcuts()
        self.review_note = _html()
        self.review_table = data_table(review_frame([]), name="annotate-review", page_size=15, selectable="checkbox")
        self.accept = pn.widgets.Button(name=_("Accept selected"), button_type="success", width=220,
                                        css_classes=["review-accept"])
        self.reject = pn.widgets.Button(name=_("Reject selected"), button_type="danger", width=220,
                                        css_classes=["review-reject"])
        self.export_name = pn.widgets.TextInput(name=_("Export as dataset"), width=260)
        self.export_message = pn.widgets.TextInput(name=_("Message"), width=320)
        self.export = pn.widgets.Button(name=_("Export accepted labels"), button_type="primary", width=300,
                                        css_classes=["review-export"])
        self.export_result = _html()
        self.tasks: dict[int, dict[str, Any]] = {}
        self.items: list[dict[str, Any]] = []
        self.index: int | None = None
        self.history: list[int] = []
        self.passed: set[int] = set()
        self.shortcuts: dict[str, str] = {}
        self.skip.on_click(lambda _e: self.do_skip())
        self.undo.on_click(lambda _e: self.do_undo())
        self.accept.on_click(lambda _e: self.review("accepted"))
        self.reject.on_click(lambda _e: self.review("rejected"))
        self.export.on_click(lambda _e: self.do_export())
        self.keys_handled = 0
        self.keys.param.watch(lambda event: self.on_keys(event.new), "pressed")
        self.load_tasks(query_arg("task"))
        self.project.param.watch(lambda _e: self.load_tasks(), "value")
        self.task.param.watch(lambda _e: self.open_task(), "value")

    @property
    def role(self) -> str | None:
        return viewer_role(self.me, self.project.value)

    @property
    def current_task(self) -> dict[str, Any] | None:
        return self.tasks.get(self.task.value) if self.task.value is not None else None

    # ----- loading -----

    def load_tasks(self, wanted: str | None = None) -> None:
        self.messages.reset()
        project = self.project.value
        if not project:
            self.messages.note(_("You are not a member of any project yet: ask a project's maintainer to add you."))
            return
        tasks = self.messages.attempt(_("list the annotation tasks of {project}").format(project=project),
                           lambda: self.api.annotation_tasks(project), [])
        self.tasks = {task["id"]: task for task in tasks}
        options = {f"{t['name']} ({t['dataset']} v{t['version']})": t["id"] for t in tasks}
        self.task.options = options
        ids = [str(i) for i in options.values()]
        chosen = first_value(ids, wanted)
        self.task.value = int(chosen) if chosen else None
        self.open_task()

    def open_task(self) -> None:
        task = self.current_task
        self.history, self.passed = [], set()
        if task is None:
            self.items, self.index = [], None
            self.instructions.object = _html("annotate-empty", _(
                "No annotation task in this project yet: a developer creates one on a dataset version with "
                "`aitip annotations create` (labels, annotators).")).object
            self.show_item()
            self.show_review()
            return
        text = task["instructions"] or _("Choose the label that fits each item.")
        self.instructions.object = (f"<div id='annotate-instructions' style='font-family:system-ui,sans-serif'>"
                                    f"<b>{escape(task['name'])}</b> · {escape(text)}</div>")
        self.shortcuts = shortcut_keys(task["labels"])
        buttons = []
        for position, label in enumerate(task["labels"]):
            button = pn.widgets.Button(name=button_name(label, self.shortcuts), button_type="primary",
                                       css_classes=["annotate-label", f"annotate-label-{position}"], min_width=110)
            button.on_click(lambda _e, chosen=label: self.do_label(chosen))
            buttons.append(button)
        self.label_buttons.objects = buttons
        self.keys_help.object = shortcuts_html(self.shortcuts)
        self.items = self.messages.attempt(_("read your items"), lambda: self.api.annotation_queue(
            self.project.value, task["id"], everything=True), [])
        self.items.sort(key=lambda item: item["position"])
        first = next_index(self.items, -1, set())
        self.index = first if first is not None else (0 if self.items else None)
        self.show_item()
        self.show_review()
        update_query(project=self.project.value, task=task["id"])

    # ----- labelling -----

    def show_item(self) -> None:
        self.progress.object = progress_html(self.items) if self.items else ""
        finished = self.items and all(item.get("label") is not None for item in self.items)
        usable = self.index is not None and not finished
        for widget in (*self.label_buttons.objects, self.skip):
            widget.disabled = not usable
        self.undo.disabled = not self.history
        if not self.items:
            self.item.object = _html("annotate-item-empty", _(
                "Nothing is assigned to you in this task. Reviewers see the labels below.")
                if self.current_task else "").object
            return
        if finished and self.index is None:
            self.item.object = _html("annotate-done", _(
                "All your items are labelled. Thank you: a reviewer will accept or reject them. Undo goes back to "
                "the last one.")).object
            return
        item = self.items[self.index] if self.index is not None else None
        if item is not None and "image" not in (item.get("content") or {}) and self._is_image_task(item):
            fetched = self.messages.attempt(_("read item {key}").format(key=item["key"]), lambda: self.api.annotation_queue(
                self.project.value, self.task.value, item=item["item_id"]), [])
            if fetched:
                item["content"] = fetched[0]["content"]
        self.item.object = item_html(item)

    @staticmethod
    def _is_image_task(item: dict[str, Any]) -> bool:
        return not item.get("content")  # an image item comes without fields; its picture is asked for alone

    def _move(self, after: int) -> None:
        self.index = next_index(self.items, after, self.passed)
        self.show_item()

    def do_label(self, label: str) -> None:
        if self.index is None or not self.items:
            return
        item = self.items[self.index]
        if item.get("review") == "accepted":
            self.messages.reset()
            self.messages.note(_("This label was accepted in review; it can no longer change."))
            return
        saved = self.messages.attempt(_("label item {key}").format(key=item["key"]), lambda: self.api.label_item(
            self.project.value, self.task.value, item["item_id"], label), None)
        if saved is None:
            return
        item.update(label=saved["label"], review=saved["review"])
        self.history.append(self.index)
        self.passed.discard(item["item_id"])
        self._move(self.index)

    def do_skip(self) -> None:
        if self.index is None or not self.items:
            return
        self.history.append(self.index)
        self.passed.add(self.items[self.index]["item_id"])
        self._move(self.index)

    def do_undo(self) -> None:
        if not self.history:
            return
        self.index = self.history.pop()
        self.passed.discard(self.items[self.index]["item_id"])
        self.show_item()

    def on_keys(self, pressed: list[str]) -> None:
        keys = new_keys(pressed, self.keys_handled)
        self.keys_handled = len(pressed)
        for key in keys:
            action = action_for(key, self.shortcuts)
            if action is None or self.current_task is None:
                continue
            kind, label = action
            if kind == "label" and label is not None:
                self.do_label(label)
            elif kind == "skip":
                self.do_skip()
            else:
                self.do_undo()

    # ----- review -----

    def show_review(self) -> None:
        task = self.current_task
        may_review = role_at_least(self.role, "developer")
        for widget in (self.accept, self.reject, self.export, self.export_name, self.export_message):
            widget.disabled = not may_review or task is None
        only = "" if may_review else " — " + _("developers and up")
        self.accept.name, self.reject.name = _("Accept selected") + only, _("Reject selected") + only
        self.export.name = _("Export accepted labels") + only
        if not may_review:
            self.review_note.object = _html("review-note", _(
                "Reviewing and exporting need the developer role in {project}; your role is {role}. You see only "
                "your own labels.").format(project=self.project.value, role=role_words(self.role))).object
            self.review_table.value = review_frame([])
            return
        if task is None:
            self.review_note.object = ""
            self.review_table.value = review_frame([])
            return
        others = [name for name in task["per_annotator"] if name != self.me.get("name")]
        labelled = []
        for name in others:
            labelled += self.messages.attempt(_("read the labels of {annotator}").format(annotator=name),
                                   lambda name=name: self.api.annotation_queue(self.project.value, task["id"],
                                                                                annotator=name, everything=True), [])
        frame = review_frame(labelled)
        self.review_table.value = frame
        pending = int((frame["review"] == "pending").sum()) if not frame.empty else 0
        self.review_note.object = _html("review-note", _(
            "{pending} labels wait for review; you never review your own. Select rows, then accept or reject.")
            .format(pending=pending) if not frame.empty else _(
            "No label to review yet: other annotators' labels appear here as they work.")).object
        if not self.export_name.value:
            self.export_name.value = f"{task['dataset']}-labels"
        if task.get("exported_version"):
            self.export.disabled = True
            self.export_result.object = _html("export-result", _("Exported as version {version}.").format(
                version=task["exported_version"])).object

    def review(self, decision: str) -> None:
        task = self.current_task
        selected = self.review_table.selected_dataframe
        self.messages.reset()
        if task is None or selected.empty:
            self.messages.note(_("Select the labels to review first (the boxes in the table)."))
            return
        done = 0
        for assignment in selected["assignment"]:
            if self.messages.attempt(_("review label {assignment}").format(assignment=assignment), lambda a=assignment:
                          self.api.review_label(self.project.value, task["id"], int(a), decision), None):
                done += 1
        self.messages.info((_("Accepted {count} labels.") if decision == "accepted"
                            else _("Rejected {count} labels.")).format(count=done))
        self.review_table.selection = []
        self.show_review()

    def do_export(self) -> None:
        task = self.current_task
        if task is None:
            return
        self.messages.reset()
        version = self.messages.attempt(_("export the accepted labels of {task}").format(task=task["name"]),
                             lambda: self.api.export_labels(self.project.value, task["id"],
                                                            self.export_name.value or None, self.export_message.value),
                             None)
        if version is None:
            return
        link = f"./datasets?project={self.project.value}&dataset={version['dataset']}&version={version['version']}"
        text = _("Exported {rows} accepted labels as {dataset} v{version}.").format(
            rows=version.get("rows"), dataset=version["dataset"], version=version["version"])
        open_it = _("Open in Datasets")
        self.export_result.object = (f"<div id='export-result' style='font-family:system-ui,sans-serif'>"
                                     f"{escape(text)} <a href='{escape(link)}'>{escape(open_it)}</a></div>")
        self.export.disabled = True
        self.tasks[task["id"]] = self.messages.attempt(_("read task {task}").format(task=task["name"]),
                                            lambda: self.api.annotation_task(self.project.value, task["id"]), task)

    def view(self) -> pn.Column:
        return pn.Column(
            pn.Row(self.project, self.task), self.instructions,
            section(_("Label"), "label-heading"), self.progress, self.item, self.label_buttons,
            pn.Row(self.skip, self.undo), self.keys_help, self.keys,
            section(_("Review"), "review-heading"), self.review_note, self.review_table,
            pn.Row(self.accept, self.reject),
            pn.Row(self.export_name, self.export_message), self.export, self.export_result,
            sizing_mode="stretch_width")


def page() -> pn.Column:
    return signed_in_page(PAGE, _("label your items"),
                          lambda api, me, messages: AnnotatePage(api, me, messages).view())


if __name__.startswith("bokeh_app"):
    page().servable(title=page_title(PAGE))
