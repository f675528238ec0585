"""The registry's quality step: the quality report of a staged version and its gate's verdict."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..errors import InvalidInput
from .service import QualityOutcome


def quality_gate(path: Path, fmt: str, rules: dict[str, Any]) -> QualityOutcome:
    """In a child process: DuckDB and Pillow read untrusted bytes, and a crafted file that crashes native
    code must take down that child (a 422), never the platform service (a child forked from a fork server
    that has the readers imported starts quickly)."""
    from .quality import check_quality_isolated

    try:
        report, gate = check_quality_isolated(path, fmt, rules)
    except ValidationError as error:
        raise InvalidInput("the dataset's quality rules are invalid: {msg}",
                           code="invalid_quality_rules", msg=error.errors()[0]['msg']) from None
    summary = report.model_dump(mode="json")
    rows = summary.get("row_count", summary.get("image_count"))
    failures = [result.model_dump(mode="json") for result in gate.failures]
    return QualityOutcome(summary, rows, gate.passed, failures)
