"""The answer cache of the SQL reader: kept per store version, and shared by identical lookups that
arrive while it is being computed."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from aitip.experiments.sql_reader import StoreVersionCache


def _slow(calls: list[str], answer: str, seconds: float = 0.3):  # noqa: ANN202
    def compute() -> str:
        calls.append(answer)
        time.sleep(seconds)
        return answer

    return compute


def test_concurrent_identical_lookups_share_one_computation() -> None:
    cache, calls = StoreVersionCache(8), []
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: cache.get(1, "page", _slow(calls, "rows@1")), range(8)))
    assert answers == ["rows@1"] * 8 and calls == ["rows@1"]
    assert cache.get(1, "page", _slow(calls, "never")) == "rows@1"  # a hit afterwards, still one query


def test_a_new_version_is_computed_again_and_other_keys_run_on_their_own() -> None:
    cache, calls = StoreVersionCache(8), []
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(cache.get, 1, "a", _slow(calls, "a@1")), pool.submit(cache.get, 1, "b", _slow(calls, "b@1"))]
        assert [f.result() for f in futures] == ["a@1", "b@1"]
    assert cache.get(2, "a", _slow(calls, "a@2", 0)) == "a@2"
    assert sorted(calls) == ["a@1", "a@2", "b@1"]


def test_a_failed_computation_fails_every_waiter_and_is_not_kept() -> None:
    cache, started = StoreVersionCache(8), threading.Event()

    def failing() -> str:
        started.set()
        time.sleep(0.3)
        raise RuntimeError("database is locked")

    with ThreadPoolExecutor(4) as pool:
        leader = pool.submit(cache.get, 1, "page", failing)
        assert started.wait(5)
        followers = [pool.submit(cache.get, 1, "page", lambda: "unused") for _ in range(3)]
        for future in [leader, *followers]:
            with pytest.raises(RuntimeError, match="locked"):
                future.result()
    assert cache.get(1, "page", lambda: "rows") == "rows"  # nothing was cached, nothing is stuck


def test_an_answer_keep_declines_is_computed_again() -> None:
    cache, calls = StoreVersionCache(8), []
    short = lambda answer: len(answer) <= 3  # noqa: E731
    assert cache.get(1, "long", _slow(calls, "long", 0), keep=short) == "long"
    assert cache.get(1, "long", _slow(calls, "long", 0), keep=short) == "long"
    assert cache.get(1, "abc", _slow(calls, "abc", 0), keep=short) == "abc"
    assert cache.get(1, "abc", _slow(calls, "never", 0), keep=short) == "abc"
    assert calls == ["long", "long", "abc"]
