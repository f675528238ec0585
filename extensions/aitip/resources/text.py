"""The node's resources as a person reads them in a terminal (the CLI's human output; ``--json`` for all): the
host's CPU and memory, each GPU's use with the jobs on it, and the sampled history summed up."""

from __future__ import annotations

from statistics import mean
from typing import Any

from ..i18n import shell_gettext as _
from ..text_tables import local_time, table

GIB = 1024 ** 3


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
        lines.append(snapshot.get("no_gpu_reason") or _("no GPU"))
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
        lines.append(history.get("no_gpu_reason") or _("no GPU"))
    for device in history.get("devices") or []:
        lines.append(_("GPU {index}: {spread}").format(index=device.get("index"), spread=_spread(
            [value for value in device.get("utilization_gpu_percent") or [] if value is not None])))
    return "\n".join(lines)
