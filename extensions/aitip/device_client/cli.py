"""``aitip-device``: the device client as a program. ``enroll`` keeps what the device was provisioned with (the
answer of ``aitip devices register --json``) in its state directory, 0600; ``run`` checks in (a long poll),
installs what it is told to after TUF and the release signature passed, and reports, until stopped; ``status``
says what each slot holds."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from ..atomic_files import write_atomic
from .slots import Slots
from .updater import DeviceUpdater, Provisioned

PROVISIONED = "provisioned.json"


def enroll(state_dir: Path, platform_url: str, answer_path: Path) -> Provisioned:
    answer = json.loads(answer_path.read_text())
    if "token" not in answer or "trusted_root" not in answer:
        raise SystemExit(f"{answer_path} is not a devices.register answer (no token or trusted_root in it)")
    provisioned = Provisioned.from_answer(platform_url, answer)
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    record = {"platform_url": platform_url, "answer": answer}
    write_atomic(state_dir / PROVISIONED, json.dumps(record).encode("utf-8"), mode=0o600)
    return provisioned


def load(state_dir: Path) -> Provisioned:
    path = state_dir / PROVISIONED
    if not path.is_file():
        raise SystemExit(f"{state_dir} holds no enrolment: run `aitip-device enroll` first")
    record = json.loads(path.read_text())
    return Provisioned.from_answer(record["platform_url"], record["answer"])


def say(what: str, **fields: Any) -> None:
    print(json.dumps({"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "event": what, **fields}),
          flush=True)


def run(state_dir: Path, *, wait: float, once: bool) -> int:
    """Check in until stopped. Each event is a line of JSON; "up to date" when the platform first has nothing
    for the device (not at every poll), so a quiet log still says the device is reaching the platform."""
    updater = DeviceUpdater(load(state_dir), state_dir)
    last_action = None
    while True:
        try:
            answer = updater.check_in(wait)
        except Exception as error:  # noqa: BLE001 - the platform is away: try again later, as a device does
            say("check-in failed", reason=str(error))
            if once:
                return 1
            time.sleep(10)
            continue
        if answer["action"] == "update":
            update = answer["update"]
            say("installing", version=update["version"], rollout=update["rollout"])
            installed = updater.install(update)
            say("installed" if installed else "refused", **(updater.report or {}))
            updater.check_in()  # the report, at once
        elif answer["action"] == "stop":
            say("stopped", reason=answer.get("reason", ""))
        elif last_action != "none":
            say("up to date", version=updater.slots.version,
                next_check_in_seconds=answer.get("poll_seconds"))
        last_action = answer["action"]
        if once:
            return 0
        if wait <= 0 and answer["action"] != "update":
            time.sleep(float(answer.get("poll_seconds", 60)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="aitip-device", description=__doc__.replace("``", "`"))
    commands = parser.add_subparsers(dest="command", required=True)
    enrolling = commands.add_parser("enroll", help="keep what the device was provisioned with")
    enrolling.add_argument("--state-dir", type=Path, required=True)
    enrolling.add_argument("--platform", required=True,
                           help="the platform service's URL, e.g. https://hub.example.com/services/aitip/")
    enrolling.add_argument("answer", type=Path, help="the provisioning `aitip devices register` saved (or printed with --json)")
    running = commands.add_parser("run", help="check in, install, report; until stopped")
    running.add_argument("--state-dir", type=Path, required=True)
    running.add_argument("--wait", type=float, default=60.0, help="seconds each check-in is held open (0: poll)")
    running.add_argument("--once", action="store_true", help="one check-in (and its install), then exit")
    status = commands.add_parser("status", help="what each slot holds")
    status.add_argument("--state-dir", type=Path, required=True)
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=os.environ.get("AITIP_DEVICE_LOG", "WARNING"))
    if arguments.command == "enroll":
        provisioned = enroll(arguments.state_dir, arguments.platform, arguments.answer)
        say("enrolled", project=provisioned.project, hardware=provisioned.hardware)
        return 0
    if arguments.command == "status":
        slots = Slots(arguments.state_dir / "slots")
        print(json.dumps({"active": slots.active, "version": slots.version, "slots": slots.state["versions"]}))
        return 0
    return run(arguments.state_dir, wait=arguments.wait, once=arguments.once)


if __name__ == "__main__":
    sys.exit(main())
