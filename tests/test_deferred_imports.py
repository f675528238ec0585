"""The IRI grammar jsonschema imports is compiled at the first IRI check instead, and checks as before."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from aitip.deferred_imports import defer_iri_grammar

pytest.importorskip("rfc3987_syntax")

CHECKS = """
import json, sys
{prepare}
import jsonschema
loaded_at_import = "rfc3987_syntax.syntax_helpers" in sys.modules
checker = jsonschema.FormatChecker()
answers = [jsonschema.Draft202012Validator({{"format": form}}, format_checker=checker).is_valid(value)
           for form in ("iri", "iri-reference")
           for value in ("http://例え.jp/パス?q=1#f", "../relative/ä", "http://a b", "not an iri", "")]
print(json.dumps({{"loaded_at_import": loaded_at_import, "answers": answers,
                  "loaded_after": "rfc3987_syntax.syntax_helpers" in sys.modules}}))
"""


def _checks(prepare: str) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", CHECKS.format(prepare=prepare)], capture_output=True, text=True,
                          check=True)
    return json.loads(done.stdout)


def test_jsonschema_imports_without_the_grammar_and_checks_iris_as_it_did() -> None:
    deferred = _checks("from aitip.deferred_imports import defer_iri_grammar; defer_iri_grammar()")
    plain = _checks("")
    assert plain["loaded_at_import"] is True  # what is deferred: jsonschema would compile it at import
    assert deferred["loaded_at_import"] is False
    assert deferred["answers"] == plain["answers"]
    assert True in deferred["answers"] and False in deferred["answers"]
    assert deferred["loaded_after"] is True


def test_it_does_nothing_once_jsonschema_is_imported() -> None:
    import jsonschema  # noqa: F401 - imported, as in this process, with the real module

    before = sys.modules.get("rfc3987_syntax")
    defer_iri_grammar()
    assert sys.modules.get("rfc3987_syntax") is before
