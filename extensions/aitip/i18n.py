"""The two languages people read AITIP in: English and Simplified Chinese.

Messages live in gettext catalogs (``locale/<lang>/LC_MESSAGES/aitip.po``), read with Babel and compiled in
memory on first use, so a fresh clone needs no build step. Code marks what a person reads with ``_()``
(or ``N_()`` where the text is translated later, e.g. a module-level table), ``ngettext()`` and ``pgettext()`` (a
word in a context: ``msgctxt``); ``make messages`` extracts the marks and updates both catalogs;
``tests/test_i18n.py`` fails on a mark without a translation.
"""

from __future__ import annotations

import gettext
import io
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

ENGLISH = "en"
CHINESE = "zh_CN"
LANGUAGES = (ENGLISH, CHINESE)
DEFAULT_LANGUAGE = ENGLISH
# How each language names itself on a switch.
LANGUAGE_NAMES = {ENGLISH: "English", CHINESE: "中文"}
DOMAIN = "aitip"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
# The cookie that remembers a person's choice, shared by the hub's pages and the dashboards (same origin).
COOKIE = "aitip_lang"
QUERY_ARGUMENT = "lang"
ENVIRONMENT_VARIABLE = "AITIP_LANG"


def N_(message: str) -> str:
    """Marks ``message`` for extraction where it is translated later (``_(TITLES[page])``)."""
    return message


def catalog_path(language: str) -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def normalize(tag: str | None) -> str | None:
    """One of :data:`LANGUAGES` for a language tag or locale name (``zh-Hans``, ``zh_TW.UTF-8``, ``en-GB``),
    or ``None`` for a language AITIP has no catalog of. Every Chinese variant reads Simplified Chinese: it
    is the only Chinese catalog, and far closer for a Traditional reader than English."""
    if not tag:
        return None
    primary = tag.strip().split(".")[0].split("@")[0].replace("_", "-").split("-")[0].lower()
    if primary == "zh":
        return CHINESE
    if primary == "en":
        return ENGLISH
    return None


def parse_accept_language(header: str | None) -> list[str]:
    """The language tags of an ``Accept-Language`` header, most wanted first (q-values; ``q=0`` is "not
    this"); ties keep the header's order."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((header or "").split(",")):
        fields = [field.strip() for field in part.split(";")]
        tag = fields[0]
        if not tag:
            continue
        quality = 1.0
        for parameter in fields[1:]:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0:
            ranked.append((-quality, position, tag))
    return [tag for _, _, tag in sorted(ranked)]


def negotiate(accept_language: str | None, preferred: str | None = None) -> str:
    """The language to answer in: a stored preference (cookie, ``?lang=``) wins, then the first tag of the
    browser's ``Accept-Language`` that AITIP speaks, English otherwise."""
    chosen = normalize(preferred)
    if chosen:
        return chosen
    for tag in parse_accept_language(accept_language):
        if tag == "*":
            return DEFAULT_LANGUAGE
        chosen = normalize(tag)
        if chosen:
            return chosen
    return DEFAULT_LANGUAGE


def language_from_environment(environ: Mapping[str, str] | None = None) -> str:
    """The CLI's language: ``AITIP_LANG``, else the POSIX locale (``LC_ALL``, ``LC_MESSAGES``, ``LANG``, the
    first one set, as C programs read it); English otherwise."""
    environ = os.environ if environ is None else environ
    explicit = normalize(environ.get(ENVIRONMENT_VARIABLE))
    if explicit:
        return explicit
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = environ.get(name)
        if value:
            return normalize(value) or DEFAULT_LANGUAGE
    return DEFAULT_LANGUAGE


@lru_cache(maxsize=None)
def translations(language: str) -> gettext.NullTranslations:
    """The catalog of ``language`` as a :mod:`gettext` object, compiled in memory once per process (the
    ``.po`` file is the only source; untranslated and fuzzy entries fall back to the English msgid)."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    if language not in LANGUAGES:
        raise ValueError(f"no catalog for language {language!r}; known: {', '.join(LANGUAGES)}")
    with catalog_path(language).open("rb") as handle:
        catalog = read_po(handle, locale=language, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


@dataclass(frozen=True)
class Translator:
    """``gettext``/``ngettext`` of one language, to bind as ``_ = translator(lang).gettext``; ``pgettext`` for a
    word that a context tells apart (a job that ``failed`` is not an evaluation that did not pass)."""

    language: str
    gettext: Callable[[str], str]
    ngettext: Callable[[str, str, int], str]
    pgettext: Callable[[str, str], str]

    def __call__(self, message: str) -> str:
        return self.gettext(message)


def translator(language: str | None) -> Translator:
    """The translator of ``language`` (any tag :func:`normalize` knows; English otherwise)."""
    chosen = normalize(language) or DEFAULT_LANGUAGE
    catalog = translations(chosen)
    return Translator(chosen, catalog.gettext, catalog.ngettext, catalog.pgettext)


def shell_gettext(message: str) -> str:
    """``_()`` for the CLI: the language of its environment, read at each call (a test, or a program that
    changes ``AITIP_LANG``, sees the change)."""
    return translator(language_from_environment()).gettext(message)


def shell_ngettext(singular: str, plural: str, count: int) -> str:
    return translator(language_from_environment()).ngettext(singular, plural, count)


def shell_pgettext(context: str, message: str) -> str:
    return translator(language_from_environment()).pgettext(context, message)


def template_pattern(template: str) -> re.Pattern[str]:
    """What ``template.format(...)`` writes, as a regular expression capturing each ``{name}``."""
    return re.compile(re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>.+?)", re.escape(template)), re.DOTALL)


def said_from_templates(text: str, patterns: list[tuple[re.Pattern[str], str]],
                        say: Callable[[str], str]) -> str | None:
    """``text`` in ``say``'s language when another component wrote it from one of ``patterns``' templates (the
    values it put in stay as written), else None: for sentences made where the reader's language is unknown."""
    words = " ".join(text.split())
    for pattern, template in patterns:
        found = pattern.fullmatch(words)
        if found:
            return say(template).format(**found.groupdict())
    return None
