"""The platform server fixtures of tests/server, for the isolation tests that run jobs in-process."""

from tests.server.conftest import aitip_kernelspecs, api, jp_server_config, migrated_catalog, initialized_registry  # noqa: F401 - fixtures
