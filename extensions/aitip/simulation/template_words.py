"""The shipped templates' titles and descriptions in the reader's language. They are written in the library's
YAML, so the catalog takes them from there (``babel.cfg`` runs :func:`extract_messages` for this module). A
template showing one of them — a library template, or a project's copy that kept its parent's words — reads in
the reader's words; a title or description a project wrote stays as written."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1)
def library_words() -> frozenset[str]:
    """Every title and description the shipped library holds."""
    from .templates import shipped_documents

    return frozenset(text for document in shipped_documents().values()
                     for text in (document.get("title"), document.get("description")) if text)


def in_words(text: str | None, gettext: Callable[[str], str]) -> str:
    """``text`` through ``gettext`` where it is the library's, else as it is ("" for none)."""
    if not text:
        return ""
    return gettext(text) if text in library_words() else text


def extract_messages(fileobj: Any, keywords: Any, comment_tags: Any, options: dict[str, Any]) -> Iterator[Any]:
    """A Babel extractor for this module: the library's titles and descriptions (this module has no marks)."""
    for text in sorted(library_words()):
        yield 0, None, text, []
