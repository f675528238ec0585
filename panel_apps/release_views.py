"""The Releases page's pure parts: releases and rollouts as table rows, a release's evidence chain (data → model →
evaluation and simulations → signed release), its approval stages and decisions, its promotions, what the viewer
may do with it and why not, and a rollout's steps and analysis runs. They take the API's JSON and the page's
language and call no API, so tests check them without a browser."""

from __future__ import annotations

from html import escape
from typing import Any

import pandas as pd

from aitip.i18n import N_
from aitip.releases.rollout_words import message_said
from aitip.releases.text import step_text
from panel_apps.components import format_time, role_at_least, role_words, viewer_role
from panel_apps.evaluation_views import least_role
from panel_apps.language import _

APPROVE_ACTION, PROMOTE_ACTION = "release.approve", "release.promote"
RELEASE_COLUMNS = ["id", "release", "kind", "state", "environment", "requested_by", "requested"]
ROLLOUT_COLUMNS = ["id", "endpoint", "versions", "state", "weight", "step", "message"]
STATE_WORDS = {"requested": N_("waiting for approval"), "approved": N_("approved"), "rejected": N_("rejected"),
               "released": N_("released")}
STATE_COLOURS = {"requested": "#aa6600", "approved": "#0066cc", "rejected": "#cc0000", "released": "#228822"}
ROLLOUT_WORDS = {"progressing": N_("progressing"), "paused": N_("paused"), "degraded": N_("aborted"),
                 "completed": N_("completed"), "rolled_back": N_("rolled back")}
ROLLOUT_COLOURS = {"progressing": "#0066cc", "paused": "#aa6600", "degraded": "#cc0000", "completed": "#228822",
                   "rolled_back": "#555555"}
KIND_WORDS = {"model": N_("model"), "service": N_("service"), "configuration": N_("configuration"),
              "firmware": N_("firmware")}
ENVIRONMENTS = ("dev", "test", "staging", "prod")
OUTCOME_WORDS = {"passed": N_("passed"), "failed": N_("failed"), "error": N_("error"),
                 "inconclusive": N_("inconclusive")}
CELL = "padding:.15rem .6rem;text-align:left"


def badge(css_class: str, state: str, words: dict[str, str], colours: dict[str, str]) -> str:
    colour = colours.get(state, "#333333")
    word = _(words[state]) if state in words else state
    return (f"<span class='{css_class}' data-state='{escape(state)}' style='background:{colour};color:#fff;"
            f"padding:.05rem .5rem;border-radius:.7rem'>{escape(word)}</span>")


def state_words(state: str) -> str:
    """A release's or a rollout's state in the page's language."""
    words = STATE_WORDS.get(state) or ROLLOUT_WORDS.get(state)
    return _(words) if words else state


def release_badge(state: str) -> str:
    return badge("release-state", state, STATE_WORDS, STATE_COLOURS)


def rollout_badge(state: str) -> str:
    return badge("rollout-state", state, ROLLOUT_WORDS, ROLLOUT_COLOURS)


def releases_frame(releases: list[dict[str, Any]]) -> pd.DataFrame:
    rows = [{"id": release["id"], "release": f"{release['name']} {release['version']}", "kind": _(KIND_WORDS.get(release["kind"], release["kind"])),
             "state": release_badge(release["state"]), "environment": release["environment"],
             "requested_by": release["created_by"], "requested": format_time(release["created_at"])}
            for release in releases]
    return pd.DataFrame(rows, columns=RELEASE_COLUMNS)


def table_titles() -> dict[str, str]:
    return {"release": _("release"), "kind": _("kind"), "state": _("state"), "environment": _("environment"),
            "requested_by": _("requested by"), "requested": _("requested"), "endpoint": _("endpoint"),
            "versions": _("stable → canary"), "weight": _("canary %"), "step": _("step"), "message": _("why")}


def title_html(release: dict[str, Any]) -> str:
    if release["kind"] == "firmware" and release.get("firmware"):
        what = _("firmware for {hardware}, {size} KiB").format(hardware=release["firmware"]["hardware"],
                                                                size=round(release["firmware"]["length"] / 1024, 1))
    elif release["kind"] == "model":
        what = _("model {model} version {version}").format(model=release["model"], version=release["model_version"])
    elif release["kind"] == "service":
        what = _("endpoint {endpoint}: model {model} version {version}").format(
            endpoint=release["endpoint"], model=release["model"], version=release["model_version"])
    else:
        what = _("a configuration")
    return (f"<h2 id='release-title' style='margin:.3rem 0'>{escape(release['name'])} {escape(release['version'])}"
            f" <small style='font-weight:normal'>{escape(what)}</small> {release_badge(release['state'])}</h2>")


def environments_html(release: dict[str, Any]) -> str:
    """dev → test → staging → prod, the environments reached marked, each with who promoted it when."""
    promoted = {promotion["environment"]: promotion for promotion in release.get("promotions") or []}
    reached = ENVIRONMENTS.index(release["environment"])
    parts = []
    for index, environment in enumerate(ENVIRONMENTS):
        done = index <= reached
        note = ""
        if environment in promoted:
            note = _("by {user}, {at}").format(user=promoted[environment]["by"],
                                               at=format_time(promoted[environment]["at"]))
        style = "background:#228822;color:#fff" if done else "background:#e2e3e5;color:#41464b"
        parts.append(f"<span class='environment' data-environment='{environment}' data-reached='{str(done).lower()}'"
                     f" title='{escape(note)}' style='{style};padding:.15rem .6rem;border-radius:.3rem'>"
                     f"{escape(environment)}</span>")
    return f"<div class='release-environments'>{' → '.join(parts)}</div>"


def evidence_html(release: dict[str, Any]) -> str:
    """The chain from data to release: the dataset version, the model version (and the run that made it), each
    piece of evidence with its outcome, then the signed release."""
    firmware = release.get("firmware")
    if release["kind"] == "configuration" or release["kind"] == "firmware" and not release.get("model"):
        what = _("A configuration release carries no evidence: people approve it by reading it.") \
            if release["kind"] == "configuration" else \
            _("This firmware embeds no model version, so it carries no evidence: people approve it.")
        return "<p class='evidence-none'>" + escape(what) + "</p>"
    subject = release["content"]["subject"]
    links = [
        ("dataset", _("dataset {name} version {version}").format(name=release["dataset"],
                                                                  version=release["dataset_version"])),
        ("model", _("model {name} version {version}, run {run}").format(
            name=release["model"], version=release["model_version"], run=(subject.get("model_run_id") or "?")[:8])),
    ]
    if firmware:
        links.append(("firmware", _("firmware image for {hardware}, SHA-256 {digest}…").format(
            hardware=firmware["hardware"], digest=firmware["sha256"][:12])))
    if release.get("endpoint"):
        settings = release.get("settings") or {}
        links.append(("service", _("endpoint {endpoint}: {settings}").format(
            endpoint=release["endpoint"], settings=", ".join(
                f"{key} {value}" for key, value in settings.items() if key in ("backend", "max_batch_size"))
            or _("its own settings"))))
    for item in release.get("evidence") or []:
        if item["kind"] == "evaluation":
            text = _("evaluation {id}: {state}").format(id=item["id"], state=_(OUTCOME_WORDS[item["state"]]))
        elif item["kind"] == "test_run":
            text = _("test run: job {id} of {notebook} succeeded").format(id=item["id"], notebook=item["notebook"])
        else:
            text = _("simulation {id} under {template}: {state}").format(id=item["id"], template=item["template"],
                                                                         state=_(OUTCOME_WORDS[item["state"]]))
        links.append((item["kind"], text))
    signature = release["signature"]
    links.append(("release", _("release {version}, signed (key {key}, SHA-256 {digest}…)").format(
        version=release["version"], key=signature["key_id"], digest=signature["content_sha256"][:12])))
    items = "".join(f"<li class='evidence-{kind}'>{escape(text)}</li>" for kind, text in links)
    return f"<ol class='evidence-chain' style='margin:.2rem 0'>{items}</ol>"


def approvals_html(release: dict[str, Any]) -> str:
    """Each stage (role, how many, how many so far) and every decision with its comment."""
    stages = release.get("approvals_needed") or []
    approved = [d for d in release.get("decisions") or [] if d["decision"] == "approve"]
    rows = []
    for index, stage in enumerate(stages):
        have = sum(1 for d in approved if d["stage"] == index)
        complete = str(have >= stage["count"]).lower()
        rows.append(f"<tr class='approval-stage' data-stage='{index}' data-complete='{complete}'>"
                    f"<td style='{CELL}'>{index + 1}</td><td style='{CELL}'>{escape(role_words(stage['role']))}</td>"
                    f"<td style='{CELL}'>{have} / {stage['count']}</td></tr>")
    order = _("in this order") if release.get("ordered") else _("in any order")
    headers = "".join(f"<th style='{CELL}'>{escape(text)}</th>"
                      for text in (_("stage"), _("least role"), _("approvals")))
    table = (f"<table class='approval-stages'><tr>{headers}</tr>{''.join(rows)}</table>"
             f"<p style='margin:.2rem 0'>{escape(order)}</p>")
    decisions = []
    for decision in release.get("decisions") or []:
        who = _("the policy, on evidence") if decision["role"] == "policy" else \
            _("{user} ({role})").format(user=decision["user"], role=role_words(decision["role"]))
        verb = _("approved") if decision["decision"] == "approve" else _("rejected")
        comment = f": “{escape(decision['comment'])}”" if decision.get("comment") else ""
        decisions.append(f"<li class='decision' data-decision='{decision['decision']}'>{escape(who)} {escape(verb)}"
                         f" {escape(format_time(decision['at']))}{comment}</li>")
    if decisions:
        return table + f"<ul class='decisions'>{''.join(decisions)}</ul>"
    return table + "<p class='decisions-none'>" + escape(_("No decision yet.")) + "</p>"


def decide_refusal(me: dict[str, Any], project: str | None, release: dict[str, Any] | None) -> str | None:
    """Why the viewer may not decide on ``release`` (None: they may try; the platform checks the stage's role)."""
    if release is None:
        return _("Choose a release.")
    if release["state"] != "requested":
        return _("This release is {state}: there is nothing to decide.").format(state=state_words(release["state"]))
    if release["created_by"] == me.get("name"):
        return _("Nobody decides on their own release request.")
    if any(d["user"] == me.get("name") for d in release.get("decisions") or []):
        return _("You have decided on this request already.")
    role = viewer_role(me, project)
    if not role_at_least(role, least_role(APPROVE_ACTION)):
        return _("Deciding needs the {role} role or above; you are {yours}.").format(
            role=role_words(least_role(APPROVE_ACTION)), yours=role_words(role))
    return None


def promote_refusal(me: dict[str, Any], project: str | None, release: dict[str, Any] | None) -> str | None:
    if release is None:
        return _("Choose a release.")
    if release.get("next_environment") is None:
        return _("This release is in prod already.")
    if release["state"] == "rejected":
        return _("A rejected release goes nowhere.")
    if release["next_environment"] in ("staging", "prod") and release["state"] not in ("approved", "released"):
        return _("It reaches {environment} only once approved.").format(environment=release["next_environment"])
    role = viewer_role(me, project)
    if not role_at_least(role, least_role(PROMOTE_ACTION)):
        return _("Promoting needs the {role} role or above; you are {yours}.").format(
            role=role_words(least_role(PROMOTE_ACTION)), yours=role_words(role))
    return None


def rollouts_frame(rollouts: list[dict[str, Any]]) -> pd.DataFrame:
    rows = [{"id": rollout["id"], "endpoint": rollout["endpoint"],
             "versions": f"v{rollout['stable_version']} → v{rollout['canary_version']}",
             "state": rollout_badge(rollout["state"]), "weight": rollout["weight"],
             "step": f"{min(rollout['step'] + 1, len(rollout['steps']))} / {len(rollout['steps'])}",
             "message": message_said(rollout["message"], _)} for rollout in rollouts]
    return pd.DataFrame(rows, columns=ROLLOUT_COLUMNS)


def steps_html(rollout: dict[str, Any]) -> str:
    """The steps in order, those done, the current one and those to come told apart."""
    items = []
    for index, step in enumerate(rollout["steps"]):
        where = "done" if index < rollout["step"] else "current" if index == rollout["step"] else "next"
        weight = "bold" if where == "current" else "normal"
        colour = "#777777" if where == "next" else "#222222"
        items.append(f"<li class='rollout-step' data-where='{where}' style='font-weight:{weight};color:{colour}'>"
                     f"{escape(step_text(step, _))}</li>")
    return f"<ol class='rollout-steps'>{''.join(items)}</ol>"
