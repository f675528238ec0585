"""The pure parts of the pages that act (no browser): the run form made from a parameters cell, who may
submit or set an alias (from the permission table), the alias rule, and empty-table notes."""

from __future__ import annotations

import pandas as pd
import pytest

from aitip.jobs.parameters import declared_parameters
from panel_apps.job_submit import changed_parameters, parameter_widget, parse_inputs, submit_refusal
from panel_apps.model_aliases import alias_problem, alias_refusal
from panel_apps.overview import empty_note

NOTEBOOK = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
    {"cell_type": "code", "metadata": {"tags": ["parameters"]}, "outputs": [], "execution_count": None,
     "source": "epochs = 3  # passes\nrate = 0.5\nname = 'a'\nfast = True\nsizes = [1, 2]\nwhen = None\n"}]}
ME = {"name": "bob", "admin": False, "projects": [{"project": "lab", "role": "viewer"},
                                                  {"project": "dev", "role": "developer"},
                                                  {"project": "own", "role": "maintainer"}]}


def test_the_form_has_a_widget_of_each_declared_type_holding_its_default() -> None:
    import panel as pn

    declared = declared_parameters(NOTEBOOK)
    widgets = {name: parameter_widget(parameter) for name, parameter in declared.items()}
    kinds = {name: type(widget) for name, widget in widgets.items()}
    assert kinds == {"epochs": pn.widgets.IntInput, "rate": pn.widgets.FloatInput, "name": pn.widgets.TextInput,
                     "fast": pn.widgets.Checkbox, "sizes": pn.widgets.TextInput, "when": pn.widgets.TextInput}
    assert widgets["epochs"].name == "epochs — passes" and widgets["sizes"].value == "[1, 2]"
    assert changed_parameters(declared, widgets) == {}
    widgets["epochs"].value, widgets["sizes"].value, widgets["when"].value = 7, "[3]", '{"a": 1}'
    assert changed_parameters(declared, widgets) == {"epochs": 7, "sizes": [3], "when": {"a": 1}}
    widgets["sizes"].value = "[3,"
    with pytest.raises(ValueError, match="sizes is not valid JSON"):
        changed_parameters(declared, widgets)


def test_inputs_are_read_as_the_cli_reads_them() -> None:
    assert parse_inputs("digits@2, scores\nother@10") == [{"dataset": "digits", "version": 2}, {"dataset": "scores"},
                                                         {"dataset": "other", "version": 10}]
    assert parse_inputs("  ") == []
    with pytest.raises(ValueError):
        parse_inputs("digits@latest")


@pytest.mark.parametrize(("project", "submit", "alias"), [
    ("lab", "needs the developer role; you are viewer", "needs the maintainer role in lab; you are viewer"),
    ("dev", None, "needs the maintainer role in dev; you are developer"),
    ("own", None, None),
    ("elsewhere", "you are not a member", "you are not a member"),
])
def test_who_may_act_follows_the_permission_table(project: str, submit: str | None, alias: str | None) -> None:
    for refusal, wanted in ((submit_refusal(ME, project), submit), (alias_refusal(ME, project, "digits"), alias)):
        assert (refusal is None) == (wanted is None), refusal
        if wanted is not None:
            assert wanted in refusal
    assert submit_refusal({**ME, "admin": True}, "lab") is None


@pytest.mark.parametrize(("alias", "problem"), [
    ("champion", None), ("stage-2_b", None), ("latest", "reserved"), ("V12", "reserved"), ("version3", "reserved"),
    ("has space", "letters, digits"), ("", "letters, digits"), ("x" * 256, "letters, digits"),
])
def test_the_alias_rule_is_the_platforms(alias: str, problem: str | None) -> None:
    found = alias_problem(alias)
    assert (found is None) == (problem is None) and (problem is None or problem in found)


def test_an_empty_table_says_what_to_do_next() -> None:
    assert "run a notebook" in empty_note(pd.DataFrame(columns=["id"]), "No jobs yet: run a notebook", "x")
    assert empty_note(pd.DataFrame({"id": [1]}), "No jobs yet", "x") == ""
