"""A job as a person reads it in a terminal (``aitip jobs show``; ``--json`` for all): what ran with which
parameters and data, on what resources, how long each part took, where it is tracked, and why it failed; and a
sweep with its trials."""

from __future__ import annotations

import json
from typing import Any

from ..i18n import shell_gettext as _
from .state_words import job_state_word
from ..text_tables import elapsed, field_lines, local_time, number, parsed_time, table, wrap


def _seconds_between(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return max(0.0, (parsed_time(end) - parsed_time(start)).total_seconds())


def resources_text(resources: dict[str, Any]) -> str:
    cpus, gpus, memory = resources.get("cpus"), resources.get("gpus") or 0, resources.get("memory_mb")
    parts = [_("{cpus:g} CPU").format(cpus=cpus) if cpus else _("any CPU"),
             _("{gpus} GPU").format(gpus=gpus) if gpus else _("no GPU"),
             _("{memory} MB").format(memory=memory) if memory else _("memory unlimited")]
    return ", ".join(parts)


def job_text(job: dict[str, Any]) -> str:
    head = _("job {id}: {notebook} in {project} — {state}").format(
        id=job["id"], notebook=job["notebook_name"], project=job["project"], state=job_state_word(job["state"]))
    if job["max_attempts"] > 1:
        head += " " + _("(attempt {attempt} of {attempts})").format(attempt=job["attempt"],
                                                                   attempts=job["max_attempts"])
    if job.get("cancel_requested") and job["state"] not in ("cancelled", "succeeded", "failed", "timed_out"):
        head += " " + _("(cancel requested)")
    facts = {_("owner"): job["owner"],
             _("kernel"): _("{kernel}; {resources}; time limit {limit}; priority {priority}").format(
                 kernel=job["kernel"], resources=resources_text(job["resources"]),
                 limit=elapsed(job["timeout_seconds"]), priority=job["priority"])}
    if job["parameters"]:
        facts[_("parameters")] = ", ".join(f"{name}={value!r}" if isinstance(value, str) else f"{name}={value}"
                                           for name, value in job["parameters"].items())
    if job["inputs"]:
        facts[_("inputs")] = ", ".join(f"{item['dataset']} v{item['version']} ({item['how']})"
                                       for item in job["inputs"])
    facts[_("notebook")] = "SHA-256 " + job["notebook_sha256"][:16] + "…" + (
        " · " + _("code {version}").format(version=job["code_version"][:12]) if job.get("code_version") else "")
    waited = _seconds_between(job["submitted_at"], job.get("started_at"))
    ran = _seconds_between(job.get("started_at"), job.get("finished_at"))
    timeline = [_("submitted {at}").format(at=local_time(job["submitted_at"]))]
    if job.get("started_at"):
        timeline.append(_("started after {waited}").format(waited=elapsed(waited or 0.0)))
    if ran is not None:
        timeline.append(_("ended after {ran}").format(ran=elapsed(ran)))
    facts[_("times")] = "; ".join(timeline)
    if job.get("mlflow_run_id"):
        facts[_("MLflow run")] = job["mlflow_run_id"]
    if job.get("retry_of"):
        facts[_("retry of")] = _("job {id}").format(id=job["retry_of"])
    if job.get("rerun_of"):
        facts[_("rerun of")] = _("job {id}").format(id=job["rerun_of"])
    if job.get("tags"):
        facts[_("tags")] = ", ".join(f"{key}={value}" for key, value in job["tags"].items())
    if job.get("sandbox"):
        facts[_("sandbox")] = ", ".join(f"{key}={value}" for key, value in job["sandbox"].items())
    if job.get("reason"):
        facts[_("reason")] = job["reason"]
    lines = [head, *field_lines(facts, list(facts), 12)]
    cell = job.get("failed_cell")
    if cell:
        lines += ["", _("failed cell {index}:").format(index=cell["index"]), cell["source"].rstrip()]
        if cell.get("traceback"):
            lines += ["", cell["traceback"].rstrip()]
    return "\n".join(lines)


def sweep_text(sweep: dict[str, Any]) -> str:
    """``aitip sweep``, ``aitip sweeps show`` and the generated sweep commands: the search, its best trial, what
    it searches and reads, and each trial with the values searched (the fixed ones are the sweep's)."""
    head = _("sweep {sweep} ({strategy}) in {project}: {state}, {created}/{trials} trials, {direction} "
             "{objective}").format(sweep=sweep["id"], strategy=sweep["strategy"], project=sweep["project"],
                                   state=job_state_word(sweep["state"]), created=sweep["created_trials"],
                                   trials=sweep["trials"],
                                   direction=sweep["direction"], objective=sweep["objective"])
    best = (_("best: {value} from job {job} with {parameters}").format(
        value=number(sweep["best_value"]), job=sweep["best_job_id"], parameters=json.dumps(sweep["best_parameters"]))
            if sweep.get("best_job_id") else _("best: none yet"))
    origin = [_("notebook of job {job}").format(job=sweep["job"])] if sweep.get("job") else []
    if sweep.get("inputs"):
        origin.append(_("reads {inputs}").format(inputs=", ".join(f"{item['dataset']} v{item['version']}"
                                                                 for item in sweep["inputs"])))
    searched = sweep.get("space") or {}
    rows = [{"job": trial["job_id"], "trial": trial["index"], "state": job_state_word(trial["state"]),
             "value": number(trial["value"]),
             "parameters": json.dumps({name: value for name, value in trial["parameters"].items() if name in searched})}
            for trial in sweep.get("trial_jobs") or []]
    return "\n".join([head, *(["; ".join(origin)] if origin else []), best, "",
                      table(rows, ["trial", "job", "state", "value", "parameters"])])


def shipped_notebooks_text(listing: dict[str, Any]) -> str:
    """``aitip notebooks list``: each notebook the platform ships, what it is for, its parameters with their
    defaults and comments, and the command that runs it."""
    blocks = []
    for notebook in listing["notebooks"]:
        lines = [f"{notebook['name']} — {notebook['title']}"
                 + (f"  [{notebook['kernel']}]" if notebook.get("kernel") else "")]
        lines += ["  " + line for line in wrap(notebook["summary"], 96)]
        rows = [{"parameter": parameter["name"], "default": json.dumps(parameter["default"]),
                 "about": parameter["help"]} for parameter in notebook["parameters"]]
        if rows:
            lines += ["", *("  " + line for line in table(rows, ["parameter", "default", "about"]).splitlines())]
        lines += ["", "  " + _("run it: {command}").format(
            command=f"aitip run --shipped {notebook['name']} -P PROJECT -p NAME VALUE")]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) if blocks else _("no notebooks are shipped with this platform")
