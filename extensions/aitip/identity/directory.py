"""Where the platform looks users and groups up: the hub's REST API, or (standalone) nothing.

Identity belongs to JupyterHub. The platform service asks the hub, with its own service token, for a
caller's groups and admin flag (a user token's own view may not include them) and to check that a
user or group exists before it is made a project member.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from urllib.parse import quote

import httpx
from traitlets import Float, Unicode
from traitlets.config import LoggingConfigurable

from ..errors import ServiceUnavailable
from .principal import Principal


@dataclass(frozen=True)
class DirectoryEntry:
    name: str
    groups: frozenset[str]
    is_admin: bool


class Directory(LoggingConfigurable):
    """Looks up users and groups by name."""

    async def user(self, name: str) -> DirectoryEntry | None:
        """The user's groups and admin flag, or None when the user does not exist."""
        raise NotImplementedError

    async def group_exists(self, name: str) -> bool:
        """Whether a group of this name exists."""
        raise NotImplementedError

    async def principal(self, name: str, claims: object = None) -> Principal | None:
        """The caller as a Principal; ``claims`` is the identity provider's user object."""
        entry = await self.user(name)
        if entry is None:
            return None
        return Principal(entry.name, entry.groups, entry.is_admin)


class HubDirectory(Directory):
    """Reads users and groups from JupyterHub's REST API, caching answers for ``cache_seconds``."""

    api_url = Unicode(
        help="JupyterHub API URL (default: $JUPYTERHUB_API_URL, set by the hub for its services).",
    ).tag(config=True)
    api_token = Unicode(
        help="Token with read:users and read:groups (default: $JUPYTERHUB_API_TOKEN).",
    ).tag(config=True)
    cache_seconds = Float(
        0.0, help="How long a user's groups and admin flag are reused before asking the hub again "
        "($AITIP_DIRECTORY_CACHE_SECONDS overrides). 0: every request asks, so a removed admin flag or group "
        "takes effect on the next request."
    ).tag(config=True)

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.api_url = (self.api_url or os.environ.get("JUPYTERHUB_API_URL", "")).rstrip("/")
        self.api_token = self.api_token or os.environ.get("JUPYTERHUB_API_TOKEN", "")
        if "AITIP_DIRECTORY_CACHE_SECONDS" in os.environ:
            self.cache_seconds = float(os.environ["AITIP_DIRECTORY_CACHE_SECONDS"])
        self._cache: dict[tuple[str, str], tuple[float, object]] = {}
        self._client: httpx.AsyncClient | None = None
        self._lock = asyncio.Lock()

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                headers={"Authorization": f"token {self.api_token}"}, timeout=10.0
            )
        return self._client

    async def _get(self, kind: str, name: str) -> dict | None:
        key = (kind, name)
        cached = self._cache.get(key) if self.cache_seconds > 0 else None
        if cached and time.monotonic() - cached[0] < self.cache_seconds:
            return cached[1]  # type: ignore[return-value]
        url = f"{self.api_url}/{kind}/{quote(name, safe='')}"
        try:
            response = await self._http().get(url)
        except httpx.HTTPError as exc:
            raise ServiceUnavailable("JupyterHub did not answer the platform's directory lookup",
                                     detail=str(exc)) from exc
        if response.status_code == 404:
            model = None
        elif response.status_code == 200:
            model = response.json()
        else:
            raise ServiceUnavailable(
                "JupyterHub refused the directory lookup ({status_code}); the aitip service needs the read:users "
                "and read:groups scopes",
                status_code=response.status_code)
        if self.cache_seconds > 0:
            self._cache[key] = (time.monotonic(), model)
        return model

    async def user(self, name: str) -> DirectoryEntry | None:
        model = await self._get("users", name)
        if model is None:
            return None
        return DirectoryEntry(model["name"], frozenset(model.get("groups") or ()), bool(model.get("admin")))

    async def principal(self, name: str, claims: object = None) -> Principal | None:
        """The hub's answer to this very request's token check (never cached) carries the caller's groups and
        admin flag when the token may read them: no second lookup then. A token that may not (an OAuth token
        scoped to this service) is looked up with the platform's own token."""
        hub_user = getattr(claims, "hub_user", None)
        if isinstance(hub_user, dict) and hub_user.get("name") == name and "groups" in hub_user \
                and "admin" in hub_user and self.cache_seconds <= 0:
            return Principal(name, frozenset(hub_user.get("groups") or ()), bool(hub_user.get("admin")))
        return await super().principal(name, claims)

    async def group_exists(self, name: str) -> bool:
        return await self._get("groups", name) is not None


class IdentityProviderDirectory(Directory):
    """For a standalone Jupyter server with no hub: the identity provider's word is the directory.

    Any well-formed user name exists; groups and the admin flag come from the user object the
    server's identity provider returns (attributes ``groups`` and ``admin`` when it has them).
    """

    async def user(self, name: str) -> DirectoryEntry | None:
        return DirectoryEntry(name, frozenset(), False)

    async def group_exists(self, name: str) -> bool:
        return True

    async def principal(self, name: str, claims: object = None) -> Principal | None:
        groups = frozenset(getattr(claims, "groups", None) or ())
        return Principal(name, groups, bool(getattr(claims, "admin", False)))


TOKEN_CACHE_ENV = "AITIP_TOKEN_CACHE_SECONDS"


def check_every_token_with_the_hub(identity_provider: object) -> bool:
    """JupyterHub's service auth caches token lookups (5 minutes): a revoked token kept working that long.
    The platform asks the hub on every request instead, so revocation takes effect on the next one, unless
    ``$AITIP_TOKEN_CACHE_SECONDS`` trades that for fewer hub calls (revocation then takes up to that long)."""
    hub_auth = getattr(identity_provider, "hub_auth", None)
    if hub_auth is None or not hasattr(hub_auth, "cache"):
        return False
    from jupyterhub.services.auth import _ExpiringDict

    seconds = int(float(os.environ.get(TOKEN_CACHE_ENV) or 0))
    if seconds > 0:
        hub_auth.cache = _ExpiringDict(seconds)
        return False

    class NoLookupCache(_ExpiringDict):  # type: ignore[misc]
        """Keeps nothing: every lookup goes to the hub."""

        def __setitem__(self, key: object, value: object) -> None:
            return None

    hub_auth.cache = NoLookupCache()
    return True
