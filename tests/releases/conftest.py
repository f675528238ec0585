"""The platform server fixtures of tests/server, for releases requested through the platform's API."""

from tests.server.conftest import aitip_kernelspecs, api, jp_server_config, migrated_catalog, initialized_registry  # noqa: F401 - fixtures
