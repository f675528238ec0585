"""The hub's own pages (login, sign-up, navigation) in the language of the request: ``?lang=``, else the
``aitip_lang`` cookie the dashboards' switch sets (same origin), else ``Accept-Language``, else English.

JupyterHub renders templates with a Jinja environment it builds itself and passes them only the user, not
the request. So the language travels in a context variable: :class:`RequestLanguage` is a Tornado output
transform (Tornado builds one per request, before the handler's task starts, which copies the variable),
and the templates' ``_()``/``ngettext()`` (:class:`HubI18n`, Jinja's i18n extension with callables
installed) read it. The templates are overrides in ``templates/`` (``c.JupyterHub.template_paths``).
Sentences NativeAuthenticator's and JupyterHub's handlers write in Python (login results, error explanations,
scope descriptions) reach the templates already made; the templates pass them through the ``hub_message`` filter
(:func:`hub_message`), which finds their catalog entry.
"""

from __future__ import annotations

import contextvars
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment
from jinja2.ext import InternationalizationExtension
from tornado import httputil
from tornado.web import OutputTransform

from ..i18n import (COOKIE, DEFAULT_LANGUAGE, LANGUAGE_NAMES, QUERY_ARGUMENT, N_, negotiate, said_from_templates,
                    template_pattern, translator)
from ..isolation.accounts import EMPTY_NAME, TOO_LONG
from .admin_page import admin_page_messages, javascript_pattern
from .spawn_progress import SPAWN_PROGRESS

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
# The titles of JupyterHub's error pages (its HTTP reasons, as http.client.responses words them).
HTTP_REASONS = (N_("Bad Request"), N_("Unauthorized"), N_("Forbidden"), N_("Not Found"), N_("Method Not Allowed"),
                N_("Request Timeout"), N_("Conflict"), N_("Gone"), N_("Request Entity Too Large"),
                N_("Unprocessable Entity"), N_("Failed Dependency"), N_("Too Many Requests"),
                N_("Internal Server Error"), N_("Not Implemented"), N_("Bad Gateway"), N_("Service Unavailable"),
                N_("Gateway Timeout"))
# What JupyterHub 6.1's page handlers (handlers/base.py, pages.py, login.py) say in the HTTP errors its error
# pages show, word for word, their values as {placeholders} named after their expressions (tests/hub check the
# list against those handlers); then its reasons for a failed spawn and the link it adds under them.
HUB_ERRORS = (
    N_("Too many users trying to log in right now. Try again in {human_retry_time}."),
    N_("Active user limit exceeded. Try again in a few minutes."),
    N_("Named servers are not enabled."),
    N_("No access to resources or resources not found"),
    N_("auth has expired for {user_name}, login again"),
    N_("No such user {user_name}"),
    N_("Spawner failed to start [status={status}]. The logs for {spawner__log_name} may contain details."),
    N_("User {user_name} already has the maximum of {named_server_limit_per_user} named servers. One must be "
       "deleted before a new server can be created"),
    N_("{spawner__log_name} is already running"),
    N_("Unhandled error starting server {spawner__log_name}"),
    N_("{user_name} has no such server {server_name}"),
    N_("Share not found or expired"),
    N_("You can't share with yourself!"),
    N_("Invalid share code: {code}"),
    N_("No such user: {for_user}"),
    N_("{spawner__log_name} is pending {spawner_pending}"),
    N_("Invalid user-option name {key}"),
    N_("Login form invalid or expired. Try again."),
)
HUB_SPAWN_REASONS = (
    N_("Failed to reach your server. Please try again later. Contact admin if the issue persists."),
    N_("Failed to start your server on the last attempt. Please contact admin if the issue persists."),
    N_("You can try restarting your server from the <a href='{home}'>home page</a>."),
)
# The descriptions of JupyterHub 6.1's scopes (scopes.py ``scope_definitions``), which its "authorize access"
# page lists (tests/hub check the list against scopes.py).
SCOPE_DESCRIPTIONS = (
    N_("Identify the owner of the requesting entity."),
    N_("Your own resources"),
    N_("Anything you have access to"),
    N_("Access the admin page."),
    N_("Read, modify, create, and delete users and their authentication state, not including their servers or "
       "tokens. This is an extremely privileged scope and should be considered tantamount to superuser."),
    N_("Read a user’s authentication state."),
    N_("Read and write permissions to user models (excluding servers, tokens and authentication state)."),
    N_("Delete users."),
    N_("List users, including at least their names."),
    N_("Read user models (including the URL of the default server if it is running)."),
    N_("Read names of users."),
    N_("Read users’ group membership."),
    N_("Read time of last user activity."),
    N_("Read role assignments."),
    N_("Read user role assignments."),
    N_("Read service role assignments."),
    N_("Read group role assignments."),
    N_("Update time of last user activity."),
    N_("Read, start, stop, create and delete user servers and their state."),
    N_("Read and write users’ server state."),
    N_("Start and stop user servers."),
    N_("Read users’ names and their server models (excluding the server state)."),
    N_("Start and edit users' servers. (added in JupyterHub 6)"),
    N_("Stop and delete users' servers."),
    N_("Read, write, create and delete user tokens."),
    N_("Read user tokens."),
    N_("Read and write group information, create and delete groups."),
    N_("Read and write group information, including adding/removing any users to/from groups. Note: adding users "
       "to groups may affect permissions."),
    N_("List groups, including at least their names."),
    N_("Read group models."),
    N_("Read group names."),
    N_("Delete groups."),
    N_("Create, read, update, delete services, not including services defined from config files."),
    N_("List services, including at least their names."),
    N_("Read service models."),
    N_("Read service names."),
    N_("Read detailed information about the Hub."),
    N_("Access user servers via API or browser."),
    N_("Access services via API or browser."),
    N_("Read and revoke a user's access to shared servers."),
    N_("Read servers shared with a user."),
    N_("Read and revoke a group's access to shared servers."),
    N_("Read servers shared with a group."),
    N_("Read information about shared access to servers."),
    N_("Manage access to shared servers."),
    N_("Read information about the proxy’s routing table, sync the Hub with the proxy and notify the Hub about a "
       "new proxy."),
    N_("Shutdown the hub."),
    N_("Read prometheus metrics."),
)


_MESSAGES = [(template_pattern(message), message)
             for message in (*NATIVE_MESSAGES, *HTTP_REASONS, *HUB_ERRORS, *HUB_SPAWN_REASONS, *SCOPE_DESCRIPTIONS,
                             EMPTY_NAME, TOO_LONG)]


def request_language(request: httputil.HTTPServerRequest) -> str:
    query = request.query_arguments.get(QUERY_ARGUMENT) or [b""]
    cookie = request.cookies.get(COOKIE)
    preferred = query[0].decode(errors="replace") or (cookie.value if cookie is not None else None)
    return negotiate(request.headers.get("Accept-Language"), preferred)


# The spawner's attribute (and the key of its saved state, aitip.hub.spawner) holding the language its owner last
# started the server in.
OWNERS_LANGUAGE = "aitip_language"


def spawning_language(spawner: Any) -> str:
    """For ``Spawner.environment["AITIP_LANG"]``: the language of the request that starts ``spawner``'s server
    when its owner starts it (the page's switch, else the browser's), so that the widgets in its notebooks, the
    SDK's refusals and the CLI in its terminals read as that page did. A server someone else starts (an admin, from
    the hub's admin page) or the hub starts again by itself speaks the language its owner last started it in;
    English where the owner never did."""
    handler = getattr(spawner, "handler", None)
    request = getattr(handler, "request", None)
    requester = getattr(handler, "current_user", None)
    if request is None or getattr(requester, "name", None) != spawner.user.name:
        return negotiate(None, getattr(spawner, OWNERS_LANGUAGE, None))
    language = request_language(request)
    setattr(spawner, OWNERS_LANGUAGE, language)
    return language


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
    """``text`` in the request's language when it is one of :data:`NATIVE_MESSAGES`, :data:`HTTP_REASONS`,
    :data:`HUB_ERRORS`, :data:`HUB_SPAWN_REASONS` or :data:`SCOPE_DESCRIPTIONS`, else as it is (a user name, the
    platform's own error message, a scope of a newer JupyterHub)."""
    if not isinstance(text, str):
        return text
    said = said_from_templates(text, _MESSAGES, gettext)
    return text if said is None else said


def admin_page_words(_user: Any = None) -> list[list[str]]:
    """For ``template_vars`` (every hub page asks): [pattern, translation] of each text JupyterHub's admin app
    shows, in the language of the page being rendered (none in English: the page is shown as JupyterHub writes
    it)."""
    return _page_words(_LANGUAGE.get(), _ADMIN_PAGE)


def spawn_progress_words(_user: Any = None) -> list[list[str]]:
    """For ``template_vars``: [pattern, translation] of each progress message a server's start sends
    (:data:`aitip.hub.spawn_progress.SPAWN_PROGRESS`), in the language of the page being rendered."""
    return _page_words(_LANGUAGE.get(), _SPAWN_PROGRESS)


# (text shown, its catalog entry) of each text a page's script writes in the page's language.
_ADMIN_PAGE = tuple(admin_page_messages())
_SPAWN_PROGRESS = tuple((message, message) for message in SPAWN_PROGRESS)


@cache
def _page_words(language: str, messages: tuple[tuple[str, str], ...]) -> list[list[str]]:
    """[pattern, translation] of each of ``messages`` that ``language`` words otherwise."""
    said = translator(language).gettext
    return [[javascript_pattern(shown), said(entry)] for shown, entry in messages if said(entry) != entry]


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
                                  "aitip_languages": LANGUAGE_NAMES, "aitip_language_cookie": COOKIE,
                                  "aitip_admin_words": admin_page_words,
                                  "aitip_spawn_words": spawn_progress_words}

