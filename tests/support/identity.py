"""An identity provider for servers run by pytest-jupyter without a hub: each test token names a user.

Under JupyterHub the platform uses the hub's own identity provider; the integration tests cover that.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jupyter_server.auth.identity import IdentityProvider, User
from traitlets import Dict


@dataclass
class TokenUser(User):
    groups: list[str] = field(default_factory=list)
    admin: bool = False


class TokenUsersIdentityProvider(IdentityProvider):
    users = Dict(help="token -> {'name': ..., 'groups': [...], 'admin': bool}").tag(config=True)

    async def get_user(self, handler: Any) -> TokenUser | None:  # type: ignore[override]
        header = handler.request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() not in ("token", "bearer"):
            return None
        info = self.users.get(token.strip())
        if info is None:
            return None
        handler._token_authenticated = True  # token calls skip XSRF, as with Jupyter's own tokens
        return TokenUser(username=info["name"], groups=list(info.get("groups", [])),
                         admin=bool(info.get("admin", False)))
