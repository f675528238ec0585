"""Both languages everywhere a person reads: every marked string is in both catalogs and translated into
Chinese with the same placeholders, no catalog keeps a string the code dropped, and the language is
negotiated as the browser or the shell asks."""

from __future__ import annotations

import io
import re
import tokenize
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from aitip import i18n

ROOT = Path(__file__).resolve().parents[1]
# The folders `make messages` extracts from (Makefile: MESSAGE_SOURCES), with babel.cfg's mapping.
MESSAGE_SOURCES = ("extensions/aitip", "panel_apps", "templates")
PLACEHOLDER = re.compile(r"\{[A-Za-z_][A-Za-z0-9_]*(?:![rsa])?(?::[^{}]*)?\}|\{\}|%\([A-Za-z_]+\)[sdrf]|%[sdrf]")


def key(msgid: str, context: str | None) -> str:
    """A message's key: its msgid, after its context where it has one (``pgettext``), as gettext keys it."""
    return f"{context}\x04{msgid}" if context else msgid


def extracted(sources: Iterable[Path]) -> dict[str, tuple[str, ...]]:
    """key → its forms (one, or singular and plural), as ``pybabel extract -F babel.cfg`` finds them."""
    with (ROOT / "babel.cfg").open() as handle:
        method_map, options_map = parse_mapping_cfg(handle)
    found: dict[str, tuple[str, ...]] = {}
    for source in sources:
        for _filename, _line, message, _comments, context in extract_from_dir(str(source), method_map, options_map):
            forms = (message,) if isinstance(message, str) else tuple(message)
            found[key(forms[0], context)] = forms
    return found


def catalog(language: str) -> Catalog:
    with i18n.catalog_path(language).open("rb") as handle:
        return read_po(handle, locale=language, domain=i18n.DOMAIN)


def placeholders(text: str) -> Counter[str]:
    return Counter(PLACEHOLDER.findall(text))


def problems(messages: dict[str, tuple[str, ...]], language: str, *, translated: bool) -> list[str]:
    """What is wrong with ``language``'s catalog for these messages: missing, obsolete, (when it must be
    ``translated``) empty or fuzzy, and placeholders that differ from the msgid's."""
    found = catalog(language)
    entries = {key(message.id if isinstance(message.id, str) else message.id[0], message.context): message
               for message in found if message.id}
    wrong = [f"{language}: missing {msgid!r} (run `make messages`, then translate it)"
             for msgid in messages if msgid not in entries]
    wrong += [f"{language}: obsolete {msgid!r} (no code uses it; run `make messages`)"
              for msgid in entries if msgid not in messages]
    wrong += [f"{language}: obsolete {message.id!r}" for message in found.obsolete.values()]
    for msgid, message in entries.items():
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if msgid in messages and ids != messages[msgid]:
            wrong.append(f"{language}: {msgid!r} has other plural forms in the code: {messages[msgid]}")
        if translated and (message.fuzzy or not all(strings)):
            wrong.append(f"{language}: {msgid!r} is {'fuzzy' if message.fuzzy else 'untranslated'}")
        allowed = [placeholders(form) for form in ids]  # a plural form may drop the count, as English does
        wrong += [f"{language}: {msgid!r} → {string!r}: placeholders differ"
                  for string in strings if string and placeholders(string) not in allowed]
    return wrong


@pytest.fixture(scope="module")
def code_messages() -> dict[str, tuple[str, ...]]:
    return extracted(ROOT / source for source in MESSAGE_SOURCES)


@pytest.mark.parametrize("language, translated", [("zh_CN", True), ("en", False)])
def test_every_marked_string_is_in_both_catalogs(code_messages: dict[str, tuple[str, ...]], language: str,
                                                 translated: bool) -> None:
    """English msgids are their own translation (an empty msgstr reads the msgid); Chinese must translate
    every one."""
    assert len(code_messages) > 50, "the extraction found the code's marks"
    assert problems(code_messages, language, translated=translated) == []


def marks_inside_f_strings(sources: Iterable[Path]) -> list[str]:
    """``_()`` inside an f-string is invisible to extraction (an f-string is one token): such a string would
    never reach the catalogs, and so never be checked."""
    found = []
    for source in sources:
        for path in sorted(source.rglob("*.py")):
            for token in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
                if token.type == tokenize.STRING and re.match(r"(?i)[rb]*f", token.string) and \
                        re.search(r"(?<![\w.])(_|N_|ngettext)\(", token.string):
                    found.append(f"{path.relative_to(source.parent)}:{token.start[0]}")
    return found


def test_no_mark_hides_inside_an_f_string(tmp_path: Path) -> None:
    assert marks_inside_f_strings([ROOT / "extensions/aitip", ROOT / "panel_apps"]) == []
    (tmp_path / "page.py").write_text('from aitip.i18n import N_ as _\nname = "x"\ntext = f"{_(\'Hello\')} {name}"\n')
    assert marks_inside_f_strings([tmp_path]) == [f"{tmp_path.name}/page.py:3"]


def test_a_new_string_without_translation_fails(code_messages: dict[str, tuple[str, ...]], tmp_path: Path) -> None:
    (tmp_path / "page.py").write_text('from aitip.i18n import N_\n_ = N_\nTITLE = _("A page nobody translated")\n')
    found = problems({**code_messages, **extracted([tmp_path])}, "zh_CN", translated=True)
    assert found == ["zh_CN: missing 'A page nobody translated' (run `make messages`, then translate it)"]


def test_a_dropped_string_and_a_wrong_placeholder_fail(code_messages: dict[str, tuple[str, ...]]) -> None:
    some = next(msgid for msgid in code_messages if "{" in msgid)
    without = {msgid: forms for msgid, forms in code_messages.items() if msgid != some}
    assert any(some in problem and "obsolete" in problem for problem in problems(without, "zh_CN", translated=True))
    assert placeholders("Job {job}: {state}") != placeholders("作业 {id}：{state}")
    assert placeholders("%(count)d runs") == placeholders("%(count)d 次运行")


def test_the_catalogs_compile_and_translate() -> None:
    chinese = i18n.translator("zh_CN")
    assert chinese.gettext("yes") == "是"
    assert chinese.gettext("Overview") == "概览"
    assert chinese.ngettext("{count} file", "{count} files", 3) == "{count} 个文件"
    english = i18n.translator("en")
    assert english.gettext("yes") == "yes"
    assert english.ngettext("{count} file", "{count} files", 1) == "{count} file"
    assert english.ngettext("{count} file", "{count} files", 2) == "{count} files"


@pytest.mark.parametrize("header, preferred, expected", [
    (None, None, "en"),
    ("", None, "en"),
    ("zh-CN,zh;q=0.9,en;q=0.8", None, "zh_CN"),
    ("zh", None, "zh_CN"),
    ("zh-Hans", None, "zh_CN"),
    ("zh-TW", None, "zh_CN"),
    ("en-US,en;q=0.9,zh-CN;q=0.8", None, "en"),
    ("en;q=0.5,zh-CN;q=0.8", None, "zh_CN"),  # q-values, not order, decide
    ("fr-FR,fr;q=0.9,zh;q=0.5", None, "zh_CN"),  # the first language AITIP speaks
    ("fr-FR,de", None, "en"),
    ("zh-CN;q=0,en", None, "en"),  # q=0: not Chinese
    ("*", None, "en"),
    ("zh-CN;q=bad, en;q=0.1", None, "en"),
    ("zh-CN", "en", "en"),  # a stored choice wins over the browser
    ("en", "zh_CN", "zh_CN"),
    ("en", "zh-Hant", "zh_CN"),
    ("zh-CN", "klingon", "zh_CN"),  # a choice AITIP does not speak is ignored
])
def test_negotiate(header: str | None, preferred: str | None, expected: str) -> None:
    assert i18n.negotiate(header, preferred) == expected


@pytest.mark.parametrize("environ, expected", [
    ({}, "en"),
    ({"LANG": "zh_CN.UTF-8"}, "zh_CN"),
    ({"LANG": "zh_TW.UTF-8"}, "zh_CN"),
    ({"LANG": "C.UTF-8"}, "en"),
    ({"LANG": "zh_CN.UTF-8", "LC_ALL": "C"}, "en"),  # LC_ALL overrides LANG, as for C programs
    ({"LANG": "en_US.UTF-8", "LC_MESSAGES": "zh_CN.UTF-8"}, "zh_CN"),
    ({"LANG": "zh_CN.UTF-8", "AITIP_LANG": "en"}, "en"),
    ({"LANG": "en_US.UTF-8", "AITIP_LANG": "zh"}, "zh_CN"),
    ({"LANG": "zh_CN.UTF-8", "AITIP_LANG": ""}, "zh_CN"),
])
def test_language_from_environment(environ: dict[str, str], expected: str) -> None:
    assert i18n.language_from_environment(environ) == expected


def test_unknown_languages_fall_back_to_english() -> None:
    assert i18n.translator("fr").language == "en"
    assert i18n.translator(None).language == "en"
    with pytest.raises(ValueError):
        i18n.translations("fr")


@pytest.mark.parametrize("space", ["lr=cubic:1", "lr=loguniform:0.001,0.1", "lr=uniform:0", "=int:1:2"])
def test_the_cli_says_a_bad_sweep_space_in_the_shells_language(
        space: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from aitip.cli import main
    from aitip.cli_jobs import parse_dimension

    assert parse_dimension("lr=loguniform:1e-4:1e-1") == ("lr", {"type": "loguniform", "low": 1e-4, "high": 0.1})
    monkeypatch.setenv("AITIP_LANG", "zh_CN")
    with pytest.raises(SystemExit) as ended:
        main(["sweep", "train.ipynb", "--project", "p", "--objective", "y", "--space", space])
    error = capsys.readouterr().err
    assert ended.value.code == 2 and "格式错误" in error and repr(space) in error and "Traceback" not in error
