"""Settings read from the environment: what an operator gets for a value, and the error for a bad one."""

from __future__ import annotations

import pytest
from traitlets import TraitError

from aitip import settings
from aitip.server.app import AitipExtension


@pytest.mark.parametrize(("configured", "seconds"), [(None, 5.0), ("", 5.0), ("1", 1.0), (" 0.5 ", 0.5)])
def test_serving_writes_its_metric_points_as_often_as_configured(monkeypatch: pytest.MonkeyPatch,
                                                                 configured: str | None, seconds: float) -> None:
    if configured is None:
        monkeypatch.delenv("AITIP_SERVING_METRICS_SECONDS", raising=False)
    else:
        monkeypatch.setenv("AITIP_SERVING_METRICS_SECONDS", configured)
    assert settings.serving_metrics_seconds() == seconds
    assert AitipExtension().serving_metrics_seconds == seconds


def test_a_metrics_period_that_is_not_a_number_says_which_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AITIP_SERVING_METRICS_SECONDS", "often")
    with pytest.raises(ValueError, match=r"\$AITIP_SERVING_METRICS_SECONDS is a number of seconds, not 'often'"):
        settings.serving_metrics_seconds()


@pytest.mark.parametrize("seconds", [0.0, -1.0, 7200.0])
def test_a_metrics_period_out_of_bounds_is_refused(seconds: float) -> None:
    with pytest.raises(TraitError, match="between 0.1 and 3600"):
        AitipExtension(serving_metrics_seconds=seconds)
