"""Jobs: a form to run a notebook (from its parameters cell); the viewer's jobs with filters and counts by
state; one job's page with its live log (the platform's Server-Sent Events stream), parameters, state
history, the executed notebook, Cancel / Retry for those the platform allows, and a form to run it again with
changes. Address: ``jobs?project=P&state=S&owner=U&job=ID``."""

from __future__ import annotations

import contextlib
import io
import json
import threading
from html import escape
from collections.abc import Callable
from typing import Any

import pandas as pd
import panel as pn

from aitip.client import AitipAPIError
from aitip.jobs.state_words import job_state_word
from panel_apps import charts
from panel_apps.api import JOB_STATES, DashboardAPI
from panel_apps.components import (
    signed_in_page,
    Messages,
    NotSignedIn,
    Prefetch,
    data_table,
    first_value,
    format_duration,
    format_time,
    job_duration,
    may_control_job,
    page_title,
    project_options,
    query_arg,
    role_in,
    role_words,
    section,
    state_badge,
    update_query,
)
from panel_apps.job_rerun import RerunForm
from panel_apps.job_submit import SubmitForm
from panel_apps.language import _, ngettext, pgettext

PAGE = "jobs"
JOBS_SHOWN = 200
MAX_LOG_CHARS = 200_000
FINISHED = {"succeeded", "failed", "cancelled", "timed_out"}
HISTORY_KINDS = ("state", "cancel_requested")


def jobs_frame(jobs: list[dict[str, Any]]) -> pd.DataFrame:
    rows = [{"id": job["id"], "project": job["project"], "owner": job["owner"],
             "state": job_state_word(job["state"], pgettext),
             "notebook": job["notebook_name"], "submitted": format_time(job["submitted_at"]),
             "duration": format_duration(job_duration(job)), "attempt": f"{job['attempt']}/{job['max_attempts']}"}
            for job in jobs]
    return pd.DataFrame(rows, columns=["id", "project", "owner", "state", "notebook", "submitted", "duration",
                                       "attempt"])


def history_frame(events: list[dict[str, Any]]) -> pd.DataFrame:
    """State changes (and cancel requests) from the job's events, oldest first."""
    rows = []
    for event in events:
        if event["kind"] == "state":
            data = dict(event["data"])
            state = job_state_word(str(data.pop("state", "")), pgettext)
        elif event["kind"] == "cancel_requested":
            data, state = dict(event["data"]), _("cancel requested")
        else:
            continue
        detail = ", ".join(f"{k}={v}" for k, v in data.items() if v not in (None, ""))
        rows.append({"at": format_time(event["at"]), "attempt": event["attempt"], "state": state, "detail": detail})
    return pd.DataFrame(rows, columns=["at", "attempt", "state", "detail"])


def log_text(events: list[dict[str, Any]]) -> str:
    """The notebook's output as it streamed: stdout/stderr text and error tracebacks."""
    parts = []
    for event in events:
        if event["kind"] == "output":
            parts.append(str(event["data"].get("text", "")))
        elif event["kind"] == "cell_started" and event["data"].get("index") is not None:
            parts.append("── " + _("cell {index}").format(index=event["data"]["index"]) + " ──\n")
    return "".join(parts)


class JobView:
    """One job: header, actions, details, history and the live log."""

    def __init__(self, api: DashboardAPI, me: dict[str, Any], job_id: int, messages: Messages,
                 on_submitted: Callable[[int], None] | None = None) -> None:
        self.api = api
        self.me = me
        self.job_id = job_id
        self.messages = messages
        prefetch = Prefetch({"events": lambda: api.job_events(job_id)})
        self.job: dict[str, Any] = api.job(job_id)
        events = list(prefetch.take("events", lambda: api.job_events(job_id))["items"])
        self.last_event_id = events[-1]["id"] if events else 0
        self.state_events = [event for event in events if event["kind"] in HISTORY_KINDS]
        self.header = pn.pane.HTML(sizing_mode="stretch_width", margin=(5, 10))
        self.cancel = pn.widgets.Button(name=_("Cancel job"), button_type="danger", css_classes=["cancel-job"], width=130)
        self.retry = pn.widgets.Button(name=_("Retry job"), button_type="primary", css_classes=["retry-job"], width=130)
        self.permission = pn.pane.HTML(sizing_mode="stretch_width", margin=(5, 10))
        self.notebook = pn.widgets.FileDownload(callback=self.download_notebook, filename=f"job-{job_id}.ipynb",
                                                label=_("Executed notebook (.ipynb)"), button_type="light", width=240)
        self.details = pn.pane.HTML(sizing_mode="stretch_width", margin=(5, 10))
        self.parameters = data_table(self.parameters_frame(), name="parameters", pagination=None)
        self.history = data_table(history_frame(self.state_events), name="history", pagination=None)
        self.rerun = RerunForm(api, me, messages, self.job, on_submitted)
        self.log = pn.pane.HTML(sizing_mode="stretch_width", margin=(5, 10))
        self._log = log_text(events)[-MAX_LOG_CHARS:]
        self._pending: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._flush_scheduled = False
        self._stop = threading.Event()
        self.cancel.on_click(lambda _event: self.do_cancel())
        self.retry.on_click(lambda _event: self.do_retry())
        self.render()
        # Once the session is served: a next-tick callback a thread adds while Bokeh attaches the document to
        # its session can be lost, and the log then froze (the stream read on, nothing was shown).
        pn.state.onload(self.follow)

    # ----- rendering -----

    def parameters_frame(self) -> pd.DataFrame:
        parameters = self.job.get("parameters") or {}
        return pd.DataFrame([{"parameter": name, "value": json.dumps(value)} for name, value in parameters.items()],
                            columns=["parameter", "value"])

    def render(self) -> None:
        job = self.job
        reason = f" — {escape(job['reason'])}" if job.get("reason") else ""
        cancelling = " " + escape(_("(cancel requested)")) \
            if job.get("cancel_requested") and job["state"] not in FINISHED else ""
        title = escape(_("Job {job}: {notebook}").format(job=job["id"], notebook=job["notebook_name"]))
        where = _("in {project} by {owner}").format(project=f"<b>{escape(job['project'])}</b>",
                                                    owner=f"<b>{escape(job['owner'])}</b>")
        self.header.object = (
            f"<h2 style='font-family:system-ui,sans-serif;margin:.2rem 0' id='job-title'>{title}</h2>"
            f"<div id='job-state-line'>{where} &nbsp;<span id='job-state'>{state_badge(job['state'])}</span>"
            f"{cancelling}{reason}</div>")
        finished = job["state"] in FINISHED
        allowed = may_control_job(self.me, job)
        self.cancel.disabled = finished or not allowed
        self.retry.disabled = not finished or not allowed
        self.notebook.disabled = not finished
        if allowed:
            self.permission.object = ""
        else:
            role = role_words(role_in(self.me, job["project"]))
            because = _("You may not cancel or retry this job: only its owner (a developer) or a maintainer of "
                        "{project} may; your role is {role}.").format(project=job["project"], role=role)
            self.permission.object = f"<div id='job-permission' style='color:#555'>{escape(because)}</div>"
        resources = job.get("resources") or {}
        run = job.get("mlflow_run_id")
        run_link = (f"<a href='./experiments?project={escape(job['project'])}&amp;filter="
                    f"attributes.run_id%20%3D%20%27{escape(run)}%27'>{escape(run[:12])}</a>" if run else "—")
        attempt = _("{attempt} of {attempts}").format(attempt=job["attempt"], attempts=job["max_attempts"])
        items = [(_("kernel"), escape(job["kernel"])), (_("resources"), escape(json.dumps(resources))),
                 (_("priority"), job["priority"]), (_("attempt"), attempt),
                 (_("submitted"), format_time(job["submitted_at"])), (_("started"), format_time(job.get("started_at"))),
                 (_("finished"), format_time(job.get("finished_at"))),
                 (_("duration"), format_duration(job_duration(job))), (_("MLflow run"), run_link),
                 (_("notebook sha256"), f"<code>{escape(job['notebook_sha256'][:16])}…</code>"),
                 (_("code version"), escape(job.get("code_version") or "—"))]
        if job.get("retry_of"):
            retried = escape(_("job {job}").format(job=job["retry_of"]))
            items.append((_("retry of"), f"<a href='./jobs?job={job['retry_of']}'>{retried}</a>"))
        if job.get("rerun_of"):
            rerun = escape(_("job {job}").format(job=job["rerun_of"]))
            items.append((_("rerun of"), f"<a href='./jobs?job={job['rerun_of']}'>{rerun}</a>"))
        if job.get("failed_cell"):
            cell = job["failed_cell"]
            items.append((_("failed cell"), f"{cell['index']}: {escape(cell.get('ename') or '')} "
                                            f"{escape(cell.get('evalue') or '')}"))
        self.details.object = "<table style='font-family:system-ui,sans-serif'>" + "".join(
            f"<tr><th style='text-align:left;padding-right:1rem'>{escape(k)}</th><td>{v}</td></tr>"
            for k, v in items) + "</table>"
        self.render_log()

    def render_log(self) -> None:
        text = self._log or _("(no output yet)")
        self.log.object = (f"<pre id='job-log' style='max-height:24rem;overflow:auto;background:#f6f8fa;"
                           f"padding:.6rem;border:1px solid #ddd;white-space:pre-wrap'>{escape(text)}</pre>")

    # ----- live stream -----

    def follow(self) -> None:
        """Follow the job's events in a thread (SSE, resumed from the last event shown); the
        session's document is changed only on its own event loop."""
        if self.job["state"] in FINISHED or pn.state.curdoc is None:
            return
        document = pn.state.curdoc
        after = self.last_event_id

        def stream() -> None:
            try:
                for event in self.api.follow_job(self.job_id, after=after):
                    if self._stop.is_set():
                        return
                    with self._lock:
                        self._pending.append(event.model_dump(mode="json"))
                        if self._flush_scheduled:
                            continue
                        self._flush_scheduled = True
                    document.add_next_tick_callback(self.flush)  # the one thread-safe way into a session
            except Exception as error:  # noqa: BLE001 - the session closed its client, or the platform went away
                if not self._stop.is_set():
                    with contextlib.suppress(Exception):  # a session already closed has no next tick
                        document.add_next_tick_callback(lambda stopped=error: self.stream_stopped(stopped))

        try:
            pn.state.on_session_destroyed(lambda _context: self.stop())
        except Exception:  # noqa: BLE001 - outside a served session (warm-up)
            return
        threading.Thread(target=stream, name=f"dashboards-job-{self.job_id}", daemon=True).start()

    def flush(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, []
            self._flush_scheduled = False
        if not batch:
            return
        self.last_event_id = batch[-1]["id"]
        self._log = (self._log + log_text(batch))[-MAX_LOG_CHARS:]
        changes = [event for event in batch if event["kind"] in HISTORY_KINDS]
        if changes:
            self.state_events += changes
            try:
                self.job = self.api.job(self.job_id)
            except (AitipAPIError, NotSignedIn) as error:
                self.messages.error(error, _("read job {job}").format(job=self.job_id))
            self.history.value = history_frame(self.state_events)
            self.render()
        else:
            self.render_log()

    def stream_stopped(self, error: Exception) -> None:
        """The live log stopped for good (the SDK reconnected while it could): say so, not freeze silently."""
        self.messages.error(error, _("follow job {job} live (reload the page to try again)").format(job=self.job_id))

    def stop(self) -> None:
        """Stop following (another job was opened, or the session ended)."""
        self._stop.set()

    # ----- actions -----

    def do_cancel(self) -> None:
        self.messages.reset()
        try:
            self.job = self.api.cancel_job(self.job_id)
        except (AitipAPIError, NotSignedIn) as error:
            self.messages.error(error, _("cancel job {job}").format(job=self.job_id))
            return
        self.messages.info(_("Job {job}: cancellation requested (now {state}).").format(
            job=self.job_id, state=job_state_word(self.job["state"], pgettext)))
        self.render()

    def do_retry(self) -> None:
        self.messages.reset()
        try:
            retried = self.api.retry_job(self.job_id)
        except (AitipAPIError, NotSignedIn) as error:
            self.messages.error(error, _("retry job {job}").format(job=self.job_id))
            return
        self.messages.info(_("Job {job} retried as job {retry}: open jobs?job={retry}.").format(job=self.job_id,
                                                                                                retry=retried["id"]))

    def download_notebook(self) -> io.BytesIO | None:
        try:
            return io.BytesIO(self.api.executed_notebook(self.job_id))
        except (AitipAPIError, NotSignedIn) as error:
            self.messages.error(error, _("download the notebook of job {job}").format(job=self.job_id))
            return None

    def view(self) -> pn.Column:
        return pn.Column(
            self.header,
            pn.Row(self.cancel, self.retry, self.notebook),
            self.permission,
            self.rerun.view(),
            pn.Row(pn.Column(section(_("Details")), self.details),
                   pn.Column(section(_("Parameters")), self.parameters), sizing_mode="stretch_width"),
            section(_("State history")), self.history,
            section(_("Live log")), self.log,
            sizing_mode="stretch_width", css_classes=["job-view"],
        )


class JobsPage:
    def __init__(self, api: DashboardAPI, me: dict[str, Any], messages: Messages) -> None:
        self.api = api
        self.me = me
        self.messages = messages
        projects = project_options(me, include_all=True)
        self.project = pn.widgets.Select(name=_("Project"), options=projects, width=220,
                                         value=first_value(list(projects.values()), query_arg("project")))
        states = {_("All states"): "", **{job_state_word(state, pgettext): state for state in JOB_STATES}}
        self.state = pn.widgets.Select(name=_("State"), options=states, width=150,
                                       value=first_value(list(states.values()), query_arg("state")))
        self.owner = pn.widgets.TextInput(name=_("Owner"), value=query_arg("owner") or "", width=160,
                                          placeholder=_("any owner"))
        self.refresh_button = pn.widgets.Button(name=_("Refresh"), align="end")
        self.total = pn.pane.HTML(margin=(5, 10))
        self.table = data_table(jobs_frame([]), name="jobs", page_size=20)
        self.chart = pn.pane.HoloViews(charts.placeholder(_("loading")), sizing_mode="stretch_width",
                                       css_classes=["jobs-by-state"])
        self.detail = pn.Column(sizing_mode="stretch_width")
        self.job_view: JobView | None = None
        self.submit_form = SubmitForm(api, me, messages, projects, self.project.value, self.on_submitted)
        self.load()
        wanted = query_arg("job")
        if wanted and wanted.isdigit():
            self.open_job(int(wanted))
        for widget in (self.project, self.state):
            widget.param.watch(lambda _event: self.on_filter(), "value")
        self.owner.param.watch(lambda _event: self.on_filter(), "enter_pressed")
        self.refresh_button.on_click(lambda _event: self.on_filter())
        self.table.on_click(self.on_row_click)

    def load(self) -> None:
        project, state, owner = self.project.value or None, self.state.value or None, self.owner.value.strip() or None
        prefetch = Prefetch({"counts": lambda: self.api.job_counts(project)})
        try:
            listing = self.api.jobs(project=project, state=state, owner=owner, limit=JOBS_SHOWN)
            counts = prefetch.take("counts", lambda: self.api.job_counts(project))
        except (AitipAPIError, NotSignedIn) as error:
            self.messages.error(error, _("list jobs"))
            return
        self.table.value = jobs_frame(listing["items"])
        shown, total = len(listing["items"]), listing["total"]
        self.total.object = ngettext("{total} job matches", "{total} jobs match", total).format(
            total=f"<span id='jobs-total'>{total}</span>") + \
            (" " + _("(the newest {shown} shown)").format(shown=shown) if shown < total else "")
        self.chart.object = (charts.jobs_by_state(counts) if any(counts.values()) else
                             charts.placeholder(_("No jobs here yet: run a notebook above.")))

    def on_filter(self) -> None:
        self.messages.reset()
        self.load()
        update_query(project=self.project.value, state=self.state.value, owner=self.owner.value.strip())

    def on_row_click(self, event: Any) -> None:
        if event.row is None or event.row >= len(self.table.value):
            return
        job_id = int(self.table.value.iloc[event.row]["id"])
        self.messages.reset()
        self.open_job(job_id)
        update_query(job=job_id)

    def on_submitted(self, job_id: int) -> None:
        self.load()
        self.open_job(job_id)
        update_query(job=job_id)

    def open_job(self, job_id: int) -> None:
        if self.job_view is not None:
            self.job_view.stop()
        try:
            self.job_view = JobView(self.api, self.me, job_id, self.messages, self.on_submitted)
        except (AitipAPIError, NotSignedIn) as error:
            self.messages.error(error, _("read job {job}").format(job=job_id))
            self.detail[:] = []
            return
        self.detail[:] = [self.job_view.view()]

    def view(self) -> pn.Column:
        return pn.Column(
            self.detail,
            self.submit_form.view(),
            pn.Row(self.project, self.state, self.owner, self.refresh_button),
            self.total,
            pn.Row(pn.Column(self.table, sizing_mode="stretch_width"),
                   pn.Column(section(_("Jobs by state")), self.chart, width=420), sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
        )


def page() -> pn.Column:
    return signed_in_page(PAGE, _("see your jobs"), lambda api, me, messages: JobsPage(api, me, messages).view())


if __name__.startswith("bokeh_app"):
    page().servable(title=page_title(PAGE))
