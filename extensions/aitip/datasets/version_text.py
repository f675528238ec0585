"""A dataset version as a person reads it in a terminal (``aitip data show``, ``aitip datasets version``, an
annotation task's export; ``--json`` for all): what it is, and a line per column or class."""

from __future__ import annotations

from typing import Any

from ..i18n import shell_gettext as _
from ..i18n import shell_ngettext as ngettext
from ..text_tables import cell as _cell
from ..text_tables import table


def version_text(v: dict[str, Any]) -> str:
    """One version as a person reads it: what it is, and a line per column (type, missing values, distinct
    values, range); masked columns say so. ``--json`` gives the whole quality report."""
    quality = v.get("quality") or {}
    files = ngettext("{count} file", "{count} files", v["files"]).format(count=v["files"])
    counted = ngettext("{count} row", "{count} rows", v["rows"]).format(count=v["rows"]) if v["rows"] is not None \
        else _("rows unknown")
    lines = [f"{v['dataset']} v{v['version']}  " + _("{format}, {rows}, {bytes} bytes, {files}").format(
                 format=v["format"], rows=counted, bytes=v["bytes"], files=files),
             _("tag:        {tag}").format(tag=_cell(v["tag"])),
             (_("registered: by {author} at {at}: {message}") if v["message"] else
              _("registered: by {author} at {at}")).format(author=v["author"], at=_cell(v["created_at"]),
                                                          message=v["message"]),
             *([_("from:       {source}").format(source=v["derived_from"])] if v.get("derived_from") else []),
             *([_("restored:   from v{version}").format(version=v["restored_from"])] if v.get("restored_from") else [])]
    duplicates = quality.get("duplicates")
    if isinstance(duplicates, dict):
        lines.append(_("duplicates: {count} rows").format(count=duplicates.get("count")))
    columns = quality.get("columns") or []
    if columns:
        masked = set(v.get("masked_columns") or [])
        rows = []
        for column in columns:
            numeric = column.get("numeric") or {}
            low = numeric.get("min", column.get("min_value"))
            high = numeric.get("max", column.get("max_value"))
            rows.append({"column": column["name"], "type": column["type"],
                         "missing": f"{(column.get('null_fraction') or 0) * 100:.1f}%",
                         "distinct": column.get("distinct_count"),
                         "range": _("(masked)") if column["name"] in masked
                         else (f"{_cell(low)} .. {_cell(high)}" if low is not None or high is not None else None)})
        lines += ["", table(rows, ["column", "type", "missing", "distinct", "range"])]
    elif (v.get("schema") or {}).get("kind") == "images":
        classes = v["schema"].get("classes") or {}
        lines += ["", table([{"class": k, "images": n} for k, n in classes.items()], ["class", "images"])]
    lines.append(_("(--json: the whole quality report)"))
    return "\n".join(lines)
