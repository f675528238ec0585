"""The registry of domains: the built-in ones by name, and any installed package's through the
``aitip.domains`` entry point group (``name = "package.module:DomainClass"``). Domains are imported by name
here, so the platform's packages do not import each other to be wired together."""

from __future__ import annotations

import importlib
from functools import cache
from importlib.metadata import entry_points
from typing import Any

from .base import Domain, ServiceSpec

ENTRY_POINT_GROUP = "aitip.domains"

# In the order their operations are listed; setup follows each domain's ``after``.
BUILTIN: tuple[str, ...] = (
    "aitip.server.platform_domain:PlatformDomain",
    "aitip.projects.domain:ProjectsDomain",
    "aitip.jobs.domain:JobsDomain",
    "aitip.experiments.domain:ExperimentsDomain",
    "aitip.datasets.domain:DatasetsDomain",
    "aitip.evaluation.domain:EvaluationDomain",
    "aitip.simulation.domain:SimulationDomain",
    "aitip.serving.domain:ServingDomain",
    "aitip.releases.domain:ReleasesDomain",
    "aitip.devices.domain:DevicesDomain",
    "aitip.resources.domain:ResourcesDomain",
    "aitip.webhooks.domain:WebhooksDomain",
)


def load(location: str) -> Any:
    module, _, attribute = location.partition(":")
    return getattr(importlib.import_module(module), attribute)


@cache
def domains() -> tuple[Domain, ...]:
    """Every domain, once, in listing order (built-in first)."""
    locations = list(BUILTIN) + [point.value for point in entry_points(group=ENTRY_POINT_GROUP)]
    found: list[Domain] = []
    for location in dict.fromkeys(locations):
        kind = load(location)
        if not (isinstance(kind, type) and issubclass(kind, Domain)):
            raise TypeError(f"{location} is not an aitip Domain class")
        if any(existing.name == kind.name for existing in found):
            raise ValueError(f"two domains are named {kind.name!r} ({location})")
        found.append(kind())
    return tuple(found)


def setup_order() -> list[Domain]:
    """Domains so that each comes after the ones it names in ``after`` (a cycle or an unknown name fails)."""
    by_name = {domain.name: domain for domain in domains()}
    ordered: list[Domain] = []
    visiting: set[str] = set()

    def visit(domain: Domain) -> None:
        if domain in ordered:
            return
        if domain.name in visiting:
            raise ValueError(f"domains set up after each other in a cycle, through {domain.name!r}")
        visiting.add(domain.name)
        for name in domain.after:
            if name not in by_name:
                raise ValueError(f"domain {domain.name!r} comes after {name!r}, which is not registered")
            visit(by_name[name])
        visiting.discard(domain.name)
        ordered.append(domain)

    for domain in domains():
        visit(domain)
    return ordered


@cache
def load_tables() -> Any:
    """Import every domain's tables; the catalog's metadata is then complete (migrations, mappers)."""
    from ..catalog.base import Base

    for domain in domains():
        for module in domain.tables:
            importlib.import_module(module)
    return Base.metadata


def section_modules() -> tuple[str, ...]:
    return tuple(domain.operations for domain in domains() if domain.operations)


@cache
def services() -> dict[str, ServiceSpec]:
    found: dict[str, ServiceSpec] = {}
    for domain in domains():
        for name, spec in domain.services.items():
            if name in found:
                raise ValueError(f"two domains provide a service named {name!r}")
            found[name] = spec
    return found


@cache
def context_names() -> frozenset[str]:
    """What a platform context may hold: every domain's services and parts."""
    return frozenset(name for domain in domains() for name in (*domain.services, *domain.parts))


@cache
def sdk_namespaces() -> dict[str, str]:
    return {name: location for domain in domains() for name, location in domain.sdk.items()}
