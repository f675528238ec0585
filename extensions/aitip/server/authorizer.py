"""Authorizers for the platform service: only the aitip API is reachable there.

The platform service is a Jupyter server running as a JupyterHub service; without this, every user
with access to the service could use its contents, kernels and terminals APIs (and so read the
catalog and engine credentials it holds).
"""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.authorizer import AllowAllAuthorizer
from jupyterhub.singleuser.extension import JupyterHubAuthorizer

from .job_identity import JobCredentialUser

PLATFORM_RESOURCES = frozenset({"aitip"})


class AitipResourcesOnly:
    """Refuse every Jupyter resource except the platform's own; defer the rest to the base class."""

    allowed_resources = PLATFORM_RESOURCES

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        if resource not in self.allowed_resources:
            self.log.warning(  # type: ignore[attr-defined]
                "aitip platform: refused %s %s on %r for %s", action, handler.request.path, resource,
                getattr(user, "username", user),
            )
            return False
        if isinstance(user, JobCredentialUser):
            return True  # the platform checked the job's credential itself; the hub never issued it
        return bool(super().is_authorized(handler, user, action, resource))  # type: ignore[misc]


class PlatformAuthorizer(AitipResourcesOnly, JupyterHubAuthorizer):
    """The platform service behind JupyterHub: hub scopes, and nothing but the aitip API."""


class StandalonePlatformAuthorizer(AitipResourcesOnly, AllowAllAuthorizer):
    """The platform service outside a hub (development, tests): nothing but the aitip API."""
