"""Run a notebook from the Jobs page: upload it or choose one the platform ships, fill in the form its
parameters cell makes (each declared name with its type and default), name the dataset versions it reads, and
submit it as a job.

The form mirrors the platform's rules so a person sees them before sending (which names exist, their
types, who may submit); the platform still checks everything, and its refusal is shown as it says it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from html import escape
from typing import Any

import panel as pn
import param

from aitip.client import AitipAPIError, parse_input
from aitip.errors import AitipError
from aitip.identity.permissions import permission
from aitip.jobs.parameters import DeclaredParameter, declared_parameters
from panel_apps.api import DashboardAPI
from panel_apps.components import Messages, NotSignedIn, role_at_least, role_in, role_words
from panel_apps.language import _

SUBMIT_ACTION = "job.submit"
JSON_TYPES = ("list", "dict", "NoneType", "any")


def least_role(action: str = SUBMIT_ACTION) -> str:
    """Who may do ``action`` (submit, by default), as the permission table says."""
    role = permission(action).min_role
    return role.value if role is not None else "viewer"


def submit_refusal(me: dict[str, Any], project: str | None) -> str | None:
    """Why the viewer may not submit in ``project`` (None: they may)."""
    if not project:
        return _("Choose a project to run the notebook in.")
    role = role_in(me, project)
    if me.get("admin") or role_at_least(role, least_role()):
        return None
    return _("Running a notebook in {project} needs the {least} role; you are {role}.").format(
        project=project, least=role_words(least_role()), role=role_words(role))


def parameter_widget(parameter: DeclaredParameter) -> pn.widgets.Widget:
    """A widget of the parameter's declared type, holding its default; lists, dicts and values that are not
    literals are edited as JSON."""
    label = parameter.name + (f" — {parameter.help}" if parameter.help else "")
    common: dict[str, Any] = {"name": label, "width": 320, "css_classes": [f"parameter-{parameter.name}"]}
    if parameter.type_name == "bool":
        return pn.widgets.Checkbox(value=bool(parameter.default), **common)
    if parameter.type_name == "int":
        return pn.widgets.IntInput(value=int(parameter.default), **common)
    if parameter.type_name == "float":
        return pn.widgets.FloatInput(value=float(parameter.default), **common)
    if parameter.type_name == "str":
        return pn.widgets.TextInput(value=str(parameter.default), **common)
    return pn.widgets.TextInput(value=json.dumps(parameter.default), placeholder=_("a JSON value"), **common)


def parameter_value(parameter: DeclaredParameter, widget: Any) -> Any:
    """The widget's value as the job takes it; a JSON field that does not parse raises ValueError."""
    if parameter.type_name in JSON_TYPES:
        try:
            return json.loads(widget.value)
        except ValueError:
            raise ValueError(_("{name} is not valid JSON: {value}").format(name=parameter.name,
                                                                           value=widget.value)) from None
    return widget.value


def changed_parameters(declared: dict[str, DeclaredParameter], widgets: dict[str, Any]) -> dict[str, Any]:
    """The values that differ from the notebook's defaults (the job records every effective value)."""
    values = {name: parameter_value(parameter, widgets[name]) for name, parameter in declared.items()}
    return {name: value for name, value in values.items() if value != declared[name].default}


def shipped_declared(notebook: dict[str, Any]) -> dict[str, DeclaredParameter]:
    """A shipped notebook's parameters as ``notebooks.list`` says them, as the form takes a parameters cell's."""
    return {parameter["name"]: DeclaredParameter(parameter["name"], parameter["default"], parameter["type"],
                                                 parameter["help"]) for parameter in notebook["parameters"]}


def parse_inputs(text: str) -> list[dict[str, Any]]:
    """``"digits@2, scores"`` as the job's declared inputs."""
    return [parse_input(item.strip()) for item in text.replace("\n", ",").split(",") if item.strip()]


class SubmitForm:
    """The "Run a notebook" section of the Jobs page; ``on_submitted(job_id)`` opens the new job."""

    def __init__(self, api: DashboardAPI, me: dict[str, Any], messages: Messages, projects: dict[str, str],
                 project: str | None, on_submitted: Callable[[int], None]) -> None:
        self.api, self.me, self.messages, self.on_submitted = api, me, messages, on_submitted
        choices = {label: value for label, value in projects.items() if value}
        self.project = pn.widgets.Select(name=_("Run in project"), options=choices, width=220,
                                         value=project if project in choices.values() else
                                         next(iter(choices.values()), None))
        self.file = pn.widgets.FileInput(accept=".ipynb", multiple=False, css_classes=["notebook-file"])
        self.library: dict[str, dict[str, Any]] = {}
        try:
            self.library = {notebook["name"]: notebook for notebook in api.op("notebooks.list")["notebooks"]}
        except (AitipAPIError, NotSignedIn) as error:
            messages.error(error, _("list the notebooks the platform ships"))
        self.shipped = pn.widgets.Select(
            name=_("or one the platform ships"), width=380, css_classes=["shipped-notebook"],
            options={"—": "", **{f"{notebook['title']} ({name})": name for name, notebook in self.library.items()}})
        self.inputs = pn.widgets.TextInput(name=_("Dataset inputs"), placeholder="digits@2, scores", width=320,
                                           css_classes=["job-inputs"])
        self.gpus = pn.widgets.IntInput(name=_("GPUs"), value=0, start=0, end=64, width=100)
        self.submit = pn.widgets.Button(name=_("Run notebook"), button_type="primary", css_classes=["submit-job"],
                                        width=160)
        self.status = pn.pane.HTML(sizing_mode="stretch_width", margin=(5, 10), css_classes=["submit-status"])
        self.fields = pn.Column(sizing_mode="stretch_width", css_classes=["parameter-fields"])
        self.about = pn.pane.HTML(sizing_mode="stretch_width", margin=(0, 10), css_classes=["shipped-about"])
        self.notebook: dict[str, Any] | None = None
        self.notebook_name = ""
        self.declared: dict[str, DeclaredParameter] = {}
        self.widgets: dict[str, Any] = {}
        self.file.param.watch(lambda _event: self.on_file(), "value")
        self.shipped.param.watch(lambda _event: self.on_shipped(), "value")
        self.project.param.watch(lambda _event: self.show_permission(), "value")
        self.submit.on_click(lambda _event: self.do_submit())
        self.show_permission()

    def show_permission(self) -> None:
        refusal = submit_refusal(self.me, self.project.value)
        chosen = self.notebook is not None or bool(self.shipped.value)
        self.submit.disabled = refusal is not None or not chosen
        if refusal is not None:
            self.status.object = f"<span class='submit-refused' style='color:#a33'>{escape(refusal)}</span>"
        elif not chosen:
            self.status.object = escape(_("Choose a notebook (.ipynb), or one the platform ships: its parameters "
                                          "cell becomes the form."))
        else:
            self.status.object = ""

    def show_fields(self) -> None:
        self.widgets = {name: parameter_widget(parameter) for name, parameter in self.declared.items()}
        self.fields[:] = list(self.widgets.values()) or [pn.pane.HTML(
            escape(_("This notebook declares no parameters (tag a cell 'parameters' to get a form).")),
            css_classes=["no-parameters"])]
        self.show_permission()

    def on_shipped(self) -> None:
        """A shipped notebook chosen: its form, from what the platform says of it (it is not downloaded)."""
        self.messages.reset()
        chosen = self.library.get(self.shipped.value or "")
        self.about.object = (f"<i>{escape(chosen['summary'])}</i>" if chosen is not None else "")
        if chosen is None:
            self.declared, self.widgets = {}, {}
            self.fields[:] = []
            self.show_permission()
            return
        self.notebook, self.notebook_name = None, chosen["file_name"]
        self.declared = shipped_declared(chosen)
        self.show_fields()

    def on_file(self) -> None:
        self.messages.reset()
        self.notebook, self.declared, self.widgets = None, {}, {}
        self.fields[:] = []
        try:
            notebook = json.loads(self.file.value or b"")
            if not isinstance(notebook, dict) or notebook.get("nbformat") != 4:
                raise ValueError(_("not a Jupyter notebook (nbformat 4)"))
            self.declared = declared_parameters(notebook)
        except (ValueError, AitipError) as error:
            message = error.message if isinstance(error, AitipError) else str(error)
            self.status.object = ("<span class='submit-refused' style='color:#a33'>" + escape(
                _("{file} cannot be run: {reason}").format(file=self.file.filename or "", reason=message))
                + "</span>")
            self.submit.disabled = True
            return
        self.notebook, self.notebook_name = notebook, self.file.filename or "notebook.ipynb"
        if self.shipped.value:
            with param.discard_events(self.shipped):
                self.shipped.value = ""
            self.about.object = ""
        self.show_fields()

    def do_submit(self) -> None:
        self.messages.reset()
        shipped = self.shipped.value or None
        if (self.notebook is None and shipped is None) or submit_refusal(self.me, self.project.value) is not None:
            return
        try:
            parameters = changed_parameters(self.declared, self.widgets)
            inputs = parse_inputs(self.inputs.value)
        except ValueError as error:
            self.status.object = f"<span class='submit-refused' style='color:#a33'>{escape(str(error))}</span>"
            return
        try:
            source = {"shipped": shipped} if shipped else {"notebook": self.notebook,
                                                            "notebook_name": self.notebook_name}
            job = self.api.op("jobs.submit", project=self.project.value, **source, parameters=parameters,
                              inputs=inputs, resources={"gpus": int(self.gpus.value or 0)} if self.gpus.value else None)
        except (AitipAPIError, NotSignedIn) as error:
            self.messages.error(error, _("run {notebook}").format(notebook=self.notebook_name))
            return
        self.messages.info(_("{notebook} submitted as job {job} ({state}).").format(
            notebook=self.notebook_name, job=job["id"], state=job["state"]))
        self.on_submitted(int(job["id"]))

    def view(self) -> pn.Card:
        return pn.Card(
            pn.Row(self.project, self.file, self.shipped, self.gpus),
            self.about,
            self.fields,
            self.inputs,
            pn.Row(self.submit, self.status),
            title=_("Run a notebook"), collapsed=True, sizing_mode="stretch_width", css_classes=["submit-form"],
        )
