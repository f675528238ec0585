"""Shared pieces of the request/response models every domain builds its API types from."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class RequestModel(BaseModel):
    """Bodies callers send: unknown fields are refused, types are never coerced."""

    model_config = ConfigDict(extra="forbid", strict=True, str_strip_whitespace=False)


class ResponseModel(BaseModel):
    """Bodies the platform returns; clients ignore fields they do not know yet."""

    model_config = ConfigDict(extra="ignore")


def _no_control_characters(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters (tabs, newlines, NUL...)")
    return value


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

PrincipalName = Annotated[
    str,
    Field(min_length=1, max_length=255, pattern=r"^[^/\s]+$", description="A JupyterHub user or group name."),
    AfterValidator(_no_control_characters),
]

Title = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_no_control_characters)]
LongText = Annotated[str, Field(max_length=10_000)]
