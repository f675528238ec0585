"""The serving request models say what is wrong in the words a person typed."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from aitip.serving.models import TrafficSet


@pytest.mark.parametrize("weights, message", [
    ({"1": 70, "2": 10}, "the weights sum to 80; they must sum to 100"),
    ({"1": 70.0, "2": 40.0}, "the weights sum to 110; they must sum to 100"),
    ({"1": 99.5, "2": 0.5}, "version 1's weight 99.5 is not a whole percent"),
    ({"one": 100}, "'one' is not a model version"),
    ({"0": 100}, "'0' is not a model version"),
])
def test_traffic_weights_are_refused_with_the_reason(weights: dict, message: str) -> None:
    with pytest.raises(ValidationError) as refused:
        TrafficSet(weights=weights)
    assert message in str(refused.value)


def test_whole_percents_given_as_numbers_are_taken() -> None:
    assert TrafficSet(weights={"1": 90.0, "2": 10}).weights == {"1": 90, "2": 10}
