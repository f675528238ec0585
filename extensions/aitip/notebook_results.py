"""Results a platform notebook hands back: displayed as a cell output of the domain's own MIME type, so they
land in the executed notebook that the platform's executor writes (a file of the platform's, not the
kernel's); the platform reads the last such output back after the job and judges it itself."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MAX_RESULT_BYTES = 8 * 1024 * 1024


def plain(value: Any) -> Any:
    """JSON values from what a notebook may hold (numpy scalars and arrays included)."""
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if hasattr(value, "tolist"):
        return plain(value.tolist())
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    return value


def display_result(mime: str, document: dict[str, Any], summary: str) -> None:
    """Show ``document`` as the cell's output of type ``mime`` (with a line of text for people)."""
    size = len(json.dumps(document))
    if size > MAX_RESULT_BYTES:
        raise ValueError(f"the result is {size} bytes, more than the {MAX_RESULT_BYTES} a notebook may publish")
    from IPython.display import display

    display({mime: document, "text/plain": summary}, raw=True)


def read_last(output_path: str | Path | None, mime: str) -> dict[str, Any] | None:
    """The last output of type ``mime`` in an executed notebook, or None where it has none."""
    if not output_path:
        return None
    path = Path(output_path)
    if not path.is_file():
        return None
    notebook = json.loads(path.read_text(encoding="utf-8"))
    found = None
    for cell in notebook.get("cells", ()):
        for output in cell.get("outputs", ()) if cell.get("cell_type") == "code" else ():
            data = output.get("data") or {}
            if mime in data:
                found = data[mime]
    if isinstance(found, str):
        found = json.loads(found)
    if found is not None and len(json.dumps(found)) > MAX_RESULT_BYTES:
        raise ValueError(f"the published result is larger than {MAX_RESULT_BYTES} bytes")
    return found
