"""Serving: a project's endpoints (model, each version's weight, state and replicas, the address callers use); one
endpoint's weights as a stacked bar and its versions, live charts of each version's requests, error rate and p50 /
p99 latency (``endpoints.metrics``, refreshed every 5 s), each version's totals, and a "try it" box that sends an
Open Inference Protocol request (prefilled from the model's signature) to the endpoint as the signed-in viewer and
shows the answer, the version that answered and the time it took. Developers and above set the versions' weights
and add a registered version as a canary; the others read everything and may call the endpoints (``serving.invoke``
is a viewer's right), and are told why the form is not theirs.

Address: ``serving?project=P&endpoint=NAME&window=MINUTES``. The endpoints, the project's models and (when the
address names an endpoint) its metrics are fetched together while the session is created. The first paint is the
list, the weights and the requests chart; the error rate and latency charts, the weights form and the try-it box
(its example asked of the endpoint, :mod:`panel_apps.serving_calls`) are put in once the page is shown."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Hashable
from html import escape
from typing import Any

import panel as pn

from aitip.client import AitipAPIError
from panel_apps import serving_charts as figures
from panel_apps.api import DashboardAPI
from panel_apps.components import (Messages, NotSignedIn, Prefetch, QuietChanges, data_table, first_value,
                                   page_title, prefetched_page, project_options, query_arg, section, update_query,
                                   viewer_connected)
from panel_apps.language import _, page_language, use_language
from panel_apps.serving_calls import call_endpoint
from panel_apps.serving_views import (answer_html, bucket_seconds, canary_options, default_endpoint, deploy_refusal,
                                      empty_state, endpoints_frame, example_request, infer_path, no_traffic_html,
                                      parse_request, problems_html, public_origin, request_text, series_by_version,
                                      summary_html, table_titles, title_html, total_html, totals_html,
                                      traffic_request, traffic_state, versions_html, weighted_versions,
                                      window_options)

PAGE = "serving"
REFRESH_MS = 5000  # the platform writes each version's point every 5 s
DEFAULT_WINDOW = 60
SPLIT = ""  # the try-it target that goes where the traffic split sends it


def window_of(text: str | None) -> int:
    return int(text) if text and text.isdigit() and int(text) in window_options().values() else DEFAULT_WINDOW


def project_calls(api: DashboardAPI, project: str, endpoint: str | None,
                  minutes: int = DEFAULT_WINDOW) -> dict[Hashable, Callable[[], Any]]:
    """The calls a project's view needs at once (the platform answers them side by side)."""
    calls: dict[Hashable, Callable[[], Any]] = {
        ("endpoints", project): lambda: api.op("endpoints.list", project=project)["endpoints"],
        ("models", project): lambda: api.models(project),
    }
    if endpoint:
        calls[("metrics", project, endpoint, minutes)] = lambda: api.op(
            "endpoints.metrics", project=project, endpoint=endpoint, minutes=minutes)
    return calls


def html(margin: tuple[int, ...] = (5, 10), **options: Any) -> pn.pane.HTML:
    return pn.pane.HTML(sizing_mode="stretch_width", margin=margin, **options)


class ServingPage(QuietChanges):
    """The page's state and widgets; one per browser session."""

    def __init__(self, api: DashboardAPI, me: dict[str, Any], messages: Messages,
                 prefetch: Prefetch | None = None) -> None:
        self.api, self.me, self.messages = api, me, messages
        self.prefetch = prefetch or Prefetch()
        self.language = page_language()
        self.origin = public_origin(pn.state.headers)
        self.endpoints: list[dict[str, Any]] = []
        self.models: list[dict[str, Any]] = []
        self.metrics: dict[str, Any] | None = None
        self.examples: dict[tuple[str, str], str] = {}
        self.selected: str | None = None
        self.refresher: Any = None
        projects = project_options(me)
        self.project = pn.widgets.Select(name=_("Project"), options=projects, width=240,
                                         value=first_value(list(projects.values()), query_arg("project")))
        windows = window_options()
        self.window = pn.widgets.Select(name=_("Charts over"), options=windows, width=170,
                                        value=window_of(query_arg("window")), css_classes=["serving-window"])
        self.refresh = pn.widgets.Button(name=_("Refresh"), align="end", width=100, css_classes=["refresh"])
        self.summary = html(css_classes=["endpoints-summary"])
        self.table = data_table(endpoints_frame([]), name="endpoints", page_size=10, selectable=1,
                                titles=table_titles(), formatters={"versions": {"type": "html"}},
                                widths={"versions": 520})
        # One endpoint.
        self.title = html(margin=(10, 10, 0, 10))
        self.weights = pn.Column(sizing_mode="stretch_width", css_classes=["serving-weights-pane"])
        self.versions = html(margin=(0, 10))
        # The form (developers and above) or why not.
        self.weight_inputs: dict[int, pn.widgets.IntInput] = {}
        self.weights_row = pn.Row()
        self.total = html(margin=(0, 10))
        self.apply = pn.widgets.Button(name=_("Set the weights"), button_type="primary", width=150, align="end",
                                       css_classes=["set-traffic"])
        self.canary_version = pn.widgets.Select(name=_("Registered version"), width=170,
                                                css_classes=["canary-version"])
        self.canary_weight = pn.widgets.IntInput(name=_("Its weight (%)"), value=10, start=0, end=100, width=120,
                                                 css_classes=["canary-weight"])
        self.add_canary = pn.widgets.Button(name=_("Add as a canary"), width=150, align="end",
                                            css_classes=["add-canary"])
        self.canary_note = html(margin=(0, 10))
        self.problems = html(margin=(0, 10), css_classes=["serving-problems-pane"])
        self.form = pn.Column(
            section(_("Traffic")),
            pn.pane.HTML(escape(_("Each version's share of the requests, in percent; they sum to 100. A request in "
                                  "flight finishes where it is.")), margin=(0, 10), sizing_mode="stretch_width"),
            pn.Row(self.weights_row, self.apply, sizing_mode="stretch_width"), self.total,
            pn.Row(self.canary_version, self.canary_weight, self.add_canary, sizing_mode="stretch_width"),
            self.canary_note, self.problems, sizing_mode="stretch_width", css_classes=["traffic-form"])
        self.refusal = html(css_classes=["traffic-refusal"])
        self.controls = pn.Column(sizing_mode="stretch_width")
        # The live charts.
        self.live = figures.LiveCharts()
        self.charts_note = html()
        self.charts = pn.Column(sizing_mode="stretch_width", css_classes=["serving-charts"])
        self.totals = html(margin=(0, 10))
        # Try it.
        self.try_target = pn.widgets.Select(name=_("Send to"), width=240, css_classes=["try-target"])
        self.try_request = pn.widgets.TextAreaInput(name=_("Request (Open Inference Protocol, JSON)"), height=170,
                                                    sizing_mode="stretch_width", css_classes=["try-request"])
        self.try_send = pn.widgets.Button(name=_("Send"), button_type="primary", width=120, align="end",
                                          css_classes=["try-send"])
        self.try_example = pn.widgets.Button(name=_("Example from the signature"), width=220, align="end",
                                             css_classes=["try-example"])
        self.try_note = html(margin=(0, 10))
        self.try_answer = html(css_classes=["try-answer-pane"])
        # The weights form and the try-it box (a dozen widgets) are drawn once the page is shown: the first paint
        # is the list, the weights and the live charts.
        self.try_it = pn.Column(sizing_mode="stretch_width")
        self.shown = False
        self.detail = pn.Column(
            self.title, self.weights, self.versions, self.controls,
            section(_("Live traffic")), self.charts_note, self.charts, self.totals,
            section(_("Try it")), self.try_it, sizing_mode="stretch_width", css_classes=["endpoint-detail"])
        self.nothing = html(css_classes=["serving-nothing"])

        self.load_project(query_arg("endpoint"))
        self.project.param.watch(lambda _event: self.on_project(), "value")
        self.window.param.watch(lambda _event: self._quiet or self.on_window(), "value")
        self.table.param.watch(lambda _event: self._quiet or self.on_selected(), "selection")
        self.refresh.on_click(lambda _event: self.reload())
        self.apply.on_click(lambda _event: self.set_traffic())
        self.add_canary.on_click(self.add_version)
        self.try_send.on_click(self.send)
        self.try_example.on_click(lambda _event: self.fill_example(force=True))
        if pn.state.curdoc is not None and pn.state.curdoc.session_context is not None:
            # The browser's own address is synced once it connects; the example is asked of the endpoint then too.
            pn.state.onload(self.after_shown)
            pn.state.onload(self.ask_example)  # off the server's loop: the next page's request is not kept waiting
            self.refresher = pn.state.add_periodic_callback(self.tick, period=REFRESH_MS)
        else:  # no browser to wait for
            self.draw_below()

    def after_shown(self) -> None:
        self.share()
        self.draw_below()

    async def ask_example(self) -> None:
        """The try-it example, asked of the endpoint in a thread once the page is shown."""
        endpoint = self.endpoint()
        if endpoint is None:
            return
        key = (self.project.value, endpoint["name"])
        answer = None if key in self.examples else await asyncio.to_thread(
            call_endpoint, self.api, key[0], key[1], f"v2/models/{key[1]}")
        with use_language(self.language):
            self.fill_example(answer=answer)

    def draw_below(self) -> None:
        """The weights form (or why not) and the try-it box."""
        self.shown = True
        endpoint = self.endpoint()
        if endpoint is not None:
            self.show_form(endpoint)
        if self.live.complete():
            self.place_charts()
        self.try_it.objects = [
            self.try_note, self.try_request,
            pn.Row(self.try_target, self.try_example, self.try_send, sizing_mode="stretch_width"), self.try_answer]

    def share(self) -> None:
        """The view in the address, so it can be shared and reloaded."""
        update_query(project=self.project.value, endpoint=self.selected or "", window=self.window.value)

    # ----- data -----

    def take(self, key: Hashable, doing: str, call: Callable[[], Any], default: Any) -> Any:
        return self.messages.attempt(doing, lambda: self.prefetch.take(key, call), default)

    def endpoint(self) -> dict[str, Any] | None:
        return next((e for e in self.endpoints if e["name"] == self.selected), None)

    def load_project(self, wanted: str | None = None) -> None:
        project = self.project.value
        self.endpoints, self.models, self.metrics = [], [], None
        if not project:
            self.messages.note(_("You are not a member of any project yet: ask a project's maintainer to add you."))
        else:
            calls = project_calls(self.api, project, wanted, self.window.value)
            if not self.prefetch.holds(("endpoints", project)):
                self.prefetch = Prefetch(calls)
            self.endpoints = self.take(("endpoints", project), _("list the endpoints of {project}").format(
                project=project), calls[("endpoints", project)], [])
            self.models = self.take(("models", project), _("list the models of {project}").format(project=project),
                                    calls[("models", project)], [])
        self.show_list(wanted)

    def read_metrics(self) -> dict[str, Any] | None:
        project, name, minutes = self.project.value, self.selected, self.window.value
        if not name:
            return None
        key = ("metrics", project, name, minutes)
        return self.messages.attempt(
            _("read the metrics of endpoint {endpoint}").format(endpoint=name),
            lambda: self.prefetch.take(key, lambda: self.api.op("endpoints.metrics", project=project,
                                                               endpoint=name, minutes=minutes)), None)

    # ----- the list and one endpoint -----

    def show_list(self, wanted: str | None = None) -> None:
        project = self.project.value
        self.selected = default_endpoint(self.endpoints, wanted or self.selected)
        self.summary.object = summary_html(project, self.endpoints) if project and self.endpoints else ""
        self.table.visible = bool(self.endpoints)
        names = [e["name"] for e in self.endpoints]
        with self.quietly():
            self.table.value = endpoints_frame(self.endpoints, self.origin)
            self.table.selection = [names.index(self.selected)] if self.selected in names else []
        self.show_endpoint(fresh=True)

    def show_endpoint(self, fresh: bool = False) -> None:
        """The selected endpoint: title, weights, versions, the form, the charts and the try-it box."""
        endpoint = self.endpoint()
        self.detail.visible = endpoint is not None
        project = self.project.value
        if endpoint is None:
            self.live.clear()
            self.charts.objects, self.weights.objects = [], []
            self.nothing.object = empty_state(project, self.models, deploy_refusal(self.me, project) is None) \
                if project else ""
            self.share()
            return
        self.nothing.object = ""
        self.title.object = title_html(endpoint, self.origin)
        self.show_versions(endpoint)
        self.show_form(endpoint)
        if fresh:
            self.live.clear()
            self.try_answer.object = ""
            self.metrics = self.read_metrics()
        self.show_charts()
        self.choose_targets(endpoint)
        self.share()

    def show_versions(self, endpoint: dict[str, Any]) -> None:
        self.weights.objects = [pn.pane.Bokeh(figures.weights_figure(endpoint), sizing_mode="stretch_width")]
        self.versions.object = versions_html(endpoint)

    def show_charts(self) -> None:
        endpoint = self.endpoint()
        if endpoint is None:
            return
        series = series_by_version(self.metrics, self.window.value)
        state = traffic_state(self.metrics)
        self.charts_note.object = "" if series else no_traffic_html(endpoint, state, self.origin)
        if series:
            if self.live.draw(endpoint, series, bucket_seconds(self.window.value), first_only=not self.shown):
                self.place_charts()
        else:
            self.live.clear()
            self.charts.objects = []
        self.totals.object = totals_html(self.metrics, endpoint)

    def place_charts(self) -> None:
        """Requests and error rate side by side, latency below; before the page is shown, the requests chart alone
        (its half of the row kept)."""
        beside = self.live.panes[1] if len(self.live.panes) > 1 else pn.Spacer(sizing_mode="stretch_width")
        self.charts.objects = [pn.Row(self.live.panes[0], beside, sizing_mode="stretch_width"),
                               *self.live.panes[2:]]

    # ----- the weights form -----

    def show_form(self, endpoint: dict[str, Any], rebuild: bool = False) -> None:
        """The form for developers and above (its inputs rebuilt when the versions change, so an edit in progress
        survives a refresh); for the others, why it is not theirs."""
        if not self.shown:
            return  # drawn once the page is shown (after_shown)
        refusal = deploy_refusal(self.me, self.project.value)
        if refusal is not None:
            self.refusal.object = f"<span class='traffic-refused' style='color:#555'>{escape(refusal)}</span>"
            self.controls.objects = [self.refusal]
            return
        self.controls.objects = [self.form]
        versions = weighted_versions(endpoint)
        if rebuild or list(self.weight_inputs) != versions:
            current = {int(v["version"]): int(v.get("weight") or 0) for v in endpoint.get("variants") or []}
            self.weight_inputs = {version: pn.widgets.IntInput(
                name=_("v{version} (%)").format(version=version), value=current.get(version, 0), start=0, end=100,
                width=110, css_classes=["weight-input", f"weight-v{version}"]) for version in versions}
            for widget in self.weight_inputs.values():
                widget.param.watch(lambda _event: self.show_total(), "value")
            self.weights_row.objects = list(self.weight_inputs.values())
            self.problems.object = ""
        self.show_total()
        options = canary_options(endpoint, self.models)
        self.canary_version.options = options
        self.canary_version.value = first_value(list(options.values()), self.canary_version.value)
        for widget in (self.canary_version, self.canary_weight, self.add_canary):
            widget.disabled = not options
        self.canary_note.object = "" if options else "<span class='canary-none' style='color:#555'>" + escape(_(
            "Every registered version of {model} is deployed here: register a new one to add it as a canary.")
            .format(model=endpoint["model"])) + "</span>"

    def show_total(self) -> None:
        self.total.object = total_html({version: widget.value for version, widget in self.weight_inputs.items()})

    def set_traffic(self) -> None:
        endpoint = self.endpoint()
        if endpoint is None:
            return
        self.messages.reset()
        self.problems.object = ""
        body = traffic_request(endpoint, {version: widget.value for version, widget in self.weight_inputs.items()})
        doing = _("set the weights of endpoint {endpoint}").format(endpoint=endpoint["name"])
        try:
            changed = self.api.op("endpoints.traffic", project=self.project.value,
                                 endpoint=endpoint["name"], **body)
        except (AitipAPIError, NotSignedIn) as error:
            self.messages.error(error, doing)
            self.problems.object = problems_html(getattr(error, "detail", None))
            return
        self.messages.info(_("The weights of {endpoint} are now {weights}: the next requests follow them.").format(
            endpoint=endpoint["name"], weights=", ".join(f"v{v['version']} {v['weight']} %"
                                                         for v in changed["variants"] if not v.get("shadow"))))
        self.replace(changed, rebuild=True)

    async def add_version(self, _event: Any = None) -> None:
        """Deploy the chosen registered version beside the others with its weight (the platform answers once it
        serves, a few seconds; the page waits off the server's loop)."""
        endpoint, version, weight = self.endpoint(), self.canary_version.value, self.canary_weight.value
        if endpoint is None or not version:
            return
        project = self.project.value
        with use_language(self.language):
            self.messages.reset()
            self.problems.object = ""
            doing = _("add version {version} to endpoint {endpoint}").format(version=version,
                                                                             endpoint=endpoint["name"])
            self.canary_note.object = "<span class='canary-starting'>" + escape(_(
                "Starting version {version}: the endpoint answers once its replicas serve …").format(
                version=version)) + "</span>"
        self.add_canary.loading = True
        try:
            changed = await asyncio.to_thread(lambda: self.api.op(
                "endpoints.add_version", project=project, endpoint=endpoint["name"], version=int(version),
                weight=int(weight or 0)))
        except (AitipAPIError, NotSignedIn) as error:
            with use_language(self.language):
                self.messages.error(error, doing)
                self.problems.object = problems_html(getattr(error, "detail", None))
                self.canary_note.object = ""
            return
        finally:
            self.add_canary.loading = False
        with use_language(self.language):
            self.messages.info(_("Version {version} serves {weight} % of {endpoint}'s requests as a canary.").format(
                version=version, weight=weight, endpoint=endpoint["name"]))
            self.replace(changed, rebuild=True)

    def replace(self, endpoint: dict[str, Any], rebuild: bool = False) -> None:
        """An endpoint as the platform now answers it, shown everywhere it appears."""
        self.endpoints = [endpoint if e["name"] == endpoint["name"] else e for e in self.endpoints]
        names = [e["name"] for e in self.endpoints]
        with self.quietly():
            self.table.value = endpoints_frame(self.endpoints, self.origin)
            self.table.selection = [names.index(self.selected)] if self.selected in names else []
        if endpoint["name"] != self.selected:
            return
        self.show_versions(endpoint)
        self.show_form(endpoint, rebuild=rebuild)
        self.choose_targets(endpoint)
        self.show_charts()

    # ----- try it -----

    def choose_targets(self, endpoint: dict[str, Any]) -> None:
        options = {_("the traffic split"): SPLIT, **{_("version {version} only").format(version=v["version"]):
                                                     str(v["version"]) for v in endpoint.get("variants") or []}}
        with self.quietly():
            self.try_target.options = options
            self.try_target.value = first_value(list(options.values()), self.try_target.value)

    def fill_example(self, force: bool = False, answer: tuple[int, str | None, float, bytes] | None = None) -> None:
        """The request box: an example of one row built from the model's signature, asked of the endpoint itself
        (``GET v2/models/<name>``, or its ``answer`` already asked) once per endpoint; kept when the viewer has
        written something of their own."""
        endpoint = self.endpoint()
        if endpoint is None:
            return
        key = (self.project.value, endpoint["name"])
        if key not in self.examples:
            status, _version, _took, body = answer or call_endpoint(self.api, key[0], key[1], f"v2/models/{key[1]}")
            metadata = None
            if status == 200:
                try:
                    metadata = json.loads(body)
                except ValueError:
                    metadata = None
            self.examples[key] = request_text(example_request(metadata))
            self.try_note.object = "" if metadata else "<span class='try-no-signature' style='color:#555'>" + \
                escape(_("The endpoint did not describe its inputs (HTTP {status}): the example is a guess; write "
                         "the request its model takes.").format(status=status)) + "</span>"
        if force or not self.try_request.value.strip() or self.try_request.value in self.examples.values():
            self.try_request.value = self.examples[key]

    async def send(self, _event: Any = None) -> None:
        """The box's request to the endpoint (the split, or the version chosen), as the viewer; its answer."""
        endpoint = self.endpoint()
        if endpoint is None:
            return
        project, name, target = self.project.value, endpoint["name"], self.try_target.value
        with use_language(self.language):
            try:
                body = parse_request(self.try_request.value)
            except ValueError as error:
                self.try_answer.object = f"<p class='try-invalid' style='color:#842029'>{escape(str(error))}</p>"
                return
        path = infer_path(endpoint, int(target) if target else None)
        self.try_send.loading = True
        try:
            status, version, took, answer = await asyncio.to_thread(call_endpoint, self.api, project, name, path,
                                                                    body, self.language)
        finally:
            self.try_send.loading = False
        with use_language(self.language):
            self.try_answer.object = answer_html(status, version, took, answer)

    # ----- reactions -----

    def tick(self) -> None:
        """Every 5 s: the endpoint's state and its metrics, the charts' data replaced in place."""
        endpoint = self.endpoint()
        if endpoint is None or not self.project.value or not viewer_connected():
            return
        project, name, minutes = self.project.value, endpoint["name"], self.window.value
        fetched = Prefetch({
            "endpoint": lambda: self.api.op("endpoints.get", project=project, endpoint=name),
            "metrics": lambda: self.api.op("endpoints.metrics", project=project, endpoint=name,
                                          minutes=minutes)})
        try:
            current, metrics = fetched.take("endpoint", lambda: None), fetched.take("metrics", lambda: None)
        except (AitipAPIError, NotSignedIn):
            return  # the next tick tries again; Refresh says what went wrong
        if name != self.selected:
            return
        self.metrics = metrics
        if current != endpoint:
            self.replace(current)
        else:
            self.show_charts()

    def reload(self) -> None:
        self.messages.reset()
        project = self.project.value
        self.endpoints = self.messages.attempt(
            _("list the endpoints of {project}").format(project=project),
            lambda: self.api.op("endpoints.list", project=project)["endpoints"], self.endpoints)
        self.models = self.messages.attempt(_("list the models of {project}").format(project=project),
                                            lambda: self.api.models(project), self.models)
        self.show_list(self.selected)

    def on_project(self) -> None:
        self.messages.reset()
        self.selected = None
        self.load_project()
        self.fill_example()

    def on_window(self) -> None:
        self.live.clear()
        self.metrics = self.read_metrics()
        self.show_charts()
        self.share()

    def on_selected(self) -> None:
        chosen = [index for index in self.table.selection if index < len(self.endpoints)]
        if not chosen or self.endpoints[chosen[0]]["name"] == self.selected:
            return
        self.selected = self.endpoints[chosen[0]]["name"]
        self.messages.reset()
        self.show_endpoint(fresh=True)
        self.fill_example()

    def view(self) -> pn.Column:
        return pn.Column(
            pn.Row(self.project, self.window, self.refresh, sizing_mode="stretch_width"),
            self.summary, self.table, self.nothing, self.detail,
            sizing_mode="stretch_width",
        )


def page() -> pn.Column:
    pn.extension("tabulator")
    return prefetched_page(PAGE, lambda api, project: project_calls(api, project, query_arg("endpoint"),
                                                                    window_of(query_arg("window"))),
                           lambda api, me, messages, prefetch: ServingPage(api, me, messages, prefetch).view())


if __name__.startswith("bokeh_app"):
    page().servable(title=page_title(PAGE))
