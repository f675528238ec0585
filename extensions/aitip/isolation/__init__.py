"""Users isolated on one machine: each hub user a Linux account of their own, the platform's state private.

* :mod:`.mode` decides whether accounts are separate (the platform runs as root) or shared (single-trust);
* :mod:`.accounts` maps hub names to system accounts (``aitip-<escaped name>``), created on first use;
* :mod:`.privileges` drops a process to an account for good;
* :mod:`.state` keeps ``$AITIP_HOME`` private to the platform;
* :mod:`.workspaces` gives each job attempt a directory its owner works in, and one only the platform writes.
"""
