"""The node's resources as a person reads them in a terminal (the CLI's human output; ``--json`` for all): the
host's CPU and memory, each GPU's use with the jobs on it, and the sampled history summed up."""

from __future__ import annotations

from collections.abc import Callable
from statistics import mean
from typing import Any

from ..i18n import N_, said_from_templates, template_pattern
from ..i18n import shell_gettext as _
from ..text_tables import local_time, table
from .gpus import NO_GPU, NO_PYNVML, NVML_NO_DEVICES, NVML_UNAVAILABLE

GIB = 1024 ** 3
NO_GPU_ALONE = N_("no GPU")
_NO_GPU = template_pattern(NO_GPU)
_WHY = [(template_pattern(template), template) for template in (NO_PYNVML, NVML_UNAVAILABLE, NVML_NO_DEVICES)]


def no_gpu_why(reason: str | None, say: Callable[[str], str]) -> str:
    """Why a machine shows no GPU (its sample's ``no_gpu_reason``, less the leading "no GPU: ") in ``say``'s
    language; NVML's own error text stays as NVML wrote it, and a reason the probe did not write is shown as
    written."""
    if not reason:
        return ""
    found = _NO_GPU.fullmatch(" ".join(reason.split()))
    why = found["why"] if found else reason
    return said_from_templates(why, _WHY, say) or why


def no_gpu_text(reason: str | None, say: Callable[[str], str] = _) -> str:
    why = no_gpu_why(reason, say)
    return say(NO_GPU).format(why=why) if why else say(NO_GPU_ALONE)


def gib(used: int | None, total: int | None) -> str:
    if used is None or total is None:
        return "-"
    return _("{used:.1f} of {total:.1f} GiB").format(used=used / GIB, total=total / GIB)


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} %"


def host_line(host: dict[str, Any]) -> str:
    return _("host {hostname}: CPU {cpu} of {cores} cores (load {load}), memory {memory} used").format(
        hostname=host["hostname"], cpu=percent(host["cpu_percent"]), cores=host["cpu_count"],
        load=" ".join(f"{value:.2f}" for value in host.get("load_average") or []) or "-",
        memory=gib(host["memory_used_bytes"], host["memory_total_bytes"]))


def _jobs(device: dict[str, Any]) -> str:
    owners = {process["job"]["id"]: process["job"].get("owner") for process in device.get("processes") or []
              if process.get("job")}
    shown = [f"{job} ({owners[job]})" if owners.get(job) else str(job) for job in device.get("jobs") or []]
    return ", ".join(shown) or "-"


def snapshot_text(snapshot: dict[str, Any]) -> str:
    lines = [_("at {time}").format(time=local_time(snapshot["time"] * 1000)), host_line(snapshot["host"])]
    if not snapshot["gpu_available"]:
        lines.append(no_gpu_text(snapshot.get("no_gpu_reason")))
        return "\n".join(lines)
    lines.append(_("driver {version}").format(version=snapshot.get("driver_version") or "-"))
    rows = [{_("gpu"): device["index"], _("name"): device.get("name") or "-",
             _("utilization"): percent(device.get("utilization_gpu_percent")),
             _("memory"): gib(device.get("memory_used_bytes"), device.get("memory_total_bytes")),
             _("temperature"): "-" if device.get("temperature_c") is None else f"{device['temperature_c']:.0f} °C",
             _("power"): "-" if device.get("power_w") is None else f"{device['power_w']:.0f} W",
             _("job"): _jobs(device)} for device in snapshot["devices"]]
    lines.append(table(rows, list(rows[0])) if rows else _("(none)"))
    return "\n".join(lines)


def _spread(values: list[float]) -> str:
    return _("mean {mean:.0f} %, max {most:.0f} %").format(mean=mean(values), most=max(values)) if values else "-"


def history_text(history: dict[str, Any]) -> str:
    """What the sampled series says over its window: the host's CPU and memory, and each GPU's utilization."""
    host = history.get("host") or {}
    times = host.get("t") or []
    if not times:
        return _("no samples yet (one every {seconds:g} s)").format(seconds=history["interval_seconds"])
    lines = [_("{count} samples from {first} to {last} (one every {seconds:g} s)").format(
        count=len(times), first=local_time(times[0] * 1000), last=local_time(times[-1] * 1000),
        seconds=history["interval_seconds"])]
    memory = [value for value in host.get("memory_used_bytes") or [] if value is not None]
    lines.append(_("host {hostname}: CPU {cpu}; memory at most {memory}").format(
        hostname=host.get("hostname", "-"),
        cpu=_spread([value for value in host.get("cpu_percent") or [] if value is not None]),
        memory=gib(max(memory), host.get("memory_total_bytes")) if memory else "-"))
    if not history["gpu_available"]:
        lines.append(no_gpu_text(history.get("no_gpu_reason")))
    for device in history.get("devices") or []:
        lines.append(_("GPU {index}: {spread}").format(index=device.get("index"), spread=_spread(
            [value for value in device.get("utilization_gpu_percent") or [] if value is not None])))
    return "\n".join(lines)
