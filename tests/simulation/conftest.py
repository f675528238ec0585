"""The platform server fixtures of tests/server, for the simulations run through the platform's API."""

from __future__ import annotations

from tests.server.conftest import (  # noqa: F401 - fixtures
    aitip_kernelspecs, api, initialized_registry, jp_server_config, made_tracking_store, migrated_catalog, tracking_uri)
