"""Labelling tasks as a person reads them in a terminal (the CLI's human output; ``--json`` for all): how far each
task and each annotator is, how well the annotators agree, and one's queue."""

from __future__ import annotations

from typing import Any

from ..i18n import shell_gettext as _
from ..text_tables import field_lines, table


def _share(count: int, of: int) -> str:
    return f"{count}/{of} ({count * 100 // of} %)" if of else "0"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def tasks_text(listing: dict[str, Any]) -> str:
    rows = [{_("id"): task["id"], _("name"): task["name"], _("dataset"): f"{task['dataset']} v{task['version']}",
             _("state"): task["state"], _("items"): task["items"],
             _("labelled"): _share(task["labelled"], task["assignments"]),
             _("accepted"): _share(task["accepted"], task["assignments"]),
             _("annotators"): ", ".join(task["per_annotator"]),
             _("exported"): f"v{task['exported_version']}" if task.get("exported_version") else "-"}
            for task in listing["tasks"]]
    return table(rows, list(rows[0])) if rows else _("(none)")


def task_text(task: dict[str, Any]) -> str:
    """The task, its progress as a whole and per annotator, and the agreement between annotators."""
    lines = [_("labelling task {id}: {name} on {dataset} v{version} — {state}").format(**task)]
    facts = {_("labels"): ", ".join(task["labels"]),
             _("items"): _("{items}, each labelled by {overlap}").format(items=task["items"], overlap=task["overlap"]),
             _("labelled"): _share(task["labelled"], task["assignments"]),
             _("reviewed"): _("{accepted} accepted, {rejected} rejected").format(**task),
             _("created by"): task["created_by"]}
    if task.get("instructions"):
        facts[_("instructions")] = task["instructions"]
    if task.get("exported_version"):
        facts[_("exported")] = _("as {dataset} v{version}").format(dataset=task["dataset"],
                                                                 version=task["exported_version"])
    lines += field_lines(facts, list(facts), 12)
    rows = [{_("annotator"): name, _("assigned"): counts["assigned"],
             _("labelled"): _share(counts["labelled"], counts["assigned"]),
             _("accepted"): counts["accepted"]} for name, counts in task["per_annotator"].items()]
    if rows:
        lines += ["", table(rows, list(rows[0]))]
    agreement = task["agreement"]
    if agreement["items_compared"]:
        lines += ["", _("agreement on {items} items labelled twice or more: {percent} of pairs agree; Cohen's κ "
                        "{cohen}, Fleiss' κ {fleiss}").format(
            items=agreement["items_compared"], percent=f"{agreement['percent_agreement'] * 100:.1f} %",
            cohen=_ratio(agreement["cohen_kappa"]), fleiss=_ratio(agreement["fleiss_kappa"]))]
    else:
        lines += ["", _("agreement: no item has two labels yet")]
    return "\n".join(lines)


def queue_text(queue: dict[str, Any]) -> str:
    """One's assignments: the item to label (by its id), what is known of it, and where it stands."""
    rows = []
    for assignment in queue["assignments"]:
        content = ", ".join(f"{key}={value}" for key, value in assignment["content"].items() if key != "image")
        rows.append({_("item"): assignment["item_id"], _("key"): assignment["key"],
                     _("annotator"): assignment["annotator"], _("label"): assignment["label"] or "-",
                     _("review"): assignment["review"], _("content"): content or "-"})
    if not rows:
        return _("(none)")
    lines = [table(rows, list(rows[0]))]
    if all(row[_("content")] == "-" for row in rows):
        lines.append(_("images are shown on the Labelling page; label one here with: aitip annotations label "
                       "--project P --task T --item ITEM --label LABEL"))
    return "\n".join(lines)


def assignment_text(assignment: dict[str, Any]) -> str:
    """One assignment after labelling or reviewing it."""
    label = assignment["label"]
    said = (_("labelled {label} by {annotator}").format(label=label, annotator=assignment["annotator"])
            if label is not None else _("not labelled yet ({annotator})").format(annotator=assignment["annotator"]))
    return _("item {item} ({key}): {said} — review {review}").format(item=assignment["item_id"],
                                                                      key=assignment["key"], said=said,
                                                                      review=assignment["review"])
