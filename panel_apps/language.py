"""The language of a dashboard page: ``?lang=`` in its address, else the ``aitip_lang`` cookie (set by the
switch on every page's navigation, and read by the hub's pages too: same origin, path ``/``), else the
browser's ``Accept-Language``, else English.

The choice is kept in a cookie rather than per hub user in the platform: the hub's login page must honour
it before anyone is signed in, one cookie serves the hub's pages and both places the dashboards run (hub
service, inside JupyterLab), and it needs no table or API of its own.

Pages call ``_()`` and ``ngettext()`` from here; each resolves the language of the session being served
(Panel sets ``pn.state.curdoc`` for a page's construction and for each of its callbacks), decided once per
session.
"""

from __future__ import annotations

import contextvars
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from html import escape
from typing import Any
from urllib.parse import urlencode

import panel as pn

from aitip.i18n import COOKIE, DEFAULT_LANGUAGE, LANGUAGE_NAMES, LANGUAGES, QUERY_ARGUMENT, negotiate, normalize, translator

COOKIE_MAX_AGE = 365 * 24 * 3600
_SESSIONS: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
_CHOSEN: contextvars.ContextVar[str | None] = contextvars.ContextVar("aitip_dashboard_language", default=None)


@contextmanager
def use_language(language: str) -> Iterator[None]:
    """Render in ``language`` outside a served session (tests, warm-up)."""
    token = _CHOSEN.set(normalize(language) or DEFAULT_LANGUAGE)
    try:
        yield
    finally:
        _CHOSEN.reset(token)


def _header(headers: Any, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name.lower():
            return ", ".join(value) if isinstance(value, list) else str(value)
    return None


def _query_language() -> str | None:
    values = (pn.state.session_args or {}).get(QUERY_ARGUMENT) or []
    value = values[0] if values else None
    return value.decode() if isinstance(value, bytes) else value


def page_language() -> str:
    """The language of the session being served (decided on its first call), English outside one."""
    chosen = _CHOSEN.get()
    if chosen:
        return chosen
    document = pn.state.curdoc
    if document is None or document.session_context is None:
        return DEFAULT_LANGUAGE
    known = _SESSIONS.get(document)
    if known:
        return known
    preferred = normalize(_query_language()) or normalize((pn.state.cookies or {}).get(COOKIE))
    language = negotiate(_header(pn.state.headers, "Accept-Language"), preferred)
    _SESSIONS[document] = language
    return language


def _(message: str) -> str:
    return translator(page_language()).gettext(message)


def ngettext(singular: str, plural: str, count: int) -> str:
    return translator(page_language()).ngettext(singular, plural, count)


def pgettext(context: str, message: str) -> str:
    return translator(page_language()).pgettext(context, message)


def switch_html() -> str:
    """English / 中文 links: each stores the choice in the cookie, then reloads the page in that language
    (the address keeps its other arguments)."""
    current = page_language()
    arguments = {name: (values[0].decode() if isinstance(values[0], bytes) else str(values[0]))
                 for name, values in (pn.state.session_args or {}).items() if values and name != QUERY_ARGUMENT}
    links = []
    for language in LANGUAGES:
        href = "?" + urlencode({**arguments, QUERY_ARGUMENT: language})
        store = f"document.cookie='{COOKIE}={language}; path=/; max-age={COOKIE_MAX_AGE}; samesite=lax'"
        active = " active" if language == current else ""
        links.append(f'<a id="lang-{language}" class="lang{active}" lang="{language.replace("_", "-")}" '
                     f'href="{escape(href)}" onclick="{store}">{LANGUAGE_NAMES[language]}</a>')
    title = escape(_("Language"))
    return f'<span class="languages" title="{title}">{" / ".join(links)}</span>'
