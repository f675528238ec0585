"""Semantic versions (semver.org 2.0.0): the pattern a release's version must match, and their order."""

from __future__ import annotations

import re

SEMVER_PATTERN = (r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
                  r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
                  r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$")
_SEMVER = re.compile(SEMVER_PATTERN)


def order_key(version: str) -> tuple[int, int, int, int, tuple[tuple[int, int | str], ...]]:
    """A key that sorts versions as semver orders them: build metadata ignored, a pre-release below its release,
    pre-release fields compared numerically when numeric, numbers below words."""
    found = _SEMVER.match(version)
    if found is None:
        raise ValueError(f"{version!r} is not a semantic version (MAJOR.MINOR.PATCH, as 1.4.0 or 2.0.0-rc.1)")
    major, minor, patch, pre = int(found[1]), int(found[2]), int(found[3]), found[4]
    if pre is None:
        return major, minor, patch, 1, ()
    fields = tuple((0, int(part)) if part.isdigit() else (1, part) for part in pre.split("."))
    return major, minor, patch, 0, fields  # type: ignore[return-value]


def newest(versions: list[str]) -> str | None:
    return max(versions, key=order_key) if versions else None
