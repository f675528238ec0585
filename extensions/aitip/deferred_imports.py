"""Quicker starts of the platform's servers: work a dependency does when it is imported, done when first used.

``jsonschema`` (imported by every Jupyter server, through ``jupyter_events``) imports ``rfc3987_syntax`` for its
``iri`` and ``iri-reference`` format checks, and that module compiles an Earley grammar of IRIs at import: about
0.8 s, a fifth of the platform service's start, for checks that are seldom or never made.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from typing import Any

IRI_MODULE = "rfc3987_syntax"


def defer_iri_grammar() -> None:
    """Put a package in ``rfc3987_syntax``'s place that compiles the grammar at the first check. Call before
    ``jsonschema`` is imported; later, or where the package is not installed, this does nothing."""
    if IRI_MODULE in sys.modules or "jsonschema" in sys.modules:
        return
    spec = importlib.util.find_spec(IRI_MODULE)
    if spec is None or spec.submodule_search_locations is None:
        return
    placeholder = types.ModuleType(IRI_MODULE, __doc__)
    placeholder.__path__ = list(spec.submodule_search_locations)  # its modules import from their own files

    def is_valid_syntax(term: str, value: str) -> Any:
        from rfc3987_syntax.syntax_helpers import is_valid_syntax as check

        return check(term, value)

    placeholder.is_valid_syntax = is_valid_syntax  # type: ignore[attr-defined]
    sys.modules[IRI_MODULE] = placeholder
