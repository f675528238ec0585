"""An evaluation as a person reads it in a terminal: what was judged, the verdict with each reason, and the
metrics beside the baseline's (the CLI's human output; ``--json`` gives the whole answer); and the evaluation and
simulation policies of a model: what each run is on and how it is judged."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..i18n import N_
from ..i18n import shell_gettext as _
from ..text_tables import field_lines, local_time, pad, table

_BETTER_BY = N_("{change:g} better than the baseline")
_BETTER_BY_PERCENT = N_("{percent:g} % better than the baseline")

HEADLINE_METRICS = 12  # thresholded metrics first, then the rest up to this many
STATES = {"queued": N_("queued"), "running": N_("running"), "passed": N_("passed"), "failed": N_("failed"),
          "error": N_("error")}


def evaluation_text(evaluation: dict[str, Any]) -> str:
    state = str(evaluation["state"])
    shown_state = _(STATES.get(state, state)).upper()
    lines = [_("evaluation {id}: {model} v{version} on {dataset} v{dataset_version}").format(
        id=evaluation["id"], model=evaluation["model"], version=evaluation["model_version"],
        dataset=evaluation["dataset"], dataset_version=evaluation["dataset_version"]) + f"  [{shown_state}]"]
    baseline = evaluation.get("baseline_version")
    lines.append(_("baseline: {baseline}").format(baseline=f"v{baseline}" if baseline else _("none")) + "   "
                 + _("trigger: {trigger}").format(trigger=evaluation["trigger"]) + "   "
                 + _("job: {job}").format(job=evaluation.get("job_id") or "-"))
    for warning in evaluation.get("warnings") or ():
        lines.append(_("warning: {warning}").format(warning=warning))
    error = evaluation.get("error")
    if error:
        lines.append(_("error: {message}").format(message=error.get("message", "")))
        cell = error.get("failed_cell") or {}
        if cell.get("traceback"):
            lines += ["", cell["traceback"].rstrip()]
    verdict = evaluation.get("verdict")
    if verdict:
        lines += ["", _("verdict: passed") if verdict["passed"] else _("verdict: failed")]
        from ..i18n import language_from_environment, translator
        from .reports import reason_sentence

        words = translator(language_from_environment())
        for reason in verdict.get("reasons", ()):
            mark = _("skipped") if reason.get("skipped") else (_("passed") if reason["passed"] else _("failed"))
            lines.append(f"  {pad(mark, 8)} {reason_sentence(reason, words)}")
    metrics = evaluation.get("metrics") or {}
    if metrics:
        baseline_metrics = evaluation.get("baseline_metrics") or {}
        gated = list((evaluation.get("settings") or {}).get("thresholds") or {})
        names = [name for name in gated if name in metrics] + [name for name in metrics if name not in gated]
        rows = []
        for name in names[:HEADLINE_METRICS]:
            value, before = metrics[name], baseline_metrics.get(name)
            rows.append({"metric": name, "value": f"{value:.4g}",
                         "baseline": f"{before:.4g}" if before is not None else "-",
                         "change": f"{value - before:+.4g}" if before is not None else "-"})
        lines += ["", table(rows, ["metric", "value", "baseline", "change"])]
        if len(names) > HEADLINE_METRICS:
            lines.append(_("... and {count} more (--json shows every metric)").format(
                count=len(names) - HEADLINE_METRICS))
    return "\n".join(lines)


def threshold_text(metric: str, threshold: dict[str, Any], say: Callable[[str], str] = _) -> str:
    """``accuracy_score ≥ 0.9, 0.01 better than the baseline``: what one metric must reach, as MLflow's
    MetricThreshold says it; ``say`` translates (the shell's language here, the page's on a dashboard)."""
    better = threshold.get("greater_is_better", True)
    parts = []
    if threshold.get("threshold") is not None:
        parts.append(f"{'≥' if better else '≤'} {threshold['threshold']:g}")
    if threshold.get("min_absolute_change") is not None:
        parts.append(say(_BETTER_BY).format(change=threshold["min_absolute_change"]))
    if threshold.get("min_relative_change") is not None:
        parts.append(say(_BETTER_BY_PERCENT).format(percent=threshold["min_relative_change"] * 100))
    return f"{metric} " + ", ".join(parts) if parts else metric


def dataset_text(settings: dict[str, Any]) -> str:
    """The dataset a policy runs on: a pinned version, or the newest when the run starts."""
    if settings.get("dataset_version"):
        return f"{settings['dataset']} v{settings['dataset_version']}"
    return _("{dataset}, its newest version when it starts").format(dataset=settings["dataset"])


def policy_lines(head: str, automatically: str, policy: dict[str, Any], facts: dict[str, str]) -> str:
    """A model's policy: whose it is and when it runs on its own, its settings, and who set it."""
    when = automatically if policy["automatic"] else _("only when asked")
    facts = {**facts, _("set"): _("by {user} at {at}").format(user=policy["updated_by"],
                                                              at=local_time(policy["updated_at"]))}
    return "\n".join([f"{head} — {when}", *field_lines(facts, list(facts), 12)])


def evaluation_policy_text(policy: dict[str, Any]) -> str:
    """What each evaluation of the model runs on, how it is judged, and who set it."""
    settings = policy["settings"]
    notebook = (_("a notebook of your own ({cells} cells)").format(cells=len(settings["notebook_document"]["cells"]))
                if settings.get("notebook_document") else settings.get("notebook") or _("the task's"))
    split = (_("rows whose {column} is {split}").format(column=settings["split_column"], split=settings["test_split"])
             if settings.get("split_column") else _("every row"))
    thresholds = settings.get("thresholds") or {}
    facts = {_("dataset"): dataset_text(settings),
             _("task"): _("{task} (notebook: {notebook})").format(task=settings["task"], notebook=notebook),
             _("labels"): _("column {column}; {split}").format(column=settings["label_column"], split=split),
             _("passes if"): "; ".join(threshold_text(metric, value) for metric, value in thresholds.items())
             or _("it runs (no thresholds)"),
             _("baseline"): settings["baseline"],
             _("profile"): _("yes") if settings.get("profile") else _("no"),
             _("time limit"): f"{settings['timeout_seconds']} s"}
    if settings.get("parameters"):
        facts[_("parameters")] = ", ".join(f"{key}={value}" for key, value in settings["parameters"].items())
    return policy_lines(_("evaluation policy of {model} in {project}").format(**policy),
                        _("each version a training job registers is evaluated at once"), policy, facts)


def headline_metric(metrics: dict[str, Any] | None, thresholds: dict[str, Any]) -> tuple[str, float] | None:
    """The metric a reader compares first: the first one with a threshold, else accuracy or R², else the first."""
    metrics = metrics or {}
    names = [name for name in thresholds if name in metrics] + [name for name in ("accuracy_score", "r2_score")
                                                                if name in metrics] + list(metrics)
    return (names[0], metrics[names[0]]) if names else None


def headline(evaluation: dict[str, Any]) -> str:
    best = headline_metric(evaluation.get("metrics"), (evaluation.get("settings") or {}).get("thresholds") or {})
    return f"{best[0]} {best[1]:.4g}" if best else "-"


def evaluations_text(listing: dict[str, Any]) -> str:
    """The evaluations newest first: what was judged on what, the verdict and the headline metric."""
    rows = [{_("id"): item["id"], _("model"): f"{item['model']} v{item['model_version']}",
             _("dataset"): f"{item['dataset']} v{item['dataset_version']}" if item.get("dataset_version")
             else item["dataset"], _("state"): _(STATES.get(item["state"], item["state"])),
             _("headline"): headline(item),
             _("baseline"): f"v{item['baseline_version']}" if item.get("baseline_version") else "-",
             _("trigger"): item["trigger"], _("finished"): local_time(item.get("finished_at"))}
            for item in listing["evaluations"]]
    return table(rows, list(rows[0])) if rows else _("(none)")
