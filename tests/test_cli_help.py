"""The CLI's help in the shell's language: every command's and option's help (the hand-written ones and the
operation table's summaries and descriptions) and argparse's own words and error lines, while ``--json`` and
the command names stay as they are."""

from __future__ import annotations

import argparse
import ast
import gettext
import inspect
import re
from collections.abc import Iterator

import pytest

from aitip import argparse_language, i18n
from aitip.cli import build_parser, main
from aitip.cli_operations import command_of, generated, help_texts
from aitip.operations.table import operations
from aitip.text_tables import width

CHINESE_CHARACTER = re.compile(r"[\u4e00-\u9fff]")


def parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """``parser`` and every sub-command's parser under it, each once (an alias names the same parser)."""
    seen: set[int] = set()
    pending = [parser]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for action in current._actions:
            if isinstance(action, argparse._SubParsersAction):
                pending.extend(action.choices.values())


def helps(parser: argparse.ArgumentParser) -> Iterator[tuple[str, str]]:
    """(where, help) of every option, argument and sub-command ``parser`` lists."""
    for action in parser._actions:
        if action.help not in (None, argparse.SUPPRESS):
            yield f"{parser.prog} {'/'.join(action.option_strings) or action.dest}", str(action.help)
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                yield f"{parser.prog} {choice.dest}", str(choice.help)


def built(language: str, monkeypatch: pytest.MonkeyPatch) -> argparse.ArgumentParser:
    monkeypatch.setenv(i18n.ENVIRONMENT_VARIABLE, language)
    with argparse_language.in_shell_language():
        return build_parser()


def test_every_help_reads_in_chinese(monkeypatch: pytest.MonkeyPatch) -> None:
    """No command or option shows English help to a Chinese shell, and every help page formats (a stray
    ``%`` in a translation would make argparse raise)."""
    parser = built("zh_CN", monkeypatch)
    english = [f"{where}: {text!r}" for each in parsers(parser) for where, text in helps(each)
               if not CHINESE_CHARACTER.search(text)]
    assert not english, "help without a translation:\n" + "\n".join(english)
    monkeypatch.setenv(i18n.ENVIRONMENT_VARIABLE, "zh_CN")
    monkeypatch.setenv("COLUMNS", "80")
    with argparse_language.in_shell_language():
        pages = [each.format_help() for each in parsers(parser)]
    assert len(pages) > 100
    assert all(page.startswith("用法：") for page in pages)
    assert all("选项" in page and "options" not in page.split("\n", 1)[1] for page in pages)
    # below the usage, every line fits the terminal as it draws Chinese (two columns a character)
    too_wide = [line for page in pages for line in page.split("\n\n", 1)[1].splitlines() if width(line) > 78]
    assert not too_wide


def test_english_help_stays_english(monkeypatch: pytest.MonkeyPatch) -> None:
    parser = built("en", monkeypatch)
    chinese = [where for each in parsers(parser) for where, text in helps(each) if CHINESE_CHARACTER.search(text)]
    assert not chinese
    assert all(each.format_help().startswith("usage: ") for each in parsers(parser))


def test_a_generated_command_shows_the_tables_words_translated(monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """``aitip runs list --help``: the row's summary and its inputs' descriptions, from the catalog."""
    chinese = i18n.translator("zh_CN")
    row = next(row for row in operations() if row.name == "runs.list")
    assert generated(row) and row.summary in set(help_texts())
    monkeypatch.setenv(i18n.ENVIRONMENT_VARIABLE, "zh_CN")
    with pytest.raises(SystemExit) as exit_:
        main(command_of(row).split() + ["--help"])
    assert exit_.value.code == 0
    page = "".join(capsys.readouterr().out.split())  # Chinese wraps anywhere: compare without the breaks
    assert chinese(row.summary) != row.summary
    assert "".join(chinese(row.summary).split()) in page
    assert "".join(chinese("{summary}. {method} {path} (needs {action}).").format(
        summary=chinese(row.summary), method=row.method, path=row.path, action=row.action).split()) in page
    for field in row.query.model_fields.values() if row.query else ():
        if field.description:
            assert "".join(chinese(field.description).split()) in page
            assert "".join(field.description.split()) not in page


@pytest.mark.parametrize("arguments, english", [
    (["runs", "list"], "the following arguments are required"),
    (["jobs", "list", "--state", "sleeping"], "invalid choice"),
    (["jobs", "show", "seven"], "invalid int value"),
    (["run", "train.ipynb", "--project", "p", "-p", "lr"], "expected 2 arguments"),
    (["no-such-command"], "invalid choice"),
])
def test_argparse_refuses_in_the_shells_language(arguments: list[str], english: str,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    for language in ("en", "zh_CN"):
        monkeypatch.setenv(i18n.ENVIRONMENT_VARIABLE, language)
        with pytest.raises(SystemExit) as exit_:
            main(arguments)
        assert exit_.value.code == 2
        error = capsys.readouterr().err.strip().splitlines()
        if language == "en":
            assert english in error[-1] and error[0].startswith("usage: aitip")
        else:
            assert error[0].startswith("用法：aitip") and "错误" in error[-1], error
            assert english not in error[-1] and "error:" not in error[-1]
    assert argparse._ is gettext.gettext and argparse.ngettext is gettext.ngettext  # lent, then given back


def test_argparse_still_writes_every_word_lent_to_it() -> None:
    """Each listed text is one argparse passes to its ``_()`` or ``ngettext()`` in this Python: a new
    wording there would leave ours unused and the shell reading English."""
    written: set[str] = set()
    for node in ast.walk(ast.parse(inspect.getsource(argparse))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("_", "ngettext"):
            written.update(arg.value for arg in node.args if isinstance(arg, ast.Constant) and isinstance(arg.value, str))
    assert set(argparse_language.MESSAGES) | set(argparse_language.PLURALS) <= written


def test_every_command_that_takes_a_project_takes_it_as_dash_p_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """``aitip run -P vision`` is how the README starts; a list or a deployment took only ``--project``."""
    taking = [(parser.prog, action.option_strings) for parser in parsers(built("en", monkeypatch))
              for action in parser._actions if "--project" in action.option_strings]
    assert len(taking) > 100
    assert [prog for prog, flags in taking if "-P" not in flags] == []
