"""Components a test needs from this machine: skipped with the reason where one is missing, except under
CI=true, where every test must run and a missing component fails."""

from __future__ import annotations

import os

import pytest


def require(missing: str | None, must_run: str) -> None:
    """Skip (or, under CI=true, fail) with ``missing`` when it is not None; ``must_run`` says what CI needs."""
    if missing is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{missing} (CI=true: {must_run})")
    pytest.skip(missing)


def skip_without(module: str, reason: str) -> None:
    """Skip unless ``module`` is installed, without importing it here: the jobs' kernels import it, and a heavy
    native library (torch) loaded into the test process beside the server's threads and other native libraries has
    crashed it."""
    import importlib.util

    import pytest

    if importlib.util.find_spec(module) is None:
        pytest.skip(reason)
