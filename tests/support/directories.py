"""A directory over a fixed set of users and groups, for service tests that run without a hub.

The real lookups are JupyterHub's (``HubDirectory``); the integration tests exercise that one.
"""

from __future__ import annotations

from aitip.identity.directory import Directory, DirectoryEntry


class FixedDirectory(Directory):
    def __init__(self, users: dict[str, DirectoryEntry], groups: set[str]) -> None:
        super().__init__()
        self.users = users
        self.groups = groups

    async def user(self, name: str) -> DirectoryEntry | None:
        return self.users.get(name)

    async def group_exists(self, name: str) -> bool:
        return name in self.groups
