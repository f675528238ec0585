"""Models: a project's registered models, their versions and aliases (set and removed here by maintainers),
and each version's lineage back to the MLflow run and the job that produced it.
Address: ``models?project=P&model=NAME``."""

from __future__ import annotations

from html import escape
from typing import Any

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
    format_time,
    page_title,
    project_options,
    query_arg,
    section,
    update_query,
)
from panel_apps.language import _, ngettext
from panel_apps.model_aliases import AliasEditor

PAGE = "models"
ALL_MODELS = ""


def versions_frame(models: list[dict[str, Any]]) -> pd.DataFrame:
    rows = []
    for model in models:
        for version in sorted(model.get("versions", []), key=lambda v: -int(v["version"])):
            rows.append({"model": model["name"], "version": int(version["version"]),
                         "aliases": ", ".join(version.get("aliases") or []), "status": version.get("status", ""),
                         "run": version.get("run_id") or "", "job": version.get("job_id"),
                         "created": format_time(version.get("creation_timestamp")),
                         "source": version.get("source") or ""})
    return pd.DataFrame(rows, columns=["model", "version", "aliases", "status", "run", "job", "created", "source"])


def models_html(models: list[dict[str, Any]], project: str) -> str:
    """Each model with its aliases, and links from its newest version to the run and the job."""
    if not models:
        return ("<div id='models-summary' style='color:#555'>" + escape(_("No registered models in this project yet."))
                + "</div>")
    items = []
    for model in models:
        aliases = ", ".join(f"<code>@{escape(alias)}</code> → v{version}"
                            for alias, version in sorted((model.get("aliases") or {}).items()))
        versions = sorted(model.get("versions", []), key=lambda v: -int(v["version"]))
        latest = versions[0] if versions else None
        lineage = ""
        if latest:
            job_name = escape(_("job {job}").format(job=latest.get("job_id")))
            job = (f"<a href='./jobs?job={latest['job_id']}'>{job_name}</a>"
                   if latest.get("job_id") is not None else escape(_("no job")))
            run_name = escape(_("run {run}").format(run=(latest.get("run_id") or "")[:8]))
            run = (f"<a href='./experiments?project={escape(project)}&amp;filter=attributes.run_id%20%3D%20%27"
                   f"{escape(latest['run_id'])}%27'>{run_name}</a>" if latest.get("run_id") else escape(_("no run")))
            lineage = " · " + _("latest {version} from {run} of {job}").format(
                version=f"<b class='latest-version'>v{latest['version']}</b>", run=run, job=job)
        description = f"<br><span style='color:#555'>{escape(model['description'])}</span>" \
            if model.get("description") else ""
        count = ngettext("{count} version", "{count} versions", len(versions)).format(count=len(versions))
        aliased = " · " + _("aliases {aliases}").format(aliases=aliases) if aliases else ""
        items.append(f"<li data-model='{escape(model['name'])}'><b>{escape(model['name'])}</b>: "
                     f"{count}{lineage}{aliased}{description}</li>")
    return f"<ul id='models-summary' style='font-family:system-ui,sans-serif'>{''.join(items)}</ul>"


class ModelsPage:
    def __init__(self, api: DashboardAPI, me: dict[str, Any], messages: Messages) -> None:
        self.api = api
        self.messages = messages
        projects = project_options(me)
        self.project = pn.widgets.Select(name=_("Project"), options=projects, width=220,
                                         value=first_value(list(projects.values()), query_arg("project")))
        self.model = pn.widgets.Select(name=_("Model"), options={_("All models"): ALL_MODELS}, width=220)
        self.summary = pn.pane.HTML(sizing_mode="stretch_width", margin=(5, 10))
        self.table = data_table(versions_frame([]), name="versions", page_size=25)
        self.chart = pn.pane.HoloViews(charts.placeholder(_("loading")), sizing_mode="stretch_width",
                                       css_classes=["lineage-chart"])
        self.models: list[dict[str, Any]] = []
        self.aliases = AliasEditor(api, me, messages, self.on_alias_changed)
        self.load(query_arg("model"))
        self.project.param.watch(lambda _event: self.on_project(), "value")
        self.model.param.watch(lambda _event: self.show(), "value")

    def load(self, wanted_model: str | None = None) -> None:
        self.models = []
        if self.project.value:
            try:
                self.models = self.api.models(self.project.value)
            except (AitipAPIError, NotSignedIn) as error:
                self.messages.error(error, _("list the models of {project}").format(project=self.project.value))
        else:
            self.messages.note(_("You are not a member of any project yet."))
        options = {_("All models"): ALL_MODELS, **{model["name"]: model["name"] for model in self.models}}
        self.model.options = options
        self.model.value = first_value(list(options.values()), wanted_model)
        self.show()

    def show(self) -> None:
        shown = [m for m in self.models if not self.model.value or m["name"] == self.model.value]
        self.summary.object = models_html(shown, self.project.value or "")
        self.table.value = versions_frame(shown)
        self.chart.object = charts.lineage(shown)
        self.aliases.show(self.project.value, shown[0] if self.model.value and shown else None)
        update_query(project=self.project.value, model=self.model.value)

    def on_alias_changed(self, model: dict[str, Any]) -> None:
        self.models = [model if m["name"] == model["name"] else m for m in self.models]
        self.show()

    def on_project(self) -> None:
        self.messages.reset()
        self.load()

    def view(self) -> pn.Column:
        return pn.Column(
            pn.Row(self.project, self.model),
            self.summary,
            section(_("Aliases")), self.aliases.view(),
            section(_("Versions")), self.table,
            section(_("Lineage: job → run → version")), self.chart,
            sizing_mode="stretch_width",
        )


def page() -> pn.Column:
    return signed_in_page(PAGE, _("see your models"), lambda api, me, messages: ModelsPage(api, me, messages).view())


if __name__.startswith("bokeh_app"):
    page().servable(title=page_title(PAGE))
