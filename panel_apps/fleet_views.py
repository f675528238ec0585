"""The Releases page's device parts: a firmware release's rollouts to device groups as table rows, each group's
progress (installed, failed, waiting, against its thresholds), and the project's fleet by firmware version and
state as a chart. Pure: the API's JSON and the page's language in, no API called."""

from __future__ import annotations

from html import escape
from typing import Any

import pandas as pd

from aitip.i18n import N_
from aitip.releases.rollout_words import message_said
from panel_apps import charts
from panel_apps.language import _
from panel_apps.release_views import badge

DEVICE_ROLLOUT_COLUMNS = ["id", "version", "state", "group", "installed", "message"]
DEVICE_ROLLOUT_WORDS = {"running": N_("running"), "paused": N_("paused"), "stopped": N_("emergency stop"),
                        "succeeded": N_("succeeded")}
DEVICE_ROLLOUT_COLOURS = {"running": "#0066cc", "paused": "#aa6600", "stopped": "#cc0000", "succeeded": "#228822"}
DEVICE_STATE_WORDS = {"registered": N_("never checked in"), "idle": N_("up to date"), "updating": N_("updating"),
                      "failed": N_("update failed")}
DEVICE_STATE_COLOURS = {"idle": "#228822", "updating": "#0066cc", "failed": "#cc0000", "registered": "#999999"}
FLEET_HEIGHT = 220


def device_rollout_badge(state: str) -> str:
    return badge("device-rollout-state", state, DEVICE_ROLLOUT_WORDS, DEVICE_ROLLOUT_COLOURS)


def device_rollouts_frame(rollouts: list[dict[str, Any]]) -> pd.DataFrame:
    rows = []
    for rollout in rollouts:
        waves = rollout["waves"]
        current = waves[min(rollout["group_index"], len(waves) - 1)]
        rows.append({"id": rollout["id"], "version": rollout["version"],
                     "state": device_rollout_badge(rollout["state"]), "group": f"{current['group']} "
                     f"({min(rollout['group_index'], len(waves) - 1) + 1} / {len(waves)})",
                     "installed": f"{sum(w['installed'] for w in waves)} / {sum(w['devices'] for w in waves)}",
                     "message": message_said(rollout["message"], _)})
    return pd.DataFrame(rows, columns=DEVICE_ROLLOUT_COLUMNS)


def device_table_titles() -> dict[str, str]:
    return {"version": _("version"), "state": _("state"), "group": _("group"), "installed": _("installed"),
            "message": _("why")}


def waves_html(rollout: dict[str, Any]) -> str:
    """Each group as a bar: installed (green) and failed (red) of its devices, with its thresholds."""
    rows = []
    for index, wave in enumerate(rollout["waves"]):
        size = max(wave["devices"], 1)
        done, failed = 100 * wave["installed"] / size, 100 * wave["failed"] / size
        status = _("waiting") if not wave["started"] else _("{installed} of {devices} installed, {failed} failed") \
            .format(installed=wave["installed"], devices=wave["devices"], failed=wave["failed"])
        if wave.get("withdrawn"):
            status += _(", {withdrawn} withdrawn by the stop").format(withdrawn=wave["withdrawn"])
        thresholds = _("next group at {success} %, stop above {error} % failed").format(
            success=wave["success_threshold"], error=wave["error_threshold"])
        rows.append(
            f"<tr class='wave' data-group='{escape(wave['group'])}' data-started='{str(wave['started']).lower()}'>"
            f"<td style='padding:.2rem .6rem'><b>{index + 1}. {escape(wave['group'])}</b></td>"
            f"<td style='width:40%;padding:.2rem .6rem'><div style='background:#e2e3e5;height:.9rem;display:flex'>"
            f"<div style='background:#228822;width:{done:.1f}%'></div>"
            f"<div style='background:#cc0000;width:{failed:.1f}%'></div></div></td>"
            f"<td style='padding:.2rem .6rem'>{escape(status)}</td>"
            f"<td style='padding:.2rem .6rem;color:#555'>{escape(thresholds)}</td></tr>")
    return f"<table class='device-waves' style='width:100%'>{''.join(rows)}</table>"


def fleet_figure(fleet: dict[str, Any] | None) -> Any:
    """Devices per firmware version, stacked by state (up to date, updating, failed, never checked in)."""
    from bokeh.models import AdaptiveTicker, ColumnDataSource, HoverTool
    from bokeh.plotting import figure

    if not fleet or not fleet.get("devices"):
        return charts.empty_figure(_("No device is registered in this project."), "fleet-chart")
    none = _("none yet")
    versions = sorted({item["version"] or none for item in fleet["by_version"]})
    states = [state for state in DEVICE_STATE_COLOURS if any(item["state"] == state for item in fleet["by_version"])]
    counts = {(item["version"] or none, item["state"]): item["devices"] for item in fleet["by_version"]}
    data: dict[str, list[Any]] = {"version": versions}
    for state in states:
        data[state] = [counts.get((version, state), 0) for version in versions]
    chart = figure(y_range=versions, height=max(FLEET_HEIGHT, 60 + 40 * len(versions)), sizing_mode="stretch_width",
                   toolbar_location=None, x_axis_label=_("devices"), y_axis_label=_("firmware version"))
    chart.css_classes = ["fleet-chart", f"devices-{fleet['devices']}", "states-" + "-".join(states)]
    renderers = chart.hbar_stack(states, y="version", height=0.6, source=ColumnDataSource(data),
                                 color=[DEVICE_STATE_COLOURS[state] for state in states],
                                 legend_label=[_(DEVICE_STATE_WORDS[state]) for state in states])
    for renderer, state in zip(renderers, states):
        chart.add_tools(HoverTool(renderers=[renderer], tooltips=[(_("firmware version"), "@version"),
                                                                  (_(DEVICE_STATE_WORDS[state]), f"@{state}")]))
    chart.x_range.start = 0
    chart.xaxis.ticker = AdaptiveTicker(min_interval=1)  # whole devices
    chart.add_layout(chart.legend[0], "right")  # beside the bars: inside, it covered the longest one
    return chart
