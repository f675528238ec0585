"""Custom metrics: what a user's function returns is checked and named in the error; what it raises passes
through unchanged (the job then fails on that cell, with the user's traceback)."""

from __future__ import annotations

import numpy as np
import pytest

from aitip.errors import InvalidInput
from aitip.evaluation.metrics import METRIC_NAME_MAX_LENGTH, custom


def test_a_function_of_the_inputs_gives_plain_float_metrics():
    def hit_rate(y_true, y_pred, top=1):
        return {"hit_rate": np.mean(np.asarray(y_true) == np.asarray(y_pred)), "top": top, "rows/kept": 3}

    result = custom(hit_rate, y_true=[1, 2, 3], y_pred=[1, 0, 3], top=2)
    assert result == {"task": "custom", "metrics": {"hit_rate": pytest.approx(2 / 3), "top": 2.0, "rows/kept": 3.0},
                      "tables": {}, "plots": {}}
    assert all(type(value) is float for value in result["metrics"].values())
    # An input may be called "function": the function itself is positional only.
    assert custom(lambda function: {"f": function}, function=1.5)["metrics"] == {"f": 1.5}


@pytest.mark.parametrize(("returned", "message"), [
    ({"auc": float("nan")}, "metric 'auc' is nan"),
    ({"auc": np.float64("inf")}, "metric 'auc' is inf"),
    ({"passed": True}, "metric 'passed' must be a number, not bool"),
    ({"label": "good"}, "metric 'label' must be a number, not str"),
    ({"values": [1, 2]}, "metric 'values' must be a number, not list"),
    ({"": 1.0}, "non-empty string"),
    ({3: 1.0}, "non-empty string"),
    ({"a" * (METRIC_NAME_MAX_LENGTH + 1): 1.0}, "251 characters long; at most 250"),
    ({"bad\nname": 1.0}, "may hold only"),
    ({"../escape": 1.0}, "may hold only"),
    ([("auc", 1.0)], "returned list, not a dict"),
])
def test_what_cannot_be_stored_is_refused_naming_the_metric(returned, message):
    with pytest.raises(InvalidInput, match=message.replace("(", r"\(")) as caught:
        custom(lambda: returned)
    if isinstance(returned, dict):
        assert caught.value.detail["metric"]


def test_the_longest_name_allowed_passes():
    name = "m" * METRIC_NAME_MAX_LENGTH
    assert custom(lambda: {name: 1})["metrics"] == {name: 1.0}


def test_an_exception_inside_the_function_propagates_unchanged():
    failure = ZeroDivisionError("the user's own bug")

    def broken():
        raise failure

    with pytest.raises(ZeroDivisionError) as caught:
        custom(broken)
    assert caught.value is failure
