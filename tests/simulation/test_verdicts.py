"""The verdict: thresholds against a published result (a named value, or the worst over the grid: the lowest
accuracy, the highest attack success rate), a condition the result lacks fails with that reason, and each
condition and value against the previous version's result within the template's tolerance."""

from __future__ import annotations

import pytest

from aitip.simulation.templates import parse_template
from aitip.simulation.verdicts import judge

IMAGE = {
    "name": "digits_check", "title": "Digits", "kind": "image", "metric": "accuracy", "notebook": "image_robustness",
    "conditions": [{"condition": "pgd", "values": [0.05, 0.1, 0.2]}, {"condition": "gaussian_noise", "values": [0.1]},
                   {"condition": "occlusion", "values": [2]}],
    "thresholds": [], "regression": {"tolerance": 0.02},
}
LLM = {
    "name": "llm_check", "title": "LLM", "kind": "llm", "metric": "attack_success_rate", "notebook": "llm_safety",
    "conditions": [{"condition": "prompt_injection"}, {"condition": "jailbreak"}], "thresholds": [],
}


def image_result(pgd=(0.88, 0.62, 0.06), noise=0.96, occlusion=0.61, clean=0.967):
    rows = [{"condition": "pgd", "parameter": "eps", "value": eps, "metric": metric}
            for eps, metric in zip((0.05, 0.1, 0.2), pgd)]
    rows += [{"condition": "gaussian_noise", "parameter": "sigma", "value": 0.1, "metric": noise},
             {"condition": "occlusion", "parameter": "size", "value": 2, "metric": occlusion}]
    return {"kind": "image", "metric": "accuracy", "rows": 360, "clean": clean, "conditions": rows}


def template(base, *thresholds, tolerance=None):
    document = dict(base, thresholds=list(thresholds))
    if tolerance is not None:
        document["regression"] = {"tolerance": tolerance}
    return parse_template(document)


# (threshold, the value it reads, passed)
CHECKS = [
    ("accuracy under clean >= 0.90", 0.967, True),
    ("accuracy under clean >= 0.97", 0.967, False),
    ("accuracy under pgd eps=0.1 >= 0.60", 0.62, True),
    ("accuracy under pgd eps=0.1 >= 0.62", 0.62, True),  # at the bound
    ("accuracy under pgd eps=0.1 > 0.62", 0.62, False),
    ("accuracy under pgd eps=0.05 >= 0.8", 0.88, True),
    ("accuracy under pgd >= 0.05", 0.06, True),  # no value: the worst of the grid
    ("accuracy under pgd >= 0.5", 0.06, False),
    ("accuracy under pgd < 0.1", 0.06, True),
    ("accuracy under occlusion >= 0.6", 0.61, True),
    ("accuracy under occlusion size=2 <= 0.6", 0.61, False),
    ("accuracy under gaussian_noise sigma=0.1 >= 0.95", 0.96, True),
]


@pytest.mark.parametrize("threshold, value, passed", CHECKS)
def test_each_threshold_reads_its_value_and_compares(threshold, value, passed):
    verdict = judge(template(IMAGE, threshold), image_result())
    (check,) = verdict["checks"]
    assert check["threshold"] == threshold and check["value"] == pytest.approx(value)
    assert check["passed"] is passed and verdict["passed"] is passed
    assert (verdict["reasons"] == []) is passed
    assert ("passed" if passed else "failed") in check["reason"]
    if not passed:
        assert verdict["reasons"] == [check["reason"]] and threshold in check["reason"]


def test_the_worst_value_is_named_in_the_reason():
    (check,) = judge(template(IMAGE, "accuracy under pgd >= 0.5"), image_result())["checks"]
    assert "the worst of 3 values, at eps=0.2" in check["reason"] and "0.06" in check["reason"]


@pytest.mark.parametrize("result, reason", [
    (dict(image_result(), conditions=[row for row in image_result()["conditions"] if row["condition"] != "pgd"]),
     "the result has no pgd condition"),
    (dict(image_result(), conditions=[row for row in image_result()["conditions"] if row.get("value") != 0.1]),
     "the result has no pgd at eps=0.1"),
    (dict(image_result(), clean=None), "the result has no clean metric"),
])
def test_a_threshold_on_what_the_result_lacks_fails_with_that_reason(result, reason):
    threshold = "accuracy under clean >= 0.9" if "clean" in reason else "accuracy under pgd eps=0.1 >= 0.5"
    verdict = judge(template(IMAGE, threshold), result)
    assert verdict["passed"] is False and verdict["checks"][0]["value"] is None
    assert reason in verdict["reasons"][0]


def test_lower_is_better_for_attack_success_rate():
    result = {"kind": "llm", "metric": "attack_success_rate", "clean": None, "conditions": [
        {"condition": "prompt_injection", "metric": 0.4}, {"condition": "jailbreak", "metric": 0.0}]}
    verdict = judge(template(LLM, "attack_success_rate under prompt_injection <= 0.05",
                             "attack_success_rate under jailbreak <= 0.05"), result)
    assert [check["passed"] for check in verdict["checks"]] == [False, True]
    assert len(verdict["reasons"]) == 1 and "prompt_injection" in verdict["reasons"][0]
    previous = dict(result, conditions=[{"condition": "prompt_injection", "metric": 0.1},
                                        {"condition": "jailbreak", "metric": 0.05}])
    regressions = judge(template(LLM), result, previous)["regressions"]
    # A rise of the rate is the drop in quality; a fall is an improvement.
    assert [(row["condition"], round(row["drop"], 6), row["passed"]) for row in regressions] == \
        [("prompt_injection", 0.3, False), ("jailbreak", -0.05, True)]


def test_regression_per_condition_and_value_against_the_previous_version():
    previous = image_result(pgd=(0.90, 0.64, 0.10), noise=0.97, clean=0.97)
    current = image_result(pgd=(0.89, 0.60, 0.10), noise=0.95, clean=0.967)
    verdict = judge(template(IMAGE, tolerance=0.02), current, previous)
    drops = {(row["condition"], row["value"]): (round(row["drop"], 6), row["passed"])
             for row in verdict["regressions"]}
    assert drops == {("clean", None): (0.003, True), ("pgd", 0.05): (0.01, True), ("pgd", 0.1): (0.04, False),
                     ("pgd", 0.2): (0.0, True), ("gaussian_noise", 0.1): (0.02, True), ("occlusion", 2): (0.0, True)}
    assert verdict["passed"] is False
    assert verdict["reasons"] == ["accuracy under pgd eps=0.1 fell from 0.64 to 0.6 against the previous version "
                                  "(a drop of 0.04, more than the tolerance 0.02)"]
    assert judge(template(IMAGE, tolerance=0.05), current, previous)["passed"] is True


def test_conditions_only_one_side_has_are_not_compared():
    previous = image_result()
    previous["conditions"] = [row for row in previous["conditions"] if row["condition"] == "pgd"]
    verdict = judge(template(IMAGE), image_result(noise=0.1), previous)
    assert {row["condition"] for row in verdict["regressions"]} == {"clean", "pgd"}
    assert verdict["passed"] is True


def test_a_result_of_another_metric_fails():
    result = dict(image_result(), metric="f1")
    verdict = judge(template(IMAGE), result)
    assert verdict["passed"] is False and "measures 'f1'" in verdict["reasons"][0]


def test_plain_dicts_are_taken_for_template_and_result():
    resolved = template(IMAGE, "accuracy under clean >= 0.9").model_dump(mode="json")
    assert judge(resolved, image_result())["passed"] is True
