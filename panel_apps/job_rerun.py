"""Run a job again from its page, changed: its notebook's parameters as typed fields holding the job's values,
and the dataset versions it read; a developer of the project runs it as their own new job with what they
changed (``jobs.rerun``). The fields come from the executed notebook, read when the card is opened."""

from __future__ import annotations

import json
from collections.abc import Callable
from html import escape
from typing import Any

import panel as pn

from aitip.client import AitipAPIError
from aitip.errors import AitipError
from aitip.jobs.parameters import DeclaredParameter, declared_parameters
from panel_apps.api import DashboardAPI
from panel_apps.components import Messages, NotSignedIn, role_at_least, role_in, role_words
from panel_apps.job_submit import JSON_TYPES, least_role, parameter_value, parameter_widget, parse_inputs
from panel_apps.language import _

RERUN_ACTION = "job.rerun"


def rerun_refusal(me: dict[str, Any], project: str) -> str | None:
    """Why the viewer may not run a job of ``project`` again (None: they may), as the permission table says."""
    least, role = least_role(RERUN_ACTION), role_in(me, project)
    if me.get("admin") or role_at_least(role, least):
        return None
    return _("Running a job of {project} again needs the {least} role; you are {role}.").format(
        project=project, least=role_words(least), role=role_words(role))


def declared_inputs(job: dict[str, Any]) -> str:
    """The dataset versions the job declared, as the field shows them (``digits@2, scores@1``)."""
    return ", ".join(f"{item['dataset']}@{item['version']}" for item in job.get("inputs") or []
                     if item.get("how") == "declared")


def shown_value(parameter: DeclaredParameter, value: Any) -> Any:
    """``value`` as ``parameter``'s widget holds it: JSON text for the types edited as JSON."""
    return json.dumps(value) if parameter.type_name in JSON_TYPES else value


def changed_from_job(declared: dict[str, DeclaredParameter], widgets: dict[str, Any],
                     ran_with: dict[str, Any]) -> dict[str, Any]:
    """The fields whose values differ from what the job ran with (the rest it keeps)."""
    values = {name: parameter_value(parameter, widgets[name]) for name, parameter in declared.items()}
    return {name: value for name, value in values.items() if value != ran_with.get(name, declared[name].default)}


class RerunForm:
    """The "Run again with changes" card of a job's page; ``on_submitted(job_id)`` opens the new job."""

    def __init__(self, api: DashboardAPI, me: dict[str, Any], messages: Messages, job: dict[str, Any],
                 on_submitted: Callable[[int], None] | None) -> None:
        self.api, self.me, self.messages, self.job, self.on_submitted = api, me, messages, job, on_submitted
        self.ran_inputs = declared_inputs(job)
        self.inputs = pn.widgets.TextInput(name=_("Dataset inputs (a name alone: its latest version)"),
                                           value=self.ran_inputs, placeholder="digits@2, scores", width=420,
                                           css_classes=["rerun-inputs"])
        self.run = pn.widgets.Button(name=_("Run again"), button_type="primary", css_classes=["rerun-job"],
                                     width=160, disabled=True)
        self.status = pn.pane.HTML(sizing_mode="stretch_width", margin=(5, 10), css_classes=["rerun-status"])
        self.fields = pn.Column(sizing_mode="stretch_width", css_classes=["rerun-fields"])
        self.declared: dict[str, DeclaredParameter] = {}
        self.widgets: dict[str, Any] = {}
        self.card = pn.Card(self.fields, self.inputs, pn.Row(self.run, self.status),
                            title=_("Run again with changes"), collapsed=True, sizing_mode="stretch_width",
                            css_classes=["rerun-form"])
        self.card.param.watch(lambda event: self.load() if not event.new else None, "collapsed")
        self.run.on_click(lambda _event: self.do_run())

    def _refused(self, text: str) -> None:
        self.status.object = f"<span class='rerun-refused' style='color:#a33'>{escape(text)}</span>"

    def load(self) -> None:
        """The notebook's parameters as fields holding the job's values; once, when the card first opens."""
        if self.widgets or self.declared:
            return
        refusal = rerun_refusal(self.me, self.job["project"])
        if refusal is not None:
            self._refused(refusal)
            return
        try:
            self.declared = declared_parameters(json.loads(self.api.executed_notebook(self.job["id"])))
        except (AitipAPIError, NotSignedIn) as error:
            self.messages.error(error, _("read the notebook of job {job}").format(job=self.job["id"]))
            return
        except (ValueError, AitipError) as error:
            self._refused(error.message if isinstance(error, AitipError) else str(error))
            return
        ran_with = self.job.get("parameters") or {}
        for name, parameter in self.declared.items():
            widget = parameter_widget(parameter)
            if name in ran_with:
                widget.value = shown_value(parameter, ran_with[name])
            self.widgets[name] = widget
        self.fields[:] = list(self.widgets.values()) or [pn.pane.HTML(
            escape(_("This notebook declares no parameters: it runs again with other inputs or as it was.")))]
        self.run.disabled = False
        self.status.object = escape(_("Change what should differ; the rest stays as job {job} had it.").format(
            job=self.job["id"]))

    def do_run(self) -> None:
        self.messages.reset()
        try:
            parameters = changed_from_job(self.declared, self.widgets, self.job.get("parameters") or {})
            text = self.inputs.value.strip()
            inputs = None if text == self.ran_inputs else parse_inputs(text)
        except ValueError as error:
            self._refused(str(error))
            return
        try:
            again = self.api.rerun_job(self.job["id"], parameters=parameters, inputs=inputs)
        except (AitipAPIError, NotSignedIn) as error:
            self.messages.error(error, _("run job {job} again").format(job=self.job["id"]))
            return
        self.messages.info(_("Job {job} runs again as job {again} ({state}).").format(
            job=self.job["id"], again=again["id"], state=again["state"]))
        if self.on_submitted is not None:
            self.on_submitted(int(again["id"]))

    def view(self) -> pn.Card:
        return self.card
