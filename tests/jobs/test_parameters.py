"""Parameters are data, never code: declaration, validation, and an injection-proof rendering."""

from __future__ import annotations

import ast
import json
import string
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aitip.errors import InvalidInput
from aitip.jobs.parameters import (
    declared_parameters,
    render_parameters_cell,
    validate_parameters,
    verify_parameters_cell,
)
from tests.support.notebooks import notebook

DECLARING = notebook("pass", parameters=(
    "lr = 0.01  # learning rate\nepochs: int = 3\nname = 'run'\nflags = [1, 2]\nconfig = {'a': 1}\n"
    "enabled = True\nanything = None\ncomputed = len('abc')\n"))


def test_declared_parameters_and_their_types() -> None:
    declared = declared_parameters(DECLARING)
    assert {n: p.type_name for n, p in declared.items()} == {
        "lr": "float", "epochs": "int", "name": "str", "flags": "list", "config": "dict", "enabled": "bool",
        "anything": "NoneType", "computed": "any"}
    assert declared["lr"].help == "learning rate"


def test_declared_parameters_agree_with_papermill(tmp_path) -> None:
    import nbformat
    import papermill

    path = tmp_path / "n.ipynb"
    nbformat.write(nbformat.from_dict(DECLARING), path)
    assert set(papermill.inspect_notebook(str(path))) == set(declared_parameters(DECLARING))


@pytest.mark.parametrize(("parameters", "code"), [
    ({"nope": 1}, "undeclared_parameter"),
    ({"lr": "fast"}, "parameter_type"),
    ({"epochs": 2.5}, "parameter_type"),
    ({"epochs": True}, "parameter_type"),
    ({"enabled": 1}, "parameter_type"),
    ({"flags": {"a": 1}}, "parameter_type"),
    ({"name": ["x"]}, "parameter_type"),
    ({"__class__": 1}, "invalid_parameter"),
    ({"import": 1}, "invalid_parameter"),
    ({"a b": 1}, "invalid_parameter"),
    ({"lr": float("nan")}, "invalid_parameter"),
    ({"name": "x" * 70_000}, "parameters_too_large"),
    ({"config": {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": 1}}}}}}}}}}, "parameter_too_deep"),
])
def test_bad_parameters_are_refused(parameters: dict[str, Any], code: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        validate_parameters(DECLARING, parameters)
    assert refused.value.code == code


def test_good_parameters_pass_with_widening() -> None:
    accepted = {"lr": 1, "epochs": 5, "anything": {"x": [1]}, "computed": "whatever", "name": None}
    assert validate_parameters(DECLARING, accepted) == accepted


def test_a_notebook_without_parameters_cell_takes_no_parameters() -> None:
    with pytest.raises(InvalidInput) as refused:
        validate_parameters(notebook("print(1)"), {"x": 1})
    assert refused.value.code == "no_parameters_cell"
    assert validate_parameters(notebook("print(1)"), {}) == {}


@pytest.mark.parametrize("source", [
    "x = __import__('os').system('id')\n",
    "x = 1\nimport os\n",
    "x = [1, len('a')]\n",
    "x = (lambda: 1)\n",
    "x = y\n",
])
def test_verification_refuses_anything_but_literals(source: str) -> None:
    with pytest.raises(ValueError):
        verify_parameters_cell(source, {"x": 1})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(codec="utf-8"), max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.text(alphabet=st.characters(codec="utf-8"), max_size=10), children, max_size=4),
    max_leaves=12,
)
names = st.text(alphabet=string.ascii_letters + string.digits + "_", min_size=1, max_size=12)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(names, json_values, max_size=5))
def test_no_input_gets_code_into_the_injected_cell(parameters: dict[str, Any]) -> None:
    try:
        source = render_parameters_cell(parameters)
    except InvalidInput:
        return  # names that are keywords, dunders or not identifiers are refused outright
    tree = ast.parse(source)
    assert all(isinstance(node, ast.Assign) for node in tree.body)
    for node in tree.body:
        for sub in ast.walk(node.value):
            assert not isinstance(sub, (ast.Call, ast.Attribute, ast.Subscript, ast.Lambda, ast.NamedExpr,
                                        ast.Import, ast.ImportFrom))
    namespace: dict[str, Any] = {}
    exec(compile(tree, "<injected>", "exec"), {"__builtins__": {}}, namespace)  # noqa: S102 - proving it is inert
    assert json.dumps(namespace, sort_keys=True) == json.dumps(parameters, sort_keys=True)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30), json_values)
def test_hostile_names_never_render(name: str, value: Any) -> None:
    if name.isidentifier() and not name.startswith("__"):
        import keyword

        if not keyword.iskeyword(name):
            return
    with pytest.raises(InvalidInput):
        render_parameters_cell({name: value})
