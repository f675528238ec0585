"""The Evaluation page's pure parts: evaluations as table rows, the headline metric and its change against the
baseline, the candidate-against-baseline rows, the trend of a metric over a model's versions, the detail's HTML
and who may evaluate. They take the API's JSON and the page's language and call no API, so tests check them
without a browser. Words the report also says come from :mod:`aitip.evaluation.reports`, so the page and the
report say the same."""

from __future__ import annotations

import math
from html import escape
from typing import Any

import pandas as pd

from aitip.evaluation import reports
from aitip.evaluation.text import threshold_text
from aitip.i18n import translator
from aitip.identity.permissions import permission
from panel_apps.components import format_time, role_at_least, role_words, viewer_role
from panel_apps.language import _, page_language

RUN_ACTION = "evaluation.run"
MANAGE_ACTION = "evaluation.manage"
FINISHED = ("passed", "failed", "error")
JUDGED = ("passed", "failed")
STATE_COLOURS = {"passed": "#228822", "failed": "#cc0000", "error": "#8a4b08", "queued": "#777777",
                 "running": "#0066cc"}
STATE_MARKS = {"passed": "✓", "failed": "✗", "error": "!", "queued": "…", "running": "…"}
# Metrics where less is better; counts and sums are neither (their change is shown, not judged).
LOWER_IS_BETTER = ("loss", "error", "false_positives", "false_negatives", "brevity_penalty")
NEUTRAL = ("example_count", "query_count", "sum_on_target", "mean_on_target", "true_positives", "true_negatives")
TABLE_COLUMNS = ["id", "model", "dataset", "state", "headline", "baseline", "change", "trigger", "when"]


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def reader() -> Any:
    """The report module's translator in the page's language (its helpers take one)."""
    return translator(page_language())


def metric_label(name: str) -> str:
    return reports.metric_label(name, reader())


def state_label(state: str) -> str:
    return _(reports.STATES[state]) if state in reports.STATES else state


def state_badge(state: str) -> str:
    """The state as a coloured badge whose mark says pass or fail without the colour."""
    colour = STATE_COLOURS.get(state, "#333333")
    return (f"<span class='evaluation-state' data-state='{escape(state)}' style='background:{colour};color:#fff;"
            f"padding:.05rem .5rem;border-radius:.7rem'>{STATE_MARKS.get(state, '')} {escape(state_label(state))}"
            f"</span>")


def greater_is_better(name: str, thresholds: dict[str, Any] | None = None) -> bool | None:
    """As the policy's threshold says, else as the metric's name says; None for counts (no better or worse)."""
    rule = (thresholds or {}).get(name)
    if isinstance(rule, dict) and isinstance(rule.get("greater_is_better"), bool):
        return bool(rule["greater_is_better"])
    if name in NEUTRAL:
        return None
    return not any(part in name for part in LOWER_IS_BETTER)


def change(candidate: Any, baseline: Any, greater: bool | None) -> dict[str, Any] | None:
    """The candidate's difference from the baseline: absolute, relative (percent; None against 0) and whether
    it is better, worse or neither. None when either value is missing."""
    candidate, baseline = _finite(candidate), _finite(baseline)
    if candidate is None or baseline is None:
        return None
    delta = candidate - baseline
    relative = 100 * delta / abs(baseline) if baseline else None
    tone = "neutral" if greater is None or delta == 0 else "better" if (delta > 0) == greater else "worse"
    return {"delta": delta, "relative": relative, "tone": tone}


def format_change(found: dict[str, Any] | None) -> str:
    if found is None:
        return ""
    text = f"{found['delta']:+.4g}" if found["delta"] else "0"
    if found["relative"] is not None and found["delta"]:
        text += f" ({found['relative']:+.2f} %)"
    return text


def thresholds_of(evaluation: dict[str, Any]) -> dict[str, Any]:
    settings = evaluation.get("settings")
    thresholds = settings.get("thresholds") if isinstance(settings, dict) else None
    return thresholds if isinstance(thresholds, dict) else {}


def headline_metric(evaluation: dict[str, Any]) -> str | None:
    """The metric a person looks at first: the first one the policy gates, else the task's first, else any."""
    metrics = evaluation.get("metrics") or {}
    for name in thresholds_of(evaluation):
        if name in metrics:
            return name
    task = (evaluation.get("settings") or {}).get("task") or "classification"
    for wanted in reports.HEADLINE.get(task, ()):
        for name in metrics:
            if name == wanted or (wanted.endswith("_") and name.startswith(wanted)):
                return name
    return next((name for name in metrics if name not in NEUTRAL), None)


def trigger_text(trigger: str | None) -> str:
    trigger = str(trigger or "")
    if trigger == "manual":
        return _("started by hand")
    if trigger.startswith("job:"):
        return _("started by training job {job}").format(job=trigger[4:])
    return trigger


def evaluations_frame(evaluations: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per evaluation, newest first as the platform lists them; ``state`` is a badge (HTML)."""
    rows = []
    for evaluation in evaluations:
        name = headline_metric(evaluation)
        metrics, baseline = evaluation.get("metrics") or {}, evaluation.get("baseline_metrics") or {}
        value = metrics.get(name) if name else None
        found = change(value, baseline.get(name), greater_is_better(name, thresholds_of(evaluation))) if name else None
        rows.append({
            "id": int(evaluation["id"]),
            "model": f"{evaluation['model']} v{evaluation['model_version']}",
            "dataset": f"{evaluation['dataset']} v{evaluation['dataset_version']}",
            "state": state_badge(str(evaluation.get("state") or "")),
            "headline": f"{name} {reports.number(value)}" if name and value is not None else "",
            "baseline": f"v{evaluation['baseline_version']}" if evaluation.get("baseline_version") else "",
            "change": format_change(found), "trigger": trigger_text(evaluation.get("trigger")),
            "when": format_time(evaluation.get("created_at")),
        })
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def comparison_rows(evaluation: dict[str, Any]) -> pd.DataFrame:
    """Every metric of the candidate beside the baseline's and the difference: the gated ones first."""
    metrics, baseline = evaluation.get("metrics") or {}, evaluation.get("baseline_metrics") or {}
    thresholds = thresholds_of(evaluation)
    names = list(dict.fromkeys([*[name for name in thresholds if name in metrics or name in baseline],
                                *metrics, *baseline]))
    rows = []
    for name in names:
        greater = greater_is_better(name, thresholds)
        found = change(metrics.get(name), baseline.get(name), greater)
        rows.append({"metric": name, "label": metric_label(name), "candidate": _finite(metrics.get(name)),
                     "baseline": _finite(baseline.get(name)), "delta": found["delta"] if found else None,
                     "relative": found["relative"] if found else None, "tone": found["tone"] if found else "",
                     "gated": name in thresholds, "greater_is_better": greater})
    return pd.DataFrame(rows, columns=["metric", "label", "candidate", "baseline", "delta", "relative", "tone",
                                       "gated", "greater_is_better"])


def model_evaluations(evaluations: list[dict[str, Any]], model: str | None) -> list[dict[str, Any]]:
    return [evaluation for evaluation in evaluations if not model or evaluation["model"] == model]


def trend_metrics(evaluations: list[dict[str, Any]]) -> list[str]:
    """Metrics any judged evaluation has, the gated and headline ones first."""
    first, rest = [], []
    for evaluation in evaluations:
        if evaluation.get("state") not in JUDGED:
            continue
        headline = headline_metric(evaluation)
        first += [name for name in [*thresholds_of(evaluation), headline] if name]
        rest += list(evaluation.get("metrics") or {})
    return [name for name in dict.fromkeys([*first, *rest]) if name not in NEUTRAL]


def trend_frame(evaluations: list[dict[str, Any]], model: str, metric: str | None) -> pd.DataFrame:
    """``metric`` by version of ``model``: the newest judged evaluation of each version (a version evaluated
    again counts once), oldest version first."""
    newest: dict[int, dict[str, Any]] = {}
    for evaluation in evaluations:
        if evaluation["model"] != model or evaluation.get("state") not in JUDGED:
            continue
        value = _finite((evaluation.get("metrics") or {}).get(metric)) if metric else None
        if value is None:
            continue
        version = int(evaluation["model_version"])
        if version not in newest or int(evaluation["id"]) > newest[version]["evaluation"]:
            newest[version] = {"version": version, "value": value, "state": evaluation["state"],
                               "evaluation": int(evaluation["id"]), "dataset": f"{evaluation['dataset']} "
                               f"v{evaluation['dataset_version']}"}
    rows = [newest[version] for version in sorted(newest)]
    return pd.DataFrame(rows, columns=["version", "value", "state", "evaluation", "dataset"])


def default_evaluation(evaluations: list[dict[str, Any]], wanted: str | None) -> int | None:
    """The evaluation the address names, else the newest judged one, else the newest."""
    ids = [int(evaluation["id"]) for evaluation in evaluations]
    if wanted and wanted.isdigit() and int(wanted) in ids:
        return int(wanted)
    judged = [int(e["id"]) for e in evaluations if e.get("state") in JUDGED]
    return (judged or ids or [None])[0]


# ----- who may do what -----

def least_role(action: str) -> str:
    role = permission(action).min_role
    return role.value if role is not None else "viewer"


def evaluate_refusal(me: dict[str, Any], project: str | None) -> str | None:
    """Why the viewer may not start an evaluation in ``project`` (None: they may; the platform checks again)."""
    if not project:
        return _("Choose a project to evaluate a model in.")
    role = viewer_role(me, project)
    if role_at_least(role, least_role(RUN_ACTION)):
        return None
    return _("Evaluating a model in {project} needs the {least} role; you are {role}.").format(
        project=project, least=role_words(least_role(RUN_ACTION)), role=role_words(role))


def may_manage_policy(me: dict[str, Any], project: str | None) -> bool:
    return role_at_least(viewer_role(me, project), least_role(MANAGE_ACTION))


# ----- what the page says -----

def empty_state(project: str, model: str | None) -> str:
    """What to do to get a first evaluation, with the commands that do it (HTML)."""
    model_name = model or "MODEL"
    policy = (f"aitip evaluation-policies set --project {project} --model {model_name} --dataset DATASET "
              "--thresholds '{\"accuracy_score\": {\"threshold\": 0.9, \"greater_is_better\": true}}'")
    evaluate = f"aitip evaluations create --project {project} --model {model_name} --version N"
    nothing = _("No evaluations of {model} in {project} yet.").format(model=model or _("any model"), project=project)
    by_policy = _("Say how the model is evaluated: then every version a training job registers is evaluated at once.")
    by_hand = _("Or evaluate a registered version now, with the Evaluate form on this page or:")
    return ("<div class='evaluations-empty' style='font-family:system-ui,sans-serif'>"
            f"<p><b>{escape(nothing)}</b></p><p>{escape(by_policy)}<br>{_code(policy)}</p>"
            f"<p>{escape(by_hand)}<br>{_code(evaluate)}</p></div>")


def paragraph(text: str, before: str = "", css_class: str = "") -> str:
    """A paragraph of translated ``text`` (escaped), after ``before`` (HTML)."""
    classes = f" class='{css_class}'" if css_class else ""
    return f"<p{classes}>{before} {escape(text)}</p>"


def _code(value: str) -> str:
    return f"<code>{escape(value)}</code>"


def verdict_html(context: dict[str, Any]) -> str:
    """The verdict and every reason in the reader's language (from the report's context), or why there is none."""
    state = context["state"]
    parts = [f"<div class='evaluation-verdict' data-state='{escape(state)}'>"]
    verdict = context.get("verdict")
    if verdict is not None:
        heading = _("Passed: every check held.") if verdict["passed"] else _("Failed: a check did not hold.")
        parts.append(f"<p style='font-size:1.1rem;margin:.2rem 0'>{state_badge(state)} <b>{escape(heading)}</b></p>")
        parts.append("<ul class='verdict-reasons'>")
        checked = _("{check}: {sentence}")
        for reason in verdict["reasons"]:
            colour = {"passed": "#228822", "failed": "#cc0000"}.get(reason["outcome"], "#777777")
            parts.append(f"<li data-outcome='{escape(reason['outcome'])}' data-metric='{escape(reason['metric'])}'>"
                         f"<b style='color:{colour}'>{escape(reason['outcome_label'])}</b> · "
                         f"{escape(checked.format(check=reason['check'], sentence=reason['sentence']))}</li>")
        parts.append("</ul>")
        if not verdict["reasons"]:
            parts.append(paragraph(_("The policy sets no thresholds, so nothing could fail.")))
    elif state in ("queued", "running"):
        parts.append(paragraph(_("Not judged yet: the verdict comes when its job ends."), state_badge(state)))
    else:
        parts.append(paragraph(_("No verdict: the evaluation could not be run to its end."), state_badge(state)))
    error = context.get("error")
    if error:
        parts.append(f"<p class='evaluation-error' style='color:#842029'>{escape(error['code'])}: "
                     f"{escape(error['message'])}</p>")
        if error.get("cell"):
            parts.append(f"<pre style='white-space:pre-wrap;max-height:16rem;overflow:auto'>"
                         f"{escape(error['cell']['exception'])}\n{escape(error['cell']['traceback'])}</pre>")
    elif context.get("reason") and verdict is None:
        parts.append(f"<p>{escape(context['reason'])}</p>")
    for warning in context.get("warnings") or []:
        parts.append(f"<p class='evaluation-warning' style='background:#fff3cd;color:#664d03;padding:.3rem .6rem;"
                     f"border-radius:4px'>⚠ {escape(warning)}</p>")
    parts.append("</div>")
    return "".join(parts)


def facts_html(context: dict[str, Any]) -> str:
    """Exactly what was judged: the report's facts (model version and run, dataset version and MD5, notebook)."""
    rows = "".join(f"<tr><th style='text-align:left;padding-right:1rem;font-weight:500;color:#555'>"
                   f"{escape(fact['label'])}</th><td>{_code(fact['value']) if fact['code'] else escape(fact['value'])}"
                   f"</td></tr>" for fact in context["facts"])
    return f"<table class='evaluation-facts' style='font-size:.9rem'>{rows}</table>"


def _cell(value: Any, digits: int = 4) -> str:
    return reports.number(value, digits) if value is not None else "–"


TONE_COLOURS = {"better": "#228822", "worse": "#cc0000", "neutral": "#555555"}


def metrics_table_html(rows: pd.DataFrame, baseline_version: Any) -> str:
    """Every metric with the baseline's value and the difference, coloured better or worse; gated ones marked."""
    if rows.empty:
        return paragraph(_("No metrics: the evaluation has no result."), css_class="metrics-empty")
    baseline = _("baseline v{version}").format(version=baseline_version) if baseline_version else _("baseline")
    head = "".join(f"<th style='text-align:left;padding:.2rem .6rem'>{escape(title)}</th>" for title in (
        _("metric"), _("candidate"), baseline, _("difference"), _("relative")))
    body = []
    for row in rows.to_dict("records"):
        colour = TONE_COLOURS.get(row["tone"], "#555555")
        gated = " <span title='{}'>◆</span>".format(escape(_("gated by the policy"))) if row["gated"] else ""
        relative = f"{row['relative']:+.2f} %" if row["relative"] is not None and not pd.isna(row["relative"]) else ""
        delta = f"{row['delta']:+.4g}" if row["delta"] is not None and not pd.isna(row["delta"]) else ""
        body.append(f"<tr data-metric='{escape(row['metric'])}'><td style='padding:.15rem .6rem'>{escape(row['label'])}"
                    f"{gated} <span style='color:#888;font-size:.8rem'>{escape(row['metric'])}</span></td>"
                    f"<td style='padding:.15rem .6rem'>{_cell(row['candidate'])}</td>"
                    f"<td style='padding:.15rem .6rem'>{_cell(row['baseline']) if row['baseline'] is not None and not pd.isna(row['baseline']) else '–'}</td>"
                    f"<td style='padding:.15rem .6rem;color:{colour}'>{delta}</td>"
                    f"<td style='padding:.15rem .6rem;color:{colour}'>{relative}</td></tr>")
    return (f"<table class='evaluation-metrics' style='border-collapse:collapse;font-size:.9rem'><thead><tr>{head}"
            f"</tr></thead><tbody>{''.join(body)}</tbody></table>")


def per_class_html(context: dict[str, Any]) -> str:
    table = context.get("per_class")
    if not table:
        return paragraph(_("No per-class table: this task has none."), css_class="per-class-empty")
    titles = [_("class"), _("Precision"), _("Recall"), "F1", _("support")]
    if table["has_auc"]:
        titles += [_("ROC AUC"), _("PR AUC (average precision)")]
    if table["has_baseline"]:
        titles += [_("baseline F1"), _("difference")]
    head = "".join(f"<th style='text-align:left;padding:.2rem .6rem'>{escape(title)}</th>" for title in titles)
    body = []
    for row in table["rows"]:
        cells = [row["label"], row["precision"], row["recall"], row["f1"], row["support"]]
        if table["has_auc"]:
            cells += [row["roc_auc"], row["pr_auc"]]
        colour = "#555555"
        if table["has_baseline"]:
            found = row["change"]
            cells += [row["baseline_f1"], f"{found['absolute']} ({found['relative']})" if found else "–"]
            colour = TONE_COLOURS.get(found["tone"], colour) if found else colour
        tds = "".join(f"<td style='padding:.1rem .6rem'>{escape(str(cell))}</td>" for cell in cells[:-1])
        tds += f"<td style='padding:.1rem .6rem;color:{colour}'>{escape(str(cells[-1]))}</td>"
        body.append(f"<tr>{tds}</tr>")
    return (f"<table class='per-class' style='border-collapse:collapse;font-size:.9rem'><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")


def profile_html(context: dict[str, Any]) -> str:
    """Latency per batch size, throughput, memory and size, as the report lists them."""
    profile = context.get("profile")
    if not profile:
        return paragraph(_("Not profiled: the policy turned profiling off."), css_class="profile-empty")
    cards = "".join(f"<div style='display:inline-block;margin:0 1.5rem .5rem 0'><div style='color:#555;"
                    f"font-size:.85rem'>{escape(card['label'])}</div><div style='font-size:1.3rem;font-weight:600'>"
                    f"{escape(card['shown'])}</div></div>" for card in profile["cards"])
    head = "".join(f"<th style='text-align:left;padding:.2rem .6rem'>{escape(title)}</th>" for title in (
        _("batch size"), _("p50 (ms)"), _("p95 (ms)"), _("p99 (ms)"), _("rows per second")))
    batches = "".join("<tr>" + "".join(f"<td style='padding:.1rem .6rem'>{escape(batch[key])}</td>" for key in (
        "size", "p50", "p95", "p99", "throughput")) + "</tr>" for batch in profile["batches"])
    facts = "".join(f"<li>{escape(fact['label'])}: <b>{escape(fact['value'])}</b>"
                    + (f" <span style='color:#777'>({escape(fact['note'])})</span>" if fact["note"] else "") + "</li>"
                    for fact in profile["facts"])
    devices = "".join(f"<li>GPU {escape(device['name'])}: {escape(device['used'])} / {escape(device['total'])}, "
                      f"{escape(device['utilization'])}</li>" for device in profile["devices"])
    gpu = devices or (f"<li style='color:#555'>{escape(profile['gpu_reason'])}</li>" if profile["gpu_reason"] else "")
    return (f"<div class='evaluation-profile'>{cards}<table style='border-collapse:collapse;font-size:.9rem'><thead>"
            f"<tr>{head}</tr></thead><tbody>{batches}</tbody></table><ul style='font-size:.9rem'>{facts}{gpu}</ul>"
            "</div>")


def policy_html(policy: dict[str, Any] | None, model: str | None, project: str, may_manage: bool) -> str:
    """The model's policy, read-only, and how to change it (or who may)."""
    if not model:
        return ""
    if policy is None:
        text = _("{model} has no evaluation policy: its new versions are not evaluated by themselves.").format(
            model=model)
    else:
        settings = policy.get("settings") or {}
        thresholds = ", ".join(threshold_text(name, rule, _)
                               for name, rule in (settings.get("thresholds") or {}).items()) or _("none")
        text = _("Policy of {model}: dataset {dataset}, label column {label}, baseline {baseline}, thresholds "
                 "{thresholds}; {automatic}. Set by {who}.").format(
            model=model, dataset=settings.get("dataset", "?"), label=settings.get("label_column", "label"),
            baseline=settings.get("baseline", "champion"), thresholds=thresholds,
            automatic=_("every version a training job registers is evaluated") if policy.get("automatic")
            else _("evaluated only when asked"), who=policy.get("updated_by", "?"))
    how = _("Change it with aitip evaluation-policies set --project {project} --model {model} ...").format(
        project=project, model=model) if may_manage else _("Only a maintainer of {project} may change it.").format(
        project=project)
    return (f"<div class='evaluation-policy' style='color:#333;font-size:.9rem'>{escape(text)} "
            f"<span style='color:#666'>{escape(how)}</span></div>")
