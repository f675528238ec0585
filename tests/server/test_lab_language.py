"""JupyterLab's language follows the page that started the server until the person picks one in JupyterLab."""

from __future__ import annotations

from pathlib import Path

import json5
import pytest

from aitip.server.lab_language import PLUGIN_FOLDER, SETTINGS_FILE, follow_page_language, settings_text


@pytest.fixture
def settings_file(tmp_path: Path) -> Path:
    return tmp_path / PLUGIN_FOLDER / SETTINGS_FILE


def test_the_first_start_writes_the_pages_language_as_jupyterlab_reads_it(tmp_path: Path,
                                                                          settings_file: Path) -> None:
    assert follow_page_language(tmp_path, "zh-CN") is True
    assert json5.loads(settings_file.read_text()) == {"locale": "zh_CN"}
    assert follow_page_language(tmp_path, "zh_CN") is False, "unchanged: not written again"


def test_a_later_start_from_an_english_page_switches_back_while_the_file_is_aitips(tmp_path: Path,
                                                                                   settings_file: Path) -> None:
    follow_page_language(tmp_path, "zh_CN")
    assert follow_page_language(tmp_path, "en") is True
    assert json5.loads(settings_file.read_text()) == {"locale": "en"}


def test_a_language_the_person_chose_in_jupyterlab_stands(tmp_path: Path, settings_file: Path) -> None:
    follow_page_language(tmp_path, "zh_CN")
    settings_file.write_text('{\n    "locale": "en"\n}')  # as JupyterLab writes it when Settings → Language is used
    assert follow_page_language(tmp_path, "zh_CN") is False
    assert json5.loads(settings_file.read_text()) == {"locale": "en"}


@pytest.mark.parametrize("language", [None, "", "fr_FR"])
def test_no_language_or_one_the_platform_does_not_speak_writes_nothing(tmp_path: Path, settings_file: Path,
                                                                       language: str | None) -> None:
    assert follow_page_language(tmp_path, language) is False
    assert not settings_file.exists()


def test_each_written_file_is_valid_json5_with_the_note_on_top() -> None:
    for language in ("en", "zh_CN"):
        text = settings_text(language)
        assert text.startswith("// Written by AITIP") and json5.loads(text)["locale"] in ("en", "zh_CN")
