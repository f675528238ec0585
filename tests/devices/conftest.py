"""The platform server fixtures of tests/server, for devices registered and updated through the platform."""

from tests.server.conftest import aitip_kernelspecs, api, jp_server_config, migrated_catalog, initialized_registry  # noqa: F401 - fixtures
