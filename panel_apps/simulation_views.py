"""The Simulation page's pure parts: simulations and templates as table rows, the filters, the verdict with its
checks and regressions, what was simulated, the gallery and the probes as HTML, the Simulate form's request and
who may simulate. They take the API's JSON and the page's language and call no API, so tests check them without a
browser. What the security assessment also says comes from :func:`aitip.simulation.reports.context`, so the page
and the report say the same. The curves and comparisons are in :mod:`panel_apps.simulation_charts`."""

from __future__ import annotations

import json
from html import escape
from typing import Any
from urllib.parse import urlsplit

import pandas as pd

from aitip.simulation import reports
from aitip.simulation.template_words import in_words
from panel_apps.components import format_time, role_at_least, role_words, viewer_role
from panel_apps.evaluation_views import least_role, paragraph
from panel_apps.language import _, ngettext

RUN_ACTION = "simulation.run"
FINISHED = ("passed", "failed", "error")
JUDGED = ("passed", "failed")
STATES = ("queued", "running", "passed", "failed", "error")
STATE_COLOURS = {"passed": "#228822", "failed": "#cc0000", "error": "#8a4b08", "queued": "#777777",
                 "running": "#0066cc"}
STATE_MARKS = {"passed": "✓", "failed": "✗", "error": "!", "queued": "…", "running": "…"}
TABLE_COLUMNS = ["id", "template", "target", "dataset", "state", "verdict", "clean", "trigger", "when"]
TEMPLATE_COLUMNS = ["template", "version", "kind", "metric", "conditions", "thresholds", "source"]
ENDPOINTS = ":endpoints"  # the model filter's value for simulations of an endpoint (no model)
DEFAULT_REQUEST = {"messages": [{"role": "user", "content": "$INPUT"}]}
DEFAULT_RESPONSE_FIELD = "$.choices[0].message.content"
TONE_COLOURS = {"better": "#228822", "worse": "#cc0000", "neutral": "#555555"}
CELL = "padding:.15rem .6rem;text-align:left"


def settled(simulation: dict[str, Any]) -> bool:
    """Finished, with its report written (or in error): what the page shows of it will not change."""
    return simulation.get("state") in FINISHED and (bool(simulation.get("has_report"))
                                                    or simulation.get("state") == "error")


def state_label(state: str) -> str:
    return _(reports.STATES[state]) if state in reports.STATES else state


def state_badge(state: str) -> str:
    """The state as a coloured badge whose mark says pass or fail without the colour."""
    colour = STATE_COLOURS.get(state, "#333333")
    return (f"<span class='simulation-state' data-state='{escape(state)}' style='background:{colour};color:#fff;"
            f"padding:.05rem .5rem;border-radius:.7rem'>{STATE_MARKS.get(state, '')} {escape(state_label(state))}"
            f"</span>")


def metric_text(value: Any) -> str:
    """A metric to three decimals, as thresholds write it."""
    return reports.metric(value)


def endpoint_text(endpoint: dict[str, Any] | None) -> str:
    """An endpoint as scheme://host:port/path: a password or a query in its address is never shown."""
    uri = (endpoint or {}).get("uri")
    if not isinstance(uri, str) or not uri:
        return ""
    try:
        parts = urlsplit(uri)
        host = f"{parts.hostname or ''}:{parts.port}" if parts.port else parts.hostname or ""
    except ValueError:
        return uri.split("//")[-1].split("@")[-1].split("?")[0]
    return f"{parts.scheme}://{host}{parts.path}"


def target_text(simulation: dict[str, Any]) -> str:
    if simulation.get("model"):
        return f"{simulation['model']} v{simulation['model_version']}"
    return endpoint_text(simulation.get("endpoint"))


def template_ref(simulation: dict[str, Any]) -> str:
    return f"{simulation['template_name']}@{simulation['template_version']}"


def trigger_text(trigger: str | None) -> str:
    trigger = str(trigger or "")
    if trigger == "manual":
        return _("started by hand")
    if trigger.startswith("evaluation:"):
        return _("started after evaluation {evaluation} passed").format(evaluation=trigger.split(":", 1)[1])
    return trigger


def verdict_summary(simulation: dict[str, Any]) -> str:
    """The verdict in a few words: thresholds met and regressions beyond the tolerance, or why there is none."""
    if simulation.get("state") == "error":
        reason = str(simulation.get("reason") or "")
        return reason if len(reason) <= 90 else reason[:88] + " …"
    verdict = simulation.get("verdict")
    if not isinstance(verdict, dict):
        return ""
    checks = verdict.get("checks") or []
    met = sum(1 for check in checks if check.get("passed"))
    text = _("{met} of {total} thresholds met").format(met=met, total=len(checks))
    dropped = sum(1 for row in verdict.get("regressions") or [] if not row.get("passed"))
    if dropped:
        text += "; " + ngettext("{count} regression", "{count} regressions", dropped).format(count=dropped)
    return text


def simulations_frame(simulations: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per simulation, newest first as the platform lists them; ``state`` is a badge (HTML)."""
    rows = [{"id": int(simulation["id"]), "template": template_ref(simulation), "target": target_text(simulation),
             "dataset": f"{simulation['dataset']} v{simulation['dataset_version']}"
             if simulation.get("dataset_version") else simulation.get("dataset") or "",
             "state": state_badge(str(simulation.get("state") or "")),
             "verdict": verdict_summary(simulation),
             "clean": "" if simulation.get("clean") is None else metric_text(simulation["clean"]),
             "trigger": trigger_text(simulation.get("trigger")), "when": format_time(simulation.get("created_at"))}
            for simulation in simulations]
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def filter_simulations(simulations: list[dict[str, Any]], model: str | None = None, template: str | None = None,
                       state: str | None = None) -> list[dict[str, Any]]:
    """The simulations of ``model`` (``ENDPOINTS``: of an endpoint), ``template`` and ``state``; None: any."""
    def kept(simulation: dict[str, Any]) -> bool:
        if model == ENDPOINTS and simulation.get("model"):
            return False
        if model and model != ENDPOINTS and simulation.get("model") != model:
            return False
        return (not template or simulation.get("template_name") == template) and \
            (not state or simulation.get("state") == state)

    return [simulation for simulation in simulations if kept(simulation)]


def default_simulation(simulations: list[dict[str, Any]], wanted: str | None) -> int | None:
    """The simulation the address names, else the newest judged one, else the newest."""
    ids = [int(simulation["id"]) for simulation in simulations]
    if wanted and wanted.isdigit() and int(wanted) in ids:
        return int(wanted)
    judged = [int(s["id"]) for s in simulations if s.get("state") in JUDGED]
    return (judged or ids or [None])[0]


def summary_html(project: str, shown: list[dict[str, Any]], listed: int) -> str:
    """How many simulations the filters keep and how they were judged, or what to do to get a first one."""
    if not shown:
        return empty_state(project, filtered=listed > 0)
    passed = sum(1 for s in shown if s["state"] == "passed")
    failed = sum(1 for s in shown if s["state"] == "failed")
    text = ngettext("{count} simulation: {passed} passed, {failed} failed",
                    "{count} simulations: {passed} passed, {failed} failed", len(shown)).format(
        count=len(shown), passed=passed, failed=failed)
    return f"<span id='simulations-count'>{escape(text)}</span>"


def title_html(simulation: dict[str, Any]) -> str:
    title = _("Simulation {id}: {template} against {target}").format(
        id=simulation["id"], template=template_ref(simulation), target=target_text(simulation))
    return (f"<h3 id='simulation-title' style='margin:.4rem 0;font-family:system-ui,sans-serif'>{escape(title)}"
            "</h3>")


def previous_of(simulation: dict[str, Any], simulations: list[dict[str, Any]]) -> dict[str, Any] | None:
    """What the report says of the version a simulation was judged against: its model version."""
    previous_id = simulation.get("previous_id")
    if previous_id is None:
        return None
    found = next((s for s in simulations if int(s["id"]) == int(previous_id)), None)
    return {"model_version": found.get("model_version") if found else "?"}


def context(detail: dict[str, Any], previous: dict[str, Any] | None, language: str) -> dict[str, Any]:
    """The security assessment's reading of a simulation, in ``language``."""
    return reports.context(detail, detail.get("template") or {}, detail.get("result") or {},
                           detail.get("verdict") or {}, previous, language)


# ----- the verdict -----

def html_table(css_class: str, titles: list[str], rows: list[str]) -> str:
    head = "".join(f"<th style='{CELL}'>{escape(title)}</th>" for title in titles)
    return (f"<table class='{css_class}' style='border-collapse:collapse;font-size:.9rem;margin:.3rem 0'>"
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")


def _outcome(passed: bool) -> str:
    colour, word = ("#228822", _("pass")) if passed else ("#cc0000", _("fail"))
    return f"<b style='color:{colour}'>{'✓' if passed else '✗'} {escape(word)}</b>"


def verdict_html(found: dict[str, Any], simulation: dict[str, Any]) -> str:
    """The verdict first, with every reason in the reader's language; or how far the simulation has got."""
    state = str(simulation.get("state") or "")
    parts = [f"<div class='simulation-verdict' data-state='{escape(state)}'>"]
    verdict = found.get("verdict")
    if verdict is not None:
        heading = _("Passed: every threshold is met.") if verdict["passed"] else \
            _("Failed: a threshold or a regression check did not hold.")
        parts.append(f"<p style='font-size:1.1rem;margin:.2rem 0'>{state_badge(state)} <b>{escape(heading)}</b></p>")
        parts.append("<ul class='verdict-reasons'>" + "".join(
            f"<li>{escape(sentence)}</li>" for sentence in verdict["sentences"]) + "</ul>")
        if verdict["recorded"]:
            recorded = _("As the judge recorded it (English)")
            parts.append(f"<details><summary>{escape(recorded)}</summary><ul>"
                         + "".join(f"<li>{escape(reason)}</li>" for reason in verdict["recorded"]) + "</ul></details>")
    elif state in ("queued", "running"):
        job = simulation.get("job_id")
        waiting = _("Queued: it starts when a worker is free.") if state == "queued" else \
            _("Running in its sandbox: the verdict comes when its job ends.")
        follow = _("Follow job {job}").format(job=job)
        link = f" <a href='./jobs?job={int(job)}'>{escape(follow)}</a>" if job else ""
        parts.append(f"<p class='simulation-progress'>{state_badge(state)} {escape(waiting)}{link}</p>")
    else:
        parts.append(paragraph(_("No verdict: the simulation could not be run to its end."), state_badge(state)))
        message = found.get("error") or simulation.get("reason") or ""
        if message:
            parts.append(f"<p class='simulation-error' style='color:#842029'>{escape(message)}</p>")
    for problem in found.get("result_errors") or []:
        parts.append(f"<p class='simulation-warning' style='background:#fff3cd;color:#664d03;padding:.3rem .6rem;"
                     f"border-radius:4px'>⚠ {escape(problem)}</p>")
    cards = "".join(f"<div style='display:inline-block;margin:0 1.5rem .5rem 0'><div style='color:#555;"
                    f"font-size:.85rem'>{escape(card['label'])}</div><div style='font-size:1.3rem;font-weight:600'>"
                    f"{escape(card['value'])}</div><div style='color:#777;font-size:.8rem'>{escape(card['note'])}"
                    f"</div></div>" for card in found.get("cards") or [])
    if cards:
        parts.append(f"<div class='simulation-cards'>{cards}</div>")
    parts.append("</div>")
    return "".join(parts)


def checks_html(found: dict[str, Any]) -> str:
    """Each threshold of the template: what it requires, the value measured, pass or fail."""
    rows = [f"<tr data-passed='{str(check['passed']).lower()}'><td style='{CELL}'><code>{escape(check['threshold'])}"
            f"</code></td><td style='{CELL}'>{escape(check['under'])}</td><td style='{CELL}'>"
            f"{escape(check['required'])}</td><td style='{CELL}'>{escape(check['measured'])}</td>"
            f"<td style='{CELL}'>{_outcome(check['passed'])}</td></tr>" for check in found.get("checks") or []]
    if not rows:
        return paragraph(_("No thresholds checked."), css_class="checks-empty")
    return html_table("simulation-checks", [_("threshold"), _("condition"), _("required"), _("measured"), _("outcome")],
                  rows)


def regressions_html(found: dict[str, Any], of_a_model: bool = True) -> str:
    """Each condition against the previous version's simulation under the same template."""
    regressions = found.get("regressions")
    if not regressions:
        return paragraph(_("No earlier version of this model was simulated under this template: there is nothing "
                           "to regress against.") if of_a_model else _("An endpoint is judged by the thresholds "
                                                                        "alone: it has no versions to regress "
                                                                        "against."), css_class="regressions-empty")
    title = _("Against model version {version} (a drop beyond the tolerance fails)").format(
        version=regressions["version"])
    rows = [f"<tr data-passed='{str(row['passed']).lower()}'><td style='{CELL}'>{escape(_clean(row['condition']))}</td>"
            f"<td style='{CELL}'>{escape(row['at'])}</td><td style='{CELL}'>{escape(row['previous'])}</td>"
            f"<td style='{CELL}'>{escape(row['current'])}</td><td style='{CELL}'>{escape(row['drop'])}</td>"
            f"<td style='{CELL}'>{escape(row['tolerance'])}</td><td style='{CELL}'>{_outcome(row['passed'])}</td>"
            "</tr>" for row in regressions["rows"]]
    return f"<p style='margin:.3rem 0'>{escape(title)}</p>" + html_table(
        "simulation-regressions", [_("condition"), _("parameter"), _("previous"), _("current"), _("drop"), _("tolerance"),
                                   _("outcome")], rows)


def _clean(label: str) -> str:
    """The report names the unperturbed data by its key, ``clean``; the page in the reader's words."""
    return _("clean") if label == "clean" else label


def facts_html(found: dict[str, Any]) -> str:
    """Exactly what was simulated: the report's facts (model or endpoint, dataset and MD5, template, job)."""
    rows = "".join(f"<tr><th style='text-align:left;padding-right:1rem;font-weight:500;color:#555'>"
                   f"{escape(fact['label'])}</th><td>{'<code>' + escape(fact['value']) + '</code>' if fact['code'] else escape(fact['value'])}"
                   f"</td></tr>" for fact in found.get("facts") or [])
    return f"<table class='simulation-facts' style='font-size:.9rem'>{rows}</table>"


# ----- gallery and probes -----

def gallery_html(found: dict[str, Any], kind: str) -> str:
    """Each adversarial example: the original and the perturbed picture (rebuilt from the PNG's bytes, nothing
    else reaches the page), its label and both predictions; the ones the condition broke marked."""
    gallery = found.get("gallery")
    if not gallery or not gallery["examples"]:
        text = _("No adversarial examples: only image simulations keep a gallery.") if kind != "image" else \
            _("No adversarial examples were kept.")
        return paragraph(text, css_class="gallery-empty")
    cards = []
    for example in gallery["examples"]:
        border = "#cc0000" if example["broken"] else "#cccccc"
        pictures = "".join(
            f"<figure style='margin:0 .3rem;text-align:center'><img class='{css}' src='{url}' alt='{escape(alt)}' "
            f"width='96' height='96' style='image-rendering:pixelated;border:1px solid #ddd'>"
            f"<figcaption style='font-size:.75rem;color:#555'>{escape(alt)}</figcaption></figure>"
            for css, url, alt in (("gallery-original", example["original"], _("original")),
                                  ("gallery-perturbed", example["perturbed"], _("perturbed"))))
        caption = _("label {label} · clean prediction {clean} · perturbed {predicted}").format(
            label=example["label"], clean=example["clean"], predicted=example["predicted"])
        cards.append(f"<div class='gallery-example' data-broken='{str(example['broken']).lower()}' style='display:"
                     f"inline-block;margin:.3rem;padding:.4rem;border:2px solid {border};border-radius:6px;"
                     f"vertical-align:top;max-width:230px'><div style='font-weight:600;font-size:.85rem'>"
                     f"{escape(example['condition'])}</div><div style='display:flex'>{pictures}</div>"
                     f"<div style='font-size:.8rem'>{escape(caption)}</div></div>")
    unreadable = ngettext("{count} example was not a PNG and is left out.",
                          "{count} examples were not PNGs and are left out.", gallery["unreadable"]).format(
        count=gallery["unreadable"]) if gallery["unreadable"] else ""
    return (f"<div class='simulation-gallery'>{''.join(cards)}</div>"
            + (paragraph(unreadable) if unreadable else ""))


def _pre(text: dict[str, Any]) -> str:
    more = f" <span style='color:#777'>(+{text['more']})</span>" if text["more"] else ""
    return (f"<pre style='white-space:pre-wrap;margin:.1rem 0;background:#f6f8fa;padding:.3rem'>{escape(text['text'])}"
            f"</pre>{more}")


def probes_html(found: dict[str, Any], kind: str) -> str:
    """Each suite's attack success rate as a bar, then the probes that hit: prompt and response, escaped."""
    probes = found.get("probes")
    if not probes:
        return paragraph(_("No probes: only LLM simulations send them.") if kind != "llm" else
                         _("No probe was sent."), css_class="probes-empty")
    suites = [f"<tr data-suite='{escape(suite['name'])}'><td style='{CELL}'>{escape(suite['label'])}</td>"
              f"<td style='{CELL}'>{suite['hits']} / {suite['probes']}</td><td style='{CELL}'>{suite['errors']}</td>"
              f"<td style='{CELL};min-width:12rem'><div style='background:#eee;width:10rem;display:inline-block;"
              f"vertical-align:middle'><div style='background:#cc0000;height:.7rem;width:{suite['width']}%'></div>"
              f"</div> {escape(suite['rate'])}</td></tr>" for suite in probes["suites"]]
    parts = [html_table("probe-suites", [_("suite"), _("hits"), _("errors"), _("attack success rate")], suites)]
    if probes["hits"]:
        heading, detector, prompt, response = _("Probes that hit"), _("detector"), _("prompt"), _("response")
        parts.append(f"<h4 style='margin:.6rem 0 .2rem'>{escape(heading)}</h4><div class='probe-hits' "
                     "style='max-height:40rem;overflow:auto'>")
        for hit in probes["hits"]:
            parts.append(f"<div class='probe-hit' style='border-left:3px solid #cc0000;padding:.2rem .6rem;"
                         f"margin:.4rem 0'><div style='font-size:.85rem'><b>{escape(hit['suite'])}</b> · "
                         f"{escape(hit['probe'])} · {escape(detector)} {escape(hit['detector'])}</div>"
                         f"<div style='font-size:.8rem;color:#555'>{escape(prompt)}</div>{_pre(hit['prompt'])}"
                         f"<div style='font-size:.8rem;color:#555'>{escape(response)}</div>"
                         f"{_pre(hit['response'])}</div>")
        parts.append("</div>")
        if probes["more_hits"]:
            parts.append(paragraph(_("… and {count} more in the report.").format(count=probes["more_hits"])))
    else:
        parts.append(paragraph(_("No probe hit."), css_class="probes-none-hit"))
    for error in probes["errors"]:
        parts.append(f"<p class='probe-error' style='color:#8a4b08;font-size:.85rem'>{escape(error['suite'])} · "
                     f"{escape(error['probe'])}: {escape(error['error'])}</p>")
    return f"<div class='simulation-probes'>{''.join(parts)}</div>"


# ----- templates -----

def template_source(source: str) -> str:
    return _("library") if source == "library" else _("project") if source == "project" else source


def templates_frame(templates: list[dict[str, Any]]) -> pd.DataFrame:
    rows = [{"template": template["name"], "version": int(template["version"]), "kind": template["kind"],
             "metric": template["metric"], "conditions": ", ".join(template.get("conditions") or []),
             "thresholds": "; ".join(template.get("thresholds") or []),
             "source": template_source(template["source"])} for template in templates]
    return pd.DataFrame(rows, columns=TEMPLATE_COLUMNS)


def readable_yaml(text: str) -> str:
    """The API's YAML of a template with multi-line text (a custom condition's code) as a literal block, so the
    code reads as written rather than as one escaped line; the text as it came where it does not parse."""
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def scalar(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)

    Dumper.add_representer(str, scalar)
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return yaml.dump(document, Dumper=Dumper, sort_keys=False, allow_unicode=True, width=110)


def template_html(template: dict[str, Any]) -> str:
    """A template's title, description, where it comes from, and its YAML as a simulation runs it."""
    facts = [_("{source} · version {version} (versions: {versions})").format(
        source=template_source(template["source"]), version=template["version"],
        versions=", ".join(str(v) for v in template.get("versions") or [template["version"]]))]
    if template.get("extends"):
        facts.append(_("extends {parent}").format(parent=template["extends"]))
    if template.get("created_by"):
        facts.append(_("saved by {who}").format(who=template["created_by"]))
    return (f"<div class='template-detail'><h4 style='margin:.4rem 0'>{escape(template['name'])}@"
            f"{template['version']} · {escape(in_words(template.get('title'), _))}</h4>"
            f"<p style='color:#555;margin:.2rem 0'>{escape(' · '.join(facts))}</p>"
            f"<p style='margin:.2rem 0'>{escape(in_words(template.get('description'), _))}</p>"
            f"<pre class='template-yaml' style='background:#f6f8fa;padding:.6rem;max-height:28rem;overflow:auto'>"
            f"{escape(readable_yaml(template.get('yaml') or ''))}</pre></div>")


# ----- the Simulate form -----

def template_options(templates: list[dict[str, Any]]) -> dict[str, str]:
    """{label: name@version} for every version of every template, latest first."""
    options = {}
    for template in templates:
        for version in sorted(template.get("versions") or [template["version"]], reverse=True):
            options[f"{template['name']}@{version} · {template_source(template['source'])} · {template['kind']}"] = \
                f"{template['name']}@{version}"
    return options


def kind_of(templates: list[dict[str, Any]], reference: str | None) -> str | None:
    name = (reference or "").split("@")[0]
    return next((template["kind"] for template in templates if template["name"] == name), None)


def endpoint_settings(uri: str, request: str, response_field: str, authorization: str) -> dict[str, Any] | None:
    """The endpoint the form describes (None without an address, so the platform says what is missing); a
    request that is not a JSON object is ValueError saying so."""
    if not uri.strip():
        return None
    try:
        body = json.loads(request) if request.strip() else DEFAULT_REQUEST
    except json.JSONDecodeError as error:
        raise ValueError(_("the request template is not JSON: {reason}").format(reason=error.msg)) from error
    if not isinstance(body, dict):
        raise ValueError(_("the request template must be a JSON object"))
    endpoint: dict[str, Any] = {"uri": uri.strip(), "req_template_json_object": body,
                                "response_json_field": response_field.strip() or DEFAULT_RESPONSE_FIELD}
    if authorization.strip():
        endpoint["headers"] = {"Authorization": authorization.strip()}
    return endpoint


def problems_html(detail: Any) -> str:
    """The fields the platform refused and why (its 422's detail)."""
    items = [item for item in detail if isinstance(item, dict)] if isinstance(detail, list) else []
    if not items:
        return ""
    return ("<ul class='simulate-problems' style='color:#842029;margin:.2rem 0'>" + "".join(
        f"<li><code>{escape(str(item.get('field', '')))}</code>: {escape(str(item.get('message', '')))}</li>"
        for item in items) + "</ul>")


def simulation_request(templates: list[dict[str, Any]], reference: str, *, model: str | None, version: Any,
                       dataset: str | None, dataset_version: Any, endpoint: tuple[str, str, str, str]
                       ) -> tuple[dict[str, Any], str]:
    """The Simulate form as ``simulations.create``'s arguments (an endpoint for an LLM template, a model version and
    dataset version otherwise; what is missing is the platform's to say) and what it does, in words; ValueError
    where the endpoint's request template is not a JSON object."""
    if kind_of(templates, reference) == "llm":
        doing = _("simulate {template} against {endpoint}").format(
            template=reference, endpoint=endpoint[0].strip() or _("an endpoint"))
        return {"template": reference, "endpoint": endpoint_settings(*endpoint)}, doing
    doing = _("simulate {template} against {model} version {version}").format(
        template=reference, model=model, version=version)
    return {"template": reference, "model": model, "version": int(version) if version else None, "dataset": dataset,
            "dataset_version": int(dataset_version) if dataset_version else None}, doing


def form_refusal(me: dict[str, Any], project: str | None, probes_endpoint: bool, has_versions: bool) -> str | None:
    """Why the form cannot be sent: the viewer's role, or (for a model's template) no model version yet."""
    refusal = simulate_refusal(me, project)
    if refusal is None and not probes_endpoint and not has_versions:
        return _("No registered model version to simulate yet: a training job that logs a model with a name "
                 "registers one. An LLM template probes an endpoint instead.")
    return refusal


def filter_options(simulations: list[dict[str, Any]], models: list[dict[str, Any]],
                   templates: list[dict[str, Any]]) -> tuple[dict[str, str], dict[str, str]]:
    """The model filter's options (with LLM endpoints where one was simulated) and the template filter's."""
    names = sorted({s["model"] for s in simulations if s.get("model")} | {m["name"] for m in models})
    endpoints = {_("LLM endpoints"): ENDPOINTS} if any(not s.get("model") for s in simulations) else {}
    used = sorted({s["template_name"] for s in simulations} | {t["name"] for t in templates})
    return ({_("All models"): "", **{name: name for name in names}, **endpoints},
            {_("All templates"): "", **{name: name for name in used}})


def simulate_refusal(me: dict[str, Any], project: str | None) -> str | None:
    """Why the viewer may not simulate in ``project`` (None: they may; the platform checks again)."""
    if not project:
        return _("Choose a project to simulate in.")
    role = viewer_role(me, project)
    if role_at_least(role, least_role(RUN_ACTION)):
        return None
    return _("Simulating in {project} needs the {least} role; you are {role}.").format(
        project=project, least=role_words(least_role(RUN_ACTION)), role=role_words(role))


def empty_state(project: str, filtered: bool) -> str:
    """What to do to get a first simulation, with the command that starts one (HTML)."""
    if filtered:
        return paragraph(_("No simulation matches these filters."), css_class="simulations-empty")
    command = (f"aitip simulations create --project {project} --template custom --model MODEL --version N "
               "--dataset DATASET")
    nothing = _("No simulations in {project} yet.").format(project=project)
    how = _("Simulate a registered model version (or an LLM endpoint) with the Simulate form on this page, or:")
    return (f"<div class='simulations-empty' style='font-family:system-ui,sans-serif'><p><b>{escape(nothing)}</b>"
            f"</p><p>{escape(how)}<br><code>{escape(command)}</code></p></div>")
