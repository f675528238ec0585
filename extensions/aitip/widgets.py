"""ipywidgets for notebooks: a live job monitor with cancel and retry, built on the SDK.

    from aitip.widgets import JobMonitor
    JobMonitor(job_id)          # shows state, live output, and Cancel / Retry buttons
"""

from __future__ import annotations

import threading
from html import escape
from typing import Any

import ipywidgets as widgets

from .client import AitipAPIError, Client
from .jobs.models import Job, JobEvent

_STATE_COLOURS = {"queued": "#777", "starting": "#a60", "running": "#06c", "succeeded": "#080", "failed": "#c00",
                  "cancelled": "#555", "timed_out": "#c60"}


class JobMonitor(widgets.VBox):
    """Follows one job's events (Server-Sent Events) in a background thread and renders them."""

    def __init__(self, job_id: int, client: Client | None = None, *, follow: bool = True,
                 max_log_chars: int = 200_000) -> None:
        self.client = client or Client()
        self.job_id = int(job_id)
        self.max_log_chars = max_log_chars
        self.header = widgets.HTML()
        self.progress = widgets.HTML()
        self.output_area = widgets.Textarea(value="", disabled=True,
                                            layout=widgets.Layout(width="100%", height="16em"))
        self.cancel_button = widgets.Button(description="Cancel", button_style="danger", icon="stop")
        self.retry_button = widgets.Button(description="Retry", icon="redo")
        self.message = widgets.HTML()
        self.cancel_button.on_click(lambda _b: self.cancel())
        self.retry_button.on_click(lambda _b: self.retry())
        super().__init__([self.header, self.progress, self.output_area,
                          widgets.HBox([self.cancel_button, self.retry_button, self.message])])
        self.job: Job = self.client.get_job(self.job_id)
        self.cells_done = 0
        self._finished = threading.Event()
        self._render_job()
        self._thread: threading.Thread | None = None
        if follow:
            self._thread = threading.Thread(target=self._follow, name=f"aitip-job-{job_id}", daemon=True)
            self._thread.start()

    # ----- rendering -----

    def _render_job(self) -> None:
        job = self.job
        colour = _STATE_COLOURS.get(job.state.value, "#333")
        reason = f" &mdash; {escape(job.reason)}" if job.reason else ""
        self.header.value = (f"<b>Job {job.id}</b> {escape(job.notebook_name)} in <b>{escape(job.project)}</b> "
                             f"by {escape(job.owner)}: <span style='color:{colour}'><b>{job.state.value}</b></span>"
                             f" (attempt {job.attempt}/{job.max_attempts}){reason}")
        finished = job.state.finished
        self.cancel_button.disabled = finished
        self.retry_button.disabled = not finished
        if finished:
            self._finished.set()

    def apply(self, event: JobEvent) -> None:
        """Render one event (public so that tests and other widgets can feed events)."""
        data = event.data
        if event.kind == "output":
            text = self.output_area.value + data.get("text", "")
            self.output_area.value = text[-self.max_log_chars:]
        elif event.kind == "cell_finished":
            self.cells_done += 1
            self.progress.value = f"{self.cells_done} cells run; last took {data.get('seconds', 0):.2f} s"
        elif event.kind == "state":
            self.job = self.client.get_job(self.job_id)
            self._render_job()

    def _follow(self) -> None:
        try:
            for event in self.client.follow_job(self.job_id):
                self.apply(event)
        except AitipAPIError as error:
            self.message.value = f"<span style='color:#c00'>{escape(error.message)}</span>"
        self.job = self.client.get_job(self.job_id)
        self._render_job()

    # ----- actions -----

    def cancel(self) -> None:
        try:
            self.job = self.client.cancel_job(self.job_id)
            self.message.value = "cancel requested"
        except AitipAPIError as error:
            self.message.value = f"<span style='color:#c00'>{escape(error.message)}</span>"
        self._render_job()

    def retry(self) -> Any:
        try:
            job = self.client.retry_job(self.job_id)
        except AitipAPIError as error:
            self.message.value = f"<span style='color:#c00'>{escape(error.message)}</span>"
            return None
        self.message.value = f"retried as job {job.id}"
        return JobMonitor(job.id, self.client)

    def wait(self, timeout: float | None = None) -> Job:
        """Block until the job has finished and the monitor has shown it."""
        if not self._finished.wait(timeout):
            raise TimeoutError(f"job {self.job_id} still {self.job.state.value}")
        if self._thread is not None:
            self._thread.join(timeout)
        return self.job
