"""The operation table is whole and every face offers it: a row missing from a face, or a face's
declaration that differs from its row, fails here."""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from aitip.cli_operations import generated as cli_generated
from aitip.client import Client
from aitip.datasets.models import InlineUpload
from aitip.identity.permissions import PERMISSIONS, PermissionScope
from aitip.operations import Operation, operations
from aitip.operations import tools as mcp_tools
from aitip.operations.binding import binding
from aitip.operations.inputs import input_fields, input_schema
from aitip.operations.table import validate
from aitip.server.openapi import openapi_document
from aitip.server.routes import API_PREFIX, operation_routes

ROWS = operations()
# Actions no operation row performs: a relay, a foreign API (an endpoint's inference protocols and its feedback),
# the MCP endpoint itself.
NOT_OPERATIONS = {"workspace.forward", "tracking.gateway", "platform.mcp", "serving.invoke", "serving.label",
                  "device.connect"}


def test_every_declared_action_is_performed_by_some_operation() -> None:
    used = {row.action for row in ROWS}
    assert set(PERMISSIONS) - used == NOT_OPERATIONS


@pytest.mark.parametrize("row", ROWS, ids=[row.name for row in ROWS])
def test_every_face_offers_the_operation_as_its_row_says(row: Operation) -> None:
    routes = {route.template: route for route in operation_routes()}
    route = routes[row.path]
    assert route.handler.operations[row.method] is row, "REST: the handler declares another row"
    assert callable(getattr(route.handler, row.method.lower())), "REST: the method is not implemented"

    documented = openapi_document()["paths"][f"/{API_PREFIX}{row.path}"][row.method.lower()]
    assert documented["operationId"] == row.name.replace(".", "_")
    assert documented["x-aitip-action"] == row.action
    assert str(row.status) in documented["responses"]

    if row.call is not None:
        binding(row)  # the service method takes every input
    fields = {field.name for field in input_fields(row)}
    assert set(input_schema(row)["properties"]) == fields

    client = Client(url="http://127.0.0.1:9/", token="unused")
    try:
        group = getattr(client.ops, row.group, None)
        offered_in_sdk = group is not None and hasattr(group, row.verb)
        assert offered_in_sdk == ("sdk" not in row.not_in), "SDK"
        if offered_in_sdk:
            signature = getattr(group, row.verb).__signature__
            assert fields <= set(signature.parameters)
    finally:
        client.close()

    tools = mcp_tools.by_name()
    taken = {field.name for field in input_fields(row, inline=True)}
    assert (mcp_tools.tool_name(row) in tools) == ("mcp" not in row.not_in), "MCP"
    if "mcp" not in row.not_in:
        assert row.call is not None, "an MCP tool runs the row's service call"
        tool = tools[mcp_tools.tool_name(row)]
        waits = {mcp_tools.WAIT_ARGUMENT} if row.name in mcp_tools.FOLLOW else set()
        assert set(tool.input_schema["properties"]) == taken | waits, "MCP: the tool takes the row's inputs"
    if cli_generated(row):
        from aitip.cli import build_parser

        shown = io.StringIO()
        with contextlib.redirect_stdout(shown), pytest.raises(SystemExit):
            build_parser().parse_args([row.group, row.verb.replace("_", "-"), "--help"])
        said = "".join(shown.getvalue().split())  # argparse wraps lines at spaces and hyphens
        assert f"{row.method}{row.path}" in said, "CLI: its help says what it calls"
    if row.inline_body is not None:
        assert getattr(route.handler, "_stream_request_body", False), "REST streams what MCP takes inline"
        assert taken - fields == set(row.inline_body.model_fields), "MCP takes the file in place of the stream"


def test_the_table_refuses_what_would_make_two_faces_disagree() -> None:
    row = ROWS[1]
    with pytest.raises(ValueError, match="declared twice"):
        validate([row, row])
    clash = Operation("projects.other", row.action, row.method, row.path, "the same route again", call=row.call)
    with pytest.raises(ValueError, match=re.escape(f"{row.method} {row.path} is declared twice")):
        validate([row, clash])
    with pytest.raises(KeyError, match="no permission"):
        validate([Operation("projects.explode", "project.explode", "POST", "projects/x", "?", call=row.call)])
    with pytest.raises(ValueError, match="neither a service call nor a handler"):
        validate([Operation("projects.nothing", "project.read", "GET", "nothing", "?")])
    with pytest.raises(ValueError, match="an inline body stands in for a streamed body"):
        validate([Operation("projects.inline", "project.read", "POST", "inline", "?", call=row.call,
                            inline_body=InlineUpload)])


def test_public_and_project_rows_are_authenticated_as_their_action_says() -> None:
    for row in ROWS:
        scope = row.permission.scope
        method = getattr({r.template: r for r in operation_routes()}[row.path].handler, row.method.lower())
        assert hasattr(method, "__allow_unauthenticated") == (scope is PermissionScope.public), row.name


def test_the_readme_shows_the_table_as_it_is() -> None:
    from pathlib import Path

    from aitip.operations.table import markdown

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    shown = readme.split("<!-- operations-table:begin -->\n", 1)[1].split("\n<!-- operations-table:end -->", 1)[0]
    assert shown == markdown(), "regenerate: python -c 'from aitip.operations.table import markdown; print(markdown())'"


def test_every_operation_has_a_cli_command() -> None:
    """Generated from the row, or the hand-written command the row names (``aitip run`` for jobs.submit)."""
    import argparse

    from aitip.cli import build_parser
    from aitip.cli_operations import command_of, generated, option_flag

    def commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    found[" ".join((*prefix, name))] = sub
                    found.update(commands(sub, (*prefix, name)))
        return found

    available = commands(build_parser())
    for row in ROWS:
        if "cli" in row.not_in:
            continue
        assert command_of(row) in available, row.name
        if generated(row):
            command = available[command_of(row)]
            assert command.get_default("operation") == row.name
            flags = {flag for action in command._actions for flag in action.option_strings}
            assert {option_flag(row, field.name) for field in input_fields(row)} <= flags, row.name


def test_tool_schemas_check_the_same_with_type_lists_as_with_any_of() -> None:
    """quick_to_check only rewrites anyOf of bare types; what a schema accepts does not change."""
    import jsonschema

    from aitip.experiments.models import RunList
    from aitip.operations import tools

    original = RunList.model_json_schema(mode="serialization")
    quick = tools.quick_to_check(original)
    assert "anyOf" not in json.dumps(quick) and "anyOf" in json.dumps(original)
    assert quick["$defs"]["Run"]["properties"]["metrics"]["additionalProperties"] == {"type": ["number", "null"]}
    run = {"run_id": "a" * 32, "run_name": None, "experiment_id": "1", "status": "FINISHED", "start_time": 1,
           "end_time": None, "user": "ann", "job_id": None, "params": {"lr": "0.1"}, "metrics": {"loss": None},
           "tags": {}}
    cases = [{"runs": [run], "next_page_token": None}, {"runs": [{**run, "metrics": {"loss": "low"}}],
                                                         "next_page_token": None},
             {"runs": [{**run, "end_time": "later"}], "next_page_token": 3}]
    for instance in cases:
        assert jsonschema.Draft202012Validator(original).is_valid(instance) == \
            jsonschema.Draft202012Validator(quick).is_valid(instance)
    assert [jsonschema.Draft202012Validator(quick).is_valid(case) for case in cases] == [True, False, False]
    kept = {"anyOf": [{"type": "string", "maxLength": 3}, {"type": "null"}]}
    assert tools.quick_to_check(kept) == kept  # a branch with its own constraints stays a branch
    for tool in tools.by_name().values():
        for schema in (tool.input_schema, tool.output_schema):
            if schema is not None:
                jsonschema.Draft202012Validator.check_schema(schema)


def test_output_schemas_name_no_definition_yet_check_what_the_models_define() -> None:
    """Definitions are written in place (a client resolves no reference per item); a recursive one stays a
    reference, a reference with constraints beside it keeps both, and every instance is judged as before."""
    import jsonschema

    from aitip.experiments.models import RunList
    from aitip.operations import tools

    original = RunList.model_json_schema(mode="serialization")
    inlined = tools.definitions_inlined(original)
    assert "$ref" not in json.dumps(inlined) and "$defs" not in inlined
    assert inlined["properties"]["runs"]["items"]["properties"]["run_id"]["type"] == "string"
    run = {"run_id": "a" * 32, "run_name": None, "experiment_id": "1", "status": "FINISHED", "start_time": 1,
           "end_time": None, "user": "ann", "job_id": None, "params": {"lr": "0.1"}, "metrics": {"loss": 0.5},
           "tags": {}}
    cases = [{"runs": [run], "next_page_token": None}, {"runs": [{**run, "params": {"lr": 0.1}}],
                                                         "next_page_token": None},
             {"runs": [{k: v for k, v in run.items() if k != "status"}], "next_page_token": None}, {"runs": 3}]
    assert [jsonschema.Draft202012Validator(inlined).is_valid(case) for case in cases] == \
        [jsonschema.Draft202012Validator(original).is_valid(case) for case in cases] == [True, False, False, False]

    tree = {"$defs": {"Node": {"type": "object", "properties": {"children": {"type": "array",
                                                                               "items": {"$ref": "#/$defs/Node"}}}},
                      "Leaf": {"type": "string", "maxLength": 2}},
            "type": "object", "properties": {"root": {"$ref": "#/$defs/Node", "description": "the top"},
                                             "tag": {"$ref": "#/$defs/Leaf", "maxLength": 5}}}
    kept = tools.definitions_inlined(tree)
    assert set(kept["$defs"]) == {"Node"}  # recursive: still referred to, by itself
    assert kept["properties"]["root"]["description"] == "the top" and "properties" in kept["properties"]["root"]
    assert kept["properties"]["tag"] == {"allOf": [{"type": "string", "maxLength": 2}], "maxLength": 5}
    for instance in ({"root": {"children": [{"children": []}]}, "tag": "ab"}, {"root": {"children": [3]}},
                     {"tag": "abc"}):
        assert jsonschema.Draft202012Validator(kept).is_valid(instance) == \
            jsonschema.Draft202012Validator(tree).is_valid(instance)
    assert "$ref" not in json.dumps(tools.by_name()["runs_list"].output_schema)


def test_a_base64_field_takes_a_file_on_the_command_line(tmp_path: Path) -> None:
    """A firmware image is far larger than a command-line argument may be: ``@path`` reads and encodes it."""
    import base64

    from aitip.cli import build_parser

    image = tmp_path / "board.bin"
    image.write_bytes(bytes(range(256)) * 1024)
    args = build_parser().parse_args(["releases", "request", "--project", "p", "--kind", "firmware", "--name", "fw",
                                      "--version", "1.0.0", "--hardware", "x1", "--firmware-base64", f"@{image}"])
    assert base64.b64decode(args.arg_firmware_base64) == image.read_bytes()
    args = build_parser().parse_args(["releases", "request", "--project", "p", "--kind", "firmware", "--name", "fw",
                                      "--version", "1.0.0", "--hardware", "x1", "--firmware-base64", "AAEC"])
    assert args.arg_firmware_base64 == "AAEC"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["releases", "request", "--project", "p", "--kind", "firmware", "--name", "fw",
                                   "--version", "1.0.0", "--firmware-base64", f"@{tmp_path / 'missing.bin'}"])
