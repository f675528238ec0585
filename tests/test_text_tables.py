"""Text laid out for a terminal: wrapped by the columns a character takes (a Chinese one takes two)."""

from __future__ import annotations

import textwrap

import pytest

from aitip.text_tables import wrap, width

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
