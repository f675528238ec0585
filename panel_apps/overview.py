"""Overview: GPUs (or the host, where there is none) now and over the last hour, the viewer's jobs
by state, the queue, recent activity and GPU-hours. Refreshes itself every 15 seconds."""

from __future__ import annotations

from html import escape
from typing import Any

import pandas as pd
import panel as pn

from aitip.client import AitipAPIError
from aitip.resources.text import no_gpu_why
from panel_apps import charts
from panel_apps.api import JOB_STATES, DashboardAPI
from panel_apps.components import (
    page_title,
    signed_in_page,
    Messages,
    NotSignedIn,
    Prefetch,
    data_table,
    format_bytes,
    format_duration,
    format_time,
    parse_time,
    section,
    state_badge,
)
from panel_apps.language import _, ngettext

PAGE = "overview"
REFRESH_MILLISECONDS = 15_000
RECENT_JOBS = 15
QUEUE_SHOWN = 50
WAITING_STATES = ("queued", "starting")


def _process_line(process: dict[str, Any]) -> str:
    job = process.get("job") or {}
    if job.get("hidden"):
        owner = " — " + escape(_("a job of a project you are not in"))
    elif job.get("id") is not None:
        name = escape(_("job {job}").format(job=job["id"]))
        link = f"<a href='./jobs?job={job['id']}'>{name}</a>"
        owner = " — " + _("{job} by {owner} in {project}").format(job=link, owner=escape(str(job.get("owner", ""))),
                                                                 project=escape(str(job.get("project", ""))))
    else:
        owner = f" — {escape(process['os_user'])}" if process.get("os_user") else ""
    return f"<li>pid {process['pid']}: {format_bytes(process.get('used_memory_bytes'))}{owner}</li>"


def _percent(value: Any) -> str:
    return "?" if value is None else f"{float(value):.0f}%"


def resources_html(now: dict[str, Any] | None) -> str:
    """The machine at a glance: each GPU with its processes and jobs, or "no GPU" (and why) with the
    host's CPU and memory."""
    if now is None:
        return ("<div id='resources' class='no-resource-data' style='color:#555'>"
                + escape(_("no resource data: the platform's resource monitor is not running")) + "</div>")
    host = now.get("host") or {}
    host_line = "<div id='host'>" + _(
        "host {host}: CPU {cpu} of {cores} cores · memory {used} of {total}").format(
        host=escape(str(host.get("hostname") or "")), cpu=f"<b id='host-cpu'>{_percent(host.get('cpu_percent'))}</b>",
        cores=host.get("cpu_count", "?"), used=f"<b>{format_bytes(host.get('memory_used_bytes'))}</b>",
        total=format_bytes(host.get("memory_total_bytes"))) + "</div>"
    devices = now.get("devices") or []
    if not now.get("gpu_available") or not devices:
        reason = escape(no_gpu_why(now.get("no_gpu_reason"), _))
        detail = f" — {reason}" if reason else ""  # the reason has parentheses of its own
        no_gpu = escape(_("no GPU"))
        return f"<div id='resources'><div id='gpu-status'><b>{no_gpu}</b>{detail}</div>{host_line}</div>"
    cards = []
    for gpu in devices:
        processes = "".join(_process_line(process) for process in gpu.get("processes") or [])
        power = f" · {gpu['power_w']:.0f} W" if gpu.get("power_w") is not None else ""
        temperature = f"{gpu['temperature_c']:.0f} °C" if gpu.get("temperature_c") is not None else ""
        usage = _("utilization {utilization} · memory {used} of {total}").format(
            utilization=f"<b class='gpu-utilization'>{_percent(gpu.get('utilization_gpu_percent'))}</b>",
            used=format_bytes(gpu.get("memory_used_bytes")), total=format_bytes(gpu.get("memory_total_bytes")))
        idle = "<li>" + escape(_("idle")) + "</li>"
        cards.append(
            f"<div class='gpu' style='border:1px solid #ddd;border-radius:6px;padding:.5rem .8rem;min-width:16rem'>"
            f"<b>GPU {gpu['index']}</b> {escape(gpu.get('name') or '')}<br>{usage}<br>"
            f"{temperature}{power}<ul style='margin:.3rem 0;padding-left:1.2rem'>{processes or idle}</ul>"
            f"</div>")
    count = escape(ngettext("{count} GPU", "{count} GPUs", len(devices)).format(count=len(devices)))
    return (f"<div id='resources'><div id='gpu-status'><b>{count}</b></div>"
            f"<div style='display:flex;gap:.8rem;flex-wrap:wrap;margin:.4rem 0'>{''.join(cards)}</div>"
            f"{host_line}</div>")


def counts_html(counts: dict[str, int]) -> str:
    cells = "".join(f"<span style='margin-right:1rem'>{state_badge(state)} <b id='count-{state}'>{counts[state]}"
                    f"</b></span>" for state in JOB_STATES)
    return f"<div id='job-counts' style='font-family:system-ui,sans-serif'>{cells}</div>"


def empty_note(frame: pd.DataFrame, text: str, element_class: str) -> str:
    """What an empty table means and what to do next; nothing when it has rows."""
    return "" if len(frame) else f"<div class='empty-note {element_class}' style='color:#555'>{escape(text)}</div>"


def queue_frame(jobs: list[dict[str, Any]]) -> pd.DataFrame:
    """Waiting jobs in roughly the order the scheduler takes them: priority, then age."""
    ordered = sorted(jobs, key=lambda job: (-job["priority"], job["submitted_at"]))
    now = pd.Timestamp.now(tz="UTC")
    rows = [{"position": position, "id": job["id"], "state": job["state"], "project": job["project"],
             "owner": job["owner"], "priority": job["priority"], "notebook": job["notebook_name"],
             "waiting": format_duration((now - pd.Timestamp(parse_time(job["submitted_at"]))).total_seconds())}
            for position, job in enumerate(ordered, start=1)]
    return pd.DataFrame(rows, columns=["position", "id", "state", "project", "owner", "priority", "notebook",
                                       "waiting"])


def recent_frame(jobs: list[dict[str, Any]]) -> pd.DataFrame:
    rows = [{"id": job["id"], "state": job["state"], "project": job["project"], "owner": job["owner"],
             "notebook": job["notebook_name"], "submitted": format_time(job["submitted_at"]),
             "finished": format_time(job.get("finished_at"))} for job in jobs]
    return pd.DataFrame(rows, columns=["id", "state", "project", "owner", "notebook", "submitted", "finished"])


def usage_frame(report: dict[str, Any] | None, key: str) -> pd.DataFrame:
    entries = (report or {}).get("items") or []
    return pd.DataFrame([{key: entry["name"], "GPU hours": round(float(entry["gpu_hours"]), 2), "jobs": entry["jobs"],
                          "running": entry.get("running_jobs", 0)} for entry in entries],
                        columns=[key, "GPU hours", "jobs", "running"])


class OverviewPage:
    def __init__(self, api: DashboardAPI, messages: Messages) -> None:
        self.api = api
        self.messages = messages
        self.resources = pn.pane.HTML(sizing_mode="stretch_width", margin=(5, 10))
        self.timeline = pn.pane.HoloViews(charts.placeholder(_("loading")), sizing_mode="stretch_width",
                                          css_classes=["utilization-chart"])
        self.counts = pn.pane.HTML(sizing_mode="stretch_width", margin=(5, 10))
        self.states_chart = pn.pane.HoloViews(charts.placeholder(_("loading")), sizing_mode="stretch_width",
                                              css_classes=["jobs-by-state"])
        self.queue = data_table(queue_frame([]), name="queue", page_size=10)
        self.queue_note = pn.pane.HTML(margin=(0, 10))
        self.recent = data_table(recent_frame([]), name="recent", pagination=None)
        self.recent_note = pn.pane.HTML(margin=(0, 10))
        self.usage = pn.Row(sizing_mode="stretch_width")
        self.refresh()
        if pn.state.curdoc is not None and pn.state.curdoc.session_context is not None:
            pn.state.add_periodic_callback(self.refresh, period=REFRESH_MILLISECONDS)

    def refresh(self) -> None:
        """Everything the page shows, fetched side by side."""
        self.messages.reset()
        api = self.api
        prefetch = Prefetch({
            "now": api.resources_now, "history": api.resources_history,
            "by user": lambda: api.resources_usage("user"), "by project": lambda: api.resources_usage("project"),
            "counts": api.job_counts, "recent": lambda: api.jobs(limit=RECENT_JOBS),
            **{state: (lambda state=state: api.jobs(state=state, limit=QUEUE_SHOWN)) for state in WAITING_STATES},
        })
        try:
            now = prefetch.take("now", api.resources_now)
            history = prefetch.take("history", api.resources_history)
            by_user = prefetch.take("by user", lambda: api.resources_usage("user"))
            by_project = prefetch.take("by project", lambda: api.resources_usage("project"))
        except (AitipAPIError, NotSignedIn) as error:
            self.messages.error(error, _("read the machine's resources"))
            now = history = by_user = by_project = None
        self.resources.object = resources_html(now)
        self.timeline.object = charts.utilization_over_time(history if now is not None else None)
        try:
            counts = prefetch.take("counts", api.job_counts)
            waiting = [job for state in WAITING_STATES for job in prefetch.take(state, lambda: {"items": []})["items"]]
            recent = prefetch.take("recent", lambda: api.jobs(limit=RECENT_JOBS))["items"]
        except (AitipAPIError, NotSignedIn) as error:
            self.messages.error(error, _("list your jobs"))
            return
        self.counts.object = counts_html(counts)
        self.states_chart.object = (charts.jobs_by_state(counts) if any(counts.values()) else charts.placeholder(
            _("No jobs in your projects yet: run a notebook from the Jobs page.")))
        self.queue.value = queue_frame(waiting)
        self.queue_note.object = empty_note(self.queue.value, _("Nothing is waiting: every submitted job has "
                                                                "started."), "queue-empty")
        self.recent.value = recent_frame(recent)
        self.recent_note.object = empty_note(self.recent.value, _("No jobs yet: run a notebook from the Jobs page, "
                                                                  "or `aitip run notebook.ipynb -P <project>`."),
                                             "recent-empty")
        if by_user is not None and by_project is not None:
            self.usage[:] = [self._usage(_("GPU hours by user"), usage_frame(by_user, "user"), "usage-users"),
                             self._usage(_("GPU hours by project"), usage_frame(by_project, "project"),
                                         "usage-projects")]

    @staticmethod
    def _usage(title: str, frame: pd.DataFrame, name: str) -> pn.Column:
        note = _("No GPU hours yet: jobs that ask for GPUs are counted here once they run.")
        shown = data_table(frame, name=name, pagination=None) if len(frame) else pn.pane.HTML(
            empty_note(frame, note, f"{name}-empty"))
        return pn.Column(section(title), shown, sizing_mode="stretch_width")

    def view(self) -> pn.Column:
        return pn.Column(
            section(_("Resources")), self.resources, self.timeline,
            section(_("Jobs in your projects, by state")), self.counts,
            pn.Row(pn.Column(self.states_chart, sizing_mode="stretch_width"),
                   pn.Column(section(_("Queue")), self.queue, self.queue_note, sizing_mode="stretch_width"),
                   sizing_mode="stretch_width"),
            section(_("Recent activity")), self.recent, self.recent_note,
            self.usage,
            sizing_mode="stretch_width",
        )


def page() -> pn.Column:
    return signed_in_page(PAGE, _("see the overview"), lambda api, me, messages: OverviewPage(api, messages).view())


if __name__.startswith("bokeh_app"):
    page().servable(title=page_title(PAGE))
