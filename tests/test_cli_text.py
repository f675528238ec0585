"""The CLI's generic view of an answer (``aitip.cli_operations.human``): every title it can show is a word of the
shell's language, found from the operation table (an answer's model decides the columns)."""

from __future__ import annotations

import types
import typing
from datetime import datetime
from typing import Any

import pytest
from pydantic import BaseModel

from aitip import i18n
from aitip.cli_operations import HUMAN_TEXT, HUMAN_TEXT_BY_OPERATION, generated, human
from aitip.operations.table import operations
from aitip.text_tables import LABELS


def _record_model(annotation: Any) -> type[BaseModel] | None:
    """The model of the records a list field holds (``list[Model]``, also under ``| None``)."""
    if typing.get_origin(annotation) is list:
        (item,) = typing.get_args(annotation)
        return item if isinstance(item, type) and issubclass(item, BaseModel) else None
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return next((found for arg in typing.get_args(annotation) if (found := _record_model(arg))), None)
    return None


def _scalar(annotation: Any) -> bool:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return all(_scalar(arg) for arg in typing.get_args(annotation))
    if typing.get_origin(annotation) is typing.Literal or annotation is type(None):
        return True
    return isinstance(annotation, type) and issubclass(annotation, str | int | float | bool | datetime)  # dumped as text


def titles_shown(response: type[BaseModel]) -> set[str]:
    """The fields ``human`` titles for an answer of ``response``: a page's record columns (its first eight
    scalar fields) and its other scalar fields, or each field of an answer without records."""
    fields = response.model_fields
    records = [model for field in fields.values() if (model := _record_model(field.annotation))]
    if len(records) != 1:
        return set(fields)
    columns = [name for name, field in records[0].model_fields.items() if _scalar(field.annotation)][:8]
    return {*columns, *(name for name, field in fields.items() if _scalar(field.annotation))}


GENERIC_VIEWS = [(row.name, row.response) for row in operations()
                 if generated(row) and row.response is not None and not row.gives_file
                 and row.response.__name__ not in HUMAN_TEXT and row.name not in HUMAN_TEXT_BY_OPERATION]


@pytest.mark.parametrize(("operation", "response"), GENERIC_VIEWS, ids=[name for name, _ in GENERIC_VIEWS])
def test_every_title_the_generic_view_shows_is_translated(operation: str, response: type[BaseModel]) -> None:
    untranslated = sorted(titles_shown(response) - set(LABELS))
    assert not untranslated, f"{operation}: add to aitip.text_tables.LABELS: {untranslated}"


def test_an_endpoints_list_reads_in_chinese(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AITIP_LANG", "zh_CN")
    i18n.translations.cache_clear()
    page = {"items": [{"id": 1, "project": "vision", "name": "digits", "model": "digits-logistic",
                       "mode": "local", "url": "/services/aitip/serve/vision/digits/"}], "total": 1}
    header = human(page, "endpoints.list").splitlines()[0].split()
    assert header == ["ID", "项目", "名称", "模型", "模式", "URL"]


def test_an_empty_list_still_says_what_was_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    """No records: "(none)", and under it the answer's other fields (they said nothing before, or each took a
    line of their own with the empty list among them)."""
    monkeypatch.setenv("AITIP_LANG", "en")
    i18n.translations.cache_clear()
    usage = {"by": "user", "since": None, "until": None, "total_gpu_hours": 0.0, "items": []}
    assert human(usage, "resources.usage") == "(none)\nby: user  since: -  until: -  total_gpu_hours: 0.0"
    assert human({"items": [], "total": 0, "next_page_token": None}, "sweeps.list") == "(none)"


def test_a_registered_version_counts_its_rows_in_words(monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from aitip.cli_data import registered_text

    monkeypatch.setenv("AITIP_LANG", "en")
    version = SimpleNamespace(dataset="users", version=1, rows=1, bytes=11, tag="datasets/lab/users/v1")
    assert registered_text(version) == "users v1 registered (1 row, 11 bytes, tag datasets/lab/users/v1)"
    assert "(2 rows," in registered_text(SimpleNamespace(**{**vars(version), "rows": 2}))
    monkeypatch.setenv("AITIP_LANG", "zh_CN")
    assert registered_text(version) == "users v1 已登记（1 行，11 字节，标签 datasets/lab/users/v1）"
