"""Simulation: a project's simulations (filterable by model, template and state), one simulation's verdict with
its reasons, checks and regressions, its curves per family of conditions, the gallery of adversarial examples or
the LLM probes that hit, its security assessment (HTML and PDF), and its comparison with another version's; the
scenario templates (the library's and the project's) with their YAML. Developers and above simulate a model
version or an endpoint from the page; others see why not. A queued or running simulation is followed until
judged.

Address: ``simulations?project=P&model=NAME&template=T&state=S&simulation=ID``. The listing, the templates, the
models, the datasets and the simulation the address names are fetched together while the session is created;
the verdict and the curves are the first paint, other tabs are drawn when opened."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Hashable
from html import escape
from typing import Any

import panel as pn

from aitip.client import AitipAPIError
from panel_apps import simulation_charts as figures
from panel_apps.api import DashboardAPI
from panel_apps.components import (Messages, NotSignedIn, Prefetch, QuietChanges, data_table, first_value,
                                   page_title, prefetched_page, project_options, query_arg, section, update_query)
from panel_apps.language import _, page_language
from panel_apps.simulation_views import (DEFAULT_REQUEST, DEFAULT_RESPONSE_FIELD, ENDPOINTS, STATES, checks_html,
                                         context, default_simulation, facts_html, filter_options, filter_simulations,
                                         form_refusal, gallery_html, kind_of, previous_of, probes_html, problems_html,
                                         regressions_html, settled, simulate_refusal, simulation_request,
                                         simulations_frame, state_label, summary_html, template_html,
                                         template_options, templates_frame, title_html, verdict_html)

PAGE = "simulations"
ALL = ""
LATEST = 0  # the dataset version select's value for "the latest when it starts"
LISTED = 500  # simulations.list's most: a project's simulations, newest first
POLL_MS = 3000  # while a simulation listed is queued or running, or its report is being written
MAX_POLLS = 200  # ten minutes, then the page stops asking (Refresh asks again)
VERDICT_TAB, GALLERY_TAB, PROBES_TAB, COMPARISON_TAB = range(4)
TEMPLATES_TAB = 1  # of the page's tabs: its simulations, then the scenario templates
FORM_HEIGHT = 70  # px: the Simulate form's row, kept for it until it is put in


def project_calls(api: DashboardAPI, project: str, simulation: str | None) -> dict[Hashable, Callable[[], Any]]:
    """The calls a project's view needs at once (the platform answers them side by side)."""
    calls: dict[Hashable, Callable[[], Any]] = {
        ("simulations", project): lambda: api.op("simulations.list", project=project, limit=LISTED)["simulations"],
        ("templates", project): lambda: api.op("simulation_templates.list", project=project)["templates"],
        ("models", project): lambda: api.models(project),
        ("datasets", project): lambda: api.datasets(project),
    }
    if simulation and simulation.isdigit():
        calls[("simulation", project, int(simulation))] = lambda: api.op(
            "simulations.get", project=project, simulation=int(simulation))
    return calls


def select(name: str, css_class: str, width: int, **options: Any) -> pn.widgets.Select:
    return pn.widgets.Select(name=name, width=width, css_classes=[css_class], **options)


def html(margin: tuple[int, ...] = (5, 10), **options: Any) -> pn.pane.HTML:
    return pn.pane.HTML(sizing_mode="stretch_width", margin=margin, **options)


class SimulationsPage(QuietChanges):
    """The page's state and widgets; one per browser session."""

    def __init__(self, api: DashboardAPI, me: dict[str, Any], messages: Messages,
                 prefetch: Prefetch | None = None) -> None:
        self.api, self.me, self.messages = api, me, messages
        self.prefetch = prefetch or Prefetch()
        self.language = page_language()
        self.simulations: list[dict[str, Any]] = []
        self.shown: list[dict[str, Any]] = []
        self.templates: list[dict[str, Any]] = []
        self.models: list[dict[str, Any]] = []
        self.datasets: list[dict[str, Any]] = []
        self.details: dict[int, dict[str, Any]] = {}
        self.comparisons: dict[tuple[int, str], dict[str, Any] | None] = {}
        self.template_texts: dict[tuple[str, int], dict[str, Any]] = {}
        self.selected: int | None = None
        self.current: dict[str, Any] = {}  # the simulation shown, and the report's reading of it
        self.found: dict[str, Any] = {}
        self.stale: set[int] = set()
        self.poller: Any = None
        self.polls = 0
        projects = project_options(me)
        self.project = pn.widgets.Select(name=_("Project"), options=projects, width=220,
                                         value=first_value(list(projects.values()), query_arg("project")))
        self.model = select(_("Model"), "simulation-model", 200, options={_("All models"): ALL})
        self.template = select(_("Template"), "simulation-template", 200, options={_("All templates"): ALL})
        self.state = select(_("State"), "simulation-state-filter", 140, options={
            _("All states"): ALL, **{state_label(state): state for state in STATES}})
        self.refresh = pn.widgets.Button(name=_("Refresh"), align="end", width=100, css_classes=["refresh"])
        self.summary = html(css_classes=["simulations-summary"])
        self.table = data_table(simulations_frame([]), name="simulations", page_size=12, selectable=1,
                                formatters={"state": {"type": "html"}})
        # The form: developers and above simulate; the others see why not.
        self.form_template = select(_("Template"), "simulate-template", 300)
        self.form_model = select(_("Model"), "simulate-model", 190)
        self.form_version = select(_("Version"), "simulate-version", 90)
        self.form_dataset = select(_("Dataset"), "simulate-dataset", 190)
        self.form_dataset_version = select(_("Dataset version"), "simulate-dataset-version", 120)
        self.form_uri = pn.widgets.TextInput(name=_("Endpoint address"), placeholder="https://…/v1/chat/completions",
                                             width=360, css_classes=["simulate-uri"])
        self.form_response = pn.widgets.TextInput(name=_("Answer's field"), value=DEFAULT_RESPONSE_FIELD,
                                                  width=260, css_classes=["simulate-response-field"])
        self.form_authorization = pn.widgets.PasswordInput(name=_("Authorization header (optional)"), width=240,
                                                           css_classes=["simulate-authorization"])
        self.form_request = pn.widgets.TextAreaInput(
            name=_("Request body ($INPUT is each probe's prompt)"), height=70, sizing_mode="stretch_width",
            value=json.dumps(DEFAULT_REQUEST), css_classes=["simulate-request"])
        self.simulate = pn.widgets.Button(name=_("Simulate"), button_type="primary", width=120, align="end",
                                          css_classes=["simulate"])
        self.refusal, self.problems = html(css_classes=["simulate-reason"]), html(margin=(0, 10))
        self.endpoint_rows = pn.Column(pn.Row(self.form_uri, self.form_response, self.form_authorization,
                                              sizing_mode="stretch_width"), self.form_request,
                                       sizing_mode="stretch_width", visible=False)
        # One simulation.
        self.title = html(margin=(10, 10, 0, 10))
        self.report_html, self.report_pdf = (pn.widgets.FileDownload(
            callback=lambda format=format: self.report(format), filename=f"simulation.{format}", label=label,
            button_type="light", width=220, css_classes=[f"report-{format}"], embed=False) for format, label in (
            ("html", _("Security assessment (HTML)")), ("pdf", _("Security assessment (PDF)"))))
        self.verdict, self.checks, self.regressions, self.facts = html(), html(margin=(0, 10)), \
            html(margin=(0, 10)), html()
        self.curves = pn.GridBox(ncols=2, sizing_mode="stretch_width", css_classes=["simulation-curves-grid"])
        self.gallery, self.probes, self.comparison = html(), html(), html()
        self.compare_with = select(_("Compare with"), "compare-with", 360)
        self.comparison_curves = pn.GridBox(ncols=2, sizing_mode="stretch_width")
        self.tabs = pn.Tabs(
            (_("Verdict and curves"), pn.Column(
                self.verdict, section(_("Thresholds")), self.checks, section(_("Against the previous version")),
                self.regressions, section(_("Curves")), self.curves, section(_("What was simulated")), self.facts,
                sizing_mode="stretch_width")),
            (_("Gallery"), self.gallery), (_("Probes"), self.probes),
            (_("Compared with another version"), pn.Column(self.compare_with, self.comparison,
                                                           self.comparison_curves, sizing_mode="stretch_width")),
            dynamic=True, sizing_mode="stretch_width", css_classes=["simulation-tabs"])
        self.detail = pn.Column(pn.Row(self.title, self.report_html, self.report_pdf, sizing_mode="stretch_width"),
                                self.tabs, sizing_mode="stretch_width", css_classes=["simulation-detail"])
        self.nothing = pn.Column(sizing_mode="stretch_width")  # a chart saying there is no simulation yet
        # The templates.
        self.templates_table = data_table(templates_frame([]), name="simulation-templates", page_size=20,
                                          selectable=1, widths={"conditions": 320, "thresholds": 420})
        self.template_version = select(_("Version"), "template-version", 110)
        self.template_detail = html()
        # The Simulate form (a dozen widgets, the endpoint's among them) is put in once the page is shown; its
        # place is kept meanwhile, so the verdict below does not move.
        self.form_area = pn.Column(pn.Spacer(height=FORM_HEIGHT), sizing_mode="stretch_width")
        self.page_tabs = pn.Tabs(
            (_("Simulations"), pn.Column(
                self.summary, self.table, section(_("Simulate")), self.form_area, self.detail, self.nothing,
                sizing_mode="stretch_width")),
            (_("Scenario templates"), pn.Column(self.templates_table, self.template_version, self.template_detail,
                                                sizing_mode="stretch_width")),
            dynamic=True, sizing_mode="stretch_width", css_classes=["simulation-page-tabs"])

        self.load_project(query_arg("model"), query_arg("template"), query_arg("state"), query_arg("simulation"))
        self.project.param.watch(lambda _event: self.on_project(), "value")
        for widget in (self.model, self.template, self.state):
            widget.param.watch(lambda _event: self._quiet or self.on_filter(), "value")
        self.table.param.watch(lambda _event: self._quiet or self.on_selected(), "selection")
        self.tabs.param.watch(lambda _event: self.draw_tab(), "active")
        self.compare_with.param.watch(lambda _event: self._quiet or self.draw_comparison(), "value")
        self.page_tabs.param.watch(lambda _event: self.show_templates(), "active")
        self.templates_table.param.watch(lambda _event: self._quiet or self.on_template_selected(), "selection")
        self.template_version.param.watch(lambda _event: self._quiet or self.show_template(), "value")
        self.form_template.param.watch(lambda _event: self.show_form(), "value")
        self.form_model.param.watch(lambda _event: self.choose_versions(), "value")
        self.form_dataset.param.watch(lambda _event: self.choose_dataset_versions(), "value")
        self.simulate.on_click(lambda _event: self.start_simulation())
        self.refresh.on_click(lambda _event: self.reload())
        if pn.state.curdoc is not None and pn.state.curdoc.session_context is not None:
            # The browser's own address is synced when it connects, after construction: say the view after that.
            pn.state.onload(self.share)
        pn.state.onload(lambda: self.form_area.param.update(objects=[pn.Row(
            self.form_template, self.form_model, self.form_version, self.form_dataset, self.form_dataset_version,
            self.simulate, sizing_mode="stretch_width", css_classes=["simulate-form"]),
            self.endpoint_rows, self.refusal, self.problems]))  # at once when there is no session

    def share(self) -> None:
        """The view in the address, so it can be shared and reloaded."""
        update_query(project=self.project.value, model=self.model.value, template=self.template.value,
                     state=self.state.value, simulation=self.selected or "")

    # ----- data -----

    def take(self, key: Hashable, doing: str, call: Callable[[], Any], default: Any) -> Any:
        """A prefetched (or fresh) answer, or ``default`` with the refusal as a banner."""
        return self.messages.attempt(doing, lambda: self.prefetch.take(key, call), default)

    def load_project(self, wanted_model: str | None = None, wanted_template: str | None = None,
                     wanted_state: str | None = None, wanted_simulation: str | None = None) -> None:
        project = self.project.value
        self.simulations, self.templates, self.models, self.datasets = [], [], [], []
        self.details, self.comparisons, self.template_texts, self.current = {}, {}, {}, {}
        if not project:
            self.messages.note(_("You are not a member of any project yet: ask a project's maintainer to add you."))
        else:
            calls = project_calls(self.api, project, wanted_simulation)
            if not self.prefetch.holds(("simulations", project)):
                self.prefetch = Prefetch(calls)
            for name, doing in (("simulations", _("list the simulations of {project}")),
                                ("templates", _("list the scenario templates of {project}")),
                                ("models", _("list the models of {project}")),
                                ("datasets", _("list the datasets of {project}"))):
                setattr(self, name, self.take((name, project), doing.format(project=project), calls[(name, project)],
                                              []))
            key = ("simulation", project, int(wanted_simulation)) if wanted_simulation and \
                wanted_simulation.isdigit() else None
            if key and self.prefetch.holds(key):
                detail = self.messages.attempt(_("read simulation {simulation}").format(simulation=wanted_simulation),
                                               lambda: self.prefetch.take(key, lambda: None), None)
                if detail:
                    self.details[int(detail["id"])] = detail
        with self.quietly():
            self.fill_filters(wanted_model, wanted_template, wanted_state)
            self.form_template.options = template_options(self.templates)
            self.form_template.value = first_value(list(self.form_template.options.values()),
                                                   self.form_template.value)
            self.form_model.options = [model["name"] for model in self.models]
            self.form_model.value = first_value(self.form_model.options, self.model.value)
            self.form_dataset.options = [dataset["name"] for dataset in self.datasets]
            self.form_dataset.value = first_value(self.form_dataset.options, self.form_dataset.value)
            # The templates' table holds its rows before its tab is first shown, so that it is drawn with them:
            # rows given to a Tabulator as its tab appears were once not drawn at all on a loaded machine.
            self.templates_table.value = templates_frame(self.templates)
            self.templates_table.selection = [0] if self.templates else []
        self.choose_versions()
        self.choose_dataset_versions()
        self.show_list(wanted_simulation)
        self.show_templates()

    def fill_filters(self, model: str | None, template: str | None, state: str | None) -> None:
        self.model.options, self.template.options = filter_options(self.simulations, self.models, self.templates)
        self.model.value = first_value(list(self.model.options.values()), model)
        self.template.value = first_value(list(self.template.options.values()), template)
        self.state.value = first_value([ALL, *STATES], state)

    def simulation(self, simulation_id: int) -> dict[str, Any] | None:
        """One simulation with its result; kept once settled (a settled simulation does not change)."""
        known = self.details.get(simulation_id)
        if known is not None and settled(known):
            return known
        detail = self.messages.attempt(_("read simulation {simulation}").format(simulation=simulation_id),
                                       lambda: self.api.op("simulations.get", project=self.project.value,
                                                           simulation=simulation_id), None)
        if detail is not None:
            self.details[simulation_id] = detail
        return detail

    def report(self, format: str) -> io.BytesIO | None:
        if self.selected is None:
            return None
        try:
            return io.BytesIO(self.api.op("simulations.report", project=self.project.value, simulation=self.selected,
                                          format=format, lang=self.language))
        except (AitipAPIError, NotSignedIn) as error:
            self.messages.error(error, _("download the security assessment of simulation {simulation}").format(
                simulation=self.selected))
            return None

    # ----- the list and one simulation -----

    def show_list(self, wanted: str | None = None) -> None:
        """The table of the simulations the filters keep, one of them shown."""
        project = self.project.value
        self.shown = filter_simulations(self.simulations, self.model.value, self.template.value, self.state.value)
        self.summary.object = summary_html(project, self.shown, len(self.simulations)) if project else ""
        self.selected = default_simulation(self.shown, wanted or (str(self.selected) if self.selected else None))
        ids = [int(s["id"]) for s in self.shown]
        with self.quietly():
            self.table.value = simulations_frame(self.shown)
            self.table.selection = [ids.index(self.selected)] if self.selected in ids else []
        self.show_simulation()
        self.poll_while_unfinished()

    def show_simulation(self) -> None:
        detail = self.simulation(self.selected) if self.selected is not None else None
        self.detail.visible = detail is not None
        # Built only when shown: a Bokeh pane does not hide its figure, and a hidden one still costs the first paint.
        self.nothing.objects = [] if detail is not None else [pn.pane.Bokeh(figures.empty(
            _("no simulation to draw yet"), "simulation-curves"), sizing_mode="stretch_width")]
        if detail is None:
            self.current, self.found = {}, {}
            self.share()
            return
        if detail is self.current and settled(detail):
            self.share()
            return
        self.current = detail
        self.found = context(detail, previous_of(detail, self.simulations), self.language)
        self.title.object = title_html(detail)
        for download, format in ((self.report_html, "html"), (self.report_pdf, "pdf")):
            download.filename = f"simulation-{detail['id']}.{self.language}.{format}"
            download.disabled = not detail.get("has_report")
        self.verdict.object = verdict_html(self.found, detail)
        self.checks.object = checks_html(self.found)
        self.regressions.object = regressions_html(self.found, bool(detail.get("model")))
        self.facts.object = facts_html(self.found)
        self.stale = {VERDICT_TAB, GALLERY_TAB, PROBES_TAB, COMPARISON_TAB}
        self.choose_comparison()
        self.draw_tab()
        self.share()

    def draw_tab(self) -> None:
        """The open tab, drawn on first opening after the simulation shown changed."""
        active = self.tabs.active
        if active not in self.stale or not self.current:
            return
        self.stale.discard(active)
        kind = str(self.current.get("kind") or "")
        if active == VERDICT_TAB:
            self.curves.objects = figures.curves_panes(self.current)
        elif active == GALLERY_TAB:
            self.gallery.object = gallery_html(self.found, kind)
        elif active == PROBES_TAB:
            self.probes.object = probes_html(self.found, kind)
        elif active == COMPARISON_TAB:
            self.draw_comparison()

    # ----- comparison -----

    def choose_comparison(self) -> None:
        """What the shown simulation can be compared with: the version it was judged against, or any other judged
        simulation of its template."""
        options = figures.comparison_options(self.current, self.simulations)
        with self.quietly():
            self.compare_with.options = options
            self.compare_with.value = first_value(list(options.values()), self.compare_with.value)
        self.compare_with.visible = bool(options)

    def draw_comparison(self) -> None:
        detail = self.current
        if not detail:
            return
        other = self.compare_with.value if self.compare_with.options else None
        if other is None:
            self.comparison.object, self.comparison_curves.objects = figures.no_comparison_html(detail), []
            return
        key = (int(detail["id"]), other)
        if key not in self.comparisons:
            self.comparisons[key] = self.messages.attempt(
                _("compare simulation {simulation}").format(simulation=detail["id"]),
                lambda: self.api.op("simulations.compare", project=self.project.value, simulation=int(detail["id"]),
                                    other=int(other) if other else None), None)
        comparison = self.comparisons[key]
        if comparison is None:
            self.comparison.object, self.comparison_curves.objects = "", []
            return
        self.comparison.object = figures.comparison_html(comparison)
        self.comparison_curves.objects = figures.comparison_panes(comparison)

    # ----- templates -----

    def show_templates(self) -> None:
        """The chosen template's detail, read when the templates' tab is shown."""
        if self.page_tabs.active == TEMPLATES_TAB:
            self.on_template_selected()

    def on_template_selected(self) -> None:
        chosen = [index for index in self.templates_table.selection if index < len(self.templates)]
        if not chosen:
            self.template_detail.object, self.template_version.visible = "", False
            return
        template = self.templates[chosen[0]]
        versions = sorted(template.get("versions") or [template["version"]], reverse=True)
        with self.quietly():
            self.template_version.options = {f"v{version}": version for version in versions}
            self.template_version.value = versions[0]
        self.template_version.visible = len(versions) > 1
        self.show_template()

    def show_template(self) -> None:
        chosen = [index for index in self.templates_table.selection if index < len(self.templates)]
        if not chosen:
            return
        name, version = self.templates[chosen[0]]["name"], int(self.template_version.value)
        if (name, version) not in self.template_texts:
            found = self.messages.attempt(_("read template {template}").format(template=f"{name}@{version}"),
                                          lambda: self.api.op("simulation_templates.get", project=self.project.value,
                                                              template=name, version=version), None)
            if found is None:
                return
            self.template_texts[(name, version)] = found
        self.template_detail.object = template_html(self.template_texts[(name, version)])

    # ----- the form -----

    def choose_versions(self) -> None:
        model = next((m for m in self.models if m["name"] == self.form_model.value), None)
        versions = sorted((int(v["version"]) for v in (model or {}).get("versions", [])), reverse=True)
        self.form_version.options = {f"v{number}": number for number in versions}
        if versions and self.form_version.value not in versions:
            self.form_version.value = versions[0]
        self.show_form()

    def choose_dataset_versions(self) -> None:
        dataset = next((d for d in self.datasets if d["name"] == self.form_dataset.value), None)
        latest = int((dataset or {}).get("latest_version") or 0)
        self.form_dataset_version.options = {_("latest"): LATEST, **{f"v{n}": n for n in range(latest, 0, -1)}}
        self.form_dataset_version.value = LATEST

    def show_form(self) -> None:
        """The endpoint's fields for an LLM template, the model's and dataset's otherwise; disabled, with why,
        for those who may not simulate."""
        probes_endpoint = kind_of(self.templates, self.form_template.value) == "llm"
        for widget in (self.form_model, self.form_version, self.form_dataset, self.form_dataset_version):
            widget.visible = not probes_endpoint
        self.endpoint_rows.visible = probes_endpoint
        refusal = form_refusal(self.me, self.project.value, probes_endpoint, bool(self.form_version.options))
        for widget in (self.form_model, self.form_version, self.form_dataset, self.form_dataset_version,
                       self.form_uri, self.form_response, self.form_authorization, self.form_request, self.simulate):
            widget.disabled = refusal is not None
        self.form_template.disabled = simulate_refusal(self.me, self.project.value) is not None
        self.refusal.object = "" if refusal is None else \
            f"<span class='simulate-refused' style='color:#555'>{escape(refusal)}</span>"

    def start_simulation(self) -> None:
        self.messages.reset()
        self.problems.object = ""
        reference = self.form_template.value
        if simulate_refusal(self.me, self.project.value) is not None or not reference:
            return
        try:
            arguments, doing = simulation_request(
                self.templates, reference, model=self.form_model.value, version=self.form_version.value,
                dataset=self.form_dataset.value, dataset_version=self.form_dataset_version.value,
                endpoint=(self.form_uri.value, self.form_request.value, self.form_response.value,
                          self.form_authorization.value))
        except ValueError as error:
            self.problems.object = problems_html([{"field": "endpoint", "message": str(error)}])
            return
        try:
            created = self.api.op("simulations.create", project=self.project.value, **arguments)
        except (AitipAPIError, NotSignedIn) as error:
            self.messages.error(error, doing)
            self.problems.object = problems_html(getattr(error, "detail", None))
            return
        self.messages.info(_("Simulation {id} ({template}) started; it is judged when its sandboxed job ends.")
                           .format(id=created["id"], template=reference))
        self.selected = int(created["id"])
        with self.quietly():
            self.model.value, self.template.value, self.state.value = ALL, ALL, ALL
        self.reload(keep_messages=True)

    # ----- reactions -----

    def reload(self, keep_messages: bool = False) -> None:
        if not keep_messages:
            self.messages.reset()
            self.polls = 0
        project = self.project.value
        self.simulations = self.messages.attempt(_("list the simulations of {project}").format(project=project),
                                                 lambda: self.api.op("simulations.list", project=project,
                                                                     limit=LISTED)["simulations"], self.simulations)
        with self.quietly():
            self.fill_filters(self.model.value, self.template.value, self.state.value)
        self.show_list(str(self.selected) if self.selected else None)

    def poll_while_unfinished(self) -> None:
        """Reload every few seconds while a simulation listed is queued or running, so its verdict appears."""
        unfinished = any(not settled(simulation) for simulation in self.simulations) and self.polls < MAX_POLLS
        if unfinished and self.poller is None and pn.state.curdoc is not None and \
                pn.state.curdoc.session_context is not None:
            self.poller = pn.state.add_periodic_callback(self.poll, period=POLL_MS)
        elif not unfinished and self.poller is not None:
            self.poller.stop()
            self.poller = None

    def poll(self) -> None:
        self.polls += 1
        self.reload(keep_messages=True)

    def on_project(self) -> None:
        self.messages.reset()
        self.selected = None
        self.load_project()

    def on_filter(self) -> None:
        self.selected = None
        if self.model.value and self.model.value != ENDPOINTS:
            with self.quietly():
                self.form_model.value = first_value(self.form_model.options, self.model.value)
            self.choose_versions()
        self.show_list()

    def on_selected(self) -> None:
        chosen = [index for index in self.table.selection if index < len(self.shown)]
        if not chosen:
            return
        self.selected = int(self.shown[chosen[0]]["id"])
        self.show_simulation()

    def view(self) -> pn.Column:
        return pn.Column(
            pn.Row(self.project, self.model, self.template, self.state, self.refresh, sizing_mode="stretch_width"),
            self.page_tabs,
            sizing_mode="stretch_width",
        )


def page() -> pn.Column:
    pn.extension("tabulator")
    return prefetched_page(PAGE, lambda api, project: project_calls(api, project, query_arg("simulation")),
                           lambda api, me, messages, prefetch: SimulationsPage(api, me, messages, prefetch).view())


if __name__.startswith("bokeh_app"):
    page().servable(title=page_title(PAGE))
