"""What every page shares: the API client from the viewer's identity, the page frame with its
navigation and language switch, tables, readable error banners and value formatting, in the page's
language (:mod:`panel_apps.language`)."""

from __future__ import annotations

import datetime as dt
import math
import os
from html import escape
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pandas as pd
import panel as pn
import param

from aitip.client import AitipAPIError, Client, NotConfigured
from aitip.i18n import N_
from aitip.identity.roles import role_said
from aitip.jobs.state_words import job_state_word

from .api import DashboardAPI
from .language import _, page_language, pgettext, switch_html
from .serve import API_URL_VARIABLE, MODE_VARIABLE, PAGES

# No page reads the browser's details (dark mode, pixel ratio, time zone...): Panel asks for them by default, and
# the browser answers each in a message of its own just as the page is first drawn (seven a load), which the
# server then handles while the browser is still drawing.
pn.config.browser_info = False

STATE_COLOURS = {"queued": "#777777", "starting": "#aa6600", "running": "#0066cc", "succeeded": "#228822",
                 "failed": "#cc0000", "cancelled": "#555555", "timed_out": "#cc6600"}
PAGE_TITLES = {"overview": N_("Overview"), "jobs": N_("Jobs"), "experiments": N_("Experiments"),
               "models": N_("Models"), "evaluations": N_("Evaluations"), "simulations": N_("Simulations"),
               "serving": N_("Serving"), "releases": N_("Releases"), "datasets": N_("Datasets"),
               "annotate": N_("Labelling")}
assert set(PAGE_TITLES) == set(PAGES), "every page has a title"
# Titles of the tables' columns; the columns keep their names (the pages' element ids and tests use them).
COLUMN_TITLES = {
    "id": N_("id"), "state": N_("state"), "project": N_("project"), "owner": N_("owner"), "notebook": N_("notebook"),
    "submitted": N_("submitted"), "finished": N_("finished"), "duration": N_("duration"), "attempt": N_("attempt"),
    "position": N_("position"), "priority": N_("priority"), "waiting": N_("waiting"), "user": N_("user"),
    "GPU hours": N_("GPU hours"), "jobs": N_("jobs"), "running": N_("running"), "parameter": N_("parameter"),
    "value": N_("value"), "at": N_("at"), "detail": N_("detail"), "run": N_("run"), "status": N_("status"),
    "job": N_("job"), "started": N_("started"), "differs": N_("differs"), "metric": N_("metric"),
    "model": N_("model"), "version": N_("version"), "aliases": N_("aliases"), "created": N_("created"),
    "source": N_("source"), "format": N_("format"), "rows": N_("rows"), "size": N_("size"), "files": N_("files"),
    "author": N_("author"), "message": N_("message"), "tag": N_("tag"), "from": N_("from"), "task": N_("task"),
    "dataset": N_("dataset"), "items": N_("items"), "labelled": N_("labelled"), "accepted": N_("accepted"),
    "rejected": N_("rejected"), "agreement": N_("agreement"),
    "assignment": N_("assignment"), "annotator": N_("annotator"), "item": N_("item"), "label": N_("label"),
    "review": N_("review"), "headline": N_("headline metric"), "baseline": N_("baseline"),
    "change": N_("change"), "trigger": N_("trigger"), "when": N_("when"), "template": N_("template"),
    "target": N_("model or endpoint"), "verdict": N_("verdict"), "clean": N_("clean metric"), "kind": N_("kind"),
    "conditions": N_("conditions"), "thresholds": N_("thresholds"),
}

_FRAME_CSS = """
:host { width: 100%; }
.aitip-bar { display: flex; align-items: center; gap: 1.2rem; padding: .5rem 1rem; background: #1f2d3d;
  color: #fff; font-family: system-ui, sans-serif; border-radius: 4px; }
.aitip-bar a { color: #cfe3ff; text-decoration: none; font-size: 1rem; }
.aitip-bar a.active { color: #fff; font-weight: 600; border-bottom: 2px solid #fff; }
.aitip-bar .brand { font-weight: 700; letter-spacing: .05em; margin-right: .6rem; }
.aitip-bar .who { margin-left: auto; color: #cfd8e3; font-size: .9rem; }
.aitip-bar .languages { color: #cfd8e3; font-size: .9rem; white-space: nowrap; }
.aitip-bar .languages a { font-size: .9rem; }
"""


class NotSignedIn(Exception):
    """The session carries no identity the platform would accept."""


def session_api() -> DashboardAPI:
    """The platform API as the viewer of this session.

    Hub service: the OAuth access token the hub issued to this viewer (scope
    ``access:services!service=aitip``). Inside a user server: the server's own token through its
    workspace relay, i.e. the server's owner. Never the dashboards service's own credentials."""
    mode = os.environ.get(MODE_VARIABLE, "")
    if mode == "hub":
        token = pn.state.access_token
        if not token:
            raise NotSignedIn(_("this page has no signed-in viewer; reload it to sign in at the hub"))
        client = Client(os.environ[API_URL_VARIABLE], token, language=page_language())
    else:
        try:
            client = Client(language=page_language())
        except NotConfigured as error:
            raise NotSignedIn(str(error)) from error
    api = DashboardAPI(client)
    if pn.state.curdoc is not None:
        try:
            pn.state.on_session_destroyed(lambda _context: api.close())
        except Exception:  # noqa: BLE001 - no session (a warm-up run): nothing to clean up later
            pass
    return api


def viewer_connected() -> bool:
    """Whether a browser is connected to this page's session now. A page left or reloaded keeps its session, and
    its periodic callbacks, for Bokeh's unused-session lifetime (15 to 30 s): a refresh then is work nobody
    sees, taken from the pages being loaded."""
    context = pn.state.curdoc.session_context if pn.state.curdoc is not None else None
    session = getattr(context, "session", None)
    return session is None or session.connection_count > 0


def query_arg(name: str) -> str | None:
    """A query-string argument of the page's URL (``/jobs?job=12``)."""
    values = (pn.state.session_args or {}).get(name)
    if not values:
        return None
    value = values[0]
    return value.decode() if isinstance(value, bytes) else str(value)


def update_query(**values: Any) -> None:
    """Keep the address bar in step with what is shown, so the view can be shared and reloaded."""
    if pn.state.location is not None:
        pn.state.location.update_query(**{k: ("" if v is None else str(v)) for k, v in values.items()})


# ----- frame -----

def page_title(page: str) -> str:
    """The browser tab's title of a page, in the page's language."""
    title = _(PAGE_TITLES[page]) if page in PAGE_TITLES else page
    return f"AITIP · {title}"


def navigation(active: str, user: str | None) -> pn.pane.HTML:
    titles = {page: html_escape(_(title)) for page, title in PAGE_TITLES.items()}
    links = "".join(f'<a href="./{page}" class="{"active" if page == active else ""}" id="nav-{page}">'
                    f"{title}</a>" for page, title in titles.items())
    signed_in = _("signed in as {user}").format(user=f"<b>{html_escape(user)}</b>")
    who = f'<span class="who" id="viewer">{signed_in}</span>' if user else ""
    languages = switch_html() if user else f'<span class="who">{switch_html()}</span>'
    return pn.pane.HTML(f'<nav class="aitip-bar"><span class="brand">AITIP</span>{links}{who}{languages}</nav>',
                        stylesheets=[_FRAME_CSS], sizing_mode="stretch_width", margin=(5, 10))


def page_frame(active: str, user: str | None, *content: Any) -> pn.Column:
    """The page: navigation bar, then the page's content. A plain column (no template) keeps the
    first paint light."""
    if pn.state.curdoc is not None:
        pn.state.curdoc.title = page_title(active)
    return pn.Column(navigation(active, user), *content, sizing_mode="stretch_width")


def signed_in_page(active: str, doing: str, build: Callable[[DashboardAPI, dict[str, Any], Messages], Any]) -> pn.Column:
    """A page for the session's viewer: ``build(api, me, messages)`` gives its content; without a viewer
    the platform accepts, the page is a readable banner instead."""
    pn.extension("tabulator")
    messages = Messages()
    try:
        api = session_api()
        me = api.me()
    except (AitipAPIError, NotSignedIn) as error:
        messages.error(error, doing)
        return page_frame(active, None, messages)
    return page_frame(active, me["name"], messages, build(api, me, messages))


def section(title: str, element_id: str | None = None) -> pn.pane.HTML:
    identity = f" id='{html_escape(element_id)}'" if element_id else ""
    return pn.pane.HTML(f"<h3{identity} style='margin:.4rem 0 0 0;font-family:system-ui,sans-serif'>"
                        f"{html_escape(title)}</h3>", margin=(10, 10, 0, 10))


# ----- messages -----

def describe_error(error: BaseException, doing: str) -> str:
    """One sentence a person can act on; a 403 reads "You may not ...". ``doing`` is already in the
    page's language ("cancel job 3"); the platform's own message follows, written in it too (the client sends
    the page's language)."""
    if isinstance(error, NotSignedIn):
        return _("You are not signed in: {reason}").format(reason=error)
    if not isinstance(error, AitipAPIError):
        return _("Could not {doing}: {reason}").format(doing=doing, reason=error)
    if error.status == 403:
        sentence = _("You may not {doing}").format(doing=doing)
    elif error.status == 404:
        sentence = _("Not found while trying to {doing}").format(doing=doing)
    elif error.status in (400, 409, 413, 415, 422):
        sentence = _("Could not {doing}").format(doing=doing)
    elif error.status == 503:
        sentence = _("The platform is unreachable, so could not {doing}").format(doing=doing)
    else:
        sentence = _("The platform failed to {doing} ({status} {code})").format(doing=doing, status=error.status,
                                                                               code=error.code)
    return _("{sentence}: {detail}").format(sentence=sentence, detail=error.message) if error.message else sentence


_BANNER_STYLES = {
    "aitip-error": "background:#f8d7da;color:#842029;border:1px solid #f5c2c7",
    "aitip-info": "background:#d1e7dd;color:#0f5132;border:1px solid #badbcc",
    "aitip-note": "background:#e2e3e5;color:#41464b;border:1px solid #d3d6d8",
}


class Messages(pn.Column):
    """Banners above a page's content: errors from the API, confirmations of actions. Each is an
    element with the class ``aitip-error``, ``aitip-info`` or ``aitip-note`` and ``role=alert``."""

    def __init__(self, **params: Any) -> None:
        super().__init__(sizing_mode="stretch_width", **params)

    def attempt(self, doing: str, call: Callable[[], Any], default: Any) -> Any:
        """``call()``'s answer, or ``default`` with the refusal shown as a banner saying what was being done."""
        try:
            return call()
        except (AitipAPIError, NotSignedIn) as error:
            self.error(error, doing)
            return default

    def _banner(self, kind: str, text: str) -> None:
        self.append(pn.pane.HTML(
            f"<div class='{kind}' role='alert' style='{_BANNER_STYLES[kind]};border-radius:4px;padding:.6rem 1rem;"
            f"font-family:system-ui,sans-serif'>{html_escape(text)}</div>", sizing_mode="stretch_width",
            margin=(5, 10)))

    def error(self, error: BaseException, doing: str) -> None:
        self._banner("aitip-error", describe_error(error, doing))

    def info(self, text: str) -> None:
        self._banner("aitip-info", text)

    def note(self, text: str) -> None:
        self._banner("aitip-note", text)

    def reset(self) -> None:
        self.clear()


_PREFETCH_POOL = ThreadPoolExecutor(max_workers=8, thread_name_prefix="dashboards-prefetch")


class Prefetch:
    """API calls a page needs at once, started together (the platform answers them in parallel);
    each result is taken where the page would have made the call, with its error raised there."""

    def __init__(self, calls: dict[Hashable, Callable[[], Any]] | None = None) -> None:
        self._futures: dict[Hashable, Future[Any]] = {key: _PREFETCH_POOL.submit(call)
                                                      for key, call in (calls or {}).items()}

    def take(self, key: Hashable, call: Callable[[], Any]) -> Any:
        """The prefetched result for ``key``, or ``call()`` when nothing was prefetched for it."""
        future = self._futures.pop(key, None)
        return call() if future is None else future.result()

    def holds(self, key: Hashable) -> bool:
        """Whether ``key``'s call was started and not taken yet."""
        return key in self._futures


class QuietChanges:
    """A page's ``quietly()``: widget changes made by the page itself, which its watchers (``self._quiet or
    ...``) must not take for the viewer's."""

    _quiet = False

    @contextmanager
    def quietly(self) -> Iterator[None]:
        self._quiet = True
        try:
            yield
        finally:
            self._quiet = False


def prefetched_page(active: str, project_calls: Callable[[DashboardAPI, str], dict[Hashable, Callable[[], Any]]],
                    view: Callable[[DashboardAPI, dict[str, Any], Messages, Prefetch], Any]) -> pn.Column:
    """A page whose first calls start together: who is signed in, and what the address's project needs
    (``project_calls``); ``view`` builds the content from them. Not signed in, or the platform refusing, the
    page says so and how to go on."""
    messages = Messages()
    try:
        api = session_api()
    except NotSignedIn as error:
        messages.error(error, _("see your projects"))
        return page_frame(active, None, messages)
    calls: dict[Hashable, Callable[[], Any]] = {"me": api.me}
    project = query_arg("project")
    if project:  # fetched while ``me`` is
        calls.update(project_calls(api, project))
    prefetch = Prefetch(calls)
    try:
        me = prefetch.take("me", api.me)
    except AitipAPIError as error:
        messages.error(error, _("see your projects"))
        return page_frame(active, None, messages)
    return page_frame(active, me["name"], messages, view(api, me, messages, prefetch))


# ----- tables -----

def column_widths(frame: pd.DataFrame, *, sample: int = 200, least: int = 60, most: int = 280) -> dict[str, int]:
    """Pixel widths from the longest text in each column (of its first ``sample`` rows): given to
    Tabulator, they spare it measuring every cell in the browser, its costliest step on first paint."""
    return {str(column): text_width(str(column), frame[column].head(sample), least=least, most=most)
            for column in frame.columns}


def text_width(title: str, values: Iterable[Any], *, least: int = 60, most: int = 280) -> int:
    """A column's pixel width from its title and its longest value's text."""
    longest = max([len(title) + 2] + [len(str(value)) for value in values])
    return max(least, min(most, 8 * longest + 24))


def column_titles(frame: pd.DataFrame) -> dict[str, str]:
    """Headers in the page's language for the columns :data:`COLUMN_TITLES` knows (metric and parameter
    columns keep their names)."""
    return {str(column): _(COLUMN_TITLES[column]) for column in frame.columns if column in COLUMN_TITLES}


def table_language() -> dict[str, Any]:
    """Tabulator's own words (its pagination buttons) in the page's language, as its ``configuration``."""
    words = {"first": _("First"), "last": _("Last"), "prev": _("Previous"), "next": _("Next")}
    return {"locale": "aitip", "langs": {"aitip": {"pagination": {
        **words, **{f"{name}_title": word for name, word in words.items()}}}}}


def data_table(frame: pd.DataFrame, *, page_size: int = 20, name: str | None = None, **options: Any) -> pn.widgets.Tabulator:
    """A read-only table (filters and selection are the page's, edits are never offered)."""
    settings: dict[str, Any] = dict(show_index=False, disabled=True, layout="fit_data_table", pagination="local",
                                    page_size=page_size, sizing_mode="stretch_width", margin=(5, 10),
                                    titles=column_titles(frame), configuration=table_language())
    settings.update(options)
    if name:
        settings["name"] = name
        settings.setdefault("css_classes", [f"table-{name}"])
    return pn.widgets.Tabulator(frame, **settings)


class FastTable(pn.widgets.DataFrame):
    """Bokeh's own DataTable (SlickGrid: rows drawn only as they scroll into view) with checkbox
    selection. For the wide runs table of the Experiments page, whose first paint is budgeted, it costs
    about a third of Tabulator's browser work (measured: ~200 ms of main-thread time against ~450-600 ms
    for 12 rows of 21 columns); every other table is a Tabulator."""

    selectable = param.Selector(default="checkbox", objects=[True, False, "checkbox"],
                                doc="Rows are picked with a checkbox each")

    def _get_model(self, doc: Any, root: Any = None, parent: Any = None, comm: Any = None) -> Any:
        model = super()._get_model(doc, root, parent, comm)
        model.index_position = None  # no row-number column (Panel drops None-valued properties)
        return model


def fast_table(frame: pd.DataFrame, *, name: str, height: int = 400, **options: Any) -> FastTable:
    from bokeh.models import NumberFormatter

    numbers = NumberFormatter(format="0.[00000000]", nan_format="")
    settings: dict[str, Any] = dict(
        show_index=False, disabled=True, sizing_mode="stretch_width", height=height, row_height=28,
        autosize_mode="none", widths=column_widths(frame), css_classes=[f"table-{name}"], margin=(5, 10),
        titles=column_titles(frame),
        formatters={column: numbers for column in frame.columns if pd.api.types.is_float_dtype(frame[column])})
    settings.update(options)
    return FastTable(frame, **settings)


# ----- formatting -----

def format_number(value: Any) -> str:
    """Metric and parameter values as the tables show them: 4 significant digits for floats."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def parse_time(value: Any) -> dt.datetime | None:
    """ISO strings (jobs) and epoch milliseconds (MLflow) alike, as aware UTC datetimes."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        return dt.datetime.fromtimestamp(value / 1000, tz=dt.timezone.utc)
    parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def format_time(value: Any) -> str:
    moment = parse_time(value)
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return _("{seconds} s").format(seconds=f"{seconds:.1f}")
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return _("{minutes} min {seconds} s").format(minutes=minutes, seconds=f"{rest:02d}")
    hours, minutes = divmod(minutes, 60)
    return _("{hours} h {minutes} min").format(hours=hours, minutes=f"{minutes:02d}")


def format_bytes(value: float | None) -> str:
    if value is None:
        return ""
    amount = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if amount < 1024 or unit == "TiB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount:.1f} TiB"


def job_duration(job: dict[str, Any]) -> float | None:
    started, finished = parse_time(job.get("started_at")), parse_time(job.get("finished_at"))
    if started is None:
        return None
    return ((finished or dt.datetime.now(dt.timezone.utc)) - started).total_seconds()


def state_badge(state: str) -> str:
    colour = STATE_COLOURS.get(state, "#333333")
    return (f'<span class="job-state" data-state="{html_escape(state)}" style="background:{colour};color:#fff;'
            f'padding:.1rem .5rem;border-radius:.7rem;font-size:.9rem">{html_escape(job_state_word(state, pgettext))}'
            '</span>')


def html_escape(value: Any) -> str:
    return escape("" if value is None else str(value))


POLICY_DECIDER = N_("policy")  # a release approval given by the project's release policy, not by a person


def role_words(role: str | None) -> str:
    """A project role (or a release approval's ``policy``) in the page's language."""
    if not role:
        return _("not a member")
    return _(POLICY_DECIDER) if role == "policy" else str(role_said(role, _))


def project_options(me: dict[str, Any], *, include_all: bool = False) -> dict[str, str]:
    """Select options {label: project} of the viewer's projects, with their role."""
    options = {_("All my projects"): ""} if include_all else {}
    for project in me.get("projects", []):
        options[f"{project['project']} ({role_words(project['role'])})"] = project["project"]
    return options


def viewer_role(me: dict[str, Any], project: str | None) -> str | None:
    """The viewer's role in ``project``; a hub admin acts as a project admin."""
    return "admin" if me.get("admin") else role_in(me, project or "")


def role_in(me: dict[str, Any], project: str) -> str | None:
    for entry in me.get("projects", []):
        if entry["project"] == project:
            return str(entry["role"])
    return None


ROLE_ORDER = ("viewer", "developer", "maintainer", "admin")


def role_at_least(role: str | None, least: str) -> bool:
    return role is not None and ROLE_ORDER.index(role) >= ROLE_ORDER.index(least)


def may_control_job(me: dict[str, Any], job: dict[str, Any]) -> bool:
    """Mirror of the platform's rule for cancel and retry (the platform still decides): the owner
    as a developer, or a maintainer of the project, or a hub admin."""
    if me.get("admin"):
        return True
    role = role_in(me, job["project"])
    if job["owner"] == me.get("name") and role_at_least(role, "developer"):
        return True
    return role_at_least(role, "maintainer")


def first_value(options: Sequence[str], wanted: str | None) -> str | None:
    if wanted and wanted in options:
        return wanted
    return options[0] if options else None
