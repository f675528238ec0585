"""Setting up, starting and stopping the registered domains (:mod:`aitip.domains`) around a platform
context: in the platform service, and in an ``aitip worker`` process."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from ..domains.base import Stop
from ..domains.registry import load_tables, setup_order
from .context import PlatformContext


def setup_domains(context: PlatformContext, config: Any) -> None:
    """Each domain's services into ``context`` (whose catalog is open), in dependency order."""
    load_tables()
    for domain in setup_order():
        domain.setup(context, config)


async def start_domains(context: PlatformContext, config: Any) -> None:
    for domain in setup_order():
        await domain.start(context, config)


async def stop_domains(context: PlatformContext, log: logging.Logger | logging.LoggerAdapter[Any], *,
                       first: Sequence[Stop] = ()) -> None:
    """Stop what runs (``first``, then every domain's background parts, last set up first), close what holds
    resources, then the catalog; each part even when another fails (its failure is logged)."""
    order = list(reversed(setup_order()))
    parts: list[Stop] = list(first)
    for phase in ("stops", "closes"):
        for domain in order:
            try:
                parts += getattr(domain, phase)(context)
            except Exception:
                log.exception("aitip: the %s domain could not say what to stop; stopping the rest", domain.name)
    if context.catalog is not None:
        parts.append(("the catalog", context.catalog.dispose))
    for name, stop in parts:
        try:
            result = stop()
            if asyncio.iscoroutine(result):
                await result
        except Exception:
            log.exception("aitip: stopping %s failed; stopping the rest", name)
