"""Project roles, ordered: each role may do everything the roles below it may."""

from __future__ import annotations

from enum import Enum


class Role(str, Enum):
    viewer = "viewer"
    developer = "developer"
    maintainer = "maintainer"
    admin = "admin"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def at_least(self, other: Role) -> bool:
        return self.rank >= other.rank

    @classmethod
    def highest(cls, roles: list[Role]) -> Role | None:
        return max(roles, key=lambda role: role.rank, default=None)


_RANKS = {Role.viewer: 1, Role.developer: 2, Role.maintainer: 3, Role.admin: 4}
