"""Small real notebooks for job tests."""

from __future__ import annotations

from typing import Any

import nbformat


def notebook(*cells: str, parameters: str | None = None, kernel: str = "aitip-python") -> dict[str, Any]:
    """A notebook whose first cell is the ``parameters`` cell (when given), then ``cells``."""
    nb = nbformat.v4.new_notebook()
    if parameters is not None:
        cell = nbformat.v4.new_code_cell(parameters)
        cell.metadata["tags"] = ["parameters"]
        nb.cells.append(cell)
    nb.cells.extend(nbformat.v4.new_code_cell(source) for source in cells)
    nb.metadata["kernelspec"] = {"name": kernel, "display_name": kernel, "language": "python"}
    return dict(nbformat.from_dict(nb))


TRIVIAL = notebook("print('result', x * 2)", parameters="x = 1")
