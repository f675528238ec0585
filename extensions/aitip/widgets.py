"""ipywidgets for notebooks, built on the SDK (so the caller's roles hold here too).

    from aitip.widgets import JobMonitor, RunCompare, GpuGauge
    JobMonitor(job_id)          # shows state, live output, and Cancel / Retry buttons
    RunCompare("vision")        # pick runs (MLflow filter syntax), compare params, metrics and curves
    GpuGauge()                  # GPU utilization and memory (CPU and memory where there is no GPU), live

They speak the kernel's language (``AITIP_LANG``, which a hub server gets from the page that started it, else the
locale), as the CLI does, a job's state too; names and the platform's other values stay as they are.
"""

from __future__ import annotations

import threading
from html import escape
from typing import Any

import ipywidgets as widgets

from .client import AitipAPIError, Client
from .i18n import shell_gettext as _
from .i18n import shell_ngettext as ngettext
from .jobs.models import Job, JobEvent
from .jobs.state_words import job_state_word
from .resources.text import no_gpu_why

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
        self.cancel_button = widgets.Button(description=_("Cancel"), button_style="danger", icon="stop")
        self.retry_button = widgets.Button(description=_("Retry"), icon="redo")
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
        header = _("{job} {notebook} in {project} by {owner}: {state} (attempt {attempt}/{attempts})")
        self.header.value = escape(header).format(
            job="<b>" + escape(_("Job {id}").format(id=job.id)) + "</b>", notebook=escape(job.notebook_name),
            project=f"<b>{escape(job.project)}</b>", owner=escape(job.owner),
            state=f"<span style='color:{colour}'><b>{escape(job_state_word(job.state.value))}</b></span>",
            attempt=job.attempt,
            attempts=job.max_attempts) + reason
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
            self.progress.value = escape(ngettext("{count} cell run; last took {seconds:.2f} s",
                                                  "{count} cells run; last took {seconds:.2f} s",
                                                  self.cells_done).format(count=self.cells_done,
                                                                          seconds=data.get("seconds", 0)))
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
            self.message.value = escape(_("cancel requested"))
        except AitipAPIError as error:
            self.message.value = f"<span style='color:#c00'>{escape(error.message)}</span>"
        self._render_job()

    def retry(self) -> Any:
        try:
            job = self.client.retry_job(self.job_id)
        except AitipAPIError as error:
            self.message.value = f"<span style='color:#c00'>{escape(error.message)}</span>"
            return None
        self.message.value = escape(_("retried as job {id}").format(id=job.id))
        return JobMonitor(job.id, self.client)

    def wait(self, timeout: float | None = None) -> Job:
        """Block until the job has finished and the monitor has shown it."""
        if not self._finished.wait(timeout):
            raise TimeoutError(f"job {self.job_id} still {self.job.state.value}")
        if self._thread is not None:
            self._thread.join(timeout)
        return self.job


class RunCompare(widgets.VBox):
    """Pick runs of a project and compare them: differing parameters, latest metrics, overlaid curves."""

    def __init__(self, project: str, client: Client | None = None, *, filter: str = "",  # noqa: A002
                 max_runs: int = 200) -> None:
        self.client = client or Client()
        self.project = project
        self.max_runs = max_runs
        self.filter_box = widgets.Text(value=filter, placeholder="metrics.accuracy > 0.9 and params.lr = '0.01'",
                                       description=_("Filter"), layout=widgets.Layout(width="70%"))
        self.search_button = widgets.Button(description=_("Search"), icon="search")
        self.picker = widgets.SelectMultiple(options=[], rows=8, description=_("Runs"),
                                             layout=widgets.Layout(width="100%"))
        self.compare_button = widgets.Button(description=_("Compare"), button_style="primary", icon="columns")
        self.message = widgets.HTML()
        self.table = widgets.HTML()
        self.plot = widgets.Output()
        self.search_button.on_click(lambda _b: self.search())
        self.compare_button.on_click(lambda _b: self.compare())
        super().__init__([widgets.HBox([self.filter_box, self.search_button]), self.picker,
                          widgets.HBox([self.compare_button, self.message]), self.table, self.plot])
        self.comparison: Any = None
        self.search()

    def search(self) -> None:
        try:
            page = self.client.runs(self.project, filter=self.filter_box.value.strip(), max_results=self.max_runs,
                                    order_by=["attributes.start_time DESC"])
        except AitipAPIError as error:
            self.message.value = f"<span style='color:#c00'>{escape(error.message)}</span>"
            return
        self.picker.options = [(f"{run.run_name or run.run_id[:8]} ({run.status.lower()}, "
                                f"{', '.join(f'{k}={v:.4g}' for k, v in list(run.metrics.items())[:2] if v is not None)})",
                                run.run_id) for run in page.runs]
        shown = ngettext("{count} run", "{count} runs", len(page.runs)).format(count=len(page.runs))
        if page.next_page_token:
            shown = _("{shown} (more: narrow the filter)").format(shown=shown)
        self.message.value = escape(shown)

    def compare(self, run_ids: list[str] | None = None) -> Any:
        chosen = list(run_ids or self.picker.value)
        if len(chosen) < 2:
            self.message.value = "<span style='color:#c00'>" + escape(_("pick at least two runs")) + "</span>"
            return None
        try:
            comparison = self.client.compare_runs(self.project, chosen)
        except AitipAPIError as error:
            self.message.value = f"<span style='color:#c00'>{escape(error.message)}</span>"
            return None
        self.comparison = comparison
        names = {run.run_id: run.run_name or run.run_id[:8] for run in comparison.runs}
        header = "".join(f"<th>{escape(names[r])}</th>" for r in chosen)
        rows = [f"<tr><td><b>{escape(p)}</b></td>" + "".join(
            f"<td>{escape(str(comparison.params.get(p, {}).get(r, '-')))}</td>" for r in chosen) + "</tr>"
            for p in comparison.differing_params]
        rows += [f"<tr><td>{escape(m)}</td>" + "".join(
            f"<td>{_number(comparison.metrics[m].get(r))}</td>" for r in chosen) + "</tr>"
            for m in sorted(comparison.metrics)]
        self.table.value = f"<table><tr><th></th>{header}</tr>{''.join(rows)}</table>"
        self._plot(comparison, names)
        self.message.value = escape(ngettext("{runs} runs, {count} differing parameter",
                                             "{runs} runs, {count} differing parameters",
                                             len(comparison.differing_params)).format(
            runs=len(chosen), count=len(comparison.differing_params)))
        return comparison

    def _plot(self, comparison: Any, names: dict[str, str]) -> None:
        import matplotlib.pyplot as plt

        self.plot.clear_output()
        curves = {key: series for key, series in comparison.curves.items() if any(len(p) > 1 for p in series.values())}
        if not curves:
            return
        with self.plot:
            figure, axes = plt.subplots(1, len(curves), figsize=(5 * len(curves), 3.2), squeeze=False)
            for axis, (key, series) in zip(axes[0], sorted(curves.items()), strict=False):
                for run_id, points in series.items():
                    axis.plot([p.step for p in points], [p.value for p in points], label=names.get(run_id, run_id))
                axis.set_title(key)
                axis.set_xlabel(_("step"))
                axis.legend(fontsize="small")
            figure.tight_layout()
            plt.show()


def _number(value: Any) -> str:
    return "-" if value is None else f"{value:.6g}" if isinstance(value, float) else escape(str(value))


class GpuGauge(widgets.VBox):
    """Live bars per GPU (utilization, memory), or CPU and memory on a machine without one."""

    def __init__(self, client: Client | None = None, *, interval: float = 5.0, follow: bool = True) -> None:
        self.client = client or Client()
        self.interval = interval
        self.title = widgets.HTML()
        self.bars = widgets.VBox()
        super().__init__([self.title, self.bars])
        self._stop = threading.Event()
        self.refresh()
        if follow:
            threading.Thread(target=self._loop, daemon=True, name="aitip-gpu-gauge").start()

    def refresh(self) -> dict[str, Any]:
        snapshot = self.client.resources_now()
        host = snapshot["host"]
        if snapshot["gpu_available"]:
            count = len(snapshot["devices"])
            self.title.value = escape(_("{gpus} on {host}")).format(
                gpus="<b>" + escape(ngettext("{count} GPU", "{count} GPUs", count).format(count=count)) + "</b>",
                host=escape(host.get("hostname", "")))
            bars = []
            for device in snapshot["devices"]:
                used, total = device.get("memory_used_bytes") or 0, device.get("memory_total_bytes") or 1
                jobs = ", ".join(_("job {id}").format(id=j) for j in device.get("jobs", [])) or _("idle")
                bars.append(_bar(_("GPU {index} use").format(index=device["index"]),
                                 device.get("utilization_gpu_percent") or 0, jobs))
                bars.append(_bar(_("GPU {index} memory").format(index=device["index"]), 100 * used / total,
                                 f"{used / 2**30:.1f} / {total / 2**30:.1f} GiB"))
        else:
            why = no_gpu_why(snapshot.get("no_gpu_reason"), _)
            no_gpu = "<b>" + escape(_("no GPU")) + "</b>"
            self.title.value = escape(_("{no_gpu} ({why}): CPU and memory")).format(
                no_gpu=no_gpu, why=escape(why)) if why else no_gpu
            used, total = host["memory_used_bytes"], host["memory_total_bytes"] or 1
            cores = host.get("cpu_count") or 0
            bars = [_bar(_("CPU"), host.get("cpu_percent") or 0,
                         ngettext("{count} core", "{count} cores", cores).format(count=cores)),
                    _bar(_("memory"), 100 * used / total, f"{used / 2**30:.1f} / {total / 2**30:.1f} GiB")]
        self.bars.children = bars
        return snapshot

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.refresh()
            except Exception as error:  # noqa: BLE001 - a gauge shows the error and keeps trying
                self.title.value = f"<span style='color:#c00'>{escape(str(error))}</span>"

    def close(self) -> None:
        self._stop.set()
        super().close()


def _bar(label: str, percent: float, note: str) -> widgets.HBox:
    bar = widgets.FloatProgress(value=max(0.0, min(100.0, percent)), min=0, max=100, description=label,
                                style={"description_width": "8em"}, layout=widgets.Layout(width="60%"))
    return widgets.HBox([bar, widgets.HTML(f"{percent:.0f}% · {escape(note)}")])
