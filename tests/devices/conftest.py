"""The platform server fixtures of tests/server, for devices registered and updated through the platform."""

from tests.server.conftest import (  # noqa: F401 - fixtures
    aitip_kernelspecs, api, initialized_registry, jp_server_config, made_tracking_store, migrated_catalog, tracking_uri)
