"""What the ``aitip`` command's modules share: how an answer is printed (a table, or JSON with ``--json``), the
client a command calls the platform with, the callback options of long work, and the exit codes."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from .i18n import N_
from .i18n import shell_gettext as _

EXIT_USAGE = 2
EXIT_API = 1


def dump(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [dump(item) for item in value]
    return value


def emit(args: argparse.Namespace, value: Any, human: Callable[[Any], str]) -> None:
    if args.json:
        print(json.dumps(dump(value), indent=2))
    else:
        print(human(value))


def client_for(args: argparse.Namespace) -> Any:
    from .client import Client

    return Client(args.url, args.token)


CALLBACK_HELP = {"job": N_("post the job's end here, signed (X-Aitip-Signature); a public http(s) URL"),
                 "sweep": N_("post the sweep's end here, signed (X-Aitip-Signature); a public http(s) URL")}


def add_callback_options(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--callback-url", metavar="URL",
                        help=_(CALLBACK_HELP[what]))
    parser.add_argument("--callback-secret", metavar="SECRET",
                        help=_("sign the callback with this secret (24-256 printable characters; default: the "
                        "platform makes one and prints it once)"))


def callback_of(args: argparse.Namespace) -> dict[str, str] | None:
    if not args.callback_url:
        if args.callback_secret:
            raise SystemExit(_("--callback-secret needs --callback-url"))
        return None
    return {"url": args.callback_url, **({"secret": args.callback_secret} if args.callback_secret else {})}


def show_made_secret(secret: str | None) -> None:
    if secret:
        print(_("callback secret (shown once; verify each callback with it): {secret}").format(secret=secret),
              file=sys.stderr)


def shown_of(shown: int, total: int) -> str:
    """The footer of a list cut to one page."""
    return "\n" + _("({shown} of {total})").format(shown=shown, total=total) if total > shown else ""
