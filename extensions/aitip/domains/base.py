"""What a domain tells the platform about itself (papermill's engine registry and jupyter-scheduler's
``Type`` traits are the shape): the modules of its tables and operations, the services it provides, and
how it sets them up, starts and stops them in the platform service."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from ..server.context import PlatformContext


@dataclass(frozen=True)
class ServiceSpec:
    """A service a domain provides, by the name operation rows call it (``"<service>.<method>"``)."""

    location: str  # "module:Class", for the binding of rows to its methods
    unavailable: str  # what a caller is told when this platform runs without it (503)


# A part to stop at shutdown: what it is (for the log) and how.
Stop = tuple[str, Callable[[], Awaitable[Any] | Any]]


class Domain:
    """One domain's part in the platform. Subclasses set the class attributes and override what they need;
    ``setup`` builds the services into the platform's context (platform mode only), in the order of
    ``after``, so that a domain may plug itself into the services of the domains it comes after."""

    name: ClassVar[str]
    title: ClassVar[str] = ""
    # Domains whose services this one's setup uses (it is set up after them).
    after: ClassVar[tuple[str, ...]] = ()
    # Modules that declare its catalog tables (imported before migrations and the first session).
    tables: ClassVar[tuple[str, ...]] = ()
    # The module whose ``SECTION`` is its part of the operation table.
    operations: ClassVar[str | None] = None
    services: ClassVar[dict[str, ServiceSpec]] = {}
    # Other parts it puts into the context (a worker, a monitor...), by attribute name.
    parts: ClassVar[tuple[str, ...]] = ()
    # SDK namespaces it adds to ``aitip.Client`` (attribute -> "module:Class" taking the client).
    sdk: ClassVar[dict[str, str]] = {}

    def setup(self, context: PlatformContext, config: Any) -> None:
        """Build this domain's services into ``context``; ``config`` is the extension with its traits."""

    async def start(self, context: PlatformContext, config: Any) -> None:
        """Start what runs in the background (after every domain is set up)."""

    def stops(self, context: PlatformContext) -> list[Stop]:
        """What runs in the background, stopped first at shutdown (every domain's, in reverse setup order);
        each is stopped even when another fails."""
        return []

    def closes(self, context: PlatformContext) -> list[Stop]:
        """What holds resources (stores, registries), closed once nothing runs any more."""
        return []
