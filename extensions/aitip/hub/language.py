"""The hub's own pages (login, sign-up, navigation) in the language of the request: ``?lang=``, else the
``aitip_lang`` cookie the dashboards' switch sets (same origin), else ``Accept-Language``, else English.

JupyterHub renders templates with a Jinja environment it builds itself and passes them only the user, not
the request. So the language travels in a context variable: :class:`RequestLanguage` is a Tornado output
transform (Tornado builds one per request, before the handler's task starts, which copies the variable),
and the templates' ``_()``/``ngettext()`` (:class:`HubI18n`, Jinja's i18n extension with callables
installed) read it. The templates are overrides in ``templates/`` (``c.JupyterHub.template_paths``).
Sentences NativeAuthenticator's handlers write in Python reach the templates already made; the templates pass
them through the ``hub_message`` filter (:func:`hub_message`), which finds their catalog entry.
"""

from __future__ import annotations

import contextvars
import re
from pathlib import Path
from typing import Any

from jinja2 import Environment
from jinja2.ext import InternationalizationExtension
from tornado import httputil
from tornado.web import OutputTransform

from ..i18n import COOKIE, DEFAULT_LANGUAGE, LANGUAGE_NAMES, QUERY_ARGUMENT, N_, negotiate, translator

TEMPLATES = Path(__file__).resolve().parents[3] / "templates"
_LANGUAGE: contextvars.ContextVar[str] = contextvars.ContextVar("aitip_hub_language", default=DEFAULT_LANGUAGE)

# What NativeAuthenticator 1.3.0's handlers (handlers.py) tell people, word for word with runs of white space
# made one space, its f-strings' values as {placeholders} named after its variables (tests/hub check both).
NATIVE_MESSAGES = (
    N_("Invalid username or password."),
    N_("User {username} has not been authorized by an administrator yet."),
    N_("You failed the reCAPTCHA. Please try again"),
    N_("Something went wrong! It appears that this username is already in use. Please try again with a "
       "different username."),
    N_("Your password did not match the confirmation. Please try again."),
    N_("Something went wrong! Be sure your username does not contain spaces, commas or slashes, your password "
       "has at least {minimum_password_length} characters and is not too common."),
    N_("Something went wrong! Be sure your username does not contain spaces, commas or slashes and your "
       "password is not too common."),
    N_("The signup was successful! You can now go to the home page and log in to the system."),
    N_("Your information has been sent to the admin."),
    N_("The signup was successful! Check your email to authorize your access."),
    N_("Invalid URL"),
    N_("{username} has been authorized!"),
    N_("{username} was already authorized."),
    N_("Your current password was incorrect. Please try again."),
    N_("Your new password didn't match the confirmation. Please try again."),
    N_("Your password has been changed successfully!"),
    N_("Something went wrong! Be sure your new password has at least {minimum_password_length} characters and "
       "is not too common."),
    N_("Something went wrong! Be sure your new password is not too common."),
    N_("The new password didn't match the confirmation. Please try again."),
    N_("The password for {user_name} has been changed successfully"),
    N_("Something went wrong! Be sure the new password for {user_name} has at least {minimum_password_length} "
       "characters and is not too common."),
    N_("Something went wrong! Be sure the new password for {user_name} is not too common."),
)
# The titles of JupyterHub's error pages (its HTTP reasons); the explanations under them stay English, as the
# platform's own error messages do.
HTTP_REASONS = (N_("Bad Request"), N_("Unauthorized"), N_("Forbidden"), N_("Not Found"), N_("Method Not Allowed"),
                N_("Conflict"), N_("Too Many Requests"), N_("Internal Server Error"), N_("Bad Gateway"),
                N_("Service Unavailable"), N_("Gateway Timeout"))


def _pattern(message: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>.+?)", re.escape(message)), re.DOTALL)


_MESSAGES = [(_pattern(message), message) for message in (*NATIVE_MESSAGES, *HTTP_REASONS)]


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


def hub_message(text: Any) -> Any:
    """``text`` in the request's language when it is one of :data:`NATIVE_MESSAGES` or :data:`HTTP_REASONS`,
    else as it is (a user name, the platform's own error message)."""
    if not isinstance(text, str):
        return text
    words = " ".join(text.split())
    for pattern, message in _MESSAGES:
        found = pattern.fullmatch(words)
        if found:
            return gettext(message).format(**found.groupdict())
    return text


def current_language(_user: Any = None) -> str:
    """For ``template_vars``: the language of the page being rendered."""
    return _LANGUAGE.get()


class HubI18n(InternationalizationExtension):
    """Jinja's i18n extension (``_()``, ``{% trans %}``) with AITIP's catalogs, per request."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.install_gettext_callables(gettext, ngettext, newstyle=True)  # type: ignore[attr-defined]
        environment.filters["hub_message"] = hub_message


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

