"""The condition registry: its table is consistent, every condition of the spec is in it, and a template's
entry is refused with a 422 that names the condition, the parameter, the value and the range."""

from __future__ import annotations

import pytest

from aitip.errors import InvalidInput
from aitip.i18n import translator
from aitip.simulation import conditions
from aitip.simulation.conditions import REGISTRY, Range, refuse_gradient_attacks, validate_entry

SPEC = {
    "image": {"gaussian_noise", "blur", "brightness", "contrast", "jpeg", "occlusion", "fgsm", "pgd", "square",
              "hopskipjump"},
    "tabular": {"feature_noise", "missing_values", "category_swap", "feature_shift", "drift"},
    "llm": {"prompt_injection", "jailbreak", "data_exfiltration"},
    "custom": {"custom"},
}


def test_the_registry_holds_every_condition_of_the_spec_and_no_other():
    assert {kind: set(conditions.names_of_kind(kind)) for kind in SPEC} == SPEC
    assert {name for name, condition in REGISTRY.items() if condition.needs_gradients} == {"fgsm", "pgd"}


def test_every_description_is_translated():
    chinese = translator("zh_CN")
    for condition in conditions.CONDITIONS:
        assert chinese.gettext(condition.description) != condition.description, condition.name


def test_a_bad_row_fails_the_registry_check():
    good = REGISTRY["pgd"]
    with pytest.raises(AssertionError, match="unique"):
        conditions._check_registry([good, good])
    broken = conditions.Condition("x", "image", "eps", None, description="d")
    with pytest.raises(AssertionError, match="range"):
        conditions._check_registry([broken])
    bad_default = conditions.Condition("y", "image", "eps", Range(0, 1), description="d",
                                       options=(conditions.Option("n", "int", 0, Range(1, 5)),))
    with pytest.raises(AssertionError, match="default"):
        conditions._check_registry([bad_default])


@pytest.mark.parametrize("low, high, low_inclusive, high_inclusive, value, inside", [
    (0, 1, False, True, 0, False),
    (0, 1, False, True, 1e-9, True),
    (0, 1, False, True, 1, True),
    (0, 1, False, True, 1.0000001, False),
    (-1, 1, True, True, -1, True),
    (1, None, True, True, 10**9, True),
])
def test_range_ends(low, high, low_inclusive, high_inclusive, value, inside):
    assert Range(low, high, low_inclusive, high_inclusive).contains(value) is inside


@pytest.mark.parametrize("name, values, options, kind, expected", [
    ("pgd", [0.05, 0.1], {}, "image", {"condition": "pgd", "values": [0.05, 0.1],
                                       "options": {"max_iter": 10, "eps_step": None}}),
    ("pgd", [0.1], {"max_iter": 20.0}, "image", {"condition": "pgd", "values": [0.1],
                                                 "options": {"max_iter": 20, "eps_step": None}}),
    ("jpeg", [50.0, 20], {}, "image", {"condition": "jpeg", "values": [50, 20], "options": {}}),
    ("brightness", [-1, 1], {}, "image", {"condition": "brightness", "values": [-1, 1], "options": {}}),
    ("missing_values", [0.1], {"fill": "zero"}, "tabular",
     {"condition": "missing_values", "values": [0.1], "options": {"fill": "zero"}}),
    ("drift", [3], {}, "tabular", {"condition": "drift", "values": [3], "options": {}}),
    ("jailbreak", [], {"probes": ["dan"]}, "llm",
     {"condition": "jailbreak", "values": [], "options": {"probes": ["dan"], "detectors": None}}),
    ("prompt_injection", None, None, "llm",
     {"condition": "prompt_injection", "values": [], "options": {"probes": None, "detectors": None}}),
    ("custom", [1, 2.5], {"anything": {"nested": True}}, "custom",
     {"condition": "custom", "values": [1, 2.5], "options": {"anything": {"nested": True}}}),
])
def test_valid_entries_are_normalised(name, values, options, kind, expected):
    assert validate_entry(name, values, options, kind=kind) == expected


# (name, values, options, kind, code, words the message must hold)
REFUSED = [
    ("fgsn", [0.1], {}, "image", "unknown_condition", ["'fgsn'", "fgsm", "pgd", "occlusion"]),
    ("feature_noise", [0.1], {}, "image", "unknown_condition", ["'feature_noise'", "image template", "gaussian_noise"]),
    ("fgsm", [0.1], {}, "tabular", "unknown_condition", ["'fgsm'", "feature_noise", "drift"]),
    (3, [0.1], {}, None, "unknown_condition", ["3"]),
    ("fgsm", [0], {}, "image", "value_out_of_range", ["fgsm eps", "0", "(0, 1]"]),
    ("fgsm", [1.5], {}, "image", "value_out_of_range", ["fgsm eps = 1.5", "(0, 1]"]),
    ("pgd", [-0.1], {}, "image", "value_out_of_range", ["pgd eps = -0.1", "(0, 1]"]),
    ("gaussian_noise", [0.1, 2], {}, "image", "value_out_of_range", ["gaussian_noise sigma = 2", "(0, 1]"]),
    ("blur", [5.5], {}, "image", "value_out_of_range", ["blur sigma = 5.5", "(0, 5]", "pixels"]),
    ("brightness", [-1.01], {}, "image", "value_out_of_range", ["brightness delta", "[-1, 1]"]),
    ("contrast", [0], {}, "image", "value_out_of_range", ["contrast factor", "(0, 3]"]),
    ("jpeg", [50.5], {}, "image", "value_out_of_range", ["jpeg quality", "whole number", "[1, 100]"]),
    ("jpeg", [101], {}, "image", "value_out_of_range", ["jpeg quality = 101", "[1, 100]"]),
    ("occlusion", [0], {}, "image", "value_out_of_range", ["occlusion size = 0", "[1, 64]"]),
    ("fgsm", ["0.1"], {}, "image", "value_out_of_range", ["fgsm eps", "'0.1'"]),
    ("fgsm", [True], {}, "image", "value_out_of_range", ["fgsm eps", "True"]),
    ("fgsm", [float("nan")], {}, "image", "value_out_of_range", ["fgsm eps", "nan"]),
    ("fgsm", [], {}, "image", "value_out_of_range", ["fgsm needs at least one eps"]),
    ("fgsm", [0.1, 0.1], {}, "image", "value_out_of_range", ["twice"]),
    ("fgsm", [0.01 * i for i in range(1, 52)], {}, "image", "value_out_of_range", ["51 values", "at most 50"]),
    ("feature_noise", [3.5], {}, "tabular", "value_out_of_range", ["feature_noise sigma = 3.5", "(0, 3]"]),
    ("drift", [0], {}, "tabular", "value_out_of_range", ["drift reference_version = 0"]),
    ("jailbreak", [0.1], {}, "llm", "value_out_of_range", ["jailbreak takes no values"]),
    ("pgd", [0.1], {"max_iter": 0}, "image", "option_out_of_range", ["pgd option max_iter = 0", "[1, 200]"]),
    ("pgd", [0.1], {"max_iter": 2.5}, "image", "option_out_of_range", ["max_iter must be a whole number"]),
    ("pgd", [0.1], {"eps_step": 2}, "image", "option_out_of_range", ["eps_step = 2", "(0, 1]"]),
    ("pgd", [0.1], {"steps": 5}, "image", "unknown_option", ["pgd has no option 'steps'", "max_iter, eps_step"]),
    ("fgsm", [0.1], {"max_iter": 5}, "image", "unknown_option", ["fgsm has no option", "none"]),
    ("missing_values", [0.1], {"fill": "median"}, "tabular", "option_out_of_range", ["mean, zero, nan", "'median'"]),
    ("jailbreak", [], {"probes": "dan"}, "llm", "option_out_of_range", ["probes must be a list"]),
    ("square", [0.1], {"max_iter": 20_000}, "image", "option_out_of_range", ["square option max_iter = 20000"]),
]


@pytest.mark.parametrize("name, values, options, kind, code, words", REFUSED)
def test_refused_entries_name_what_is_wrong(name, values, options, kind, code, words):
    with pytest.raises(InvalidInput) as raised:
        validate_entry(name, values, options, kind=kind)
    error = raised.value
    assert (error.status, error.code) == (422, code)
    for word in words:
        assert word in error.message, (word, error.message)
    assert error.detail[0]["type"] == "value_error"
    assert error.detail[0]["field"].startswith("conditions")
    assert error.to_json()["error"]["code"] == code


def test_gradient_attacks_are_refused_with_the_black_box_suggestion():
    refuse_gradient_attacks(["gaussian_noise", "square", "hopskipjump"], "MLPClassifier has no loss gradients in ART")
    with pytest.raises(InvalidInput) as raised:
        refuse_gradient_attacks(["gaussian_noise", "pgd", "fgsm"], "MLPClassifier has no loss gradients in ART")
    error = raised.value
    assert error.code == "gradients_required" and error.status == 422
    for word in ("pgd, fgsm", "MLPClassifier has no loss gradients in ART", "square", "hopskipjump",
                 "image_robustness_blackbox"):
        assert word in error.message
