"""The router's parts on their own: the weighted, sticky choice of a version; the masking of sampled requests
in every format; the share a canary takes from the others; batching of concurrent requests; the latency
histogram's quantiles and Prometheus's text; API keys."""

from __future__ import annotations

import asyncio
from collections import Counter

import numpy as np
import pytest

from aitip.serving import keys
from aitip.serving.batching import Batcher
from aitip.serving.metrics import EndpointMetrics, VariantMetrics, prometheus_text
from aitip.serving.router import MASK, RoutingTable, mask
from aitip.serving.service import _rescaled


@pytest.mark.parametrize("weights", [{1: 80, 2: 20}, {1: 5, 2: 95}, {1: 50, 2: 30, 3: 20}, {4: 100}])
def test_versions_get_their_weights_share_and_a_key_always_the_same_version(weights: dict[int, int]) -> None:
    table = RoutingTable.of(weights)
    chosen = Counter(table.choose(f"user-{index}") for index in range(20_000))
    for version, weight in weights.items():
        assert abs(chosen[version] / 20_000 - weight / 100) < 0.015, chosen
    assert {table.choose("user-42") for _ in range(50)} == {table.choose("user-42")}
    random = Counter(table.choose(None) for _ in range(20_000))
    for version, weight in weights.items():
        assert abs(random[version] / 20_000 - weight / 100) < 0.02, random


def test_a_version_at_zero_gets_nothing_and_no_versions_choose_none() -> None:
    table = RoutingTable.of({1: 100, 2: 0}, shadow=2)
    assert {table.choose(str(i)) for i in range(1000)} == {1}
    assert table.shadow == 2
    assert RoutingTable.of({}).choose("x") is None


def test_moving_weight_moves_only_the_keys_it_must() -> None:
    """Raising a canary from 20 % to 50 % keeps every caller that was on the canary on it."""
    before, after = RoutingTable.of({1: 80, 2: 20}), RoutingTable.of({1: 50, 2: 50})
    keys_on_canary = [f"k{i}" for i in range(5000) if before.choose(f"k{i}") == 2]
    assert all(after.choose(key) == 2 for key in keys_on_canary)


@pytest.mark.parametrize("document, expected", [
    ({"inputs": [{"name": "ssn", "datatype": "BYTES", "shape": [1], "data": ["123"]},
                 {"name": "age", "datatype": "INT64", "shape": [1], "data": [40]}]},
     {"inputs": [{"name": "ssn", "datatype": "BYTES", "shape": [1], "data": MASK},
                 {"name": "age", "datatype": "INT64", "shape": [1], "data": [40]}]}),
    ({"dataframe_split": {"columns": ["age", "ssn"], "data": [[40, "123"], [31, "456"]]}},
     {"dataframe_split": {"columns": ["age", "ssn"], "data": [[40, MASK], [31, MASK]]}}),
    ({"dataframe_records": [{"age": 40, "ssn": "123"}]}, {"dataframe_records": [{"age": 40, "ssn": MASK}]}),
    ({"instances": [{"age": 40, "ssn": "123"}]}, {"instances": [{"age": 40, "ssn": MASK}]}),
    ({"inputs": {"age": [40], "ssn": ["123"]}}, {"inputs": {"age": [40], "ssn": MASK}}),
    ({"inputs": [[1, 2, 3]]}, {"inputs": [[1, 2, 3]]}),
])
def test_sampled_requests_are_masked_in_every_format(document: dict, expected: dict) -> None:
    assert mask(document, frozenset({"ssn"})) == expected


@pytest.mark.parametrize("weights, taken, expected", [
    ({1: 100}, 20, {1: 80}), ({1: 80, 2: 20}, 10, {1: 72, 2: 18}), ({1: 50, 2: 50}, 33, {1: 34, 2: 33}),
    ({1: 100}, 0, {1: 100}), ({1: 0}, 30, {1: 0}),
])
def test_a_canary_takes_its_share_from_the_others_in_proportion(weights: dict, taken: int, expected: dict) -> None:
    result = _rescaled(weights, taken)
    assert result == expected
    if sum(weights.values()):
        assert sum(result.values()) + taken == 100


async def test_concurrent_requests_are_predicted_in_one_batch_and_split_back() -> None:
    calls: list[int] = []

    def predict(rows: np.ndarray) -> np.ndarray:
        calls.append(len(rows))
        return rows[:, 0] * 2

    batcher = Batcher(predict, max_batch_size=64, max_wait_ms=0)
    requests = [np.full((size, 3), float(index)) for index, size in enumerate((1, 4, 2, 1), start=1)]
    answers = await asyncio.gather(*(batcher.submit(rows) for rows in requests))
    assert calls == [8]
    assert [answer.tolist() for answer in answers] == [[2.0], [4.0] * 4, [6.0] * 2, [8.0]]


async def test_a_batch_never_exceeds_its_size_and_a_model_error_reaches_each_request() -> None:
    calls: list[int] = []

    def predict(rows: np.ndarray) -> np.ndarray:
        calls.append(len(rows))
        if (rows < 0).any():
            raise ValueError("negative pixels")
        return rows[:, 0]

    batcher = Batcher(predict, max_batch_size=4, max_wait_ms=0)
    answers = await asyncio.gather(*(batcher.submit(np.ones((1, 2))) for _ in range(10)))
    assert len(answers) == 10 and max(calls) <= 4 and sum(calls) == 10
    bad = asyncio.gather(batcher.submit(-np.ones((1, 2))), batcher.submit(np.ones((1, 2))), return_exceptions=True)
    assert all(isinstance(result, ValueError) for result in await bad)


def test_the_histogram_quantiles_and_prometheus_text() -> None:
    metrics = VariantMetrics()
    for _ in range(90):
        metrics.observe(0.0015, 200, rows=1)
    for _ in range(9):
        metrics.observe(0.02, 400)
    metrics.observe(0.2, 503)
    assert 0.001 <= metrics.quantile(0.5) <= 0.002
    assert 0.015 <= metrics.quantile(0.95) <= 0.025
    assert (metrics.requests, metrics.errors, metrics.client_errors, metrics.rows) == (100, 1, 9, 90)
    delta = metrics.minus(VariantMetrics(requests=50, counts=[0] * len(metrics.counts)))
    assert delta.requests == 50
    endpoint = EndpointMetrics("alpha", "digits", {3: metrics})
    text = prometheus_text([endpoint], {("alpha", "digits", 3): 2})
    assert 'aitip_serving_requests_total{project="alpha",endpoint="digits",version="3",outcome="ok"} 90' in text
    assert 'aitip_serving_request_seconds_bucket{project="alpha",endpoint="digits",version="3",le="+Inf"} 100' in text
    assert 'aitip_inflight_requests{project="alpha",endpoint="digits",version="3"} 2' in text


def test_an_api_key_opens_its_endpoint_only_until_dropped() -> None:
    secret, prefix, digest = keys.new_key()
    cache = keys.KeyCache()
    cache.add(prefix, 7, digest)
    assert cache.endpoint_of(secret) == 7
    assert cache.endpoint_of(secret[:-1] + ("a" if secret[-1] != "a" else "b")) is None
    assert cache.endpoint_of("aitip_nothing") is None and cache.endpoint_of("token") is None
    cache.drop(prefix)
    assert cache.endpoint_of(secret) is None
