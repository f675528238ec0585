"""An evaluation as a person reads it in a terminal: what was judged, the verdict with each reason, and the
metrics beside the baseline's (the CLI's human output; ``--json`` gives the whole answer)."""

from __future__ import annotations

from typing import Any

from ..i18n import N_
from ..i18n import shell_gettext as _
from ..text_tables import pad, table

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
