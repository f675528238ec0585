"""The README's role table names every action of the permission table."""

from __future__ import annotations

from pathlib import Path

from aitip.identity.permissions import PERMISSIONS

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_documents_every_action() -> None:
    text = README.read_text()
    missing = [action for action in PERMISSIONS if f"`{action}`" not in text]
    assert missing == [], f"document these actions in README.md: {missing}"
