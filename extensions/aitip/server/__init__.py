"""The Jupyter Server extension ``aitip``: the platform's REST API (platform mode) and its relay in
every user's server (workspace mode)."""
