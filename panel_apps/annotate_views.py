"""What the labelling page decides and draws, without the page: keyboard shortcuts, the order items come in,
the item itself (an image, or a row's fields), progress, and the reviewers' table."""

from __future__ import annotations

from html import escape
from typing import Any

import pandas as pd
import param
from panel.reactive import ReactiveHTML

from panel_apps.language import _

SKIP_KEYS = (" ", "ArrowRight")
UNDO_KEYS = ("Backspace", "ArrowLeft", "ctrl+z")


def shortcut_keys(labels: list[str]) -> dict[str, str]:
    """Key → label: 1-9 for the first nine labels, and each label's first letter where no other label shares it."""
    keys = {str(number): label for number, label in enumerate(labels[:9], start=1)}
    firsts = [label[:1].lower() for label in labels]
    for label, first in zip(labels, firsts, strict=True):
        if first.isalpha() and firsts.count(first) == 1:
            keys[first] = label
    return keys


def new_keys(pressed: list[str], handled: int) -> list[str]:
    """The keys of ``pressed`` after the first ``handled`` ones."""
    return list(pressed[handled:])


def action_for(key: str, shortcuts: dict[str, str]) -> tuple[str, str | None] | None:
    """What a key press does: ``("label", label)``, ``("skip", None)``, ``("undo", None)``, or nothing."""
    if key in SKIP_KEYS:
        return "skip", None
    if key in UNDO_KEYS:
        return "undo", None
    label = shortcuts.get(key) or shortcuts.get(key.lower())
    return ("label", label) if label else None


def next_index(items: list[dict[str, Any]], after: int, passed: set[int]) -> int | None:
    """The next item to show after position ``after``: the first unlabelled one not passed over (skipped), going
    round; then the skipped ones again; None when every item is labelled."""
    count = len(items)
    order = [(after + step) % count for step in range(1, count + 1)] if count else []
    open_items = [i for i in order if items[i].get("label") is None]
    fresh = [i for i in open_items if items[i]["item_id"] not in passed]
    return (fresh or open_items or [None])[0]


def progress_html(items: list[dict[str, Any]]) -> str:
    done = sum(item.get("label") is not None for item in items)
    assigned = len(items)
    share = 100 * done / assigned if assigned else 0
    text = _("{done} / {assigned} labelled").format(done=done, assigned=assigned)
    return (f"<div id='annotate-progress' data-done='{done}' data-assigned='{assigned}' "
            "style='font-family:system-ui,sans-serif'>"
            f"<div style='background:#e5e7eb;border-radius:4px;height:10px;width:100%;max-width:480px'>"
            f"<div style='background:#208050;height:10px;border-radius:4px;width:{share:.1f}%'></div></div>"
            f"<span>{escape(text)}</span></div>")


def item_html(item: dict[str, Any] | None) -> str:
    """The item to label: its picture, or its fields; never its path or folder (the platform leaves those out
    of an annotator's own items)."""
    if item is None:
        return ""
    content = item.get("content") or {}
    heading = escape(_("Item {key}").format(key=item["key"]))
    unreadable = _("This image cannot be shown (not a readable image file).")
    no_fields = _("This item has no fields to show.")
    if "image" in content:
        body = (f"<img id='annotate-image' src='{escape(content['image'])}' alt='{heading}' "
                "style='max-width:100%;max-height:420px;border:1px solid #ddd;image-rendering:auto'>"
                if content["image"] else
                f"<div style='color:#842029'>{escape(unreadable)}</div>")
    elif content:
        body = "<table class='annotate-fields' style='border-collapse:collapse'>" + "".join(
            f"<tr><th style='text-align:left;padding:.2rem .8rem .2rem 0;color:#555'>{escape(str(name))}</th>"
            f"<td style='padding:.2rem 0'>{escape('' if value is None else str(value))}</td></tr>"
            for name, value in content.items()) + "</table>"
    else:
        body = f"<div style='color:#555'>{escape(no_fields)}</div>"
    current = ""
    if item.get("label") is not None:
        current = ("<div id='annotate-current' style='color:#0f5132;margin-top:.4rem'>" + escape(
            _("Your label: {label}. Press another label to change it.").format(label=item["label"])) + "</div>")
    return (f"<div id='annotate-item' data-item='{item['item_id']}' style='font-family:system-ui,sans-serif'>"
            f"<h4 style='margin:.2rem 0'>{heading}</h4>{body}{current}</div>")


def shortcuts_html(shortcuts: dict[str, str]) -> str:
    by_label: dict[str, list[str]] = {}
    for key, label in shortcuts.items():
        by_label.setdefault(label, []).append(key)
    parts = [f"<kbd>{' / '.join(escape(k) for k in keys)}</kbd> {escape(label)}" for label, keys in by_label.items()]
    space, skip, undo = _("Space"), _("skip"), _("undo")
    parts += [f"<kbd>{escape(space)} / →</kbd> {escape(skip)}", f"<kbd>⌫ / ←</kbd> {escape(undo)}"]
    return ("<div id='annotate-keys' style='color:#555;font-family:system-ui,sans-serif;font-size:.9rem'>"
            + escape(_("Keys:")) + " " + " · ".join(parts) + "</div>")


def button_name(label: str, shortcuts: dict[str, str]) -> str:
    keys = [key for key, target in shortcuts.items() if target == label]
    return f"{label} ({' / '.join(keys)})" if keys else label


def review_frame(assignments: list[dict[str, Any]]) -> pd.DataFrame:
    """Other annotators' labelled items, pending ones first."""
    rows = [{"assignment": a["id"], "annotator": a["annotator"], "item": a["key"], "label": a["label"],
             "review": a["review"]} for a in assignments if a.get("label") is not None]
    rows.sort(key=lambda row: (row["review"] != "pending", row["annotator"], str(row["item"])))
    return pd.DataFrame(rows, columns=["assignment", "annotator", "item", "label", "review"])


class KeyboardShortcuts(ReactiveHTML):
    """Keys pressed anywhere on the page except in text fields, in order, as the growing list ``pressed``: each
    change carries every key so far, so keys pressed while the server is still busy with the last one are
    handled too (a single "last key" property lost such keys)."""

    pressed = param.List(default=[])

    _template = "<span id='keys' style='display:none'></span>"
    _scripts = {"render": """
      if (window.aitipKeys) { document.removeEventListener('keydown', window.aitipKeys) }
      window.aitipKeys = (event) => {
        const target = event.composedPath()[0]
        const tag = ((target && target.tagName) || '').toLowerCase()
        if (['input', 'textarea', 'select'].includes(tag) || event.altKey) { return }
        const key = (event.ctrlKey || event.metaKey) ? 'ctrl+' + event.key.toLowerCase() : event.key
        if (key.startsWith('ctrl+') && key !== 'ctrl+z') { return }
        data.pressed = data.pressed.concat([key])
        if ([' ', 'Backspace', 'ArrowLeft', 'ArrowRight'].includes(event.key)) { event.preventDefault() }
      }
      document.addEventListener('keydown', window.aitipKeys)
    """}
