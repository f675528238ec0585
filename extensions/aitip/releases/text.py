"""A release and its rollout as a product owner reads them in a terminal (the CLI's human output; ``--json`` for
all): what a release ships, the evidence it carries for that exact version, who must approve and who did, where
it has been promoted, and its signature; a rollout's steps, where it stands and its analysis runs; and the
project's release policy: the evidence it asks for, the approvals and the windows to prod."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..i18n import N_
from ..i18n import shell_gettext as _
from ..identity.roles import role_said
from ..text_tables import field_lines, local_time, table
from .rollout_words import failures_said, message_said


def shipped(release: dict[str, Any]) -> str:
    """What the release ships, in a few words."""
    if release.get("model"):
        subject = _("model {model} version {version}").format(model=release["model"],
                                                              version=release["model_version"])
        if release.get("dataset"):
            subject += _(", judged on {dataset} v{version}").format(dataset=release["dataset"],
                                                                    version=release["dataset_version"])
    elif release.get("firmware"):
        subject = _("firmware for {hardware} ({length:,} bytes)").format(**release["firmware"])
    else:
        subject = _("a configuration")
    if release.get("endpoint"):
        subject += _(" on endpoint {endpoint}").format(endpoint=release["endpoint"])
    return subject


def _evidence_rows(release: dict[str, Any]) -> list[dict[str, Any]]:
    return [{_("evidence"): item["kind"], _("id"): item["id"], _("state"): item["state"],
             _("what"): item.get("template") or item.get("notebook") or "-", _("job"): item.get("job_id") or "-",
             _("finished"): local_time(item.get("finished_at"))} for item in release["evidence"]]


def _approvals(release: dict[str, Any]) -> list[str]:
    """Each stage of approvals with the approvals it has got; a rejection says so."""
    lines = []
    for stage, needed in enumerate(release["approvals_needed"]):
        got = [_("{user} at {at}").format(user=decision["user"], at=local_time(decision["at"]))
               + (f" ({decision['comment']})" if decision["comment"] else "")
               for decision in release["decisions"] if decision["decision"] == "approve" and decision["stage"] == stage]
        lines.append(_("approval stage {stage}: {count} of role {role} or above — {got}").format(
            stage=stage + 1, count=needed["count"], role=role_said(needed["role"]),
            got=_("approved by {users}").format(users=", ".join(got)) if got else _("none yet")))
    for decision in release["decisions"]:
        if decision["decision"] == "reject":
            lines.append(_("rejected by {user} ({role}) at {at}: {comment}").format(
                user=decision["user"], role=role_said(decision["role"]), at=local_time(decision["at"]),
                comment=decision["comment"] or "-"))
    return lines


def release_text(release: dict[str, Any]) -> str:
    lines = [_("release {id}: {name} {version} ({kind}) — {state}, at {environment}").format(**release),
             shipped(release)]
    facts = {_("requested"): _("by {user} at {at}").format(user=release["created_by"],
                                                          at=local_time(release["created_at"])),
             _("next"): release["next_environment"] or "-",
             _("signed"): _("{algorithm} key {key_id}, content SHA-256 {digest}…").format(
                 digest=release["signature"]["content_sha256"][:16], **release["signature"])}
    if release["promotions"]:
        facts[_("promoted")] = ", ".join(_("{environment} by {by} at {at}").format(
            environment=item["environment"], by=item["by"], at=local_time(item["at"]))
            for item in release["promotions"])
    lines += field_lines(facts, list(facts), 12)
    rows = _evidence_rows(release)
    lines += ["", table(rows, list(rows[0])) if rows else _("evidence: none (the policy asks for none)")]
    lines += ["", *_approvals(release)] if release["approvals_needed"] or release["decisions"] else []
    if release.get("changelog"):
        lines += ["", release["changelog"]]
    return "\n".join(lines)


def step_text(step: dict[str, Any], say: Callable[[str], str] = _) -> str:
    """One step of a rollout in words; ``say`` translates (the shell's language here, the page's on a
    dashboard)."""
    if step.get("set_weight") is not None:
        return say(N_("canary at {weight} %")).format(weight=step["set_weight"])
    if step.get("pause") is not None:
        seconds = step["pause"].get("seconds")
        return say(N_("pause {seconds:g} s")).format(seconds=seconds) if seconds else say(N_("pause until promoted"))
    analysis = step.get("analysis") or {}
    return say(N_("analysis: {count} × every {interval:g} s")).format(count=analysis.get("count", 1),
                                                                 interval=analysis.get("interval_seconds", 0))


def _ratio(value: float | None, scale: float = 100, unit: str = " %") -> str:
    return "-" if value is None else f"{value * scale:.2f}{unit}"


def rollout_text(rollout: dict[str, Any]) -> str:
    """Where the rollout stands, each step (done, current, to come), and each analysis run's measures."""
    steps = rollout["steps"]
    lines = [_("rollout {id}: release {release} onto endpoint {endpoint} — {state}").format(**rollout),
             _("canary version {canary} at {weight} %, stable version {stable}").format(
                 canary=rollout["canary_version"], weight=rollout["weight"], stable=rollout["stable_version"])]
    if rollout.get("message"):
        lines.append(message_said(rollout["message"], _))
    lines.append("")
    for index, step in enumerate(steps):
        mark = "✓" if index < rollout["step"] else "▶" if index == rollout["step"] else " "
        lines.append(f"{mark} {index + 1}. {step_text(step)}")
    runs = [{_("step"): run["step"] + 1, _("at"): local_time(run["at"]), _("requests"): run["requests"],
             _("errors"): run["errors"], _("error rate"): _ratio(run["error_rate"]),
             _("p99 ms"): _ratio(run["latency_p99_ms"], 1, ""), _("accuracy"): _ratio(run.get("accuracy")),
             _("outcome"): run["outcome"] + (": " + "; ".join(failures_said(run["failures"], _))
                                             if run["failures"] else "")}
            for run in rollout["analysis_runs"]]
    if runs:
        lines += ["", table(runs, list(runs[0]))]
    return "\n".join(lines)


DAY_ORDER = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def _days(days: list[str]) -> str:
    """``mon``..``fri`` as a span when the days follow each other, else each."""
    ordered = sorted(days, key=DAY_ORDER.index)
    indices = [DAY_ORDER.index(day) for day in ordered]
    if len(ordered) == 7:
        return _("every day")
    if len(ordered) > 2 and indices == list(range(indices[0], indices[-1] + 1)):
        return f"{ordered[0]}–{ordered[-1]}"
    return ", ".join(ordered)


def policy_text(policy: dict[str, Any]) -> str:
    """What a model release of the project must carry, who approves a request, and when prod is open."""
    settings = policy["settings"]
    if policy["default"]:
        lines = [_("release policy of {project}: the default (no maintainer has set one)").format(**policy)]
    else:
        lines = [_("release policy of {project}: set by {user} at {at}").format(
            project=policy["project"], user=policy["updated_by"], at=local_time(policy["updated_at"]))]
    needs = []
    if settings["evaluation"]:
        needs.append(_("a passed evaluation of its exact model version on its dataset version"))
    if settings["simulations"]:
        needs.append(_("passed simulations under {templates}").format(templates=", ".join(settings["simulations"])))
    for gate in settings["test_runs"]:
        pinned = _(" (content {digest}… only)").format(digest=gate["notebook_sha256"][:12]) \
            if gate.get("notebook_sha256") else ""
        needs.append(_("a succeeded run of {notebook} on it").format(notebook=gate["notebook"]) + pinned)
    lines.append(_("a model release needs:") if needs else _("a model release needs no evidence"))
    lines += [f"  - {need}" for need in needs]
    stages = [_("{count} of role {role} or above").format(count=stage["count"], role=role_said(stage["role"]))
              for stage in settings["approvals"]]
    joined = _(", then ").join(stages) if settings["ordered"] else _("; and ").join(stages)
    lines.append(_("approvals: {stages}").format(stages=joined))
    if settings["auto_approve"]:
        lines.append(_("a model release whose every evidence gate passed is approved at once"))
    windows = [_("{days} {start}–{end} {timezone}").format(days=_days(window["days"]), start=window["start"],
                                                          end=window["end"], timezone=window["timezone"])
               for window in settings["windows"]]
    lines.append(_("prod: only within {windows}").format(windows="; ".join(windows)) if windows
                 else _("prod: at any time"))
    return "\n".join(lines)
