"""A simulation's security assessment, HTML and PDF, in English or Chinese.

What a compliance reader looks for, in that order: exactly what was tested (model or endpoint, dataset and its
MD5, template, job and notebook hash: the evidence's identity), the verdict with its reasons, the thresholds
checked, the curves and tables of every condition, the regression against the previous version, adversarial
examples or the probes that hit, drift, the environment, and how each attack was run. It is drawn from the
simulation's record, its template, its published result and its verdict alone; a part that is missing (a
simulation in error has no result) is left out, never guessed. The template is
``templates/reports/simulation.html``; this module turns the inputs into what it shows (words translated,
numbers formatted, charts scaled, text from the model under test clipped), so the template only lays it out and
autoescapes everything.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..i18n import N_, Translator, translator
from ..report_charts import finite
from ..report_pages import as_dict, environment, html_to_pdf, moment, number, page_counter, png_data_url, write_pair
from .report_charts import (LOWER_IS_BETTER, METRICS, condition_label, curves, metric_label, parameter_label,
                            parse_threshold, value_text)
from .report_method import method
from .template_words import in_words

TEMPLATE = "simulation.html"
STATES = {"passed": N_("Passed"), "failed": N_("Failed"), "error": N_("Error"), "queued": N_("Queued"),
          "running": N_("Running")}
KINDS = {"image": N_("image classification"), "tabular": N_("tabular"), "llm": N_("LLM service"),
         "custom": N_("custom")}
CONTROL_CHARACTERS = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|[\x00-\x08\x0b-\x1f\x7f]")
PROMPT_CHARACTERS, RESPONSE_CHARACTERS = 600, 900
SHOWN_HITS, SHOWN_ERRORS, SHOWN_DRIFT = 40, 20, 60
# Population stability index: below 0.1 stable, up to 0.25 a moderate shift, beyond a significant one (the
# credit-scoring rule of thumb that drift tools share).
PSI_LEVELS = ((0.1, "stable", N_("stable")), (0.25, "moderate", N_("moderate")),
              (float("inf"), "significant", N_("significant")))


def metric(value: Any) -> str:
    """A metric (a fraction, for accuracy and attack success rate) to three decimals, as thresholds write it."""
    value = finite(value)
    return "–" if value is None else f"{value:.3f}"


def percent(value: Any, _: Translator) -> str:
    value = finite(value)
    return "–" if value is None else _("{value} %").format(value=f"{100 * value:.1f}")


def clip(text: Any, limit: int) -> dict[str, Any]:
    """Text from the model under test as the report may show it: terminal escapes and control characters gone,
    cut at a word near ``limit`` characters, with how much was left out."""
    text = CONTROL_CHARACTERS.sub("", str(text or "")).strip()
    if len(text) <= limit:
        return {"text": text, "more": 0}
    cut = text.rfind(" ", int(limit * 0.8), limit)
    kept = text[:cut if cut > 0 else limit].rstrip()
    return {"text": kept + " …", "more": len(text) - len(kept)}


def _endpoint(value: Any) -> str | None:
    """The endpoint's URI without what could be a secret in it (a password, a query's keys)."""
    uri = as_dict(value).get("uri") if isinstance(value, dict) else value
    if not isinstance(uri, str) or not uri:
        return None
    try:
        parts = urlsplit(uri)
        netloc = f"{parts.hostname or ''}:{parts.port}" if parts.port else parts.hostname or ""
    except ValueError:  # a port or an address that does not parse: cut the credentials and query out by hand
        return re.sub(r"//[^/]*@", "//", uri).split("?")[0].split("#")[0]
    return urlunsplit((parts.scheme, netloc, parts.path, "…" if parts.query else "", ""))


def _at(row: dict[str, Any], _: Translator) -> str:
    """Where on its grid a row is: ``ε=0.1``, or nothing for a condition without a parameter."""
    if finite(row.get("value")) is None:
        return ""
    return f"{parameter_label(row.get('parameter'), _)}={value_text(row['value'])}"


# ----- what was tested -----

def _facts(simulation: dict[str, Any], template: dict[str, Any], result: dict[str, Any],
           previous: dict[str, Any] | None, _: Translator) -> list[dict[str, Any]]:
    """The evidence's identity: exactly which model (or endpoint), data, scenario and code the verdict is about."""
    name = template.get("name") or simulation.get("template")
    version = template.get("version") or simulation.get("template_version")
    scenario = f"{name}@{version}" if name and version else name
    if scenario and template.get("title"):
        scenario = f"{scenario} · {in_words(template['title'], _)}"
    kind = template.get("kind") or result.get("kind")
    rows = result.get("rows")
    if kind == "llm":
        tested = _("{probes} probes sent").format(probes=number(len(result.get("probes") or ()))) \
            if result.get("probes") else None
    else:
        tested = _("{rows} rows of the test split").format(rows=number(rows)) if rows else None
    compared = as_dict(previous).get("model_version")
    facts = [
        (_("Model"), simulation.get("model"), False), (_("Model version"), simulation.get("model_version"), False),
        (_("Endpoint"), _endpoint(simulation.get("endpoint")), True),
        (_("Dataset"), simulation.get("dataset"), False),
        (_("Dataset version"), simulation.get("dataset_version"), False),
        (_("Dataset MD5"), simulation.get("dataset_md5"), True), (_("Rows tested"), tested, False),
        (_("Scenario template"), scenario, False),
        (_("Kind"), _(KINDS[kind]) if kind in KINDS else kind, False),
        (_("Metric"), metric_label(template.get("metric") or result.get("metric"), _), False),
        (_("Compared with"), _("model version {version}").format(version=compared) if compared is not None else None,
         False),
        (_("Project"), simulation.get("project"), False), (_("Job"), simulation.get("job_id"), False),
        (_("Notebook SHA-256"), simulation.get("notebook_sha256"), True),
        (_("Run by"), simulation.get("created_by"), False),
        (_("Started"), simulation.get("created_at") and moment(simulation["created_at"]), False),
        (_("Finished"), simulation.get("finished_at") and moment(simulation["finished_at"]), False),
    ]
    return [{"label": label, "value": str(value), "code": code} for label, value, code in facts
            if value is not None and value != ""]


# ----- the verdict -----

def _checks(verdict: dict[str, Any], _: Translator) -> list[dict[str, Any]]:
    rows = []
    for check in [check for check in verdict.get("checks") or [] if isinstance(check, dict)]:
        parsed = parse_threshold(check.get("threshold"))
        under = ""
        if parsed:
            under = condition_label(parsed["condition"], _) if parsed["condition"] != "clean" else _("clean")
            if parsed["value"] is not None:
                under += f" {parameter_label(parsed['parameter'], _)}={value_text(parsed['value'])}"
        rows.append({"threshold": str(check.get("threshold") or ""), "under": under,
                     "required": f"{parsed['symbol']} {value_text(parsed['bound'])}" if parsed else "",
                     "measured": metric(check.get("value")), "passed": bool(check.get("passed")),
                     "reason": str(check.get("reason") or "") if check.get("value") is None else ""})
    return rows


def _regression_sentence(row: dict[str, Any], version: Any, _: Translator) -> str:
    where = " ".join(part for part in (condition_label(row.get("condition"), _), _at(row, _)) if part)
    return _("{where}: {current} against {previous} in version {version}, worse by {drop}, beyond the tolerance "
             "of {tolerance}.").format(where=where, current=metric(row.get("current")),
                                       previous=metric(row.get("previous")), version=version,
                                       drop=metric(row.get("drop")), tolerance=metric(row.get("tolerance")))


def _verdict(verdict: dict[str, Any], previous: dict[str, Any] | None, _: Translator) -> dict[str, Any] | None:
    """The verdict and why, in the reader's words, and the judge's own (English) reasons as recorded."""
    if not verdict or "passed" not in verdict:
        return None
    version = as_dict(previous).get("model_version", "?")
    sentences = []
    for check in [check for check in verdict.get("checks") or [] if isinstance(check, dict)]:
        if not check.get("passed"):
            text = _("“{threshold}” is not met: the measured value is {value}.") if check.get("value") is not None \
                else _("“{threshold}” could not be checked: the result has no value for it.")
            sentences.append(text.format(threshold=check.get("threshold"), value=metric(check.get("value"))))
    sentences += [_regression_sentence(row, version, _) for row in verdict.get("regressions") or []
                  if isinstance(row, dict) and not row.get("passed")]
    recorded = [str(reason) for reason in verdict.get("reasons") or []]
    if verdict["passed"]:
        sentences = [_("Every threshold is met and no condition fell beyond the tolerance against the previous "
                       "version.") if previous else _("Every threshold is met.")]
    elif _.language == "en" and recorded:
        sentences, recorded = recorded, []
    checks = [check for check in verdict.get("checks") or [] if isinstance(check, dict)]
    return {"passed": bool(verdict["passed"]), "sentences": sentences, "recorded": recorded,
            "met": sum(1 for check in checks if check.get("passed")), "total": len(checks)}


def _cards(result: dict[str, Any], verdict: dict[str, Any] | None, regressions: dict[str, Any] | None,
           probes: dict[str, Any] | None, _: Translator) -> list[dict[str, str]]:
    """The figures a reader quotes: clean, the worst condition, probes that hit, thresholds met, regressions."""
    cards = []
    shown = (lambda value: percent(value, _)) if result.get("metric") in METRICS else metric
    if finite(result.get("clean")) is not None:
        cards.append({"label": _("Clean data"), "value": shown(result["clean"]),
                      "note": metric_label(result.get("metric"), _)})
    rows = [row for row in result.get("conditions") or []
            if isinstance(row, dict) and finite(row.get("metric")) is not None]
    if rows:
        lower = result.get("metric") in LOWER_IS_BETTER
        worst = (max if lower else min)(rows, key=lambda row: row["metric"])
        cards.append({"label": _("Worst condition"), "value": shown(worst["metric"]),
                      "note": " ".join(part for part in (condition_label(worst.get("condition"), _), _at(worst, _))
                                       if part)})
    if probes:
        hits = sum(suite["hits"] for suite in probes["suites"])
        sent = sum(suite["probes"] for suite in probes["suites"])
        cards.append({"label": _("Probes that hit"), "value": f"{hits} / {sent}", "note": ""})
    if verdict:
        cards.append({"label": _("Thresholds met"), "value": f"{verdict['met']} / {verdict['total']}", "note": ""})
    if regressions and regressions["rows"]:
        failed = sum(1 for row in regressions["rows"] if not row["passed"])
        cards.append({"label": _("Regressions beyond the tolerance"), "value": f"{failed} / {len(regressions['rows'])}",
                      "note": _("against version {version}").format(version=regressions["version"])})
    return cards


# ----- what was measured -----

def _conditions(result: dict[str, Any], _: Translator) -> list[dict[str, Any]]:
    """Every measured condition but the probe suites (their table says more)."""
    clean = finite(result.get("clean"))
    suites = {str(probe.get("suite")) for probe in result.get("probes") or [] if isinstance(probe, dict)}
    rows, previous_name = [], None
    for row in [row for row in result.get("conditions") or []
                if isinstance(row, dict) and str(row.get("condition")) not in suites]:
        value = finite(row.get("metric"))
        details = ", ".join(f"{key}: {detail}" for key, detail in as_dict(row.get("details")).items())
        first, previous_name = row.get("condition") != previous_name, row.get("condition")
        rows.append({"condition": condition_label(row.get("condition"), _) if first else "", "first": first,
                     "parameter": parameter_label(row.get("parameter"), _), "value": value_text(row.get("value")),
                     "metric": metric(value), "change": f"{value - clean:+.3f}" if None not in (value, clean) else "–",
                     "samples": number(row.get("samples")) if row.get("samples") else "–",
                     "milliseconds": "–" if finite(row.get("seconds")) is None else number(1000 * row["seconds"], 3),
                     "details": clip(details, 160)["text"]})
    return rows


def _regressions(verdict: dict[str, Any], previous: dict[str, Any] | None, _: Translator) -> dict[str, Any] | None:
    if not previous:
        return None
    rows = [{"condition": condition_label(row.get("condition"), _), "at": _at(row, _),
             "previous": metric(row.get("previous")), "current": metric(row.get("current")),
             "drop": metric(row.get("drop")), "tolerance": metric(row.get("tolerance")),
             "passed": bool(row.get("passed"))}
            for row in verdict.get("regressions") or [] if isinstance(row, dict)]
    return {"version": previous.get("model_version", "?"), "rows": rows}


def _gallery(result: dict[str, Any], _: Translator) -> dict[str, Any] | None:
    examples, unreadable = [], 0
    for example in [example for example in result.get("examples") or [] if isinstance(example, dict)]:
        original, perturbed = png_data_url(example.get("original_png")), png_data_url(example.get("perturbed_png"))
        if original is None or perturbed is None:
            unreadable += 1
            continue
        label, clean, predicted = (clip(example.get(key), 40)["text"] or "–"
                                   for key in ("label", "clean_prediction", "prediction"))
        examples.append({"condition": " ".join(part for part in (condition_label(example.get("condition"), _),
                                                                 _at(example, _)) if part),
                         "label": label, "clean": clean, "predicted": predicted, "broken": predicted != label,
                         "original": original, "perturbed": perturbed})
    return {"examples": examples, "unreadable": unreadable} if examples or unreadable else None


def _probes(result: dict[str, Any], _: Translator) -> dict[str, Any] | None:
    """Each suite's attack success rate, the probes that hit (prompt and response, clipped) and those that
    failed to run."""
    probes = [probe for probe in result.get("probes") or [] if isinstance(probe, dict)]
    if not probes:
        return None
    rates = {str(row.get("condition")): row.get("metric") for row in result.get("conditions") or []
             if isinstance(row, dict)}
    suites = []
    for suite in dict.fromkeys(str(probe.get("suite")) for probe in probes):
        members = [probe for probe in probes if str(probe.get("suite")) == suite]
        rate = finite(rates.get(suite))
        suites.append({"label": condition_label(suite, _), "name": suite, "probes": len(members),
                       "hits": sum(1 for probe in members if probe.get("hit")),
                       "errors": sum(1 for probe in members if probe.get("error")), "rate": percent(rate, _),
                       "width": round(100 * min(max(rate or 0.0, 0.0), 1.0), 1)})
    hits = [{"suite": condition_label(probe.get("suite"), _), "probe": str(probe.get("probe") or ""),
             "detector": str(probe.get("detector") or ""), "prompt": clip(probe.get("prompt"), PROMPT_CHARACTERS),
             "response": clip(probe.get("response"), RESPONSE_CHARACTERS)} for probe in probes if probe.get("hit")]
    errors = [{"suite": condition_label(probe.get("suite"), _), "probe": str(probe.get("probe") or ""),
               "error": clip(probe.get("error"), 300)["text"]} for probe in probes if probe.get("error")]
    return {"suites": suites, "hits": hits[:SHOWN_HITS], "more_hits": max(len(hits) - SHOWN_HITS, 0),
            "errors": errors[:SHOWN_ERRORS], "more_errors": max(len(errors) - SHOWN_ERRORS, 0)}


def _drift(result: dict[str, Any], _: Translator) -> dict[str, Any] | None:
    rows = [row for row in result.get("drift") or [] if isinstance(row, dict)]
    if not rows:
        return None
    rows.sort(key=lambda row: -(finite(row.get("psi")) or 0.0))
    shown = []
    for row in rows[:SHOWN_DRIFT]:
        psi = finite(row.get("psi"))
        level = next(((tone, _(word)) for bound, tone, word in PSI_LEVELS if psi is not None and psi < bound),
                     ("", "–"))
        shown.append({"feature": str(row.get("feature")), "psi": number(psi, 3), "ks": number(row.get("ks"), 3),
                      "tone": level[0], "level": level[1]})
    return {"rows": shown, "more": max(len(rows) - SHOWN_DRIFT, 0)}


def _error(simulation: dict[str, Any]) -> str:
    error = simulation.get("error")
    text = as_dict(error).get("message") if isinstance(error, dict) else error
    return clip(text or simulation.get("reason"), 2000)["text"]


def context(simulation: dict[str, Any], template: dict[str, Any], result: dict[str, Any], verdict: dict[str, Any],
            previous: dict[str, Any] | None, language: str = "en") -> dict[str, Any]:
    """Everything the template shows, in ``language``: words translated, numbers formatted, charts scaled."""
    _ = translator(language)
    simulation, template, result, verdict = (as_dict(part) for part in (simulation, template, result, verdict))
    previous = previous if isinstance(previous, dict) and previous else None
    state = str(simulation.get("state") or "")
    endpoint = _endpoint(simulation.get("endpoint"))
    subject = _("{model} version {version} on {dataset} version {dataset_version}").format(
        model=simulation.get("model", "?"), version=simulation.get("model_version", "?"),
        dataset=simulation.get("dataset", "?"), dataset_version=simulation.get("dataset_version", "?")) \
        if simulation.get("model") or not endpoint else endpoint
    judged, regressions, probes = _verdict(verdict, previous, _), _regressions(verdict, previous, _), _probes(result, _)
    checks = [check for check in verdict.get("checks") or [] if isinstance(check, dict)]
    parameters = {str(row.get("condition")): str(row["parameter"]) for row in result.get("conditions") or []
                  if isinstance(row, dict) and row.get("parameter")}
    return {
        "language": _.language, "html_language": _.language.replace("_", "-"), "title": _("Security assessment"),
        "id": simulation.get("id"), "subject": subject, "state": state,
        "state_label": _(STATES[state]) if state in STATES else state,
        "finished": state in ("passed", "failed", "error"), "facts": _facts(simulation, template, result, previous, _),
        "error": _error(simulation) if state == "error" else "", "result_errors": [
            clip(error, 500)["text"] for error in result.get("errors") or []],
        "verdict": judged, "cards": _cards(result, judged, regressions, probes, _), "checks": _checks(verdict, _),
        "charts": curves(result, checks, _), "conditions": _conditions(result, _),
        "metric_name": metric_label(result.get("metric") or template.get("metric"), _),
        "has_clean": finite(result.get("clean")) is not None, "clean": metric(result.get("clean")),
        "regressions": regressions, "gallery": _gallery(result, _),
        "probes": probes, "drift": _drift(result, _),
        "environment": sorted((str(name), str(version))
                              for name, version in as_dict(result.get("environment")).items()),
        "method": method(template, parameters, _), "page_counter": page_counter(_),
        "generated": moment(datetime.now(timezone.utc).isoformat()),
    }


def render_html(simulation: dict, template: dict, result: dict, verdict: dict, *, previous: dict | None = None,
                locale: str = "en") -> str:
    """The assessment as one self-contained HTML page."""
    values = context(simulation, template, result, verdict, previous, locale)
    return environment(values["language"]).get_template(TEMPLATE).render(values)


def render_pdf(simulation: dict, template: dict, result: dict, verdict: dict, *, previous: dict | None = None,
               locale: str = "en") -> bytes:
    """The same page printed to A4 by WeasyPrint."""
    return html_to_pdf(render_html(simulation, template, result, verdict, previous=previous, locale=locale))


def write_reports(simulation: dict, template: dict, result: dict, verdict: dict, directory: Path, *,
                  previous: dict | None = None, locale: str = "en") -> tuple[Path, Path]:
    """Writes ``report.<language>.html`` and ``report.<language>.pdf`` into ``directory``, each atomically."""
    chosen = translator(locale).language
    return write_pair(render_html(simulation, template, result, verdict, previous=previous, locale=chosen),
                      directory, chosen)
