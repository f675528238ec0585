"""The domain registry: every built-in domain found, set up after the domains it names, and its declarations
consistent (the services rows call, the sections of the operation table)."""

from __future__ import annotations

import pytest

from aitip.domains import registry
from aitip.domains.base import Domain
from aitip.operations.table import operations, sections


def test_every_built_in_domain_is_found_once_and_set_up_after_what_it_names() -> None:
    names = [domain.name for domain in registry.domains()]
    assert names == ["platform", "projects", "jobs", "experiments", "datasets", "evaluation", "simulation", "serving",
                     "releases", "devices", "resources", "webhooks"]
    order = [domain.name for domain in registry.setup_order()]
    for domain in registry.domains():
        for before in domain.after:
            assert order.index(before) < order.index(domain.name), (before, domain.name)


def test_the_operation_table_is_the_domains_sections_and_every_call_names_a_provided_service() -> None:
    assert [section.domain for section in sections()] == \
        [domain.name for domain in registry.domains() if domain.operations]
    provided = set(registry.services())
    assert {row.service for row in operations() if row.service} <= provided


def test_setup_order_refuses_a_cycle_and_an_unknown_domain(monkeypatch: pytest.MonkeyPatch) -> None:
    class First(Domain):
        name, after = "first", ("second",)

    class Second(Domain):
        name, after = "second", ("first",)

    class Lonely(Domain):
        name, after = "lonely", ("nowhere",)

    monkeypatch.setattr(registry, "domains", lambda: (First(), Second()))
    with pytest.raises(ValueError, match="in a cycle"):
        registry.setup_order()
    monkeypatch.setattr(registry, "domains", lambda: (Lonely(),))
    with pytest.raises(ValueError, match="'nowhere', which is not registered"):
        registry.setup_order()


def test_a_context_holds_only_what_a_domain_declares() -> None:
    from aitip.identity.directory import IdentityProviderDirectory
    from aitip.server.context import PlatformContext

    context = PlatformContext(mode="platform", directory=IdentityProviderDirectory(), max_body_bytes=1)
    assert context.jobs is None  # declared by the jobs domain, not set up here
    with pytest.raises(AttributeError, match="no domain provides it"):
        _ = context.no_such_service
    with pytest.raises(KeyError, match="no domain declares"):
        context.provide("no_such_service", object())
