"""Project roles, ordered: each role may do everything the roles below it may."""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum

from ..errors import Phrase
from ..i18n import N_, shell_gettext


class Role(str, Enum):
    viewer = "viewer"
    developer = "developer"
    maintainer = "maintainer"
    admin = "admin"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    @property
    def word(self) -> Phrase:
        """The role as a message names it: the API's word in English, the catalog's in another language."""
        return Phrase(ROLE_WORDS[self])

    def at_least(self, other: Role) -> bool:
        return self.rank >= other.rank

    @classmethod
    def highest(cls, roles: list[Role]) -> Role | None:
        return max(roles, key=lambda role: role.rank, default=None)


ROLE_WORDS = {Role.viewer: N_("viewer"), Role.developer: N_("developer"), Role.maintainer: N_("maintainer"),
              Role.admin: N_("admin")}
_RANKS = {Role.viewer: 1, Role.developer: 2, Role.maintainer: 3, Role.admin: 4}


def role_said(value: str | None, gettext: Callable[[str], str] = shell_gettext) -> str | None:
    """A role as the API names it (``developer``) in the reader's language (``gettext``: the CLI's by default, a
    page passes its own); a value this version does not know is shown as it is."""
    try:
        return gettext(ROLE_WORDS[Role(value)])
    except ValueError:
        return value
