"""Runs and models as a person reads them in a terminal (the CLI's human output; ``--json`` for all): times in the
shell's local time, durations, the metrics a page of runs has in common as columns, one run's params, metrics,
tags and artifacts, two or more runs side by side, and each model version with its aliases."""

from __future__ import annotations

from collections import Counter
from typing import Any

from ..i18n import shell_gettext as _
from ..text_tables import elapsed, field_lines, local_time, number, table

# How many of a page's metrics become columns of the runs table (the most common first).
METRIC_COLUMNS = 3


def duration(start_ms: int | None, end_ms: int | None) -> str:
    if start_ms is None or end_ms is None:
        return "-"
    return elapsed(max(0, end_ms - start_ms) / 1000)


def common_metrics(runs: list[dict[str, Any]], most: int = METRIC_COLUMNS) -> list[str]:
    """The metrics most of the runs logged, the most common first, then in the order the runs have them."""
    counts = Counter(key for run in runs for key in run["metrics"])
    return sorted(counts, key=lambda key: -counts[key])[:most]


def runs_text(page: dict[str, Any]) -> str:
    runs = page["runs"]
    if not runs:
        return _("(none)")
    metrics = common_metrics(runs)
    rows = [{_("run_id"): run["run_id"], _("name"): run["run_name"] or "-", _("status"): run["status"],
             _("started"): local_time(run["start_time"]), _("duration"): duration(run["start_time"], run["end_time"]),
             _("job"): run["job_id"] if run["job_id"] is not None else "-",
             **{key: number(run["metrics"].get(key)) for key in metrics}} for run in runs]
    lines = [table(rows, list(rows[0]))]
    others = len({key for run in runs for key in run["metrics"]} - set(metrics))
    if others:
        lines.append(_("{count} more metrics: `aitip runs get --run ID` or --json shows them").format(count=others))
    if page.get("next_page_token"):
        lines.append(_("more runs: --page-token {token}").format(token=page["next_page_token"]))
    return "\n".join(lines)


def _pairs(title: str, values: dict[str, Any], show: Any = str) -> list[str]:
    if not values:
        return []
    return ["", table([{title: key, _("value"): show(value)} for key, value in values.items()], [title, _("value")])]


def run_text(run: dict[str, Any]) -> str:
    lines = [_("run {run_id}: {name} — {status}").format(run_id=run["run_id"], name=run["run_name"] or "-",
                                                          status=run["status"])]
    facts = {_("project"): run["project"], _("experiment"): run["experiment_id"], _("user"): run["user"] or "-",
             _("started"): local_time(run["start_time"]), _("ended"): local_time(run["end_time"]),
             _("duration"): duration(run["start_time"], run["end_time"])}
    job = run.get("job")
    if job is not None:
        facts[_("job")] = _("{id} ({state}, {notebook}, attempt {attempt})").format(
            id=job["id"], state=job["state"], notebook=job["notebook_name"], attempt=job["attempt"])
    lines += field_lines(facts, list(facts), 12)
    lines += _pairs(_("param"), run["params"])
    lines += _pairs(_("metric"), run["metrics"], number)
    lines += _pairs(_("tag"), run["tags"])
    artifacts = [{_("artifact"): item["path"] + ("/" if item["is_dir"] else ""),
                  _("bytes"): "-" if item["file_size"] is None else f"{item['file_size']:,}"}
                 for item in run["artifacts"]]
    if artifacts:
        lines += ["", table(artifacts, list(artifacts[0]))]
        if run.get("artifacts_truncated"):
            lines.append(_("(more artifacts than are listed)"))
    return "\n".join(lines)


def comparison_text(comparison: dict[str, Any]) -> str:
    """The runs side by side: each parameter that differs, then each metric's latest value."""
    runs = comparison["runs"]
    names = {run["run_id"]: f"{run['run_name'] or '-'} ({run['run_id'][:8]})" for run in runs}
    rows = []
    for key in comparison["differing_params"]:
        rows.append({"": _("param {name}").format(name=key),
                     **{names[run_id]: value if value is not None else "-"
                        for run_id, value in comparison["params"][key].items()}})
    for key, values in sorted(comparison["metrics"].items()):
        rows.append({"": key, **{names[run_id]: number(value) for run_id, value in values.items()}})
    same = len(comparison["params"]) - len(comparison["differing_params"])
    lines = [table(rows, ["", *names.values()], upper=False) if rows else _("(none)")]
    if same:
        lines.append(_("{count} parameters are the same in every run (--json shows them)").format(count=same))
    return "\n".join(lines)


def models_text(listing: dict[str, Any]) -> str:
    """A row per model version, newest first, with the aliases that point at it."""
    rows = []
    for model in listing["models"]:
        if not model["versions"]:
            rows.append({_("model"): model["name"], _("version"): "-", _("status"): "-", _("aliases"): "-",
                         _("created"): "-", _("job"): "-", _("run_id"): "-"})
        for version in sorted(model["versions"], key=lambda item: -item["version"]):
            rows.append({_("model"): model["name"], _("version"): version["version"],
                         _("status"): version["status"] or "-", _("aliases"): ", ".join(version["aliases"]) or "-",
                         _("created"): local_time(version["creation_timestamp"]),
                         _("job"): version["job_id"] if version["job_id"] is not None else "-",
                         _("run_id"): version["run_id"] or "-"})
    return table(rows, list(rows[0])) if rows else _("(none)")


def model_text(model: dict[str, Any]) -> str:
    """One registered model (as an alias change answers): where each alias points, then its versions."""
    aliases = ", ".join(f"{alias} → v{version}" for alias, version in sorted(model["aliases"].items()))
    lines = [_("model {name}: {aliases}").format(name=model["name"], aliases=aliases or _("no aliases"))]
    if model.get("description"):
        lines.append(model["description"])
    return "\n".join([*lines, "", models_text({"models": [model]})])
