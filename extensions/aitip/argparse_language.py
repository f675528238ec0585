"""argparse's own words — ``usage:``, ``options``, its error lines — in the shell's language.

argparse reads every text it writes through the module-level ``gettext`` it imported (``argparse._`` and
``argparse.ngettext``), looked up in the process's ``messages`` domain, which holds no catalog of ours.
:func:`in_shell_language` lends it AITIP's catalog while the CLI builds its parser and reads the command
line. Only the words a person meets are listed (a programming error's text stays English);
``tests/test_cli_help.py`` checks that each is still one argparse writes. :class:`Parser` wraps help by the
columns a terminal draws (textwrap counts a Chinese character as one column and breaks only at spaces).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from typing import Any

from .i18n import N_, shell_gettext
from .i18n import shell_ngettext as ngettext
from .text_tables import width as columns
from .text_tables import wrap

MESSAGES = (
    N_("usage: "),
    N_("positional arguments"),
    N_("options"),
    N_("show this help message and exit"),
    N_("argument %(argument_name)s: %(message)s"),
    N_("%(prog)s: error: %(message)s\n"),
    N_("the following arguments are required: %s"),
    N_("one of the arguments %s is required"),
    N_("unrecognized arguments: %s"),
    N_("not allowed with argument %s"),
    N_("ignored explicit argument %r"),
    N_("expected one argument"),
    N_("expected at most one argument"),
    N_("expected at least one argument"),
    N_("ambiguous option: %(option)s could match %(matches)s"),
    N_("unexpected option string: %s"),
    N_("invalid %(type)s value: %(value)r"),
    N_("invalid choice: %(value)r (choose from %(choices)s)"),
    N_("unknown parser %(parser_name)r (choices: %(choices)s)"),
    N_("can't open '%(filename)s': %(error)s"),
)


def _expected_arguments(count: int) -> str:
    return ngettext("expected %s argument", "expected %s arguments", count)


# argparse's plural texts, by their singular form: each calls ngettext with both forms, so both are extracted.
PLURALS: dict[str, Callable[[int], str]] = {"expected %s argument": _expected_arguments}


def _gettext(message: str | None) -> str | None:
    return shell_gettext(message) if message else message  # "" would read the catalog's header


def _ngettext(singular: str, plural: str, count: int) -> str:
    translated = PLURALS.get(singular)
    if translated is None:
        return singular if count == 1 else plural
    return translated(count)


@contextmanager
def in_shell_language() -> Iterator[None]:
    """argparse speaks the shell's language (:func:`aitip.i18n.language_from_environment`) inside."""
    saved = argparse._, argparse.ngettext  # type: ignore[attr-defined]
    argparse._, argparse.ngettext = _gettext, _ngettext  # type: ignore[attr-defined]
    try:
        yield
    finally:
        argparse._, argparse.ngettext = saved  # type: ignore[attr-defined]


class ColumnsHelpFormatter(argparse.HelpFormatter):
    """argparse's help formatter, wrapping by terminal columns (:func:`aitip.text_tables.wrap`)."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        return wrap(text, width)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return "\n".join(indent + line for line in wrap(text, width))

    def _format_usage(self, usage: Any, actions: Any, groups: Any, prefix: str | None) -> str:
        """argparse's usage, its wrapped lines aligned under the first: it indents them by the prefix's
        characters, and "用法：" takes twice as many columns."""
        prefix = _gettext("usage: ") if prefix is None else prefix
        text: str = super()._format_usage(usage, actions, groups, prefix)
        extra = columns(prefix or "") - len(prefix or "")
        if not extra:
            return text
        first, *rest = text.split("\n")
        return "\n".join([first] + [" " * extra + line if line.strip() else line for line in rest])


class Parser(argparse.ArgumentParser):
    """The CLI's parser: help wrapped by :class:`ColumnsHelpFormatter`. argparse makes each sub-command's
    parser of its parent's class, so one at the top is enough."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", ColumnsHelpFormatter)
        super().__init__(*args, **kwargs)
