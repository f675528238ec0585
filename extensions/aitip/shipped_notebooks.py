"""Where the notebooks the platform ships are: a source checkout's ``notebooks/``, else where the wheel
installs them (``share/aitip/notebooks``, pyproject's shared data)."""

from __future__ import annotations

import sys
from functools import cache
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[2] / "notebooks"
INSTALLED = Path(sys.prefix) / "share" / "aitip" / "notebooks"


@cache
def shipped_notebooks(folder: str = "") -> Path:
    """The shipped ``notebooks/<folder>`` (``evaluate``, ``simulate/templates``, ``serve``, ...)."""
    checkout = CHECKOUT / folder
    return checkout if checkout.is_dir() else INSTALLED / folder
