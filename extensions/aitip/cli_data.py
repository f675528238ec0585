"""The ``aitip data`` commands: register, list, show, diff, restore, preview a project's datasets and follow a
node's lineage (a version's summary and a line per column; ``--json`` for the whole report)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from .cli_common import client_for, emit
from .datasets.version_text import version_text
from .i18n import shell_gettext as _
from .i18n import shell_ngettext as ngettext
from .text_tables import table

DATASET_COLUMNS = ["name", "latest_version", "versions", "created_by", "created_at"]
VERSION_COLUMNS = ["version", "format", "rows", "bytes", "files", "author", "message", "tag", "created_at"]


def _datasets(client: Any) -> Any:
    from .datasets.sdk import DatasetsAPI

    return DatasetsAPI(client)


def cmd_data_add(args: argparse.Namespace) -> int:
    with client_for(args) as client:
        version = _datasets(client).add(args.project, args.name, args.path, message=args.message,
                                        format=args.format)
    emit(args, version, registered_text)
    return 0


def registered_text(version: Any) -> str:
    rows = ngettext("{count} row", "{count} rows", version.rows).format(count=version.rows) \
        if version.rows is not None else _("rows unknown")
    return _("{dataset} v{version} registered ({rows}, {bytes} bytes, tag {tag})").format(
        dataset=version.dataset, version=version.version, rows=rows, bytes=version.bytes, tag=version.tag)


def cmd_data_list(args: argparse.Namespace) -> int:
    with client_for(args) as client:
        datasets = _datasets(client).list(args.project)
    emit(args, datasets, lambda ds: table([d.model_dump(mode="json") for d in ds], DATASET_COLUMNS))
    return 0


def cmd_data_versions(args: argparse.Namespace) -> int:
    with client_for(args) as client:
        versions = _datasets(client).versions(args.project, args.name)
    emit(args, versions, lambda vs: table([v.model_dump(mode="json") for v in vs], VERSION_COLUMNS))
    return 0


def cmd_data_show(args: argparse.Namespace) -> int:
    with client_for(args) as client:
        version = _datasets(client).version(args.project, args.name, args.version)
    emit(args, version, lambda shown: version_text(shown.model_dump(mode="json", by_alias=True)))
    return 0


def cmd_data_diff(args: argparse.Namespace) -> int:
    with client_for(args) as client:
        diff = _datasets(client).diff(args.project, args.name, args.before, args.after)

    def human(d: Any) -> str:
        content = _("content changed") if d.content_changed else _("content unchanged")
        lines = [f"{d.dataset}: v{d.from_version} -> v{d.to_version}",
                 _("rows: {before} -> {after} ({delta})").format(before=d.rows_before, after=d.rows_after,
                                                                 delta=f"{d.row_delta:+d}")
                 if d.row_delta is not None else "",
                 _("bytes: {delta}, {content}").format(delta=f"{d.bytes_delta:+d}", content=content)]
        lines += [_("column {column}: {change} ({before} -> {after})").format(
            column=c.column, change=c.change, before=c.before or "-", after=c.after or "-") for c in d.schema_changes]
        lines += [f"+ {f}" for f in d.files_added] + [f"- {f}" for f in d.files_removed]
        lines += [f"~ {f}" for f in d.files_modified]
        return "\n".join(line for line in lines if line) + ("\n" + d.dvc_diff if d.dvc_diff else "")

    emit(args, diff, human)
    return 0


def cmd_data_restore(args: argparse.Namespace) -> int:
    with client_for(args) as client:
        version = _datasets(client).restore(args.project, args.name, args.version, message=args.message)
    emit(args, version, lambda v: _("{dataset} v{version} restored from v{restored} (tag {tag})").format(
        dataset=v.dataset, version=v.version, restored=v.restored_from, tag=v.tag))
    return 0


def cmd_data_preview(args: argparse.Namespace) -> int:
    with client_for(args) as client:
        api = _datasets(client)
        version = args.version or api.version(args.project, args.name).version
        preview = api.preview(args.project, args.name, version, limit=args.limit)
    emit(args, preview, lambda p: table([dict(zip(p.columns, row, strict=True)) for row in p.rows], p.columns)
         + ("\n" + _("(masked: {columns})").format(columns=", ".join(p.masked_columns)) if p.masked_columns else ""))
    return 0


def cmd_data_lineage(args: argparse.Namespace) -> int:
    with client_for(args) as client:
        graph = _datasets(client).lineage(args.node, depth=args.depth)
    emit(args, graph, lambda g: "\n".join([f"{e.source} --{e.relation}--> {e.target}" for e in g.edges])
         or _("{node} (no links)").format(node=g.root))
    return 0


def add_data_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    data = commands.add_parser("data", parents=[common], help=_("register, inspect and restore dataset versions"))
    data_commands = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")

    def sub(name: str, func: Callable[[argparse.Namespace], int], text: str, *, named: bool = True
            ) -> argparse.ArgumentParser:
        parser = data_commands.add_parser(name, parents=[common], help=text)
        parser.add_argument("--project", "-P", required=True, help=_("the project (its name)"))
        if named:
            parser.add_argument("name", help=_("the dataset's name"))
        parser.set_defaults(func=func)
        return parser

    add = sub("add", cmd_data_add, _("register a file or a folder of class sub-folders as the next version"))
    add.add_argument("path", help=_("a file, or a folder of class sub-folders"))
    add.add_argument("--message", "-m", default="", help=_("what this version is (kept with it, like a commit "
                                                            "message)"))
    add.add_argument("--format", choices=["csv", "parquet", "jsonl", "images"],
                     help=_("the file's format (default: from its name; a folder: images)"))
    sub("list", cmd_data_list, _("the project's datasets"), named=False)
    sub("versions", cmd_data_versions, _("a dataset's versions"))
    show = sub("show", cmd_data_show, _("one version: schema, quality, tag"))
    show.add_argument("--version", "-v", type=int, help=_("this version (default: the newest)"))
    diff = sub("diff", cmd_data_diff, _("what changed between two versions"))
    diff.add_argument("before", type=int, help=_("the older version"))
    diff.add_argument("after", type=int, help=_("the newer version"))
    restore = sub("restore", cmd_data_restore, _("register an old version again as the newest"))
    restore.add_argument("version", type=int, help=_("the version to register again"))
    restore.add_argument("--message", "-m", default="", help=_("what this version is (kept with it, like a commit "
                                                                "message)"))
    preview = sub("preview", cmd_data_preview, _("the first rows (masked below maintainer)"))
    preview.add_argument("version", type=int, nargs="?", help=_("this version (default: the newest)"))
    preview.add_argument("--limit", type=int, default=20, help=_("at most this many rows"))
    lineage = data_commands.add_parser("lineage", parents=[common], help=_("the lineage graph around a node"))
    lineage.add_argument("node", help=_("a node: {forms}").format(
        forms="dataset:<project>/<name>@<v>, job:<id>, run:<id>, model:<name>@<v>"))
    lineage.add_argument("--depth", type=int, default=4, help=_("links followed from the node"))
    lineage.set_defaults(func=cmd_data_lineage)
