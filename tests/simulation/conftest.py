"""The platform server fixtures of tests/server, for the simulations run through the platform's API."""

from __future__ import annotations

from tests.server.conftest import aitip_kernelspecs, api, jp_server_config, migrated_catalog, initialized_registry  # noqa: F401 - fixtures
