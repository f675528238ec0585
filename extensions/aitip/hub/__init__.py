"""JupyterHub integration: the authenticator, spawner configuration (local or Kubernetes), services and roles.

``hub/jupyterhub_config.py`` at the repository root calls :func:`aitip.hub.config.configure`.
"""
