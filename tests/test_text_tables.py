"""Text laid out for a terminal: wrapped by the columns a character takes (a Chinese one takes two)."""

from __future__ import annotations

import textwrap

import pytest

from aitip.text_tables import cell, local_time, wrap, width

CHINESE = ("将模型版本的已批准发布（模型、服务，或内嵌模型版本的固件）分步（set_weight、pause、analysis）灰度发布到"
           "端点；执行第一步后应答，之后自动继续。POST projects/{project}/releases/{release}/rollouts（需要 "
           "release.rollout）。")
ENGLISH = ("Roll an approved release of a model version (model, service, or firmware that embeds one) out onto an "
           "endpoint in steps; answers after the first step and goes on by itself")


@pytest.mark.parametrize("columns", [12, 20, 37, 54, 80])
@pytest.mark.parametrize("text", [CHINESE, ENGLISH, "一个 mixed 句子，with 两种 languages。"])
def test_no_line_is_wider_than_the_terminal_and_nothing_is_lost(text: str, columns: int) -> None:
    lines = wrap(text, columns)
    assert all(0 < width(line) <= columns for line in lines)
    assert "".join(lines).replace(" ", "") == text.replace(" ", "")
    if columns >= 20:  # narrower, a word with its punctuation may be longer than a line, and is cut
        assert not any(line[0] in "，。、；：）" or line[-1] in "（" for line in lines)


def test_chinese_lines_are_filled_not_broken_only_at_spaces() -> None:
    lines = wrap(CHINESE, 40)
    assert all(width(line) >= 30 for line in lines[:-1])
    assert lines[0] == "将模型版本的已批准发布（模型、服务，或内"


@pytest.mark.parametrize("columns", [10, 24, 50])
def test_english_wraps_as_textwrap_does(columns: int) -> None:
    assert wrap(ENGLISH, columns) == textwrap.wrap(ENGLISH, columns)


@pytest.fixture
def shanghai_clock(monkeypatch: pytest.MonkeyPatch):
    """The shell's clock at UTC+8 (no daylight saving)."""
    import time

    monkeypatch.setenv("TZ", "Asia/Shanghai")
    time.tzset()
    yield
    monkeypatch.delenv("TZ")
    time.tzset()


def test_times_read_on_the_shells_clock_to_the_second(shanghai_clock: None) -> None:
    assert local_time(1796568183349) == "2026-12-06 22:43:03"  # MLflow's milliseconds since the epoch
    assert local_time("2026-12-06T14:43:03.555198Z") == "2026-12-06 22:43:03"  # the API's ISO 8601, in UTC
    assert local_time("2026-12-06T14:43:03+01:00") == "2026-12-06 21:43:03"
    assert local_time("2026-12-06T14:43:03") == "2026-12-06 14:43:03"  # no zone: as written
    assert local_time(None) == "-"
    assert cell("2026-12-06T14:43:03.5Z") == "2026-12-06 22:43:03"
    for text in ("2026-12-06", "v2026-12-06T14:43:03Z", "2026-12-06T14:43:03Z and more"):
        assert cell(text) == text  # only a whole time is read as one
