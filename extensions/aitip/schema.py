"""Shared pieces of the request/response models every domain builds its API types from."""

from __future__ import annotations

import functools
import re
import types
import typing
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)

from .errors import InvalidValue, Phrase
from .i18n import N_

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class RequestModel(BaseModel):
    """Bodies callers send: unknown fields are refused, types are never coerced.

    A JSON number with no fraction (``3.0``) is an integer, as JSON Schema (and the OpenAPI document) says:
    an integer field, or an item of a list of integers, takes it as ``3``. Nothing else about a value changes: ``"3"`` is still refused, and
    ``3.0`` stays a float wherever the field is not an integer. Infinities and NaN are refused."""

    # inf and NaN are no JSON numbers, but a query's "1e400" parses as inf: refused as it would be in a body.
    model_config = ConfigDict(extra="forbid", strict=True, str_strip_whitespace=False, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _integral_numbers(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        fields, lists = _integer_fields(cls), _integer_list_fields(cls)
        return {key: int(value) if key in fields and _integral(value) else
                [int(item) if _integral(item) else item for item in value] if key in lists and type(value) is list
                else value for key, value in data.items()}


def _options(annotation: Any) -> set[Any]:
    """The types a field's annotation allows: each member of a union, else the annotation itself."""
    union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    return set(typing.get_args(annotation)) if union else {annotation}


def _integral(value: Any) -> bool:
    return type(value) is float and value.is_integer()


@functools.cache
def _integer_list_fields(model: type[BaseModel]) -> frozenset[str]:
    """The names (and aliases) of ``model``'s fields that hold a list of ints (or None)."""
    names = set()
    for name, field in model.model_fields.items():
        for option in _options(field.annotation) - {type(None)}:
            if typing.get_origin(option) is list:
                (item,) = typing.get_args(option) or (None,)
                if typing.get_origin(item) is typing.Annotated:
                    item = typing.get_args(item)[0]
                if item is int:
                    names.update({name, field.alias or name})
    return frozenset(names)


@functools.cache
def _integer_fields(model: type[BaseModel]) -> frozenset[str]:
    """The names (and aliases) of ``model``'s fields that hold an int, or an int or None."""
    names = set()
    for name, field in model.model_fields.items():
        if _options(field.annotation) - {type(None)} == {int}:
            names.update({name, field.alias or name})
    return frozenset(names)


class ResponseModel(BaseModel):
    """Bodies the platform returns; clients ignore fields they do not know yet."""

    model_config = ConfigDict(extra="ignore")


def _no_control_characters(value: str) -> str:
    if _CONTROL.search(value):
        raise InvalidValue("must not contain control characters (tabs, newlines, NUL...)")
    return value


# The largest catalog id (a 64-bit integer): a larger one is refused as input, never sent to the database.
MAX_ID = 2**63 - 1

PROJECT_NAME_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$"

ProjectName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=63,
        pattern=PROJECT_NAME_PATTERN,
        description="Lower-case letters, digits and '-', 1-63 characters, starting and ending "
        "with a letter or digit (a DNS label, so it can name a Kubernetes namespace).",
        examples=["vision-team"],
    ),
]

# What _no_control_characters refuses, as a pattern for the OpenAPI document (C1 controls are left out
# too: U+0085 is whitespace to the server's regex engine and not to ECMA-262's).
NO_CONTROL_CHARACTERS_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]*$"
# Neither a space nor a control character, as one set in both regex dialects: the server's (Rust) ``\s`` takes
# U+0085 and ECMA-262's does not, so a bare ``[^\s]`` in the document lets through what the server refuses.
VISIBLE = r"[^\s\x00-\x1f\x7f-\x9f]"

PrincipalName = Annotated[
    str,
    Field(min_length=1, max_length=255, pattern=r"^[^/\s]+$", description="A JupyterHub user or group name.",
          json_schema_extra={"pattern": r"^[^/\s\x00-\x1f\x7f-\x9f]+$"}),
    AfterValidator(_no_control_characters),
]

Title = Annotated[str, Field(min_length=1, max_length=200, json_schema_extra={"pattern": NO_CONTROL_CHARACTERS_PATTERN}),
                  AfterValidator(_no_control_characters)]
# NUL cannot be stored (PostgreSQL text, Git messages): texts refuse it.
NO_NUL_PATTERN = r"^[^\x00]*$"
LongText = Annotated[str, Field(max_length=10_000, pattern=NO_NUL_PATTERN)]


def text(max_length: int, **field: Any) -> Any:
    """A free text field of at most ``max_length`` characters, without NUL (a Git message, a description)."""
    return Field(max_length=max_length, pattern=NO_NUL_PATTERN, **field)


# ----- dataset names: one rule for URLs, request models, the registry's paths and its Git tags -----
#
# A dataset's name is a folder of the registry (``<project>/<name>/``) and a component of its Git tags
# (``datasets/<project>/<name>/v<N>``), so it must be a name Git accepts there (``git check-ref-format``:
# no ``..``, no component ending in ``.lock``, none starting with ``.``, no ``@{``, ``~^:?*[\\`` or
# control characters, no trailing ``.``) and one every file system stores (ASCII, at most 100 bytes).
# Lower-case letters, digits, ``.``, ``_`` and ``-`` leave only the first three of Git's rules to check.

DATASET_NAME_MAX_LENGTH = 100
_C = "[a-z0-9_-]"  # a name's characters other than the dot
# The segment after a name's last dot: any dot-free run except exactly "lock".
_LAST_SEGMENT = (f"(?:{_C}{{1,3}}|{_C}{{5,}}|[a-km-z0-9_-]{_C}{{3}}|l[a-np-z0-9_-]{_C}{{2}}"
                 f"|lo[abd-z0-9_-]{_C}|loc[a-jl-z0-9_-])")
DATASET_NAME_REGEX = f"[a-z0-9]{_C}*(?:(?:\\.{_C}+)*\\.{_LAST_SEGMENT})?"
"""The rule without its length, as a regular expression with no look-around (so that tornado's router,
pydantic's Rust engine, ECMA-262 in the OpenAPI document and hypothesis all read it alike)."""
DATASET_NAME_PATTERN = f"^{DATASET_NAME_REGEX}$"
DATASET_NAME_DESCRIPTION = (
    f"1-{DATASET_NAME_MAX_LENGTH} lower-case letters, digits, '.', '_' and '-', starting with a letter or digit; "
    "no '..', and not ending with '.' or '.lock' (the name is part of the version's Git tag "
    "datasets/<project>/<name>/v<N>)")
_DATASET_NAME = re.compile(DATASET_NAME_PATTERN)


def dataset_name_error(name: object) -> Phrase | None:
    """Why ``name`` cannot name a dataset, or None when it can (the rule, with a reason a person can act on,
    in their language: ``str()`` of it is the English)."""
    if not isinstance(name, str) or not name:
        return Phrase(N_("a dataset name must not be empty"))
    if len(name) > DATASET_NAME_MAX_LENGTH:
        return Phrase(N_("a dataset name has at most {limit} characters (this one has {length})"),
                      limit=DATASET_NAME_MAX_LENGTH, length=len(name))
    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", name):
        return Phrase(N_("a dataset name holds only lower-case letters, digits, '.', '_' and '-', and starts with "
                         "a letter or digit"))
    if ".." in name:
        return Phrase(N_("a dataset name must not contain '..' (Git refuses it in the version tags)"))
    if name.endswith(".lock"):
        return Phrase(N_("a dataset name must not end with '.lock' (Git reserves it for its lock files)"))
    if name.endswith("."):
        return Phrase(N_("a dataset name must not end with '.' (Git and some file systems refuse it)"))
    if not _DATASET_NAME.fullmatch(name):  # pragma: no cover - the checks above are the pattern, spelled out
        raise AssertionError(f"{name!r} passed the dataset name checks but not DATASET_NAME_PATTERN")
    return None


def check_dataset_name(name: str) -> str:
    """For validators: the name, or InvalidValue saying what is wrong with it."""
    problem = dataset_name_error(name)
    if problem is not None:
        raise InvalidValue(problem)
    return name


DatasetName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=DATASET_NAME_MAX_LENGTH),
    AfterValidator(check_dataset_name),
    WithJsonSchema({"type": "string", "minLength": 1, "maxLength": DATASET_NAME_MAX_LENGTH,
                    "pattern": DATASET_NAME_PATTERN, "description": DATASET_NAME_DESCRIPTION,
                    "examples": ["users", "train.v2"]}),
]


# ----- file system limits -----

NAME_MAX_BYTES = 255
"""The longest name of one file or folder (Linux's NAME_MAX; most file systems agree)."""
RELATIVE_PATH_MAX_BYTES = 1024
"""The longest path the platform writes below one of its folders (staging, the registry): well inside
Linux's PATH_MAX (4096) once the folder's own path is in front of it."""


def relative_path_error(path: str) -> str | None:
    """Why a relative path (``/``-separated) cannot be written as is, or None: a component over
    NAME_MAX_BYTES, or the whole over RELATIVE_PATH_MAX_BYTES (UTF-8)."""
    for part in path.split("/"):
        size = len(part.encode("utf-8", "surrogatepass"))
        if size > NAME_MAX_BYTES:
            return (f"the name {part[:40] + '...'!r} is {size} bytes long; file and folder names are at most "
                    f"{NAME_MAX_BYTES} bytes")
    size = len(path.encode("utf-8", "surrogatepass"))
    if size > RELATIVE_PATH_MAX_BYTES:
        return f"the path {path[:40] + '...'!r} is {size} bytes long; paths are at most {RELATIVE_PATH_MAX_BYTES} bytes"
    return None


class ReportQuery(RequestModel):
    """How a stored report is asked for (an evaluation's, a simulation's security assessment)."""

    format: typing.Literal["html", "pdf"] = Field("html", description="The report's file format")
    lang: typing.Literal["en", "zh_CN"] | None = Field(None, description="The report's language; default: the "
                                                       "caller's (the aitip_lang cookie, else Accept-Language)")
