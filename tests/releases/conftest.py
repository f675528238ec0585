"""The platform server fixtures of tests/server, for releases requested through the platform's API."""

from tests.server.conftest import (  # noqa: F401 - fixtures
    aitip_kernelspecs, api, initialized_registry, jp_server_config, made_tracking_store, migrated_catalog, tracking_uri)
