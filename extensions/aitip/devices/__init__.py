"""Devices: the registry, each project's TUF repository, and firmware rollouts in device groups."""
