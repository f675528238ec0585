"""Plain aligned text tables, as the CLI prints them, in the shell's language (see :mod:`aitip.i18n`).

Column titles and ``key: value`` labels are the fields' names, translated where :data:`LABELS` knows the
field (English shows the name itself: ``DISPLAY_NAME``); alignment counts a Chinese character as two
columns, as terminals draw it."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from .i18n import N_
from .i18n import shell_gettext as _

# Fields the CLI's tables and views show, by their API name, which is also the catalog's word for its title.
LABELS = frozenset({
    N_("metric"), N_("baseline"), N_("change"), N_("id"), N_("name"), N_("display_name"), N_("description"),
    N_("project"), N_("role"), N_("my_role"), N_("archived"), N_("created_by"), N_("created_at"), N_("updated_at"),
    N_("kind"), N_("added_by"), N_("added_at"), N_("owner"), N_("state"), N_("reason"), N_("notebook_name"),
    N_("notebook_sha256"), N_("kernel"), N_("parameters"), N_("resources"), N_("attempt"), N_("max_attempts"),
    N_("priority"), N_("mlflow_run_id"), N_("submitted_at"), N_("started_at"), N_("finished_at"), N_("dataset"),
    N_("version"), N_("latest_version"), N_("versions"), N_("format"), N_("rows"), N_("bytes"), N_("files"),
    N_("author"), N_("message"), N_("tag"), N_("trial"), N_("job"), N_("value"), N_("column"), N_("type"),
    N_("missing"), N_("distinct"), N_("range"), N_("class"), N_("images"), N_("status"), N_("user"), N_("groups"),
    N_("active"), N_("after"), N_("automatic"), N_("batch_sizes"), N_("before"), N_("canary_version"),
    N_("condition"), N_("conditions"), N_("content_md5"), N_("device"), N_("direction"), N_("endpoint"),
    N_("events"), N_("experiment_id"), N_("filename"), N_("gpu_hours"), N_("how"), N_("index"), N_("job_id"),
    N_("jobs"), N_("latency_ms"), N_("lifecycle_stage"), N_("mode"), N_("model"), N_("next_environment"),
    N_("objective"), N_("parallelism"), N_("parameter"), N_("prefix"), N_("protocol"), N_("release"),
    N_("release_id"), N_("run_count"), N_("running_jobs"), N_("secret"), N_("sensitive_columns"),
    N_("stable_version"), N_("step"), N_("strategy"), N_("tags"), N_("thresholds"), N_("timestamp"), N_("title"),
    N_("trials"), N_("triton_name"), N_("unreadable"), N_("updated_by"), N_("url"), N_("algorithm"),
    N_("archived_at"), N_("callback_secret"), N_("callback_url"), N_("columns"), N_("content_sha256"), N_("error"),
    N_("errors"), N_("key_id"), N_("masked_columns"), N_("pending_bytes"), N_("public_key_pem"),
    N_("quality_rules"), N_("revoked_at"), N_("stored"), N_("valid"), N_("total"), N_("best_job_id"),
    N_("best_value"), N_("created_trials"), N_("key"), N_("total_points"), N_("more_classes"), N_("bytes_delta"),
    N_("content_changed"), N_("dvc_diff"), N_("from_version"), N_("row_delta"), N_("rows_after"), N_("rows_before"),
    N_("to_version"), N_("extends"), N_("source"), N_("tolerance"), N_("environment"), N_("by"),
    N_("total_gpu_hours"), N_("at"), N_("since"), N_("until"), N_("default"), N_("about"),
})


def label(field: str) -> str:
    """A field's name as a person reads it in the shell's language."""
    return _(field) if field in LABELS else field


def width(text: str) -> int:
    """Columns a terminal gives ``text``: wide (CJK) characters take two."""
    return sum(2 if unicodedata.east_asian_width(character) in "WF" else 1 for character in text)


def pad(text: str, columns: int) -> str:
    return text + " " * max(0, columns - width(text))


def field_lines(values: dict[str, str], fields: Sequence[str], least: int) -> list[str]:
    """``label: value`` lines, the values aligned at ``least`` columns or past the longest label."""
    column = max([least] + [width(label(field) + ":") + 1 for field in fields])
    return [pad(label(field) + ":", column) + values[field] for field in fields]


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str], *, upper: bool = True) -> str:
    """A plain aligned table; empty input says so. Titles are the columns' labels, in capitals unless they are
    names to be read as written (``upper=False``: runs' names and ids)."""
    if not rows:
        return _("(none)")
    titles = [label(col).upper() if upper else label(col) for col in columns]
    cells = [[cell(row.get(col)) for col in columns] for row in rows]
    widths = [max(width(title), *(width(r[i]) for r in cells)) for i, title in enumerate(titles)]
    lines = ["  ".join(pad(title, w) for title, w in zip(titles, widths, strict=True)).rstrip()]
    lines += ["  ".join(pad(c, w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def shown_of(shown: int, total: int) -> str:
    """The footer of a list cut to one page."""
    return "\n" + _("({shown} of {total})").format(shown=shown, total=total) if total > shown else ""


# A time as the API writes it (ISO 8601, UTC): a table shows it on the shell's local clock.
_ISO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?")


def parsed_time(text: str) -> datetime:
    """A time as the API writes it (ISO 8601, ``Z`` for UTC included, which Python 3.10 could not read)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def local_time(value: Any) -> str:
    """A time on the shell's local clock, to the second: milliseconds since the epoch (as MLflow keeps them) or
    an ISO 8601 text (as the API writes times); one without a zone is taken as it is."""
    if value is None:
        return "-"
    if isinstance(value, int | float):
        moment = datetime.fromtimestamp(value / 1000)
    else:
        moment = parsed_time(value)
        if moment.tzinfo is not None:
            moment = moment.astimezone()
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def elapsed(seconds: float) -> str:
    """A span of time as a person says it: 6.5 s, 3 min 20 s, 2 h 5 min."""
    if seconds < 60:
        return _("{seconds:.1f} s").format(seconds=seconds)
    minutes, seconds = divmod(round(seconds), 60)
    if minutes < 60:
        return _("{minutes} min {seconds} s").format(minutes=minutes, seconds=seconds) if seconds \
            else _("{minutes} min").format(minutes=minutes)
    hours, minutes = divmod(minutes, 60)
    return _("{hours} h {minutes} min").format(hours=hours, minutes=minutes) if minutes \
        else _("{hours} h").format(hours=hours)


def number(value: Any) -> str:
    """A measured value as a person compares it: four significant digits."""
    return "-" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, str) and _ISO_TIME.fullmatch(value):
        return local_time(value)
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "-"
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


# Punctuation a line may not start with (it stays with what it closes), and may not end with.
_CLOSING = frozenset("，。、；：！？）》」』】,.;:!?)]}")
_OPENING = frozenset("（《「『【([{")


def _units(word: str) -> list[str]:
    """``word`` (no spaces) cut where a line may break: around each wide character (Chinese has no spaces
    between words), never inside a run of narrow ones, never before closing or after opening punctuation."""
    units: list[str] = []
    for character in word:
        wide = width(character) == 2
        if units and (character in _CLOSING or units[-1][-1] in _OPENING
                      or (not wide and width(units[-1][-1]) == 1)):
            units[-1] += character
        else:
            units.append(character)
    return units


def wrap(text: str, columns: int) -> list[str]:
    """``text`` in lines of at most ``columns`` terminal columns (a wide character takes two), broken at
    spaces and between wide characters; a run longer than a line is cut (as :func:`textwrap.wrap` cuts)."""
    columns = max(columns, 2)
    lines: list[str] = []
    line, used = "", 0
    for word in text.split():
        for index, unit in enumerate(_units(word)):
            gap = " " if index == 0 and line else ""
            if line and used + width(gap + unit) > columns:
                lines.append(line)
                line, used, gap = "", 0, ""
            for character in gap + unit:
                if used + width(character) > columns:
                    lines.append(line)
                    line, used = "", 0
                line += character
                used += width(character)
    if line:
        lines.append(line)
    return lines
