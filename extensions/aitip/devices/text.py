"""Devices and firmware rollouts as a person reads them in a terminal (the CLI's human output; ``--json`` for
all): a registration with where its provisioning went, the fleet, each device's state and when it was last seen,
and a rollout group by group."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..i18n import shell_gettext as _
from ..releases.rollout_words import message_said
from ..text_tables import cell, field_lines, local_time, table


def keep_provisioning(provisioning: dict[str, Any], folder: Path) -> Path | str:
    """Write the registration's answer where the device's enrollment will read it: ``<name>.json`` in ``folder``
    (``<name>-<id>.json`` if that is taken), 0600 and never over a file. The token in it is shown only once, so
    a person who did not ask for ``--json`` must not lose it. Returns the file, or why none was written."""
    device = provisioning["device"]
    text = json.dumps(provisioning, indent=2) + "\n"
    why = ""
    for name in (f"{device['name']}.json", f"{device['name']}-{device['id']}.json"):
        path = folder / name
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            why = _("{path} exists").format(path=path)
            continue
        except OSError as error:
            return f"{path}: {error.strerror}"
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(text)
        return path
    return why


def provisioning_text(provisioning: dict[str, Any], platform_url: str | None = None,
                      folder: Path | None = None) -> str:
    """The device registered, its token (shown once), and the file and command that enroll it."""
    device = provisioning["device"]
    kept = keep_provisioning(provisioning, folder if folder is not None else Path.cwd())
    lines = [_("device {id}: {name} ({hardware}), group {group} — registered").format(**device),
             _("token (shown once; the platform keeps only its SHA-256): {token}").format(
                 token=provisioning["token"])]
    if isinstance(kept, Path):
        lines += [_("provisioning (the token, the project's TUF root, the release key) saved to {path} (0600); "
                    "on the device:").format(path=kept),
                  f"  aitip-device enroll --state-dir DIR --platform {platform_url or 'URL'} {kept.name}"]
    else:
        lines += [_("provisioning not saved ({why}): the device cannot enroll without it; remove the device and "
                    "register it again with --json > FILE").format(why=kept)]
    return "\n".join(lines)


def _seen(device: dict[str, Any]) -> str:
    return local_time(device["last_seen"]) if device.get("last_seen") else _("never")


def devices_text(listing: dict[str, Any]) -> str:
    rows = [{_("id"): device["id"], _("name"): device["name"], _("group"): device["group"],
             _("hardware"): device["hardware"], _("version"): device["version"], _("slot"): device["slot"],
             _("state"): device["state"], _("last seen"): _seen(device), _("message"): device["message"] or "-"}
            for device in listing["devices"]]
    return table(rows, list(rows[0])) if rows else _("(none)")


def device_text(device: dict[str, Any]) -> str:
    lines = [_("device {id}: {name} ({hardware}), group {group} — {state}").format(**device)]
    facts = {_("runs"): _("{version} from slot {slot}").format(version=device["version"], slot=device["slot"])
             if device.get("version") else "-",
             _("last seen"): _seen(device),
             _("tags"): cell(device["tags"]),
             _("token"): device["token_hint"] + "…",
             _("registered"): _("by {user} at {at}").format(user=device["created_by"],
                                                           at=local_time(device["created_at"]))}
    if device.get("message"):
        facts[_("message")] = device["message"]
    return "\n".join(lines + field_lines(facts, list(facts), 12))


def fleet_text(fleet: dict[str, Any]) -> str:
    lines = [_("{project}: {devices} devices").format(**fleet)]
    if fleet["groups"]:
        lines.append(_("groups: {groups}").format(
            groups=", ".join(f"{group} {count}" for group, count in sorted(fleet["groups"].items()))))
    rows = [{_("version"): item["version"] or _("none reported"), _("state"): item["state"],
             _("devices"): item["devices"]} for item in fleet["by_version"]]
    if rows:
        lines += ["", table(rows, list(rows[0]))]
    return "\n".join(lines)


def _share(count: int, of: int) -> str:
    return f"{count} ({count * 100 // of} %)" if of else str(count)


def device_rollout_text(rollout: dict[str, Any]) -> str:
    """Where the rollout stands and each group: done, current or to come, with what it needs to go on."""
    waves, at = rollout["waves"], rollout["group_index"]
    lines = [_("device rollout {id}: {release_name} {version} (release {release}) — {state}, group {group} of "
               "{groups}").format(group=min(at, len(waves) - 1) + 1, groups=len(waves), **rollout),
             _("target {target}; devices check in every {poll_seconds:g} s; started by {user} at {at}").format(
                 target=rollout["target"], poll_seconds=rollout["poll_seconds"], user=rollout["created_by"],
                 at=local_time(rollout["created_at"]))]
    if rollout.get("message"):
        lines.append(message_said(rollout["message"], _))
    ended = rollout["state"] == "succeeded"
    rows = []
    for index, wave in enumerate(waves):
        mark = "✓" if ended or index < at else "▶" if index == at else " "
        rows.append({" ": mark, _("group"): wave["group"], _("devices"): wave["devices"],
                     _("installed"): _share(wave["installed"], wave["devices"]),
                     _("failures"): _share(wave["failed"], wave["devices"]),
                     _("to install"): wave["assigned"], _("withdrawn"): wave["withdrawn"],
                     _("goes on at"): _("{percent} % installed").format(percent=wave["success_threshold"]),
                     _("stops above"): _("{percent} % failed").format(percent=wave["error_threshold"])})
    return "\n".join([*lines, "", table(rows, list(rows[0]))])


def device_rollouts_text(listing: dict[str, Any]) -> str:
    rows = [{_("id"): rollout["id"], _("release"): rollout["release"], _("name"): rollout["release_name"],
             _("version"): rollout["version"], _("state"): rollout["state"],
             _("group"): f"{min(rollout['group_index'], len(rollout['waves']) - 1) + 1}/{len(rollout['waves'])}",
             _("installed"): sum(wave["installed"] for wave in rollout["waves"]),
             _("failures"): sum(wave["failed"] for wave in rollout["waves"]),
             _("started"): local_time(rollout["created_at"])} for rollout in listing["rollouts"]]
    return table(rows, list(rows[0])) if rows else _("(none)")
