"""An evaluation's report, HTML and PDF, in English or Chinese.

One self-contained HTML file (styles and SVG charts inline, nothing fetched) that a browser shows as it is and
WeasyPrint prints to A4, so that both say the same. What the report says comes from the evaluation's JSON answer
alone (``EvaluationDetail.model_dump(mode="json")``): any part of it may be missing (an evaluation in error has
no result), and every part that is missing is left out, never guessed. The template is
``templates/reports/evaluation.html``; this module turns the evaluation into what it shows (words translated,
numbers formatted, charts scaled), so the template only lays it out, and autoescapes everything.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..i18n import N_, Translator, translator
from ..report_charts import chart
from ..report_charts import finite as _finite
from ..report_pages import as_dict as _dict
from ..report_pages import css_string as _css_string  # noqa: F401 - the tests check it here
from ..report_pages import environment as _environment
from ..report_pages import html_to_pdf as _pdf
from ..report_pages import moment, number, write_pair
from ..report_pages import page_counter as _page_counter

TEMPLATE = "evaluation.html"
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

METRIC_LABELS = {
    "example_count": N_("Examples"), "accuracy_score": N_("Accuracy"),
    "precision_score": N_("Precision"), "precision_score_macro": N_("Precision (macro)"),
    "precision_score_weighted": N_("Precision (weighted)"), "recall_score": N_("Recall"),
    "recall_score_macro": N_("Recall (macro)"), "recall_score_weighted": N_("Recall (weighted)"),
    "f1_score": N_("F1 score"), "f1_score_macro": N_("F1 score (macro)"), "f1_score_weighted": N_("F1 score (weighted)"),
    "log_loss": N_("Log loss"), "roc_auc": N_("ROC AUC"), "roc_auc_macro": N_("ROC AUC (macro)"),
    "roc_auc_weighted": N_("ROC AUC (weighted)"), "precision_recall_auc": N_("PR AUC (average precision)"),
    "precision_recall_auc_macro": N_("PR AUC (macro)"), "precision_recall_auc_weighted": N_("PR AUC (weighted)"),
    "expected_calibration_error": N_("Expected calibration error"),
    "true_positives": N_("True positives"), "true_negatives": N_("True negatives"),
    "false_positives": N_("False positives"), "false_negatives": N_("False negatives"),
    "mean_absolute_error": N_("Mean absolute error"), "mean_squared_error": N_("Mean squared error"),
    "root_mean_squared_error": N_("Root mean squared error"), "r2_score": N_("R²"), "max_error": N_("Largest error"),
    "mean_absolute_percentage_error": N_("Mean absolute percentage error"), "sum_on_target": N_("Sum of the targets"),
    "mean_on_target": N_("Mean of the targets"), "exact_match": N_("Exact match"), "bleu": N_("BLEU"),
    "bleu_brevity_penalty": N_("BLEU brevity penalty"), "rougeL": N_("ROUGE-L"), "query_count": N_("Queries"),
}
RANKED_LABELS = {"ndcg_at_": N_("NDCG@{k}"), "recall_at_": N_("Recall@{k}"), "precision_at_": N_("Precision@{k}")}
# Shown as a percentage on the headline cards: fractions of 1 where higher reads as "more of it right".
FRACTIONS = {"accuracy_score", "precision_score", "recall_score", "f1_score", "exact_match", "roc_auc",
             "precision_recall_auc"}
HEADLINE = {
    "classification": ("accuracy_score", "f1_score", "roc_auc", "log_loss"),
    "regression": ("root_mean_squared_error", "mean_absolute_error", "r2_score"),
    "text_generation": ("exact_match", "bleu", "rougeL"),
    "ranking": ("ndcg_at_", "recall_at_", "roc_auc"),
}
STATES = {"passed": N_("Passed"), "failed": N_("Failed"), "error": N_("Error"), "queued": N_("Queued"),
          "running": N_("Running")}
TASKS = {"classification": N_("classification"), "regression": N_("regression"),
         "text_generation": N_("text generation"), "ranking": N_("ranking")}
CHECKS = {"threshold": N_("Threshold"), "absolute_change": N_("Absolute change"),
          "relative_change": N_("Relative change"), "missing_metric": N_("Missing metric")}


# ----- numbers, dates, words -----

def size(byte_count: Any) -> str:
    value, unit = _finite(byte_count), 0
    if value is None:
        return "–"
    while abs(value) >= 1024 and unit < 3:
        value, unit = value / 1024, unit + 1
    return f"{value:.0f} B" if unit == 0 else f"{value:.1f} {('KiB', 'MiB', 'GiB')[unit - 1]}"


def metric_label(name: str, _: Translator) -> str:
    if name in METRIC_LABELS:
        return _(METRIC_LABELS[name])
    for prefix, label in RANKED_LABELS.items():
        if name.startswith(prefix) and name[len(prefix):].isdigit():
            return _(label).format(k=name[len(prefix):])
    return name


def _percent(value: float, _: Translator, digits: int = 1) -> str:
    return _("{value} %").format(value=f"{value:.{digits}f}")


def _change(candidate: Any, baseline: Any, greater_is_better: bool | None, _: Translator) -> dict[str, Any] | None:
    """The difference from the baseline, absolute and relative, and whether it is better (None: not judged)."""
    candidate, baseline = _finite(candidate), _finite(baseline)
    if candidate is None or baseline is None:
        return None
    delta = candidate - baseline
    relative = _percent(100 * delta / abs(baseline), _) if baseline else "–"
    if relative != "–" and delta > 0:
        relative = "+" + relative
    tone = "neutral" if greater_is_better is None or delta == 0 else \
        "better" if (delta > 0) == greater_is_better else "worse"
    return {"absolute": f"{delta:+.4g}" if delta else "0", "relative": relative, "tone": tone}


# ----- verdict -----

def reason_sentence(reason: dict[str, Any], _: Translator) -> str:
    """The check in the reader's language, from its fields; the gate's English sentence for a kind unknown here."""
    kind, metric, greater = reason.get("kind"), str(reason.get("metric", "")), reason.get("greater_is_better", True)
    values = {"metric": metric, "candidate": number(reason.get("candidate"), 6),
              "baseline": number(reason.get("baseline"), 6), "bound": number(reason.get("bound"), 6),
              "required": number(reason.get("required"), 6)}
    if kind == "missing_metric":
        return _("{metric}: the candidate's results have no such metric.").format(**values)
    if kind == "threshold":
        text = _("{metric} is {candidate}; it must be at least {required}.") if greater else \
            _("{metric} is {candidate}; it must be at most {required}.")
        return text.format(**values)
    if kind not in ("absolute_change", "relative_change"):
        return str(reason.get("message", ""))
    if kind == "relative_change" and _finite(reason.get("required")) is not None:
        values["required"] = _percent(100 * reason["required"], _, 2)
    if reason.get("baseline") is None:
        return (_("{metric}: there is no baseline to compare with; the check is skipped.") if reason.get("skipped")
                else _("{metric}: there is no baseline value to compare with.")).format(**values)
    if _finite(reason.get("candidate")) is None or _finite(reason.get("baseline")) is None:
        return _("{metric}: {candidate} cannot be compared with the baseline's {baseline}.").format(**values)
    text = _("{metric} is {candidate}; it must be {required} above the baseline's {baseline} (at least {bound}).") \
        if greater else \
        _("{metric} is {candidate}; it must be {required} below the baseline's {baseline} (at most {bound}).")
    return text.format(**values)


def _verdict(evaluation: dict[str, Any], _: Translator) -> dict[str, Any] | None:
    verdict = evaluation.get("verdict")
    if not isinstance(verdict, dict):
        return None
    reasons = []
    for reason in [reason for reason in verdict.get("reasons") or [] if isinstance(reason, dict)]:
        outcome = "skipped" if reason.get("skipped") else "passed" if reason.get("passed") else "failed"
        reasons.append({"metric": str(reason.get("metric", "")), "outcome": outcome,
                        "outcome_label": {"skipped": _("skipped"), "passed": _("passed"), "failed": _("failed")}[outcome],
                        "check": _(CHECKS[reason["kind"]]) if reason.get("kind") in CHECKS else str(reason.get("kind")),
                        "sentence": reason_sentence(reason, _)})
    return {"passed": bool(verdict.get("passed")), "reasons": reasons}


# ----- metrics -----

def _metrics(evaluation: dict[str, Any], result: dict[str, Any], _: Translator) -> tuple[list, list]:
    """(headline cards, every metric's row): the thresholds' metrics first, then the task's, then the rest."""
    candidate = _dict(evaluation.get("metrics") or _dict(result.get("candidate")).get("metrics"))
    baseline = _dict(evaluation.get("baseline_metrics") or _dict(result.get("baseline")).get("metrics"))
    thresholds = _dict(_dict(evaluation.get("settings")).get("thresholds"))
    task = _dict(evaluation.get("settings")).get("task") or _dict(result.get("candidate")).get("task")

    def row(name: str) -> dict[str, Any]:
        rule = thresholds.get(name)
        greater = _dict(rule).get("greater_is_better")
        value = candidate.get(name)
        shown = _percent(100 * value, _) if name in FRACTIONS and _finite(value) is not None else number(value)
        return {"name": name, "label": metric_label(name, _), "value": number(value), "shown": shown,
                "baseline": number(baseline[name]) if name in baseline else "–", "gated": rule is not None,
                "change": _change(value, baseline.get(name), greater, _)}

    names = list(dict.fromkeys([*thresholds, *candidate]))
    headline = [name for name in thresholds if name in candidate]
    for wanted in HEADLINE.get(task, ()):
        headline += [name for name in candidate if name == wanted or (wanted.endswith("_") and name.startswith(wanted))]
    headline = list(dict.fromkeys(headline))[:6]
    return [row(name) for name in headline], [row(name) for name in names if name in candidate or name in thresholds]


def _confusion(plots: dict[str, Any]) -> dict[str, Any] | None:
    """The confusion matrix with each cell shaded by its share of the row (the true class's rows)."""
    confusion = plots.get("confusion_matrix")
    if not isinstance(confusion, dict) or not confusion.get("matrix"):
        return None
    labels = [str(label) for label in confusion.get("labels") or range(len(confusion["matrix"]))]
    rows = []
    for label, counts in zip(labels, confusion["matrix"]):
        total = sum(count for count in counts if isinstance(count, int | float))
        cells = []
        for column, count in enumerate(counts):
            share = count / total if total else 0.0
            colour = "31, 119, 180" if labels[column] == label else "214, 39, 40"
            cells.append({"count": number(count), "style": f"background: rgba({colour}, {0.08 + 0.82 * share:.2f});"
                          f" color: {'#fff' if share > 0.55 else '#111'}"})
        rows.append({"label": label, "cells": cells, "total": number(total)})
    return {"labels": labels, "rows": rows, "dense": len(labels) > 12}


# ----- charts (scaled here, drawn as SVG by the template) -----

def _curves(plots: dict[str, Any], _: Translator) -> list[dict[str, Any]]:
    charts = []
    for key, title, x_key, y_key, x_label, y_label, diagonal in (
            ("roc", _("ROC curve"), "fpr", "tpr", _("False positive rate"), _("True positive rate"), True),
            ("pr", _("Precision–recall curve"), "recall", "precision", _("Recall"), _("Precision"), False)):
        series = [{"label": _("{label} (AUC {auc})").format(label=curve.get("label", ""), auc=number(curve.get("auc"), 3)),
                   "x": curve.get(x_key), "y": curve.get(y_key)}
                  for curve in plots.get(key) or [] if isinstance(curve, dict)]
        if series:
            charts.append(chart(title, x_label, y_label, series, diagonal=diagonal))
    calibration = plots.get("calibration")
    if isinstance(calibration, dict) and calibration.get("predicted"):
        kind = {"top_label": _("the most likely class"), "positive_class": _("the positive class")}.get(
            calibration.get("kind"), str(calibration.get("kind") or ""))
        note = _("Probability of {kind}, in bins; on the diagonal the model is calibrated.").format(kind=kind)
        charts.append(chart(_("Calibration"), _("Predicted probability"), _("Observed frequency"), [
            {"label": "", "x": calibration["predicted"], "y": calibration.get("observed"), "draw": "both"}],
            diagonal=True, legend=False, note=note))
    return charts


def _histogram(title: str, x_label: str, histogram: Any, _: Translator) -> list[dict[str, Any]]:
    edges, counts = (histogram.get("edges") or [], histogram.get("counts") or []) if isinstance(histogram, dict) \
        else ([], [])
    if len(edges) != len(counts) + 1 or not counts:
        return []
    return [chart(title, x_label, _("Rows"), x_range=(edges[0], edges[-1]), y_range=(0, max(max(counts), 1)),
                  legend=False, bars=[(edges[i], edges[i + 1], counts[i]) for i in range(len(counts))])]


def _regression(plots: dict[str, Any], _: Translator) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    residuals = plots.get("residuals")
    if not isinstance(residuals, dict):
        return [], []
    charts = _histogram(_("Residuals (true − predicted)"), _("Residual"), residuals.get("histogram"), _)
    sample = _dict(residuals.get("sample"))
    truth, predicted = sample.get("true") or [], sample.get("predicted") or []
    values = [_finite(value) for value in [*truth, *predicted]]
    if truth and None not in values:
        span = (min(values), max(values))
        charts += [chart(_("Predicted against true"), _("True value"), _("Predicted value"), [
            {"label": "", "x": truth, "y": predicted, "draw": "dots"}], x_range=span, y_range=span, diagonal=True,
            legend=False)]
    return charts, [{"name": key, "value": number(value)} for key, value in _dict(residuals.get("summary")).items()]


# ----- tables -----

def _per_class(result: dict[str, Any], _: Translator) -> dict[str, Any] | None:
    rows = [row for row in _dict(_dict(result.get("candidate")).get("tables")).get("per_class") or []
            if isinstance(row, dict)]
    if not rows:
        return None
    baseline_rows = _dict(_dict(result.get("baseline")).get("tables")).get("per_class") or []
    baseline_f1 = {str(row.get("class")): row.get("f1") for row in baseline_rows if isinstance(row, dict)}
    has_auc = any(row.get("roc_auc") is not None for row in rows)
    shown = []
    for row in rows:
        label = str(row.get("class"))
        change = _change(row.get("f1"), baseline_f1.get(label), True, _)
        shown.append({"label": label, "precision": number(row.get("precision")), "recall": number(row.get("recall")),
                      "f1": number(row.get("f1")), "support": number(row.get("support")),
                      "roc_auc": number(row.get("roc_auc")), "pr_auc": number(row.get("precision_recall_auc")),
                      "baseline_f1": number(baseline_f1.get(label)), "change": change})
    return {"rows": shown, "has_auc": has_auc, "has_baseline": bool(baseline_f1)}


def _other_tables(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Tables the report has no layout of (a new task's, a custom notebook's): shown as they are."""
    found = []
    for name, rows in _dict(_dict(result.get("candidate")).get("tables")).items():
        if name == "per_class" or not isinstance(rows, list) or not rows or not isinstance(rows[0], dict):
            continue
        columns = list(dict.fromkeys(key for row in rows for key in row))
        found.append({"name": name, "columns": columns,
                      "rows": [[number(row.get(c)) if not isinstance(row.get(c), str) else row[c] for c in columns]
                               for row in rows if isinstance(row, dict)]})
    return found


def _profile(profile: Any, _: Translator) -> dict[str, Any] | None:
    """The profiler's figures as rows, and its headline cards (latency at the largest batch, peak memory, model
    size); scalar keys the report does not know are listed as they are."""
    if not isinstance(profile, dict) or not profile:
        return None
    batches, cards = [], []
    for batch in [b for b in profile.get("batches") or [] if isinstance(b, dict)]:
        latency = _dict(batch.get("latency_ms"))
        batches.append({"size": number(batch.get("batch_size")), "calls": number(batch.get("calls")),
                        **{key: number(latency.get(key), 3) for key in ("p50", "p95", "p99", "mean")},
                        "throughput": number(batch.get("throughput_rows_per_s"), 3), "p50_ms": latency.get("p50")})
    if batches:
        largest = max(batches, key=lambda batch: _finite(batch["size"].replace(",", "")) or 0)
        cards.append({"label": _("Latency p50 at batch {size}").format(size=largest["size"]),
                      "shown": _("{ms} ms").format(ms=number(largest["p50_ms"], 3))})
    memory, model_size = _dict(profile.get("memory")), _dict(profile.get("model_size"))
    facts = [(label, size(memory[key]), memory.get(note)) for key, label, note in (
        ("peak_rss_bytes", _("Peak memory of the process"), "peak_rss_source"),
        ("rss_before_bytes", _("Memory before the calls"), None),
        ("tracemalloc_peak_bytes", _("Python allocations in one call at the largest batch"), "tracemalloc_reason"))
        if key in memory]
    if memory.get("peak_rss_bytes") is not None:
        cards.append({"label": _("Peak memory"), "shown": size(memory["peak_rss_bytes"])})
    if model_size:
        facts.append((_("Model size"), size(model_size.get("bytes")), model_size.get("reason") or model_size.get("source")))
        if model_size.get("bytes") is not None:
            cards.append({"label": _("Model size"), "shown": size(model_size["bytes"])})
    if _finite(profile.get("wall_s")) is not None:
        facts.append((_("Time spent profiling"), _("{seconds} s").format(seconds=number(profile["wall_s"], 3)), None))
    known = {"batches", "memory", "model_size", "gpu", "gpu_reason", "wall_s"}
    facts += [(key, value if isinstance(value, str) else number(value), None)
              for key, value in profile.items() if key not in known and not isinstance(value, dict | list)]
    devices = [{"name": f"{device.get('index', '')} {device.get('name', '')}".strip(),
                "used": size(device.get("memory_used_bytes")), "total": size(device.get("memory_total_bytes")),
                "process": size(device.get("process_memory_bytes")),
                "utilization": _percent(device["utilization_percent"], _, 0)
                if _finite(device.get("utilization_percent")) is not None else "–"}
               for device in _dict(profile.get("gpu")).get("devices") or [] if isinstance(device, dict)]
    return {"batches": batches, "facts": [{"label": a, "value": b, "note": c or ""} for a, b, c in facts],
            "devices": devices, "gpu_reason": str(profile.get("gpu_reason") or ""), "cards": cards}


# ----- the page -----

def _facts(evaluation: dict[str, Any], result: dict[str, Any], _: Translator) -> list[dict[str, str]]:
    """Exactly what was judged: model, data, code, and when and why."""
    trigger = str(evaluation.get("trigger") or "")
    if trigger == "manual":
        trigger = _("started by hand")
    elif trigger.startswith("job:"):
        trigger = _("started by training job {job}").format(job=trigger[4:])
    data = _dict(result.get("data"))
    rows = data.get("rows")
    evaluated = ""
    if rows is not None:
        evaluated = _("{rows} of {total} rows").format(rows=number(rows), total=number(data["total_rows"])) \
            if data.get("total_rows") is not None else _("{rows} rows").format(rows=number(rows))
        if data.get("split"):
            evaluated += " · " + _("split “{split}”").format(split=data["split"])
    settings, baseline, task = _dict(evaluation.get("settings")), evaluation.get("baseline_version"), None
    if settings.get("task"):
        task = _(TASKS[settings["task"]]) if settings["task"] in TASKS else settings["task"]
    facts = [
        (_("Model"), evaluation.get("model"), False), (_("Model version"), evaluation.get("model_version"), False),
        (_("MLflow run of the model"), evaluation.get("model_run_id"), True),
        (_("Baseline"), _("version {version}").format(version=baseline) if baseline is not None else _("none"), False),
        (_("Dataset"), evaluation.get("dataset"), False),
        (_("Dataset version"), evaluation.get("dataset_version"), False),
        (_("Dataset MD5"), evaluation.get("dataset_md5"), True), (_("Rows evaluated"), evaluated, False),
        (_("Task"), task, False), (_("Label column"), settings.get("label_column"), False),
        (_("Notebook SHA-256"), evaluation.get("notebook_sha256"), True), (_("Job"), evaluation.get("job_id"), False),
        (_("Trigger"), trigger, False), (_("Started by"), evaluation.get("created_by"), False),
        (_("Created"), evaluation.get("created_at") and moment(evaluation["created_at"]), False),
        (_("Finished"), evaluation.get("finished_at") and moment(evaluation["finished_at"]), False),
    ]
    return [{"label": label, "value": str(value), "code": code} for label, value, code in facts
            if value is not None and value != ""]


def _error(evaluation: dict[str, Any]) -> dict[str, Any] | None:
    error = evaluation.get("error")
    if not isinstance(error, dict):
        return None
    cell = error.get("failed_cell") if isinstance(error.get("failed_cell"), dict) else None
    if cell:
        cell = {"index": cell.get("index"), "source": str(cell.get("source") or ""),
                "exception": ": ".join(str(part) for part in (cell.get("ename"), cell.get("evalue")) if part),
                "traceback": ANSI_ESCAPE.sub("", str(cell.get("traceback") or ""))}
    return {"code": str(error.get("code") or ""), "message": str(error.get("message") or ""), "cell": cell}


def context(evaluation: dict[str, Any], language: str = "en") -> dict[str, Any]:
    """Everything the template shows, in ``language``: words translated, numbers formatted, charts scaled."""
    _ = translator(language)
    result = _dict(evaluation.get("result"))
    plots = _dict(_dict(result.get("candidate")).get("plots"))
    state = str(evaluation.get("state") or "")
    headline, metrics = _metrics(evaluation, result, _)
    profile = _profile(result.get("profile"), _)
    residual_charts, residual_summary = _regression(plots, _)
    rouge = _histogram(_("ROUGE-L of each row"), _("ROUGE-L"), plots.get("rougeL_histogram"), _)
    return {
        "language": _.language, "html_language": _.language.replace("_", "-"),
        "title": _("Evaluation report"), "id": evaluation.get("id"),
        "subject": _("{model} version {version} on {dataset} version {dataset_version}").format(
            model=evaluation.get("model", "?"), version=evaluation.get("model_version", "?"),
            dataset=evaluation.get("dataset", "?"), dataset_version=evaluation.get("dataset_version", "?")),
        "state": state, "state_label": _(STATES[state]) if state in STATES else state,
        "finished": state in ("passed", "failed", "error"), "facts": _facts(evaluation, result, _),
        "warnings": [str(w) for w in evaluation.get("warnings") or []], "reason": str(evaluation.get("reason") or ""),
        "verdict": _verdict(evaluation, _), "error": _error(evaluation), "headline": headline,
        "headline_profile": profile["cards"] if profile else [], "metrics": metrics,
        "has_baseline": any(row["baseline"] != "–" for row in metrics), "confusion": _confusion(plots),
        "curves": _curves(plots, _), "residual_charts": residual_charts + rouge,
        "residual_summary": residual_summary, "per_class": _per_class(result, _),
        "other_tables": _other_tables(result), "profile": profile, "page_counter": _page_counter(_),
        "generated": moment(datetime.now(timezone.utc).isoformat()),
    }


def render_html(evaluation: dict, language: str = "en") -> str:
    """The report as one self-contained HTML page."""
    values = context(evaluation, language)
    return _environment(values["language"]).get_template(TEMPLATE).render(values)


def render_pdf(evaluation: dict, language: str = "en") -> bytes:
    """The same page printed to A4 by WeasyPrint."""
    return _pdf(render_html(evaluation, language))


def write_reports(evaluation: dict, directory: Path, language: str = "en") -> tuple[Path, Path]:
    """Writes ``report.<language>.html`` and ``report.<language>.pdf`` into ``directory``, each atomically."""
    chosen = translator(language).language
    return write_pair(render_html(evaluation, chosen), directory, chosen)
