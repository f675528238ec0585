"""Parameters are data, never code.

A notebook declares its parameters in the cell tagged ``parameters`` as literal assignments. A job
may set only declared names, only to JSON values whose type fits the declared default, bounded in
size and depth. The injected cell is rendered from those values and parsed back: it must consist of
literal assignments only, each reproducing the submitted value exactly.
"""

from __future__ import annotations

import ast
import json
import keyword
import math
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidInput

MAX_PARAMETERS_BYTES = 64 * 1024
MAX_DEPTH = 8
INJECTED_TAG = "injected-parameters"


@dataclass(frozen=True)
class DeclaredParameter:
    name: str
    default: Any
    type_name: str  # int, float, str, bool, list, dict, NoneType, or "any" when the default is not a literal
    help: str = ""


def parameters_cell_index(notebook: dict[str, Any]) -> int:
    for index, cell in enumerate(notebook.get("cells", [])):
        if "parameters" in (cell.get("metadata", {}).get("tags") or []):
            return index
    return -1


def _source(cell: dict[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def effective_parameters(notebook: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """Every parameter the notebook runs with: its declared defaults (those that are literals), then what
    the job gave. A notebook whose parameters cell no longer parses runs with what was given."""
    try:
        declared = declared_parameters(notebook)
    except InvalidInput:
        declared = {}
    return {**{name: p.default for name, p in declared.items() if p.type_name != "any"}, **given}


def declared_parameters(notebook: dict[str, Any]) -> dict[str, DeclaredParameter]:
    """The names, defaults and types the ``parameters`` cell declares (top-level assignments)."""
    index = parameters_cell_index(notebook)
    if index < 0:
        return {}
    source = _source(notebook["cells"][index])
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise InvalidInput("the notebook's parameters cell is not valid Python: {msg} (line {lineno})",
                           code="invalid_notebook", msg=exc.msg, lineno=exc.lineno) from exc
    lines = source.splitlines()
    declared: dict[str, DeclaredParameter] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name, value_node = node.targets[0].id, node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            name, value_node = node.target.id, node.value
        else:
            continue
        try:
            default = ast.literal_eval(value_node)
            type_name = type(default).__name__
        except (ValueError, SyntaxError, TypeError):
            default, type_name = None, "any"
        line = lines[node.lineno - 1] if node.lineno - 1 < len(lines) else ""
        comment = line.split("#", 1)[1].strip() if "#" in line else ""
        declared[name] = DeclaredParameter(name, default, type_name, comment)
    return declared


def _check_name(name: str) -> None:
    if not name.isidentifier() or keyword.iskeyword(name) or (name.startswith("__") and name.endswith("__")):
        raise InvalidInput("parameter name {name!r} must be a Python identifier, not a keyword or dunder",
                           code="invalid_parameter", name=name)


def _depth(value: Any, level: int = 0) -> int:
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level + 1)
    return level


def _check_value(name: str, value: Any) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidInput("parameter {name!r}: NaN and infinity are not JSON values", code="invalid_parameter",
                           name=name)
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidInput("parameter {name!r}: object keys must be strings", code="invalid_parameter",
                                   name=name)
            _check_value(name, item)
    elif isinstance(value, list):
        for item in value:
            _check_value(name, item)
    elif not isinstance(value, (str, int, float, bool, type(None))):
        raise InvalidInput("parameter {name!r}: {type} is not a JSON value", code="invalid_parameter",
                           name=name, type=type(value).__name__)


_COMPATIBLE = {
    "int": (int,),
    "float": (int, float),
    "str": (str,),
    "bool": (bool,),
    "list": (list,),
    "tuple": (list,),
    "dict": (dict,),
}


def _check_type(parameter: DeclaredParameter, value: Any) -> None:
    if parameter.type_name in ("any", "NoneType") or value is None:
        return
    allowed = _COMPATIBLE.get(parameter.type_name)
    if allowed is None:
        return
    is_bool = isinstance(value, bool)
    if (is_bool and bool not in allowed) or not isinstance(value, allowed):
        raise InvalidInput(
            "parameter {name!r} is declared as {type_name} (default {default!r}); got {type} {value}",
            code="parameter_type", detail={"parameter": parameter.name, "declared": parameter.type_name},
            name=parameter.name, type_name=parameter.type_name, default=parameter.default, type=type(value).__name__,
            value=json.dumps(value)[:80])


def validate_parameters(notebook: dict[str, Any], parameters: dict[str, Any]) -> dict[str, Any]:
    """Check names, size, depth and types against the notebook's declaration; returns the parameters."""
    if not isinstance(parameters, dict):
        raise InvalidInput("parameters must be a JSON object of name: value", code="invalid_parameter")
    try:
        size = len(json.dumps(parameters, allow_nan=False).encode())
    except (ValueError, TypeError) as exc:
        raise InvalidInput("parameters must be JSON values: {exc}", code="invalid_parameter", exc=exc) from exc
    if size > MAX_PARAMETERS_BYTES:
        raise InvalidInput("parameters are {size} bytes as JSON; the limit is {max_parameters_bytes}",
                           code="parameters_too_large", size=size, max_parameters_bytes=MAX_PARAMETERS_BYTES)
    if not parameters:
        return {}
    declared = declared_parameters(notebook)
    if parameters_cell_index(notebook) < 0:
        raise InvalidInput("the notebook has no cell tagged 'parameters', so it takes no parameters",
                           code="no_parameters_cell")
    for name, value in parameters.items():
        _check_name(name)
        if name not in declared:
            raise InvalidInput("parameter {name!r} is not declared in the notebook's parameters cell (declared: "
                               "{declared})", code="undeclared_parameter",
                               detail={"parameter": name, "declared": sorted(declared)},
                               name=name, declared=', '.join(sorted(declared)) or 'none')
        _check_value(name, value)
        if _depth(value) > MAX_DEPTH:
            raise InvalidInput("parameter {name!r} nests deeper than {max_depth} levels", code="parameter_too_deep",
                               name=name, max_depth=MAX_DEPTH)
        _check_type(declared[name], value)
    return parameters


def render_parameters_cell(parameters: dict[str, Any]) -> str:
    """Python source assigning each parameter a literal, verified by parsing it back."""
    lines = ["# Parameters injected by AITIP"]
    for name, value in parameters.items():
        _check_name(name)
        _check_value(name, value)
        lines.append(f"{name} = {_literal(value)}")
    source = "\n".join(lines) + "\n"
    verify_parameters_cell(source, parameters)
    return source


def _literal(value: Any) -> str:
    """repr() of JSON-derived values is a Python literal; floats keep full precision."""
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (int, str)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_literal(k)}: {_literal(v)}" for k, v in value.items()) + "}"
    raise InvalidInput("{type} is not a JSON value", code="invalid_parameter",
                       type=type(value).__name__)


def verify_parameters_cell(source: str, expected: dict[str, Any]) -> None:
    """Refuse any cell that is not exactly ``name = <literal>`` lines reproducing ``expected``."""
    tree = ast.parse(source)
    seen: dict[str, Any] = {}
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            raise ValueError(f"injected cell holds a {type(node).__name__}, not a literal assignment")
        for sub in ast.walk(node.value):
            if isinstance(sub, (ast.Call, ast.Name, ast.Attribute, ast.Subscript, ast.Lambda, ast.NamedExpr)) \
                    and not (isinstance(sub, ast.Name) and sub.id in ("True", "False", "None")):
                raise ValueError(f"injected cell evaluates {type(sub).__name__}")
        seen[node.targets[0].id] = ast.literal_eval(node.value)
    if json.dumps(seen, sort_keys=True) != json.dumps(expected, sort_keys=True):
        raise ValueError("injected cell does not round-trip the submitted parameters")
