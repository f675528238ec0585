"""A lineage graph as a person reads it in a terminal: each relation between two named things, then the things
with their ids to ask about next (the CLI's human output; ``--json`` gives the attributes too)."""

from __future__ import annotations

from typing import Any

from ..i18n import shell_gettext as _
from ..i18n import shell_ngettext as ngettext
from ..text_tables import table


def lineage_text(graph: dict[str, Any]) -> str:
    labels = {node["id"]: node["label"] for node in graph["nodes"]}
    nodes, edges = len(graph["nodes"]), len(graph["edges"])
    lines = [_("lineage of {root} ({label}): {nodes}, {edges}").format(
        root=graph["root"], label=labels.get(graph["root"], "-"),
        nodes=ngettext("{count} node", "{count} nodes", nodes).format(count=nodes),
        edges=ngettext("{count} relation", "{count} relations", edges).format(count=edges))]
    relations = [{_("from"): labels.get(edge["source"], edge["source"]), _("relation"): edge["relation"],
                  _("to"): labels.get(edge["target"], edge["target"])} for edge in graph["edges"]]
    if relations:
        lines += ["", table(relations, list(relations[0]))]
    nodes = [{_("id"): node["id"], _("kind"): node["kind"], _("label"): node["label"]} for node in graph["nodes"]]
    lines += ["", table(nodes, list(nodes[0]))]
    return "\n".join(lines)
