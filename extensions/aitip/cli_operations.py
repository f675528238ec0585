"""The operation table's CLI commands, generated: ``aitip <group> <verb> --<argument> ...``.

Each row becomes a sub-command whose options are its inputs (path parameters, query and body fields), with
the models' types, choices (enums, literals), defaults and descriptions; a list field is repeatable, a field
that is an object takes JSON. It runs through the SDK's generated method (``client.ops``), prints a table
(or ``key: value`` lines) by default and the answer's JSON with ``--json``. Rows that a hand-written command
already offers in a friendlier form (``aitip run`` for ``jobs.submit``) are listed in :data:`HAND_WRITTEN`;
the coverage test checks that every row is reachable one way or the other.
"""

from __future__ import annotations

import argparse
import base64
import enum
import json
import sys
import types
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_core import to_jsonable_python

from .operations.inputs import input_fields
from .operations.parameters import PATH_PARAMETERS
from .operations.table import Operation, operations
from .i18n import N_
from .i18n import shell_gettext as _
from .i18n import shell_ngettext as ngettext
from .text_tables import cell, field_lines, label, table

FACE = "cli"
# Rows whose command is hand-written, and that command.
HAND_WRITTEN = {
    "platform.me": "me",
    "projects.list": "projects list", "projects.create": "projects create", "projects.get": "projects show",
    "projects.update": "projects update", "projects.archive": "projects archive",
    "projects.unarchive": "projects unarchive",
    "members.list": "projects members list", "members.add": "projects members add",
    "members.update": "projects members set-role", "members.remove": "projects members remove",
    "jobs.list": "jobs list", "jobs.submit": "run", "jobs.get": "jobs show", "jobs.cancel": "jobs cancel",
    "jobs.retry": "jobs retry", "jobs.rerun": "jobs rerun", "jobs.events": "jobs logs", "jobs.notebook": "jobs notebook",
    "sweeps.create": "sweep", "sweeps.get": "sweeps show",
}
# Shorter names a group of commands also answers to (``aitip eval create ... --wait``).
GROUP_ALIASES = {"evaluations": ["eval"], "simulations": ["sim"]}
# Options every command has; an input of the same name is given as --<group>-<name> (--webhook-url).
GLOBAL_OPTIONS = {"--url", "--token", "--json", "--help"}


def generated(row: Operation) -> bool:
    return FACE not in row.not_in and row.name not in HAND_WRITTEN


def command_of(row: Operation) -> str:
    """The command line that runs ``row``."""
    return HAND_WRITTEN.get(row.name) or f"{row.group} {row.verb.replace('_', '-')}"


def _options(annotation: Any) -> dict[str, Any]:
    """argparse options for a field of this type."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        kept = [option for option in typing.get_args(annotation) if option is not type(None)]
        annotation = kept[0] if len(kept) == 1 else dict
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _options(typing.get_args(annotation)[0])
    if origin is typing.Literal:
        return {"choices": [str(value) for value in typing.get_args(annotation)]}
    if origin is list:
        element = typing.get_args(annotation)[0] if typing.get_args(annotation) else str
        return {**_options(element), "action": "append"}
    if isinstance(annotation, type) and issubclass(annotation, bool):
        return {"action": argparse.BooleanOptionalAction}
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return {"choices": [member.value for member in annotation]}
    if annotation in (int, float):
        return {"type": annotation}
    if annotation is str or (isinstance(annotation, type) and issubclass(annotation, str)):
        return {}
    return {"type": _json_value, "metavar": "JSON"}


def _escaped(text: str) -> str:
    """Help text as argparse takes it: its own %-formatting would read "50 %" as a placeholder."""
    return text.replace("%", "%%")


def _json_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(_("not JSON: {error}").format(error=exc)) from exc


def _base64_value(text: str) -> str:
    """A ``*_base64`` field's value as given, or ``@path``: that file, encoded here (an image is far larger than
    a command line may be)."""
    if not text.startswith("@"):
        return text
    try:
        return base64.b64encode(Path(text[1:]).expanduser().read_bytes()).decode("ascii")
    except OSError as exc:
        raise argparse.ArgumentTypeError(_("cannot read {path}: {error}").format(path=text[1:],
                                                                                error=exc.strerror)) from exc


def option_flag(row: Operation, name: str) -> str:
    flag = "--" + name.replace("_", "-")
    return f"--{row.group.removesuffix('s')}-{name.replace('_', '-')}" if flag in GLOBAL_OPTIONS else flag


# The help of an input the table gives no description of: where it goes.
WHERE = {"path": N_("a path parameter"), "query": N_("a query parameter"), "body": N_("a body field")}


def _field_help(row: Operation, field: Any, required: bool, models: dict[str, Any]) -> str:
    """An option's help in the shell's language: the field's description (the catalog holds every one the
    table has: :func:`extract_messages`) and what the option takes beyond it."""
    help_text = _(field.description) if field.description else _(WHERE[field.where])
    if field.name.endswith("_base64"):
        help_text += _("; or @path: the file, encoded here")
    if row.takes_file and field.name == "filename":
        return help_text + _(" (default: the file's own name)")
    if required or field.where == "path" or "default:" in (field.description or ""):
        return help_text
    default = models[field.where].model_fields[field.name].get_default(call_default_factory=True)
    if isinstance(default, BaseModel) or (isinstance(default, list) and default
                                           and all(isinstance(item, BaseModel) for item in default)):
        # nested settings: their defaults as the JSON the option takes
        shown = json.dumps(to_jsonable_python(default, exclude_none=True), separators=(", ", ": "))
    elif default not in (None, "", [], {}):
        shown = str(getattr(default, "value", default))
    else:
        return help_text
    return help_text + _(" (default: {value})").format(value=shown)


def _add_command(verbs: Any, common: argparse.ArgumentParser, row: Operation,
                 run: Callable[[argparse.Namespace], int]) -> None:
    summary = _(row.summary)
    parser = verbs.add_parser(row.verb.replace("_", "-"), parents=[common], help=_escaped(summary),
                              description=_escaped(_("{summary}. {method} {path} (needs {action}).").format(
                                  summary=summary, method=row.method, path=row.path, action=row.action)))
    models = {"query": row.query, "body": row.body}
    for field in input_fields(row):
        flag = option_flag(row, field.name)
        if field.where == "path":
            options: dict[str, Any] = {"type": int} if PATH_PARAMETERS[field.name].json_type == "integer" else {}
        else:
            info = models[field.where].model_fields[field.name]  # type: ignore[union-attr]
            options = _options(info.annotation)
            if field.name.endswith("_base64"):
                options = {"type": _base64_value}
        required = field.required and not (row.takes_file and field.name == "filename")
        if "choices" not in options and options.get("action") is not argparse.BooleanOptionalAction:
            options.setdefault("metavar", field.name.upper())
        short = ("-P",) if flag == "--project" else ()  # as `aitip run -P` and `aitip data add -P` take it
        parser.add_argument(flag, *short, dest=f"arg_{field.name}", required=required, default=None,
                            help=_escaped(_field_help(row, field, required, models)), **options)
    if row.takes_file:
        parser.add_argument("--file", required=True, help=_("the file to register"))
    if row.gives_file:
        parser.add_argument("--output", "-o", help=_("where to write the file (default: standard output)"))
    if followed(row):
        parser.add_argument("--wait", "-w", action="store_true",
                            help=_("wait until it ends; exit 1 unless it ends well (succeeded, registered, passed)"))
        parser.add_argument("--timeout", type=float, default=3600.0, metavar="SECONDS",
                            help=_("with --wait: give up after this long (exit 1; default: 3600)"))
    parser.set_defaults(func=run, operation=row.name)


def help_texts() -> Iterator[str]:
    """The table's words the generated commands show (summaries and input descriptions), each once."""
    seen: set[str] = set()
    for row in operations():
        if not generated(row):
            continue
        for text in [row.summary] + [field.description for field in input_fields(row) if field.description]:
            if text not in seen:
                seen.add(text)
                yield text


def extract_messages(fileobj: Any, keywords: Any, comment_tags: Any, options: dict[str, Any]) -> Iterator[Any]:
    """A Babel extractor for this module (``babel.cfg``): its own ``_()`` marks, then the operation table's
    words as :func:`help_texts` lists them — they are the API's documentation, written in the table and the
    models, and the CLI shows them translated."""
    from .errors import extract_messages as extract_python_and_errors

    yield from extract_python_and_errors(fileobj, keywords, comment_tags, options)
    for text in help_texts():
        yield 0, None, text, []


def add_operation_commands(commands: Any, common: argparse.ArgumentParser,
                           groups: dict[str, Any], run: Callable[[argparse.Namespace], int]) -> None:
    """Add a command for every generated row: into ``groups`` (a hand-written group's sub-commands) where the
    group exists, else into a new group."""
    for row in operations():
        if not generated(row):
            continue
        if row.group not in groups:
            verbs = [r.verb.replace("_", "-") for r in operations() if r.group == row.group and generated(r)]
            # Spelled as the verbs are (evaluation-policies); the SDK's and MCP's name (evaluation_policies) is
            # an alias.
            spelled = row.group.replace("_", "-")
            group = commands.add_parser(spelled, parents=[common],
                                        help=_("commands: {verbs}").format(verbs=", ".join(verbs)),
                                        aliases=([row.group] if spelled != row.group else [])
                                        + GROUP_ALIASES.get(row.group, []))
            groups[row.group] = group.add_subparsers(dest=f"{row.group}_command", required=True, metavar="ACTION")
        _add_command(groups[row.group], common, row, run)


def arguments_of(args: argparse.Namespace, row: Operation) -> dict[str, Any]:
    arguments = {field.name: value for field in input_fields(row)
                 if (value := getattr(args, f"arg_{field.name}", None)) is not None}
    if row.takes_file:
        arguments["file"] = args.file
    return arguments


# A followed operation ended well in these states; any other end (failed, rejected, error...) exits 1.
ENDED_WELL = {"succeeded", "registered", "passed", "completed"}


def followed(row: Operation) -> bool:
    """A long-running row whose handle the CLI can follow (``--wait``): the same table MCP's tools follow."""
    from .operations.tools import FOLLOW

    return row.name in FOLLOW


def follow(client: Any, row: Operation, arguments: dict[str, Any], handle: Any, timeout: float,
           poll_seconds: float = 1.0) -> Any:
    """Read the handle back until it ends (or ``timeout``), as its reader row reads it."""
    import time

    from .operations.table import operation
    from .operations.tools import FINISHED, FOLLOW

    reader_name, parameter, _waiter = FOLLOW[row.name]
    reader = operation(reader_name)
    read = getattr(getattr(client.ops, reader.group), reader.verb)
    path = {name: value for name, value in arguments.items() if name in reader.parameters}
    path[parameter] = handle.id
    deadline = time.monotonic() + timeout
    current = handle
    while str(getattr(getattr(current, "state", None), "value", getattr(current, "state", None))) not in FINISHED:
        if time.monotonic() >= deadline:
            break
        time.sleep(poll_seconds)
        current = read(**path)
    return current


def ended_well(result: Any) -> bool:
    state = getattr(result, "state", None)
    return str(getattr(state, "value", state)) in ENDED_WELL


def run_operation(client: Any, args: argparse.Namespace) -> Any:
    from .operations.table import operation

    row = operation(args.operation)
    method = getattr(getattr(client.ops, row.group), row.verb)
    arguments = arguments_of(args, row)
    result = method(**arguments)
    if getattr(args, "wait", False):
        return follow(client, row, arguments, result, args.timeout)
    if row.gives_file:
        if args.output:
            Path(args.output).write_bytes(result)
            return {"written": args.output, "bytes": len(result)}
        sys.stdout.buffer.write(result)
        return None
    return result


# ----- what a person reads -----

# Answers a domain writes out itself for a person (by the answer model's name): "module:function" of its JSON.
HUMAN_TEXT = {"Sweep": "aitip.jobs.text:sweep_text",
              "ShippedNotebookList": "aitip.jobs.text:shipped_notebooks_text",
              "Evaluation": "aitip.evaluation.text:evaluation_text",
              "EvaluationDetail": "aitip.evaluation.text:evaluation_text",
              "Simulation": "aitip.simulation.text:simulation_text",
              "SimulationDetail": "aitip.simulation.text:simulation_text",
              "Endpoint": "aitip.serving.text:endpoint_text",
              "EndpointMetrics": "aitip.serving.text:metrics_text",
              "Optimization": "aitip.serving.text:optimization_text",
              "Manifests": "aitip.serving.text:manifests_text",
              "RunList": "aitip.experiments.text:runs_text",
              "RunDetail": "aitip.experiments.text:run_text",
              "RunComparison": "aitip.experiments.text:comparison_text",
              "ModelList": "aitip.experiments.text:models_text",
              "RegisteredModel": "aitip.experiments.text:model_text",
              "Release": "aitip.releases.text:release_text",
              "Rollout": "aitip.releases.text:rollout_text",
              "ReleasePolicy": "aitip.releases.text:policy_text",
              "EvaluationList": "aitip.evaluation.text:evaluations_text",
              "SimulationList": "aitip.simulation.text:simulations_text",
              "Template": "aitip.simulation.text:template_text",
              "TemplateList": "aitip.simulation.text:templates_text",
              "LineageGraph": "aitip.datasets.lineage_text:lineage_text",
              "AnnotationTask": "aitip.datasets.annotation_text:task_text",
              "TaskList": "aitip.datasets.annotation_text:tasks_text",
              "AssignmentList": "aitip.datasets.annotation_text:queue_text",
              "Assignment": "aitip.datasets.annotation_text:assignment_text",
              "DatasetVersion": "aitip.datasets.version_text:version_text",
              "Delivery": "aitip.webhooks.text:delivery_text",
              "DeliveryList": "aitip.webhooks.text:deliveries_text",
              "Provisioning": "aitip.devices.text:provisioning_text",
              "DeviceList": "aitip.devices.text:devices_text",
              "Device": "aitip.devices.text:device_text",
              "Fleet": "aitip.devices.text:fleet_text",
              "DeviceRollout": "aitip.devices.text:device_rollout_text",
              "DeviceRolloutList": "aitip.devices.text:device_rollouts_text"}
# Writers that also say where the platform is (a command to run against it), given as ``platform_url``.
TAKES_PLATFORM_URL = frozenset({"aitip.devices.text:provisioning_text"})
# Answers without a model of their own, by operation.
HUMAN_TEXT_BY_OPERATION = {"resources.now": "aitip.resources.text:snapshot_text",
                           **{f"{kind}_policies.{verb}": f"aitip.{kind}.text:{kind}_policy_text"
                              for kind in ("evaluation", "simulation") for verb in ("get", "set")},
                           "resources.history": "aitip.resources.text:history_text"}


def human(value: Any, operation: str | None = None, platform_url: str | None = None) -> str:
    """A table for a list of records (a model's one list field, or a page's items), else ``key: value``. The
    fields are the API's; their titles are translated where :data:`aitip.text_tables.LABELS` knows them."""
    writer = HUMAN_TEXT.get(type(value).__name__) or HUMAN_TEXT_BY_OPERATION.get(operation or "")
    if writer is not None:
        import importlib

        module, _colon, function = writer.partition(":")
        write = getattr(importlib.import_module(module), function)
        data = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
        if writer in TAKES_PLATFORM_URL:
            return write(data, platform_url=platform_url)  # type: ignore[no-any-return]
        return write(data)  # type: ignore[no-any-return]
    data = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
    if data is None:
        return _("done")
    if isinstance(data, dict):
        records = [(key, item) for key, item in data.items()
                   if isinstance(item, list) and item and all(isinstance(entry, dict) for entry in item)]
        lists = [key for key, item in data.items() if isinstance(item, list)]
        if not records and len(lists) == 1 and not data[lists[0]]:  # an empty page, and what it was asked for
            return _("(none)") + (_footer(data, lists[0]) if len(data) > 3 else "")
        if len(records) == 1:
            key, rows = records[0]
            return table(rows, _columns(rows)) + _footer(data, key)
        return "\n".join(field_lines({key: _text(item) for key, item in data.items()}, list(data), 22))
    if isinstance(data, list) and all(isinstance(entry, dict) for entry in data):
        return table(data, _columns(data))
    return _text(data)


def _footer(data: dict[str, Any], records: str) -> str:
    """The line under a table: the answer's scalar fields beside its records (a total, the period asked for)."""
    rest = {key: value for key, value in data.items() if key != records and _scalar(value)}
    return "\n" + "  ".join(f"{label(key)}: {_text(value)}" for key, value in rest.items()) if rest else ""


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _columns(rows: list[dict[str, Any]], most: int = 8) -> list[str]:
    """The scalar fields the records have, in their order, at most ``most``."""
    columns: list[str] = []
    for row in rows:
        for key, value in row.items():
            if key not in columns and _scalar(value):
                columns.append(key)
    return columns[:most]


def _text(value: Any) -> str:
    if isinstance(value, dict):
        inner = ", ".join(f"{k}={cell(v) if _scalar(v) else '…'}" for k, v in list(value.items())[:6])
        return "{" + inner + (", …" if len(value) > 6 else "") + "}" if value else "-"
    if isinstance(value, list) and value and not all(_scalar(item) for item in value):
        return ngettext("({count} item; --json shows it)", "({count} items; --json shows them)",
                        len(value)).format(count=len(value))
    return cell(value)
