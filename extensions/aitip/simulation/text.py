"""A simulation as a person reads it in a terminal: what was attacked, the verdict with each reason, and the
metric per condition (the CLI's human output; ``--json`` gives the whole answer); and a model's simulation
policy."""

from __future__ import annotations

from typing import Any

from ..i18n import N_
from ..i18n import shell_gettext as _
from ..evaluation.text import dataset_text, policy_lines
from ..text_tables import field_lines, local_time, pad, shown_of, table
from .template_words import in_words

STATES = {"queued": N_("queued"), "running": N_("running"), "passed": N_("passed"), "failed": N_("failed"),
          "error": N_("error")}


def simulation_text(simulation: dict[str, Any]) -> str:
    state = str(simulation["state"])
    shown_state = _(STATES.get(state, state)).upper()
    if simulation.get("model"):
        target = f"{simulation['model']} v{simulation['model_version']}"
        if simulation.get("dataset_version"):
            target += " " + _("on {dataset} v{version}").format(dataset=simulation["dataset"],
                                                              version=simulation["dataset_version"])
    else:
        target = (simulation.get("endpoint") or {}).get("uri", "-")
    lines = [_("simulation {id}: {template} against {target}").format(
        id=simulation["id"], template=f"{simulation['template_name']}@{simulation['template_version']}",
        target=target) + f"  [{shown_state}]",
        _("trigger: {trigger}").format(trigger=simulation["trigger"]) + "   "
        + _("job: {job}").format(job=simulation.get("job_id") or "-")]
    error = simulation.get("error")
    if error:
        lines.append(_("error: {message}").format(message=error.get("message", "")))
    verdict = simulation.get("verdict")
    if verdict:
        lines += ["", _("verdict: passed") if verdict["passed"] else _("verdict: failed")]
        for check in verdict.get("checks", ()):
            mark = _("passed") if check["passed"] else _("failed")
            value = "-" if check.get("value") is None else f"{check['value']:.4g}"
            lines.append(f"  {pad(mark, 8)} {check['threshold']}  ({value})")
        for change in verdict.get("regressions", ()):
            if not change["passed"]:
                lines.append("  " + pad(_("failed"), 8) + " " + _(
                    "{condition}: {previous:.4g} -> {current:.4g}, a drop beyond {tolerance:g}").format(
                    condition=change["condition"] + ("" if change.get("value") is None else f" {change['value']:g}"),
                    previous=change["previous"], current=change["current"], tolerance=change["tolerance"]))
    metrics = simulation.get("metrics") or {}
    if simulation.get("clean") is not None:
        metrics = {"clean": simulation["clean"], **metrics}
    if metrics:
        lines += ["", table([{"condition": name, "metric": f"{value:.4g}"} for name, value in metrics.items()],
                            ["condition", "metric"])]
    return "\n".join(lines)


def simulation_policy_text(policy: dict[str, Any]) -> str:
    """Which scenarios each simulation of the model runs, on what, and who set it."""
    settings = policy["settings"]
    facts = {_("template"): settings["template"]}
    if settings.get("endpoint"):
        facts[_("endpoint")] = f"{settings['endpoint']['method']} {settings['endpoint']['uri']}"
    elif settings.get("dataset"):
        facts[_("dataset")] = dataset_text(settings)
    if settings.get("reference_version"):
        facts[_("drift against")] = f"v{settings['reference_version']}"
    facts[_("gallery")] = _("{count} adversarial examples kept").format(count=settings["gallery_size"])
    return policy_lines(_("simulation policy of {model} in {project}").format(**policy),
                        _("each version whose evaluation passes is simulated at once"), policy, facts)


def simulations_text(listing: dict[str, Any]) -> str:
    """The simulations newest first: which scenario against what, the verdict and the clean metric."""
    rows = []
    for item in listing["simulations"]:
        target = f"{item['model']} v{item['model_version']}" if item.get("model") \
            else (item.get("endpoint") or {}).get("uri", "-")
        rows.append({_("id"): item["id"], _("template"): f"{item['template_name']}@{item['template_version']}",
                     _("target"): target,
                     _("dataset"): (f"{item['dataset']} v{item['dataset_version']}" if item.get("dataset_version")
                                    else item.get("dataset") or "-"),
                     _("state"): _(STATES.get(item["state"], item["state"])),
                     _("clean"): f"{item['clean']:.4g}" if item.get("clean") is not None else "-",
                     _("trigger"): item["trigger"], _("finished"): local_time(item.get("finished_at"))})
    footer = shown_of(len(rows), listing.get("total", len(rows)))
    return (table(rows, list(rows[0])) if rows else _("(none)")) + footer


def templates_text(listing: dict[str, Any]) -> str:
    """The templates a project may run, a line each; the library's titles and descriptions in the shell's words."""
    rows = [{**template, "title": in_words(template["title"], _),
             "description": in_words(template["description"], _)} for template in listing["templates"]]
    return table(rows, ["name", "version", "source", "kind", "title", "description", "metric", "extends"])


def template_text(template: dict[str, Any]) -> str:
    """A scenario template: what it is, what it checks, and the whole of it as a simulation runs it (YAML)."""
    head = _("template {name}@{version} ({source}, {kind}): {title}").format(
        **{**template, "title": in_words(template["title"], _)})
    facts = {_("metric"): template["metric"], _("conditions"): ", ".join(template["conditions"]) or "-",
             _("versions"): ", ".join(str(version) for version in template["versions"])}
    if template.get("extends"):
        facts[_("extends")] = template["extends"]
    if template.get("created_by"):
        facts[_("saved")] = _("by {user} at {at}").format(user=template["created_by"],
                                                         at=local_time(template["created_at"]))
    lines = [head, in_words(template["description"], _), "", *field_lines(facts, list(facts), 12)]
    if template["thresholds"]:
        lines += [_("passes if:"), *(f"  - {threshold}" for threshold in template["thresholds"])]
    return "\n".join([*lines, "", _("what a simulation runs (YAML):"), template["yaml"].rstrip()])
