"""The operation table as MCP tools: which a caller sees, their schemas, and running one.

A tool is a row (its name with ``_`` for ``.``: ``runs_compare``), its input schema the row's flat
arguments (:mod:`.inputs`), its output the row's response model. ``tools/list`` offers a caller what its
roles allow somewhere: a project action needs the row's least role in at least one of the caller's projects
(a job's credential: in the job's project, and only the actions a job credential may use). The service
checks the actual project on every call, as it does for REST.

Long-running rows return at once with their handle (a job, a sweep, a dataset registration); given
``wait_seconds``, the tool keeps the call open up to that long, reporting progress as the handle's state (and
a registration's step) changes, and answers with the latest state. A long-running row with no handle to
follow is not a tool: the table must give it one (as ``registrations.create`` is the handle-giving twin of
``datasets.register``, which REST and the SDK keep for callers that would rather wait).

A row whose REST body is a streamed file (an upload) takes the file inline instead, as its ``inline_body``
says (see :mod:`.inputs`).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from pydantic import BaseModel

from ..errors import AitipError, InvalidInput
from ..identity.permissions import PermissionScope
from ..identity.roles import Role
from .binding import convert_path, invoke
from .inputs import MAX_INLINE_ENV, input_schema, max_inline_bytes, split_arguments
from .table import Operation, operation, operations

FACE = "mcp"
WAIT_ARGUMENT = "wait_seconds"
MAX_WAIT_SECONDS = 3600
# How a long-running row's handle is followed: the row it is read back with, the path parameter the handle's
# id fills, and the service whose ``wait_changed(id, timeout)`` wakes the follower (None: it reads again
# each second); and the states that end it.
FOLLOW: dict[str, tuple[str, str, str | None]] = {
    "jobs.submit": ("jobs.get", "job", "jobs"), "jobs.retry": ("jobs.get", "job", "jobs"),
    "jobs.rerun": ("jobs.get", "job", "jobs"),
    "sweeps.create": ("sweeps.get", "sweep", None),
    "registrations.create": ("registrations.get", "registration", "registrations"),
    "evaluations.create": ("evaluations.get", "evaluation", "evaluations"),
    "simulations.create": ("simulations.get", "simulation", "simulations"),
    "rollouts.start": ("rollouts.get", "rollout", None),
    "device_rollouts.start": ("device_rollouts.get", "device_rollout", None),
    "endpoints.optimize": ("endpoints.optimization", "optimization", "jobs")}  # an optimization's id is its job's
FINISHED = {"succeeded", "failed", "cancelled", "timed_out", "registered", "rejected", "passed", "error",
            "completed", "degraded", "rolled_back", "stopped"}

Progress = Callable[[float, float | None, str], Awaitable[None]]


def tool_name(row: Operation) -> str:
    return row.name.replace(".", "_")


def offered(row: Operation) -> bool:
    return FACE not in row.not_in and row.call is not None


@dataclass(frozen=True)
class Tool:
    row: Operation
    name: str
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] | None


def _tool(row: Operation) -> Tool:
    rule = row.permission
    who = f"needs {rule.min_role.value} in the project" if rule.min_role else f"{rule.scope.value} callers"
    description = f"{row.summary}. ({row.method} {row.path}; {who}.)"
    schema = input_schema(row, inline=True)
    if row.inline_body is not None:
        inline = ", ".join(row.inline_body.model_fields)
        description += (f" The file goes inline, in {inline}: at most {max_inline_bytes()} bytes decoded "
                        f"(${MAX_INLINE_ENV}); larger files are streamed to the REST route.")
    if row.long_running:
        description += (f" Long-running: returns at once with its handle; give {WAIT_ARGUMENT} to wait for it "
                        "to finish, with progress notifications.")
        schema = {**schema, "properties": {**schema["properties"], WAIT_ARGUMENT: {
            "type": "number", "minimum": 0, "maximum": MAX_WAIT_SECONDS, "default": 0,
            "description": "Wait up to this long for it to finish, reporting progress (0: return at once)"}}}
    output = row.response.model_json_schema(mode="serialization") if row.response is not None else None
    return Tool(row, tool_name(row), description, quick_to_check(schema),
                quick_to_check(definitions_inlined(output)) if output is not None else None)


DEFINITION_PREFIX = "#/$defs/"
ANNOTATIONS = frozenset({"title", "description", "default", "examples", "deprecated", "readOnly", "writeOnly"})


def definitions_inlined(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with each local ``$ref`` replaced by the definition it names, where that definition does not
    contain itself (a recursive one stays a reference, and ``$defs`` keeps what is still referred to). A client
    checking a page of answers against a reference resolves it once per item (jsonschema's ``referencing``:
    a quarter of the check of 100 runs); a model reads the shape in place."""
    definitions: dict[str, Any] = schema.get("$defs") or {}

    def expand(node: Any, open_definitions: tuple[str, ...]) -> Any:
        if isinstance(node, list):
            return [expand(item, open_definitions) for item in node]
        if not isinstance(node, dict):
            return node
        reference = node.get("$ref")
        if isinstance(reference, str) and reference.startswith(DEFINITION_PREFIX):
            name = reference[len(DEFINITION_PREFIX):]
            if name in definitions and name not in open_definitions:
                siblings = {key: expand(value, open_definitions) for key, value in node.items() if key != "$ref"}
                inlined = expand(definitions[name], (*open_definitions, name))
                if any(key in inlined and key not in ANNOTATIONS for key in siblings):
                    return {"allOf": [inlined], **siblings}
                return {**inlined, **siblings}
        return {key: expand(value, open_definitions) for key, value in node.items() if key != "$defs"}

    result = expand(schema, ())
    still_referred = _references(result)
    kept: dict[str, Any] = {}
    while still_referred - set(kept):
        for name in sorted(still_referred - set(kept)):
            kept[name] = expand(definitions[name], (name,))
        still_referred = _references(result) | _references(kept)
    if kept:
        result["$defs"] = kept
    return result


def _references(node: Any) -> set[str]:
    if isinstance(node, list):
        return set().union(*(_references(item) for item in node))
    if not isinstance(node, dict):
        return set()
    found = set().union(*(_references(value) for value in node.values()))
    reference = node.get("$ref")
    if isinstance(reference, str) and reference.startswith(DEFINITION_PREFIX):
        found.add(reference[len(DEFINITION_PREFIX):])
    return found


def quick_to_check(schema: Any) -> Any:
    """The same schema with each ``anyOf`` of bare types (pydantic's ``X | None``) as one ``type`` list: a
    client checks every answer against the output schema (the MCP SDK's does, in pure Python), and a type
    list is checked in one step where ``anyOf`` tries each branch (a page of 100 runs: about a third less)."""
    if isinstance(schema, list):
        return [quick_to_check(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    found = {key: quick_to_check(value) for key, value in schema.items()}
    options = found.get("anyOf")
    if (isinstance(options, list) and options and "type" not in found
            and all(isinstance(option, dict) and set(option) == {"type"} and isinstance(option["type"], str)
                    for option in options)):
        del found["anyOf"]
        found["type"] = [option["type"] for option in options]
    return found


@cache
def by_name() -> dict[str, Tool]:
    """Every tool, built once (their schemas come from the rows' models)."""
    unfollowed = [row.name for row in operations() if offered(row) and row.long_running and row.name not in FOLLOW]
    if unfollowed:
        raise TypeError(f"long-running tools need a handle to follow (tools.FOLLOW): {unfollowed}")
    return {tool.name: tool for tool in (_tool(row) for row in operations() if offered(row))}


def may_use(row: Operation, roles: list[Role], job_credential: bool, job_actions: frozenset[str]) -> bool:
    """Whether a caller holding ``roles`` (its best role per project) may use ``row`` somewhere."""
    rule = row.permission
    if job_credential and rule.scope is not PermissionScope.project and row.action not in job_actions:
        return False
    if rule.scope is not PermissionScope.project:
        return True
    assert rule.min_role is not None
    return any(role.at_least(rule.min_role) for role in roles)


def as_content(result: Any) -> Any:
    """A service's answer as JSON values (a tool's structured content)."""
    if isinstance(result, BaseModel):
        return result.model_dump(mode="json")
    return result


async def call_tool(services: Any, caller: Any, tool: Tool, arguments: dict[str, Any],
                    progress: Progress | None = None) -> Any:
    """Run ``tool`` for ``caller``: the service's answer (a model, or JSON values once followed). Refusals raise
    :class:`AitipError`."""
    arguments = dict(arguments)
    wait = arguments.pop(WAIT_ARGUMENT, 0) if tool.row.name in FOLLOW else 0
    if isinstance(wait, bool) or not isinstance(wait, int | float) or not 0 <= wait <= MAX_WAIT_SECONDS:
        raise InvalidInput("{wait_argument} is a number of seconds from 0 to {max_wait_seconds}",
                           wait_argument=WAIT_ARGUMENT, max_wait_seconds=MAX_WAIT_SECONDS)
    path, query, body = split_arguments(tool.row, arguments, inline=True)
    values = convert_path(tool.row, path)
    result = await invoke(services, tool.row, caller, values, query, body)
    if wait and isinstance(handle := as_content(result), dict) and "id" in handle:
        return await _follow(services, caller, tool.row, values, handle, float(wait), progress)
    return result


def answer_content(result: Any) -> tuple[str, Any]:
    """A tool's answer as its text (the serialized JSON, written in pydantic's core for a model) and its JSON
    values (the structured content)."""
    if isinstance(result, BaseModel):
        return result.model_dump_json(), result.model_dump(mode="json")
    return (json.dumps(result) if result is not None else "done"), result


async def _follow(services: Any, caller: Any, row: Operation, values: dict[str, Any], handle: dict[str, Any],
                  wait: float, progress: Progress | None) -> dict[str, Any]:
    """Read the handle back until it finishes or ``wait`` runs out, reporting each change of state (and
    step). The reader takes the handle's id and whichever of the call's path values it names."""
    reader_name, parameter, _ = FOLLOW[row.name]
    reader = operation(reader_name)
    path = {name: value for name, value in values.items() if name in reader.parameters}
    path[parameter] = int(handle["id"])
    deadline = time.monotonic() + wait
    current, count, last = handle, 0, None
    while True:
        state, step = str(current.get("state")), current.get("step")
        if (state, step) != last:
            last = (state, step)
            count += 1
            if progress is not None:
                await progress(float(count), None, f"{row.name} {handle['id']}: {_where(current)}")
        if state in FINISHED or time.monotonic() >= deadline:
            return current
        await _changed(services, row, int(handle["id"]), min(1.0, max(0.0, deadline - time.monotonic())))
        current = as_content(await invoke(services, reader, caller, path))


def _where(current: dict[str, Any]) -> str:
    """A followed handle's state as its progress says it: with the step it is at (a registration's ``quality``,
    a rollout's ``step 3 of 7, weight 20 %``, counted from 1 where the API counts from 0) until it ends."""
    state, step = str(current.get("state")), current.get("step")
    if not step or state in FINISHED:
        return state
    steps = current.get("steps")
    where = f"step {step + 1} of {len(steps)}" if isinstance(step, int) and isinstance(steps, list) else str(step)
    if isinstance(current.get("weight"), int):
        where += f", weight {current['weight']} %"
    return f"{state} ({where})"


async def _changed(services: Any, row: Operation, handle_id: int, timeout: float) -> None:
    """Until the handle's state may have changed (its service's signal), or ``timeout``."""
    waiter = FOLLOW[row.name][2]
    service = getattr(services, waiter, None) if waiter is not None else None
    if service is not None:
        await service.wait_changed(handle_id, timeout)
    else:
        await asyncio.sleep(timeout)


def error_content(error: AitipError) -> str:
    return json.dumps(error.to_json())
