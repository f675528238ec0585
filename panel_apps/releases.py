"""Releases: a project's releases (what, which state, how far they got), and one release — its evidence chain from
the dataset version to the signed release, its approval stages and decisions with Approve and Reject for the
people the policy names, its way through dev, test, staging and prod with Promote for maintainers, and its
rollouts onto endpoints: the steps, the canary's weight and each analysis run of it, with Promote, Abort and
Roll back; for firmware, its rollouts to device groups (each group's installs and failures against its
thresholds) with Pause, Resume and Emergency stop, and the project's fleet by firmware version and state. The
platform decides every action; the page says what it refused, as it said it.

Address: ``releases?project=P&release=ID``. The releases and rollouts are fetched together while the session is
created. While a rollout of the shown release is active, the page reads it again every few seconds."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

import panel as pn

from panel_apps import charts, fleet_views, release_charts
from panel_apps.api import DashboardAPI
from panel_apps.components import (Messages, Prefetch, QuietChanges, data_table, first_value, page_title,
                                   prefetched_page, project_options, query_arg, section, update_query)
from panel_apps.language import _
from panel_apps.release_views import (approvals_html, decide_refusal, environments_html, evidence_html,
                                      promote_refusal, releases_frame, rollouts_frame, state_words, steps_html,
                                      table_titles, title_html)

PAGE = "releases"
LISTED = 200
POLL_MS = 3000
ACTIVE = ("progressing", "paused")
DEVICES_ACTIVE = ("running", "paused")


def project_calls(api: DashboardAPI, project: str) -> dict[Hashable, Callable[[], Any]]:
    return {
        ("releases", project): lambda: api.op("releases.list", project=project, limit=LISTED)["releases"],
        ("rollouts", project): lambda: api.op("rollouts.list", project=project, limit=LISTED)["rollouts"],
        ("device_rollouts", project): lambda: api.op("device_rollouts.list", project=project)["rollouts"],
        ("fleet", project): lambda: api.op("devices.fleet", project=project),
    }


def html(margin: tuple[int, ...] = (5, 10), **options: Any) -> pn.pane.HTML:
    return pn.pane.HTML(sizing_mode="stretch_width", margin=margin, **options)


def button(name: str, css_class: str, kind: str = "default", width: int = 140) -> pn.widgets.Button:
    return pn.widgets.Button(name=name, button_type=kind, width=width, align="end", css_classes=[css_class])


class ReleasesPage(QuietChanges):
    """The page's state and widgets; one per browser session."""

    def __init__(self, api: DashboardAPI, me: dict[str, Any], messages: Messages,
                 prefetch: Prefetch | None = None) -> None:
        self.api, self.me, self.messages = api, me, messages
        self.prefetch = prefetch or Prefetch()
        self.releases: list[dict[str, Any]] = []
        self.rollouts: list[dict[str, Any]] = []
        self.device_rollouts: list[dict[str, Any]] = []
        self.fleet: dict[str, Any] | None = None
        self.selected: int | None = None
        self.poller: Any = None
        projects = project_options(me)
        self.project = pn.widgets.Select(name=_("Project"), options=projects, width=220,
                                         value=first_value(list(projects.values()), query_arg("project")))
        self.refresh = pn.widgets.Button(name=_("Refresh"), align="end", width=100, css_classes=["refresh"])
        self.table = data_table(releases_frame([]), name="releases", page_size=12, selectable=1,
                                titles=table_titles(), formatters={"state": {"type": "html"}})
        self.title, self.environments, self.evidence, self.approvals = html(), html(), html(), html()
        self.comment = pn.widgets.TextInput(name=_("Comment (for the audit trail)"), width=360,
                                            css_classes=["decision-comment"])
        self.approve = button(_("Approve"), "approve", "success")
        self.reject = button(_("Reject"), "reject", "danger")
        self.decide_reason = html(css_classes=["decide-reason"])
        self.promote = button(_("Promote"), "promote", "primary", 220)
        self.promote_reason = html(css_classes=["promote-reason"])
        self.rollouts_table = data_table(rollouts_frame([]), name="rollouts", page_size=6, selectable=1,
                                         titles=table_titles(), formatters={"state": {"type": "html"}})
        self.steps = html()
        self.rollout_promote = button(_("Promote rollout"), "rollout-promote", "primary", 160)
        self.rollout_abort = button(_("Abort"), "rollout-abort", "danger", 100)
        self.rollout_rollback = button(_("Roll back"), "rollout-rollback", "warning", 120)
        self.chart = pn.Column(sizing_mode="stretch_width", css_classes=["rollout-chart"])
        self.rollout_detail = pn.Column(
            self.steps, pn.Row(self.rollout_promote, self.rollout_abort, self.rollout_rollback),
            sizing_mode="stretch_width", visible=False)
        self.device_table = data_table(fleet_views.device_rollouts_frame([]), name="device-rollouts", page_size=6,
                                       selectable=1, titles=fleet_views.device_table_titles(),
                                       formatters={"state": {"type": "html"}},
                                       widths={"state": 150, "message": 420})  # states and reasons change later
        self.waves = html()
        self.device_pause = button(_("Pause"), "device-pause", "warning", 100)
        self.device_resume = button(_("Resume"), "device-resume", "primary", 100)
        self.device_stop = button(_("Emergency stop"), "device-stop", "danger", 160)
        self.device_detail = pn.Column(
            self.device_table, self.waves, pn.Row(self.device_pause, self.device_resume, self.device_stop),
            sizing_mode="stretch_width", visible=False)
        self.fleet_chart = pn.Column(sizing_mode="stretch_width", css_classes=["fleet"])
        self.analysis = pn.Column(section(_("Analysis of the rollout")), self.chart, sizing_mode="stretch_width")
        self.detail = pn.Column(
            self.title, self.environments, pn.Row(self.promote, self.promote_reason, sizing_mode="stretch_width"),
            section(_("Evidence")), self.evidence, section(_("Approvals")), self.approvals,
            pn.Row(self.comment, self.approve, self.reject, sizing_mode="stretch_width"), self.decide_reason,
            section(_("Rollouts")), self.rollouts_table, self.rollout_detail, self.device_detail,
            sizing_mode="stretch_width", css_classes=["release-detail"], visible=False)
        # Always drawn: the shown rollout's analysis runs, or a low chart saying why there are none.
        self.empty = html(css_classes=["releases-empty"])

        self.load_project(query_arg("release"))
        self.project.param.watch(lambda _event: self._quiet or self.on_project(), "value")
        self.table.param.watch(lambda _event: self._quiet or self.on_selected(), "selection")
        self.rollouts_table.param.watch(lambda _event: self._quiet or self.show_rollout(), "selection")
        self.device_table.param.watch(lambda _event: self._quiet or self.show_device_rollout(), "selection")
        self.refresh.on_click(lambda _event: self.reload())
        self.approve.on_click(lambda _event: self.decide("approve"))
        self.reject.on_click(lambda _event: self.decide("reject"))
        self.promote.on_click(lambda _event: self.promote_release())
        for widget, verb in ((self.rollout_promote, "promote"), (self.rollout_abort, "abort"),
                             (self.rollout_rollback, "rollback")):
            widget.on_click(lambda _event, verb=verb: self.act_on_rollout(verb))
        for widget, verb in ((self.device_pause, "pause"), (self.device_resume, "resume"), (self.device_stop, "stop")):
            widget.on_click(lambda _event, verb=verb: self.act_on_device_rollout(verb))

    # ----- data -----

    def load_project(self, wanted: str | None = None) -> None:
        project = self.project.value
        self.releases, self.rollouts, self.device_rollouts, self.fleet = [], [], [], None
        if not project:
            self.messages.note(_("You are not a member of any project yet: ask a project's maintainer to add you."))
        else:
            calls = project_calls(self.api, project)
            self.releases = self.messages.attempt(_("list the releases of {project}").format(project=project),
                                                  lambda: self.prefetch.take(("releases", project),
                                                                             calls[("releases", project)]), [])
            self.rollouts = self.messages.attempt(_("list the rollouts of {project}").format(project=project),
                                                  lambda: self.prefetch.take(("rollouts", project),
                                                                             calls[("rollouts", project)]), [])
            self.device_rollouts = self.messages.attempt(
                _("list the device rollouts of {project}").format(project=project),
                lambda: self.prefetch.take(("device_rollouts", project), calls[("device_rollouts", project)]), [])
            self.fleet = self.messages.attempt(_("read the device fleet of {project}").format(project=project),
                                               lambda: self.prefetch.take(("fleet", project), calls[("fleet", project)]),
                                               None)
        ids = [release["id"] for release in self.releases]
        self.selected = int(wanted) if wanted and wanted.isdigit() and int(wanted) in ids else \
            (ids[0] if ids else None)
        self.show()

    def reload(self) -> None:
        self.messages.reset()
        self.prefetch = Prefetch()
        self.load_project(str(self.selected) if self.selected else None)

    def release(self) -> dict[str, Any] | None:
        return next((release for release in self.releases if release["id"] == self.selected), None)

    def release_rollouts(self) -> list[dict[str, Any]]:
        return [rollout for rollout in self.rollouts if rollout["release_id"] == self.selected]

    def release_device_rollouts(self) -> list[dict[str, Any]]:
        return [rollout for rollout in self.device_rollouts if rollout["release"] == self.selected]

    # ----- showing -----

    def show(self) -> None:
        with self.quietly():
            self.table.value = releases_frame(self.releases)
            ids = [release["id"] for release in self.releases]
            self.table.selection = [ids.index(self.selected)] if self.selected in ids else []
        release = self.release()
        self.fleet_chart.objects = [pn.pane.Bokeh(fleet_views.fleet_figure(self.fleet), sizing_mode="stretch_width")]
        self.empty.object = "" if self.releases else "<p>" + _(
            "No release yet. A developer requests one with the SDK, the CLI (aitip releases request) or an agent; "
            "a model release needs its evidence first.") + "</p>"
        self.detail.visible = release is not None
        if release is None:
            self.stop_polling()
            self.analysis.visible = True
            self.draw_chart(None, _("No release yet."))
            return
        project = self.project.value
        self.title.object = title_html(release)
        self.environments.object = environments_html(release)
        self.evidence.object = evidence_html(release)
        self.approvals.object = approvals_html(release)
        decide = decide_refusal(self.me, project, release)
        self.approve.disabled = self.reject.disabled = decide is not None
        self.decide_reason.object = f"<p class='decide-why'>{decide}</p>" if decide else ""
        promote = promote_refusal(self.me, project, release)
        self.promote.name = _("Promote to {environment}").format(environment=release["next_environment"]) \
            if release.get("next_environment") else _("Promote")
        self.promote.disabled = promote is not None
        self.promote_reason.object = f"<p class='promote-why'>{promote}</p>" if promote else ""
        rollouts = self.release_rollouts()
        with self.quietly():
            self.rollouts_table.value = rollouts_frame(rollouts)
            self.rollouts_table.selection = [0] if rollouts else []
        self.show_rollout()
        device_rollouts = self.release_device_rollouts()
        with self.quietly():
            self.device_table.value = fleet_views.device_rollouts_frame(device_rollouts)
            self.device_table.selection = [0] if device_rollouts else []
        self.rollouts_table.visible = self.analysis.visible = release.get("model") is not None
        self.show_device_rollout()
        if any(rollout["state"] in ACTIVE for rollout in rollouts) or \
                any(rollout["state"] in DEVICES_ACTIVE for rollout in device_rollouts):
            self.start_polling()
        else:
            self.stop_polling()
        update_query(project=project, release=self.selected or "")

    def shown_rollout(self) -> dict[str, Any] | None:
        rollouts = self.release_rollouts()
        chosen = [index for index in self.rollouts_table.selection if index < len(rollouts)]
        return rollouts[chosen[0]] if chosen else None

    def draw_chart(self, rollout: dict[str, Any] | None, why: str = "") -> None:
        figure = release_charts.analysis_figure(rollout) if rollout is not None else \
            charts.empty_figure(why, "rollout-analysis")
        self.chart.objects = [pn.pane.Bokeh(figure, sizing_mode="stretch_width")]

    def show_rollout(self) -> None:
        rollout = self.shown_rollout()
        self.rollout_detail.visible = rollout is not None
        if rollout is None:
            self.draw_chart(None, _("This release has not been rolled out onto an endpoint."))
            return
        self.steps.object = steps_html(rollout)
        active = rollout["state"] in ACTIVE
        self.rollout_promote.disabled = self.rollout_abort.disabled = not active
        self.rollout_rollback.disabled = rollout["state"] == "rolled_back"
        self.draw_chart(rollout)

    def shown_device_rollout(self) -> dict[str, Any] | None:
        rollouts = self.release_device_rollouts()
        chosen = [index for index in self.device_table.selection if index < len(rollouts)]
        return rollouts[chosen[0]] if chosen else None

    def show_device_rollout(self) -> None:
        release = self.release()
        rollout = self.shown_device_rollout()
        self.device_detail.visible = release is not None and release["kind"] == "firmware"
        self.waves.object = fleet_views.waves_html(rollout) if rollout is not None else "<p>" + _(
            "This firmware has not been sent to devices. A maintainer starts a rollout to device groups with the "
            "SDK, the CLI (aitip device-rollouts start) or an agent.") + "</p>"
        state = rollout["state"] if rollout is not None else None
        self.device_pause.disabled = state != "running"
        self.device_resume.disabled = state != "paused"
        self.device_stop.disabled = state not in DEVICES_ACTIVE

    def start_polling(self) -> None:
        if self.poller is None and pn.state.curdoc is not None and pn.state.curdoc.session_context is not None:
            self.poller = pn.state.add_periodic_callback(self.poll, period=POLL_MS)

    def stop_polling(self) -> None:
        if self.poller is not None:
            self.poller.stop()
            self.poller = None

    def poll(self) -> None:
        project = self.project.value
        self.rollouts = self.messages.attempt(_("list the rollouts of {project}").format(project=project),
                                              lambda: self.api.op("rollouts.list", project=project,
                                                                  limit=LISTED)["rollouts"], self.rollouts)
        self.device_rollouts = self.messages.attempt(
            _("list the device rollouts of {project}").format(project=project),
            lambda: self.api.op("device_rollouts.list", project=project)["rollouts"], self.device_rollouts)
        self.fleet = self.messages.attempt(_("read the device fleet of {project}").format(project=project),
                                           lambda: self.api.op("devices.fleet", project=project), self.fleet)
        self.show()

    # ----- reactions -----

    def on_project(self) -> None:
        self.messages.reset()
        self.prefetch = Prefetch()
        self.load_project()

    def on_selected(self) -> None:
        chosen = [index for index in self.table.selection if index < len(self.releases)]
        if chosen:
            self.selected = int(self.releases[chosen[0]]["id"])
            self.show()

    def replace(self, answer: dict[str, Any]) -> None:
        self.releases = [answer if release["id"] == answer["id"] else release for release in self.releases]
        self.show()

    def decide(self, decision: str) -> None:
        release = self.release()
        if release is None:
            return
        self.messages.reset()
        title = f"{release['name']} {release['version']}"
        doing = (_("approve {release}") if decision == "approve" else _("reject {release}")).format(release=title)
        answer = self.messages.attempt(doing, lambda: self.api.op(
            "releases.decide", project=self.project.value, release=release["id"], decision=decision,
            comment=self.comment.value or ""), None)
        if answer is not None:
            self.comment.value = ""
            self.messages.info(_("{release} is {state}.").format(release=title, state=state_words(answer["state"])))
            self.replace(answer)

    def promote_release(self) -> None:
        release = self.release()
        if release is None or not release.get("next_environment"):
            return
        self.messages.reset()
        title, environment = f"{release['name']} {release['version']}", release["next_environment"]
        answer = self.messages.attempt(
            _("promote {release} to {environment}").format(release=title, environment=environment),
            lambda: self.api.op("releases.promote", project=self.project.value, release=release["id"],
                                environment=environment), None)
        if answer is not None:
            self.messages.info(_("{release} is in {environment} now.").format(release=title, environment=environment))
            self.replace(answer)

    def act_on_rollout(self, verb: str) -> None:
        rollout = self.shown_rollout()
        if rollout is None:
            return
        self.messages.reset()
        doings = {"promote": _("promote rollout {id}"), "abort": _("abort rollout {id}"),
                  "rollback": _("roll back rollout {id}")}
        arguments = {"full": False} if verb == "promote" else {}
        answer = self.messages.attempt(doings[verb].format(id=rollout["id"]), lambda: self.api.op(
            f"rollouts.{verb}", project=self.project.value, rollout=rollout["id"], **arguments), None)
        if answer is not None:
            self.messages.info(_("Rollout {id} is {state}: the canary takes {weight} %.").format(
                id=answer["id"], state=state_words(answer["state"]), weight=answer["weight"]))
            self.rollouts = [answer if item["id"] == answer["id"] else item for item in self.rollouts]
            self.show()

    def act_on_device_rollout(self, verb: str) -> None:
        rollout = self.shown_device_rollout()
        if rollout is None:
            return
        self.messages.reset()
        doings = {"pause": _("pause device rollout {id}"), "resume": _("resume device rollout {id}"),
                  "stop": _("stop device rollout {id}")}
        arguments = {"reason": _("emergency stop from the Releases page")} if verb == "stop" else {}
        answer = self.messages.attempt(doings[verb].format(id=rollout["id"]), lambda: self.api.op(
            f"device_rollouts.{verb}", project=self.project.value, device_rollout=rollout["id"], **arguments), None)
        if answer is not None:
            self.messages.info(_("Device rollout {id}: {state}.").format(
                id=answer["id"], state=_(fleet_views.DEVICE_ROLLOUT_WORDS.get(answer["state"], answer["state"]))))
            self.device_rollouts = [answer if item["id"] == answer["id"] else item for item in self.device_rollouts]
            self.show()

    def view(self) -> pn.Column:
        return pn.Column(pn.Row(self.project, self.refresh, sizing_mode="stretch_width"), self.table, self.empty,
                         self.detail, self.analysis, section(_("Device fleet")), self.fleet_chart,
                         sizing_mode="stretch_width")


def page() -> pn.Column:
    pn.extension("tabulator")
    return prefetched_page(PAGE, project_calls,
                           lambda api, me, messages, prefetch: ReleasesPage(api, me, messages, prefetch).view())


if __name__.startswith("bokeh_app"):
    page().servable(title=page_title(PAGE))
