# The packaged default hub configuration; the repository's hub/jupyterhub_config.py is the same.
from aitip.hub.config import configure

configure(c)  # noqa: F821 - `c` is the config object JupyterHub provides
