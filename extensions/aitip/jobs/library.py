"""The notebooks the platform ships for people and agents to run as jobs (``notebooks/train``, ``notebooks/test``),
by name (``train/digits_sklearn``): a job or a sweep may name one instead of sending the document, and
``notebooks.list`` says what each is for and which parameters it takes.

The platform's own notebooks (evaluation, simulation, optimization) are not here: their services run them.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

from ..errors import InvalidValue
from ..shipped_notebooks import shipped_notebooks
from .parameters import declared_parameters

FOLDERS = ("train", "test")
SHIPPED_NAME_PATTERN = r"^[a-z]+/[A-Za-z0-9_]+$"
MAX_SHIPPED_NAME = 120


@cache
def _paths() -> dict[str, Path]:
    """Each shipped notebook's file by name: listed, not read (the request models name them at import)."""
    return {f"{folder}/{path.stem}": path for folder in FOLDERS
            for path in sorted(shipped_notebooks(folder).glob("*.ipynb"))}


@cache
def _document(name: str) -> dict[str, Any]:
    return json.loads(_paths()[name].read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def names() -> list[str]:
    return list(_paths())


def known(name: str) -> str:
    """``name`` if the platform ships a notebook by it; refused otherwise with the names there are — a malformed
    name too, which a pattern's refusal would not tell the caller how to put right."""
    if name not in _paths():
        raise InvalidValue("no shipped notebook is named {name!r}; there are: {names}", name=name,
                           names=", ".join(names()))
    return name


def document(name: str) -> dict[str, Any]:
    """A copy of the shipped notebook ``name``."""
    return copy.deepcopy(_document(known(name)))


def file_name(name: str) -> str:
    """The name a job running the shipped notebook ``name`` gets (``digits_sklearn.ipynb``), as a release
    policy's test notebooks name it."""
    return f"{name.rsplit('/', 1)[-1]}.ipynb"


def _markdown(cell: dict[str, Any]) -> str:
    source = cell.get("source", "")
    return ("".join(source) if isinstance(source, list) else str(source)).strip()


def describe(name: str) -> dict[str, Any]:
    """What ``notebooks.list`` says of one: the title and first paragraph of its opening markdown cell, its
    kernel and its declared parameters with their defaults, types and the comments beside them."""
    notebook = _document(name)
    opening = next((_markdown(cell) for cell in notebook.get("cells", []) if cell.get("cell_type") == "markdown"), "")
    heading, _, rest = opening.partition("\n")
    title = heading.lstrip("#").strip() if heading.startswith("#") else name
    paragraph = (rest if heading.startswith("#") else opening).strip().split("\n\n", 1)[0]
    kernel = (notebook.get("metadata", {}).get("kernelspec") or {}).get("name")
    return {"name": name, "file_name": file_name(name), "title": title, "summary": " ".join(paragraph.split()),
            "kernel": kernel,
            "parameters": [{"name": parameter.name, "type": parameter.type_name,
                            "default": parameter.default, "help": parameter.help}
                           for parameter in declared_parameters(notebook).values()]}
