"""The shipped templates' titles and descriptions read in the reader's language wherever a template is shown
(the CLI, the page, the assessment); a project's own words stay as written."""

from __future__ import annotations

import pytest

from aitip import i18n
from aitip.simulation.template_words import extract_messages, in_words, library_words
from aitip.simulation.templates import shipped_documents
from aitip.simulation.text import template_text, templates_text

ZH = i18n.translator("zh_CN").gettext


def test_every_shipped_title_and_description_is_in_the_catalog_and_translated() -> None:
    documents = shipped_documents().values()
    assert library_words() == {document[key] for document in documents for key in ("title", "description")}
    extracted = {message for _line, _function, message, _comments in extract_messages(None, {}, [], {})}
    assert extracted == library_words()
    assert all(ZH(text) != text for text in library_words())


def test_a_projects_own_words_stay_as_written() -> None:
    assert in_words("Tabular model robustness", ZH) == "表格模型鲁棒性"
    assert in_words("Strict images", ZH) == "Strict images"
    assert in_words(None, ZH) == ""


@pytest.fixture
def chinese_shell(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(i18n.ENVIRONMENT_VARIABLE, "zh_CN")


def test_the_cli_lists_and_shows_a_library_template_in_chinese(chinese_shell: None) -> None:
    library = shipped_documents()["tabular_robustness"]
    listed = {"name": "tabular_robustness", "version": 1, "source": "library", "kind": "tabular",
              "title": library["title"], "description": library["description"], "metric": "accuracy",
              "extends": None}
    own = {**listed, "name": "strict", "source": "project", "title": "Strict tabular", "description": "Ours."}
    text = templates_text({"templates": [listed, own]})
    assert "表格模型鲁棒性" in text and "对数值特征加高斯噪声" in text and "Strict tabular" in text
    shown = template_text({**listed, "conditions": ["clean"], "versions": [1], "thresholds": [], "yaml": "x: 1\n"})
    assert shown.splitlines()[0].endswith("表格模型鲁棒性") and shown.splitlines()[1].startswith("对数值特征")
