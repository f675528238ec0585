"""Scenario templates: YAML read into the model, round trips through to_yaml, extends resolved (keys replaced,
mappings merged key by key, cycles and unknown parents refused), thresholds parsed and checked against the
template with 422s naming what is wrong, the shipped library, and the rows a template's input selects."""

from __future__ import annotations

import copy

import pytest
import yaml

from aitip.errors import InvalidInput
from aitip.simulation import templates
from aitip.simulation.templates import (
    Template,
    TemplateInput,
    parse_template,
    parse_threshold,
    select_rows,
    shipped_lookup,
    shipped_templates,
    to_yaml,
)

BASE = {
    "name": "digits_check",
    "version": 2,
    "title": "Digits check",
    "kind": "image",
    "metric": "accuracy",
    "notebook": "image_robustness",
    "conditions": [
        {"condition": "gaussian_noise", "values": [0.1, 0.2]},
        {"condition": "pgd", "values": [0.05, 0.1], "options": {"max_iter": 5}},
        {"condition": "occlusion", "values": [2]},
    ],
    "thresholds": ["accuracy under clean >= 0.9", "accuracy under pgd eps=0.1 >= 0.6", "accuracy under pgd > 0.5"],
}


def document(**changes):
    found = copy.deepcopy(BASE)
    for key, value in changes.items():
        if value is None:
            found.pop(key, None)
        else:
            found[key] = value
    return found


def refused(source, lookup=None) -> InvalidInput:
    with pytest.raises(InvalidInput) as raised:
        parse_template(source, lookup)
    assert raised.value.status == 422
    return raised.value


def test_yaml_text_becomes_the_model_with_defaults_and_round_trips():
    template = parse_template(yaml.safe_dump(BASE))
    assert isinstance(template, Template)
    assert template.input == TemplateInput()
    assert template.input.max_rows == 1000 and template.input.label_column == "label"
    assert template.regression.tolerance == 0.02
    assert (template.limits.timeout_seconds, template.limits.memory_mb, template.limits.cpus) == (900, 4096, 2)
    assert template.entry("pgd").options == {"max_iter": 5}
    assert template.entry("occlusion").values == [2] and isinstance(template.entry("occlusion").values[0], int)
    text = to_yaml(template)
    assert text.index("name:") < text.index("conditions:") < text.index("thresholds:")
    assert parse_template(text) == template
    assert parse_template(template.model_dump(mode="json")) == template


def test_a_threshold_that_is_no_string_is_refused_by_the_parser():
    with pytest.raises(InvalidInput, match="a threshold is a string"):
        parse_threshold(3)


def test_thresholds_parse_into_their_parts():
    template = parse_template(BASE)
    first, second, third = template.parsed_thresholds()
    assert (first.metric, first.condition, first.parameter, first.value, first.op, first.number) == \
        ("accuracy", "clean", None, None, ">=", 0.9)
    assert (second.condition, second.parameter, second.value, second.op, second.number) == ("pgd", "eps", 0.1, ">=", 0.6)
    assert (third.condition, third.parameter, third.op) == ("pgd", None, ">")
    assert parse_threshold("accuracy under clean>=0.9").number == 0.9
    assert parse_threshold("  accuracy   under pgd eps=.1   <   1e-1 ").number == 0.1
    assert [parse_threshold(f"accuracy under clean {op} 0.5").holds(0.5) for op in (">=", ">", "<=", "<")] == \
        [True, False, True, False]


# (the threshold, the words its 422 must hold)
BAD_THRESHOLDS = [
    ("accuracy pgd >= 0.5", ["no 'under <condition>'", "<metric> under <condition>"]),
    ("accuracy under pgd", ["no comparison"]),
    ("accuracy under pgd == 0.5", ["no comparison"]),
    ("accuracy under 0.5 <= pgd now", ["not in this order"]),
    ("accuracy under pgd >= high", ["'high' is not a number"]),
    ("accuracy under pgd >= inf", ["'inf' is not a number"]),
    ("accuracy under pgd eps=big >= 0.5", ["eps=big is not a number"]),
    ("f1 under clean >= 0.5", ["metric is 'f1'", "measures 'accuracy'"]),
    ("accuracy under fgsm >= 0.5", ["'fgsm' is not a condition of this template", "clean, gaussian_noise, pgd"]),
    ("accuracy under pgd eps=0.3 >= 0.5", ["eps=0.3 is not in the template's pgd values (0.05, 0.1)"]),
    ("accuracy under pgd sigma=0.1 >= 0.5", ["pgd has no parameter 'sigma'", "its parameter is eps"]),
    ("accuracy under clean eps=0.1 >= 0.5", ["clean has no parameter"]),
]


@pytest.mark.parametrize("threshold, words", BAD_THRESHOLDS)
def test_bad_thresholds_are_refused_naming_what_is_wrong(threshold, words):
    error = refused(document(thresholds=["accuracy under clean >= 0.9", threshold]))
    assert error.code == "invalid_threshold"
    assert error.detail[0]["field"] == "thresholds.1"
    for word in words:
        assert word in error.message, (word, error.message)


# (changes to the base document, the code, words of the message, the field named)
BAD_TEMPLATES = [
    ({"conditions": [{"condition": "fgsn", "values": [0.1]}]}, "unknown_condition", ["'fgsn'", "fgsm"],
     "conditions.0.condition"),
    ({"conditions": [{"condition": "pgd", "values": [1.5]}]}, "value_out_of_range", ["pgd eps = 1.5", "(0, 1]"],
     "conditions.0.values.0"),
    ({"conditions": [{"condition": "gaussian_noise", "values": [0.1, 0.0]}], "thresholds": []}, "value_out_of_range",
     ["gaussian_noise sigma = 0", "(0, 1]"], "conditions.0.values.1"),
    ({"conditions": [{"condition": "feature_noise", "values": [0.1]}], "thresholds": []}, "unknown_condition",
     ["image template"], "conditions.0.condition"),
    ({"conditions": [{"condition": "pgd", "values": [0.1]}, {"condition": "pgd", "values": [0.2]}],
      "thresholds": []}, "invalid_template", ["listed twice"], "conditions.1.condition"),
    ({"metric": "attack_success_rate"}, "invalid_template", ["measures 'accuracy'"], "metric"),
    ({"name": "Digits Check"}, "invalid_template", ["pattern"], "name"),
    ({"version": 0}, "invalid_template", ["greater than or equal to 1"], "version"),
    ({"version": "2"}, "invalid_template", ["integer"], "version"),
    ({"kind": "video"}, "invalid_template", ["image", "tabular"], "kind"),
    ({"title": None}, "invalid_template", ["required"], "title"),
    ({"conditions": []}, "invalid_template", ["at least 1"], "conditions"),
    ({"surprise": 1}, "invalid_template", ["not permitted"], "surprise"),
    ({"input": {"max_rows": 0}}, "invalid_template", ["greater than or equal to 1"], "input.max_rows"),
    ({"input": {"pixel_range": [1, 0]}}, "invalid_template", ["low < high"], "input.pixel_range"),
    ({"input": {"image_shape": [8, 0]}}, "invalid_template", ["1..4096"], "input.image_shape"),
    ({"regression": {"tolerance": -0.1}}, "invalid_template", ["greater than or equal to 0"], "regression.tolerance"),
    ({"limits": {"cpus": 0}}, "invalid_template", ["greater than or equal to 1"], "limits.cpus"),
    ({"limits": {"timeout_seconds": 5}}, "invalid_template", ["greater than or equal to 10"], "limits.timeout_seconds"),
    ({"thresholds": [3]}, "invalid_template", ["valid string"], "thresholds.0"),
    ({"extends": "bad name"}, "invalid_template", ["not '<name>' or '<name>@<version>'"], "extends"),
]


@pytest.mark.parametrize("changes, code, words, field", BAD_TEMPLATES)
def test_bad_templates_are_refused_naming_the_field(changes, code, words, field):
    error = refused(document(**changes))
    assert error.code == code
    assert error.detail[0]["field"] == field
    for word in words:
        assert word in error.message or any(word in problem["message"] for problem in error.detail), (word, error.detail)


@pytest.mark.parametrize("text, words", [
    ("name: [unclosed", ["not valid YAML", "line"]),
    ("- a\n- b\n", ["a YAML mapping"]),
    ("base: &b {a: 1}\nother: *b\n", ["aliases"]),
    ("name: x\n" + "# padding\n" * 40_000, ["at most 256 KiB"]),
])
def test_text_that_is_no_template_is_refused(text, words):
    error = refused(text)
    assert error.code == "invalid_template"
    for word in words:
        assert word in error.message


def test_llm_and_custom_templates():
    llm = parse_template({"name": "llm_check", "title": "LLM", "kind": "llm", "metric": "attack_success_rate",
                          "notebook": "llm_safety", "conditions": [{"condition": "prompt_injection"},
                                                                   {"condition": "jailbreak", "options": {"probes": ["dan"]}}],
                          "thresholds": ["attack_success_rate under jailbreak <= 0.05"]})
    assert llm.entry("jailbreak").options == {"probes": ["dan"]}
    assert "no clean data" in refused(llm.model_dump() | {"thresholds": ["attack_success_rate under clean <= 0.1"]}).message
    custom = parse_template({"name": "mine", "title": "Mine", "kind": "custom", "metric": "f1", "notebook": "custom",
                             "conditions": [{"condition": "custom", "options": {"rotations": [5, 10]}}],
                             "thresholds": ["f1 under rotation value=10 >= 0.7", "f1 under clean >= 0.8"]})
    assert custom.parsed_thresholds()[0].condition == "rotation"
    assert "not a condition name" in refused(custom.model_dump() | {"thresholds": ["f1 under Rot-9 >= 1"]}).message


def test_extends_replaces_keys_and_merges_mappings():
    parents = {("digits_check", 2): document(input={"max_rows": 300, "seed": 4}, limits={"cpus": 4})}

    def lookup(name, version):
        if version is None:
            version = max(number for known, number in parents if known == name) if any(
                known == name for known, _ in parents) else None
        return parents.get((name, version))

    child = {"name": "digits_child", "extends": "digits_check@2", "input": {"max_rows": 100},
             "conditions": [{"condition": "square", "values": [0.1]}], "thresholds": ["accuracy under square >= 0.2"]}
    template = parse_template(yaml.safe_dump(child), lookup)
    assert (template.name, template.version, template.extends) == ("digits_child", 1, "digits_check@2")
    assert (template.title, template.notebook) == ("Digits check", "image_robustness")
    assert [entry.condition for entry in template.conditions] == ["square"]
    assert (template.input.max_rows, template.input.seed, template.limits.cpus) == (100, 4, 4)
    assert parse_template(child | {"extends": "digits_check"}, lookup) == template.model_copy(
        update={"extends": "digits_check"})
    # A resolved template keeps extends as a record; it is read back as it is, not resolved again.
    assert templates.validate(template.model_dump(mode="json")) == template


def test_extends_that_cannot_be_resolved_is_refused():
    def lookup(name, version):
        return {"a": {"name": "a", "extends": "b", "title": "A"}, "b": {"name": "b", "extends": "a"}}.get(name)

    assert "round in a circle" in refused({"name": "c", "extends": "a"}, lookup).message
    error = refused({"name": "c", "extends": "nothing@3"}, lambda name, version: None)
    assert error.code == "unknown_template" and "no template nothing version 3" in error.message
    assert refused({"name": "c", "extends": "a"}).code == "unknown_template"  # no lookup: nothing to extend
    # The parent is checked as a template too, once merged: the child inherits its problems.
    broken = document(conditions=[{"condition": "pgd", "values": [9]}], thresholds=[])
    assert refused({"name": "c", "extends": "digits_check"}, lambda name, version: broken).code == "value_out_of_range"


def test_the_shipped_library_loads_and_the_blackbox_template_extends_the_image_one():
    library = shipped_templates()
    assert {"image_robustness", "image_robustness_blackbox", "tabular_robustness"} <= set(library)
    image = library["image_robustness"]
    assert {entry.condition: entry.values for entry in image.conditions if entry.condition in ("fgsm", "pgd",
                                                                                                "gaussian_noise")} == \
        {"fgsm": [0.05, 0.1, 0.2], "pgd": [0.05, 0.1, 0.2], "gaussian_noise": [0.1, 0.2, 0.3]}
    assert image.entry("pgd").options["max_iter"] == 10 and image.entry("occlusion").values == [2]
    assert {"blur", "brightness", "contrast", "jpeg"} <= {entry.condition for entry in image.conditions}
    assert {"accuracy under pgd eps=0.1 >= 0.60", "accuracy under clean >= 0.90"} <= set(image.thresholds)
    blackbox = library["image_robustness_blackbox"]
    assert blackbox.extends == "image_robustness@1" and blackbox.notebook == image.notebook
    names = {entry.condition for entry in blackbox.conditions}
    assert {"square", "hopskipjump"} <= names and not names & {"fgsm", "pgd"}
    assert blackbox.limits == image.limits and blackbox.input.max_rows < image.input.max_rows
    tabular = library["tabular_robustness"]
    assert {entry.condition for entry in tabular.conditions} == {"feature_noise", "missing_values", "category_swap",
                                                                 "feature_shift", "drift"}
    lookup = shipped_lookup()
    assert lookup("image_robustness", 99) is None and lookup("image_robustness", 1)["name"] == "image_robustness"
    for template in library.values():
        assert templates.library_dir().joinpath(f"{template.name}.yaml").is_file()
        assert parse_template(to_yaml(template), lookup) == template


def test_a_library_file_must_be_named_after_its_template(tmp_path):
    (tmp_path / "wrong.yaml").write_text(yaml.safe_dump(BASE))
    with pytest.raises(ValueError, match="not 'wrong'"):
        shipped_templates(tmp_path)


def test_select_rows_takes_the_test_split_and_a_stratified_sample():
    import pandas

    frame = pandas.DataFrame({"x": range(1000), "label": [index % 4 for index in range(1000)],
                              "split": ["test" if index % 5 else "train" for index in range(1000)]})
    spec = TemplateInput(max_rows=80, seed=3)
    rows = select_rows(frame, spec)
    assert len(rows) == 80 and set(rows["split"]) == {"test"}
    assert rows["label"].value_counts().to_dict() == {0: 20, 1: 20, 2: 20, 3: 20}
    assert rows.index.is_monotonic_increasing
    assert rows.equals(select_rows(frame, spec)) and not rows.equals(select_rows(frame, TemplateInput(max_rows=80)))
    assert len(select_rows(frame.drop(columns="split"), TemplateInput(max_rows=5000))) == 1000
    with pytest.raises(ValueError, match="no rows in the 'holdout' split"):
        select_rows(frame, TemplateInput(test_split="holdout"))
