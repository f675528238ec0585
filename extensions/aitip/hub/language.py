"""The hub's own pages (login, sign-up, navigation) in the language of the request: ``?lang=``, else the
``aitip_lang`` cookie the dashboards' switch sets (same origin), else ``Accept-Language``, else English.

JupyterHub renders templates with a Jinja environment it builds itself and passes them only the user, not
the request. So the language travels in a context variable: :class:`RequestLanguage` is a Tornado output
transform (Tornado builds one per request, before the handler's task starts, which copies the variable),
and the templates' ``_()``/``ngettext()`` (:class:`HubI18n`, Jinja's i18n extension with callables
installed) read it. The templates are overrides in ``templates/`` (``c.JupyterHub.template_paths``).
"""

from __future__ import annotations

import contextvars
from pathlib import Path
from typing import Any

from jinja2 import Environment
from jinja2.ext import InternationalizationExtension
from tornado import httputil
from tornado.web import OutputTransform

from ..i18n import COOKIE, DEFAULT_LANGUAGE, LANGUAGE_NAMES, QUERY_ARGUMENT, negotiate, translator

TEMPLATES = Path(__file__).resolve().parents[3] / "templates"
_LANGUAGE: contextvars.ContextVar[str] = contextvars.ContextVar("aitip_hub_language", default=DEFAULT_LANGUAGE)


def request_language(request: httputil.HTTPServerRequest) -> str:
    query = request.query_arguments.get(QUERY_ARGUMENT) or [b""]
    cookie = request.cookies.get(COOKIE)
    preferred = query[0].decode(errors="replace") or (cookie.value if cookie is not None else None)
    return negotiate(request.headers.get("Accept-Language"), preferred)


class RequestLanguage(OutputTransform):
    """Changes no output: sets the language of the request it is built for."""

    def __init__(self, request: httputil.HTTPServerRequest) -> None:
        super().__init__(request)
        _LANGUAGE.set(request_language(request))


def gettext(message: str) -> str:
    return translator(_LANGUAGE.get()).gettext(message)


def ngettext(singular: str, plural: str, count: int) -> str:
    return translator(_LANGUAGE.get()).ngettext(singular, plural, count)


def current_language(_user: Any = None) -> str:
    """For ``template_vars``: the language of the page being rendered."""
    return _LANGUAGE.get()


class HubI18n(InternationalizationExtension):
    """Jinja's i18n extension (``_()``, ``{% trans %}``) with AITIP's catalogs, per request."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.install_gettext_callables(gettext, ngettext, newstyle=True)  # type: ignore[attr-defined]


def configure_languages(c: Any) -> None:
    """Template overrides, the i18n extension and the per-request language, added to the hub's config."""
    c.JupyterHub.template_paths = [str(TEMPLATES), *[p for p in c.JupyterHub.get("template_paths", [])
                                                     if p != str(TEMPLATES)]]
    options = dict(c.JupyterHub.get("jinja_environment_options", {}))
    options["extensions"] = [*options.get("extensions", []), f"{__name__}.HubI18n"]
    c.JupyterHub.jinja_environment_options = options
    settings = dict(c.JupyterHub.get("tornado_settings", {}))
    # Tornado takes ``transforms`` from the settings JupyterHub passes; it then leaves out its default gzip
    # transform, which JupyterHub does not turn on (``compress_response``) anyway.
    settings["transforms"] = [*settings.get("transforms", []), RequestLanguage]
    c.JupyterHub.tornado_settings = settings
    c.JupyterHub.template_vars = {**dict(c.JupyterHub.get("template_vars", {})), "aitip_language": current_language,
                                  "aitip_languages": LANGUAGE_NAMES, "aitip_language_cookie": COOKIE}

