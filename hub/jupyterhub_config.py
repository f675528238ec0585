# JupyterHub configuration for AITIP. `aitip up` runs the hub with this file; every setting comes
# from AITIP_* environment variables (see README "Configuration") through aitip.hub.config.
from aitip.hub.config import configure

configure(c)  # noqa: F821 - `c` is the config object JupyterHub provides
