"""Evaluation: a project's evaluations (filterable by model), one evaluation's verdict with every reason, what
exactly it judged, its metrics against the baseline's, confusion matrix, ROC and PR curves, per-class table and
profile, its report (HTML and PDF), and a metric's trend across the model's versions. Developers and above
evaluate a version from the page; others see why not. The model's evaluation policy is shown as it stands.

Address: ``evaluations?project=P&model=NAME&evaluation=ID&metric=KEY``. The listing, the policies and the
evaluation the address names are fetched together while the session is created; tabs other than the verdict
are drawn when opened."""

from __future__ import annotations

import io
from collections.abc import Callable, Hashable
from html import escape
from typing import Any

import panel as pn

from aitip.client import AitipAPIError
from aitip.evaluation import reports
from panel_apps import evaluation_charts as figures
from panel_apps.api import DashboardAPI
from panel_apps.components import (
    Messages,
    NotSignedIn,
    Prefetch,
    data_table,
    first_value,
    page_title,
    QuietChanges,
    prefetched_page,
    project_options,
    query_arg,
    section,
    update_query,
)
from panel_apps.evaluation_views import (
    FINISHED,
    comparison_rows,
    default_evaluation,
    empty_state,
    evaluate_refusal,
    evaluations_frame,
    facts_html,
    may_manage_policy,
    metrics_table_html,
    model_evaluations,
    per_class_html,
    policy_html,
    profile_html,
    trend_frame,
    trend_metrics,
    verdict_html,
)
from panel_apps.language import _, ngettext, page_language

PAGE = "evaluations"
ALL_MODELS = ""
POLICY_DATASET = ""
LISTED = 500  # evaluations.list's most: a project's evaluations, newest first
POLL_MS = 3000  # while an evaluation listed is queued or running, or its report is being written
MAX_POLLS = 200  # ten minutes: a report that never comes (an evaluation in error may have none) stops the polling


def settled(evaluation: dict[str, Any]) -> bool:
    """Finished, with its report written (or in error): what the page shows of it will not change."""
    return evaluation.get("state") in FINISHED and (bool(evaluation.get("has_report")) or
                                                    evaluation.get("state") == "error")
VERDICT_TAB, BASELINE_TAB, CHARTS_TAB, PER_CLASS_TAB, PROFILE_TAB = range(5)


def project_calls(api: DashboardAPI, project: str, evaluation: str | None) -> dict[Hashable, Callable[[], Any]]:
    """The calls a project's view needs at once (the platform answers them side by side)."""
    calls: dict[Hashable, Callable[[], Any]] = {
        ("evaluations", project): lambda: api.op("evaluations.list", project=project, limit=LISTED)["evaluations"],
        ("policies", project): lambda: api.op("evaluation_policies.list", project=project)["policies"],
        ("models", project): lambda: api.models(project),
        ("datasets", project): lambda: api.datasets(project),
    }
    if evaluation and evaluation.isdigit():
        calls[("evaluation", project, int(evaluation))] = lambda: api.op(
            "evaluations.get", project=project, evaluation=int(evaluation))
    return calls


class EvaluationsPage(QuietChanges):
    """The page's state and widgets; one per browser session."""

    def __init__(self, api: DashboardAPI, me: dict[str, Any], messages: Messages,
                 prefetch: Prefetch | None = None) -> None:
        self.api, self.me, self.messages = api, me, messages
        self.prefetch = prefetch or Prefetch()
        self.language = page_language()
        self.evaluations: list[dict[str, Any]] = []
        self.shown: list[dict[str, Any]] = []
        self.policies: dict[str, dict[str, Any]] = {}
        self.models: list[dict[str, Any]] = []
        self.details: dict[int, dict[str, Any]] = {}
        self.selected: int | None = None
        self.poller: Any = None
        self.polls = 0
        self.stale: set[int] = set()
        self.current: dict[str, Any] = {}  # the evaluation shown, and its report context
        self.context: dict[str, Any] = {}
        projects = project_options(me)
        self.project = pn.widgets.Select(name=_("Project"), options=projects, width=220,
                                         value=first_value(list(projects.values()), query_arg("project")))
        self.model = pn.widgets.Select(name=_("Model"), options={_("All models"): ALL_MODELS}, width=220,
                                       css_classes=["evaluation-model"])
        self.refresh = pn.widgets.Button(name=_("Refresh"), align="end", width=100, css_classes=["refresh"])
        self.policy = pn.pane.HTML(sizing_mode="stretch_width", margin=(0, 10))
        self.summary = pn.pane.HTML(sizing_mode="stretch_width", margin=(5, 10), css_classes=["evaluations-summary"])
        self.table = data_table(evaluations_frame([]), name="evaluations", page_size=15, selectable=1,
                                formatters={"state": {"type": "html"}})
        # The form: developers and above evaluate a version; the others see why not.
        self.form_model = pn.widgets.Select(name=_("Model"), options=[], width=200, css_classes=["evaluate-model"])
        self.form_version = pn.widgets.Select(name=_("Version"), options={}, width=110,
                                              css_classes=["evaluate-version"])
        self.form_dataset = pn.widgets.Select(name=_("Dataset"), options={}, width=220,
                                              css_classes=["evaluate-dataset"])
        self.evaluate = pn.widgets.Button(name=_("Evaluate"), button_type="primary", width=120, align="end",
                                          css_classes=["evaluate"])
        self.refusal = pn.pane.HTML(sizing_mode="stretch_width", margin=(5, 10), css_classes=["evaluate-reason"])
        # One evaluation.
        self.title = pn.pane.HTML(sizing_mode="stretch_width", margin=(10, 10, 0, 10), css_classes=["evaluation-title"])
        self.report_html = pn.widgets.FileDownload(callback=lambda: self.report("html"), filename="evaluation.html",
                                                   label=_("Report (HTML)"), button_type="light", width=160,
                                                   css_classes=["report-html"], embed=False)
        self.report_pdf = pn.widgets.FileDownload(callback=lambda: self.report("pdf"), filename="evaluation.pdf",
                                                  label=_("Report (PDF)"), button_type="light", width=160,
                                                  css_classes=["report-pdf"], embed=False)
        self.verdict = pn.pane.HTML(sizing_mode="stretch_width", margin=(5, 10))
        self.facts = pn.pane.HTML(sizing_mode="stretch_width", margin=(5, 10))
        self.comparison = pn.pane.Bokeh(sizing_mode="stretch_width")
        self.metrics = pn.pane.HTML(sizing_mode="stretch_width", margin=(5, 10))
        self.confusion = pn.pane.Bokeh()  # a square of its own size: cells stretched wide read worse
        self.roc = pn.pane.Bokeh(sizing_mode="stretch_width")
        self.pr = pn.pane.Bokeh(sizing_mode="stretch_width")
        self.per_class = pn.pane.HTML(sizing_mode="stretch_width", margin=(5, 10))
        self.profile = pn.pane.HTML(sizing_mode="stretch_width", margin=(5, 10))
        self.tabs = pn.Tabs(
            (_("Verdict"), pn.Column(self.verdict, section(_("What was judged")), self.facts,
                                     sizing_mode="stretch_width")),
            (_("Compared with the baseline"), pn.Column(self.comparison, self.metrics, sizing_mode="stretch_width")),
            (_("Confusion matrix and curves"), pn.Column(self.confusion, pn.Row(self.roc, self.pr,
                                                                                sizing_mode="stretch_width"),
                                                           sizing_mode="stretch_width")),
            (_("Per class"), self.per_class), (_("Profile"), self.profile),
            dynamic=True, sizing_mode="stretch_width", css_classes=["evaluation-tabs"])
        self.detail = pn.Column(pn.Row(self.title, self.report_html, self.report_pdf, sizing_mode="stretch_width"),
                                self.tabs, sizing_mode="stretch_width", css_classes=["evaluation-detail"])
        # The trend of a metric across the model's versions.
        self.trend_title = pn.pane.HTML(margin=(10, 10, 0, 10))
        self.metric = pn.widgets.Select(name=_("Metric"), options=[], width=240, css_classes=["trend-metric"])
        self.trend = pn.pane.Bokeh(sizing_mode="stretch_width")

        self.load_project(query_arg("model"), query_arg("evaluation"), query_arg("metric"))
        self.project.param.watch(lambda _event: self.on_project(), "value")
        self.model.param.watch(lambda _event: self._quiet or self.on_model(), "value")
        self.table.param.watch(lambda _event: self._quiet or self.on_selected(), "selection")
        self.metric.param.watch(lambda _event: self._quiet or self.draw_trend(), "value")
        self.tabs.param.watch(lambda _event: self.draw_tab(), "active")
        self.form_model.param.watch(lambda _event: self.choose_versions(), "value")
        self.evaluate.on_click(lambda _event: self.start_evaluation())
        self.refresh.on_click(lambda _event: self.reload())
        if pn.state.curdoc is not None and pn.state.curdoc.session_context is not None:
            # The browser's own address is synced when it connects, after construction: say the view after that.
            pn.state.onload(self.share)

    def share(self) -> None:
        """The view in the address, so it can be shared and reloaded."""
        update_query(project=self.project.value, model=self.model.value, evaluation=self.selected or "",
                     metric=self.metric.value or "")

    # ----- data -----

    def take(self, key: Hashable, doing: str, call: Callable[[], Any], default: Any) -> Any:
        """A prefetched (or fresh) answer, or ``default`` with the refusal as a banner."""
        return self.messages.attempt(doing, lambda: self.prefetch.take(key, call), default)

    def load_project(self, wanted_model: str | None = None, wanted_evaluation: str | None = None,
                     wanted_metric: str | None = None) -> None:
        project = self.project.value
        self.evaluations, self.policies, self.models, self.details = [], {}, [], {}
        if not project:
            self.messages.note(_("You are not a member of any project yet: ask a project's maintainer to add you."))
        else:
            calls = project_calls(self.api, project, wanted_evaluation)
            if not self.prefetch.holds(("evaluations", project)):
                self.prefetch = Prefetch(calls)
            self.evaluations = self.take(("evaluations", project), _("list the evaluations of {project}").format(
                project=project), calls[("evaluations", project)], [])
            policies = self.take(("policies", project), _("read the evaluation policies of {project}").format(
                project=project), calls[("policies", project)], [])
            self.policies = {policy["model"]: policy for policy in policies}
            self.models = self.take(("models", project), _("list the models of {project}").format(project=project),
                                    calls[("models", project)], [])
            datasets = self.take(("datasets", project), _("list the datasets of {project}").format(project=project),
                                 calls[("datasets", project)], [])
            self.form_dataset.options = {_("the policy's dataset"): POLICY_DATASET,
                                         **{dataset["name"]: dataset["name"] for dataset in datasets}}
            key = ("evaluation", project, int(wanted_evaluation)) if wanted_evaluation and \
                wanted_evaluation.isdigit() else None
            if key and self.prefetch.holds(key):
                detail = self.messages.attempt(_("read evaluation {evaluation}").format(evaluation=wanted_evaluation),
                                               lambda: self.prefetch.take(key, lambda: None), None)
                if detail:
                    self.details[int(detail["id"])] = detail
        names = sorted({evaluation["model"] for evaluation in self.evaluations} | {m["name"] for m in self.models}
                       | set(self.policies))
        with self.quietly():
            self.model.options = {_("All models"): ALL_MODELS, **{name: name for name in names}}
            self.model.value = first_value([ALL_MODELS, *names], wanted_model)
            self.form_model.options = [m["name"] for m in self.models]
            self.form_model.value = first_value(self.form_model.options, self.model.value)
        self.choose_versions()
        self.show_form()
        self.show_list(wanted_evaluation, wanted_metric)

    def evaluation(self, evaluation_id: int) -> dict[str, Any] | None:
        """One evaluation with its result; kept once finished (a finished evaluation does not change)."""
        known = self.details.get(evaluation_id)
        if known is not None and settled(known):
            return known
        detail = self.messages.attempt(_("read evaluation {evaluation}").format(evaluation=evaluation_id),
                                       lambda: self.api.op("evaluations.get", project=self.project.value,
                                                           evaluation=evaluation_id), None)
        if detail is not None:
            self.details[evaluation_id] = detail
        return detail

    def report(self, format: str) -> io.BytesIO | None:
        if self.selected is None:
            return None
        try:
            return io.BytesIO(self.api.op("evaluations.report", project=self.project.value, evaluation=self.selected,
                                          format=format, lang=self.language))
        except (AitipAPIError, NotSignedIn) as error:
            self.messages.error(error, _("download the report of evaluation {evaluation}").format(
                evaluation=self.selected))
            return None

    # ----- views -----

    def show_list(self, wanted_evaluation: str | None = None, wanted_metric: str | None = None) -> None:
        """The table of the chosen model's evaluations (or all), one of them shown, and the trend."""
        project, model = self.project.value, self.model.value or None
        self.shown = model_evaluations(self.evaluations, model)
        if project and not self.shown:
            self.summary.object = empty_state(project, model)
        elif project:
            passed = sum(1 for e in self.shown if e["state"] == "passed")
            failed = sum(1 for e in self.shown if e["state"] == "failed")
            self.summary.object = "<span id='evaluations-count'>" + escape(ngettext(
                "{count} evaluation: {passed} passed, {failed} failed", "{count} evaluations: {passed} passed, "
                "{failed} failed", len(self.shown)).format(count=len(self.shown), passed=passed, failed=failed)) + \
                "</span>"
        else:
            self.summary.object = ""
        self.selected = default_evaluation(self.shown, wanted_evaluation or (str(self.selected) if self.selected
                                                                             else None))
        ids = [int(e["id"]) for e in self.shown]
        with self.quietly():
            self.table.value = evaluations_frame(self.shown)
            self.table.selection = [ids.index(self.selected)] if self.selected in ids else []
        self.show_evaluation()
        self.choose_metric(wanted_metric)
        self.draw_trend()
        self.poll_while_unfinished()

    def show_policy(self) -> None:
        """The policy of the model looked at: the one chosen, else the shown evaluation's."""
        model = self.trend_model()
        self.policy.object = policy_html(self.policies.get(model) if model else None, model,
                                         self.project.value or "", may_manage_policy(self.me, self.project.value))

    def show_evaluation(self) -> None:
        detail = self.evaluation(self.selected) if self.selected is not None else None
        self.detail.visible = detail is not None
        if detail is None:
            return
        context = reports.context(detail, self.language)
        self.context, self.current = context, detail
        title = _("Evaluation {id}: {subject}").format(id=detail["id"], subject=context["subject"])
        self.title.object = (f"<h3 id='evaluation-title' style='margin:.4rem 0;font-family:system-ui,sans-serif'>"
                             f"{escape(title)}</h3>")
        has_report = bool(detail.get("has_report"))
        for download, format in ((self.report_html, "html"), (self.report_pdf, "pdf")):
            download.filename = f"evaluation-{detail['id']}.{self.language}.{format}"
            download.disabled = not has_report
        self.verdict.object = verdict_html(context)
        self.facts.object = facts_html(context)
        self.stale = {BASELINE_TAB, CHARTS_TAB, PER_CLASS_TAB, PROFILE_TAB}
        self.draw_tab()
        self.share()

    def draw_tab(self) -> None:
        """The open tab, drawn on first opening after the evaluation shown changed."""
        active = self.tabs.active
        if active not in self.stale or not self.current:
            return
        self.stale.discard(active)
        detail, context = self.current, self.context
        plots = ((detail.get("result") or {}).get("candidate") or {}).get("plots") or {}
        if active == BASELINE_TAB:
            rows = comparison_rows(detail)
            self.comparison.object = figures.comparison_figure(rows, detail.get("baseline_version"))
            self.metrics.object = metrics_table_html(rows, detail.get("baseline_version"))
        elif active == CHARTS_TAB:
            self.confusion.object = figures.confusion_figure(plots)
            self.roc.object = figures.curves_figure(plots, "roc")
            self.pr.object = figures.curves_figure(plots, "pr")
        elif active == PER_CLASS_TAB:
            self.per_class.object = per_class_html(context)
        elif active == PROFILE_TAB:
            self.profile.object = profile_html(context)

    def trend_model(self) -> str | None:
        """The model chosen, else the shown evaluation's."""
        if self.model.value:
            return str(self.model.value)
        shown = next((e for e in self.shown if int(e["id"]) == self.selected), None)
        return shown["model"] if shown else None

    def choose_metric(self, wanted: str | None = None) -> None:
        options = trend_metrics(model_evaluations(self.evaluations, self.trend_model()))
        with self.quietly():
            self.metric.options = options
            self.metric.value = first_value(options, wanted or self.metric.value)

    def draw_trend(self) -> None:
        self.show_policy()
        model = self.trend_model()
        title = _("Trend of {metric} across the versions of {model}").format(metric=self.metric.value or "–",
                                                                           model=model or "–")
        self.trend_title.object = "" if model is None else (
            f"<h3 id='trend-title' style='margin:.4rem 0 0 0;font-family:system-ui,sans-serif'>{escape(title)}</h3>")
        self.metric.visible = model is not None
        self.trend.object = figures.trend_figure(trend_frame(self.evaluations, model or "", self.metric.value),
                                                 self.metric.value, model)
        self.share()

    # ----- the form -----

    def choose_versions(self) -> None:
        model = next((m for m in self.models if m["name"] == self.form_model.value), None)
        versions = sorted((int(v["version"]) for v in (model or {}).get("versions", [])), reverse=True)
        self.form_version.options = {f"v{number}": number for number in versions}
        if versions and self.form_version.value not in versions:
            self.form_version.value = versions[0]
        self.show_form()

    def show_form(self) -> None:
        refusal = evaluate_refusal(self.me, self.project.value)
        if refusal is None and not self.form_version.options:
            refusal = _("No registered model version to evaluate yet: a training job that logs a model with a name "
                        "registers one.")
        for widget in (self.form_model, self.form_version, self.form_dataset, self.evaluate):
            widget.disabled = refusal is not None
        self.refusal.object = "" if refusal is None else \
            f"<span class='evaluate-refused' style='color:#555'>{escape(refusal)}</span>"

    def start_evaluation(self) -> None:
        self.messages.reset()
        model, version = self.form_model.value, self.form_version.value
        if evaluate_refusal(self.me, self.project.value) is not None or not model or not version:
            return
        doing = _("evaluate {model} version {version}").format(model=model, version=version)
        created = self.messages.attempt(doing, lambda: self.api.op(
            "evaluations.create", project=self.project.value, model=model, version=int(version),
            dataset=self.form_dataset.value or None), None)
        if created is None:
            return
        self.messages.info(_("Evaluation {id} of {model} version {version} started; it is judged when its job ends.")
                           .format(id=created["id"], model=model, version=version))
        self.selected = int(created["id"])
        self.reload(keep_messages=True)

    # ----- reactions -----

    def reload(self, keep_messages: bool = False) -> None:
        if not keep_messages:
            self.messages.reset()
        project = self.project.value
        self.evaluations = self.messages.attempt(_("list the evaluations of {project}").format(project=project),
                                                 lambda: self.api.op("evaluations.list", project=project,
                                                                     limit=LISTED)["evaluations"], self.evaluations)
        self.show_list(str(self.selected) if self.selected else None)

    def poll_while_unfinished(self) -> None:
        """Reload every few seconds while an evaluation listed is queued or running, so its verdict appears."""
        unfinished = any(not settled(evaluation) for evaluation in self.evaluations) and self.polls < MAX_POLLS
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

    def on_model(self) -> None:
        self.selected = None
        with self.quietly():
            self.form_model.value = first_value(self.form_model.options, self.model.value)
        self.choose_versions()
        self.show_list()

    def on_selected(self) -> None:
        chosen = [index for index in self.table.selection if index < len(self.shown)]
        if not chosen:
            return
        self.selected = int(self.shown[chosen[0]]["id"])
        self.show_evaluation()
        if not self.model.value:
            self.choose_metric()
            self.draw_trend()

    def view(self) -> pn.Column:
        return pn.Column(
            pn.Row(self.project, self.model, self.refresh, sizing_mode="stretch_width"),
            self.policy,
            self.summary,
            self.table,
            section(_("Evaluate a version")),
            pn.Row(self.form_model, self.form_version, self.form_dataset, self.evaluate, sizing_mode="stretch_width",
                   css_classes=["evaluate-form"]),
            self.refusal,
            self.detail,
            self.trend_title,
            self.metric,
            self.trend,
            sizing_mode="stretch_width",
        )


def page() -> pn.Column:
    pn.extension("tabulator")
    return prefetched_page(PAGE, lambda api, project: project_calls(api, project, query_arg("evaluation")),
                           lambda api, me, messages, prefetch: EvaluationsPage(api, me, messages, prefetch).view())


if __name__.startswith("bokeh_app"):
    page().servable(title=page_title(PAGE))
