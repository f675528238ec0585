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

# Fields the CLI's tables and views show, by their API name.
LABELS = {
    "metric": N_("metric"), "baseline": N_("baseline"), "change": N_("change"),
    "id": N_("id"), "name": N_("name"), "display_name": N_("display_name"), "description": N_("description"),
    "project": N_("project"), "role": N_("role"), "my_role": N_("my_role"), "archived": N_("archived"),
    "created_by": N_("created_by"), "created_at": N_("created_at"), "updated_at": N_("updated_at"),
    "kind": N_("kind"), "added_by": N_("added_by"), "added_at": N_("added_at"), "owner": N_("owner"),
    "state": N_("state"), "reason": N_("reason"), "notebook_name": N_("notebook_name"),
    "notebook_sha256": N_("notebook_sha256"), "kernel": N_("kernel"), "parameters": N_("parameters"),
    "resources": N_("resources"), "attempt": N_("attempt"), "max_attempts": N_("max_attempts"),
    "priority": N_("priority"), "mlflow_run_id": N_("mlflow_run_id"), "submitted_at": N_("submitted_at"),
    "started_at": N_("started_at"), "finished_at": N_("finished_at"), "dataset": N_("dataset"),
    "version": N_("version"), "latest_version": N_("latest_version"), "versions": N_("versions"),
    "format": N_("format"), "rows": N_("rows"), "bytes": N_("bytes"), "files": N_("files"), "author": N_("author"),
    "message": N_("message"), "tag": N_("tag"), "trial": N_("trial"), "job": N_("job"), "value": N_("value"),
    "column": N_("column"), "type": N_("type"), "missing": N_("missing"), "distinct": N_("distinct"),
    "range": N_("range"), "class": N_("class"), "images": N_("images"), "status": N_("status"),
    "user": N_("user"), "groups": N_("groups"),
    "active": N_("active"), "after": N_("after"), "automatic": N_("automatic"), "batch_sizes": N_("batch_sizes"),
    "before": N_("before"), "canary_version": N_("canary_version"), "condition": N_("condition"),
    "conditions": N_("conditions"), "content_md5": N_("content_md5"), "device": N_("device"),
    "direction": N_("direction"), "endpoint": N_("endpoint"), "events": N_("events"),
    "experiment_id": N_("experiment_id"), "filename": N_("filename"), "gpu_hours": N_("gpu_hours"),
    "how": N_("how"), "index": N_("index"), "job_id": N_("job_id"), "jobs": N_("jobs"),
    "latency_ms": N_("latency_ms"), "lifecycle_stage": N_("lifecycle_stage"), "mode": N_("mode"),
    "model": N_("model"), "next_environment": N_("next_environment"), "objective": N_("objective"),
    "parallelism": N_("parallelism"), "parameter": N_("parameter"), "prefix": N_("prefix"),
    "protocol": N_("protocol"), "release": N_("release"), "release_id": N_("release_id"),
    "run_count": N_("run_count"), "running_jobs": N_("running_jobs"), "secret": N_("secret"),
    "sensitive_columns": N_("sensitive_columns"), "stable_version": N_("stable_version"), "step": N_("step"),
    "strategy": N_("strategy"), "tags": N_("tags"), "thresholds": N_("thresholds"), "timestamp": N_("timestamp"),
    "title": N_("title"), "trials": N_("trials"), "triton_name": N_("triton_name"), "unreadable": N_("unreadable"),
    "updated_by": N_("updated_by"), "url": N_("url"), "algorithm": N_("algorithm"),
    "archived_at": N_("archived_at"), "callback_secret": N_("callback_secret"), "callback_url": N_("callback_url"),
    "columns": N_("columns"), "content_sha256": N_("content_sha256"), "error": N_("error"), "errors": N_("errors"),
    "key_id": N_("key_id"), "masked_columns": N_("masked_columns"), "pending_bytes": N_("pending_bytes"),
    "public_key_pem": N_("public_key_pem"), "quality_rules": N_("quality_rules"), "revoked_at": N_("revoked_at"),
    "stored": N_("stored"), "valid": N_("valid"),
    "total": N_("total"), "best_job_id": N_("best_job_id"), "best_value": N_("best_value"),
    "created_trials": N_("created_trials"), "key": N_("key"), "total_points": N_("total_points"),
    "more_classes": N_("more_classes"), "bytes_delta": N_("bytes_delta"), "content_changed": N_("content_changed"),
    "dvc_diff": N_("dvc_diff"), "from_version": N_("from_version"), "row_delta": N_("row_delta"),
    "rows_after": N_("rows_after"), "rows_before": N_("rows_before"), "to_version": N_("to_version"),
    "extends": N_("extends"), "source": N_("source"), "tolerance": N_("tolerance"),
    "environment": N_("environment"), "by": N_("by"), "total_gpu_hours": N_("total_gpu_hours"),
    "at": N_("at"), "since": N_("since"), "until": N_("until"),
}


def label(field: str) -> str:
    """A field's name as a person reads it in the shell's language."""
    return _(LABELS[field]) if field in LABELS else field


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
