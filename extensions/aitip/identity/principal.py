"""The authenticated caller as the domain services see it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Principal:
    """A JupyterHub user: name, hub groups, and whether the hub calls them admin.

    Hub admins are platform admins: they hold the ``admin`` role in every project.
    """

    name: str
    groups: frozenset[str] = field(default_factory=frozenset)
    is_admin: bool = False
