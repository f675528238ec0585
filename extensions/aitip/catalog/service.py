"""What every domain service shares: a catalog transaction run off the event loop, and the rule that
only signed-in callers get past the door."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.orm import Session

from ..errors import NotAuthenticated
from ..identity.principal import Principal
from .store import Catalog

T = TypeVar("T")


class CatalogService:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    async def _in_transaction(self, work: Callable[[Session], T]) -> T:
        """Run ``work`` in one transaction on a worker thread (committed, or rolled back on error)."""

        def run() -> T:
            with self.catalog.session() as session:
                return work(session)

        return await asyncio.to_thread(run)

    @staticmethod
    def _signed_in(principal: Principal | None) -> Principal:
        if principal is None:
            raise NotAuthenticated("sign in to JupyterHub or send an API token")
        return principal
