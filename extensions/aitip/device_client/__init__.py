"""The device side of over-the-air firmware updates (``aitip-device``): poll the platform, verify through TUF
and the release signature, install into an A/B slot, report."""
