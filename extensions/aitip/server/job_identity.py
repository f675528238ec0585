"""Job credentials at the door of the platform API.

A job's kernel sends ``Authorization: token aitip-job.<id>.<secret>`` (see :mod:`aitip.jobs.credentials`).
The hub never issued that token, so it is checked here, against the catalog, before the server's own
identity provider (JupyterHub's, or a standalone one) would send it to the hub. Any other token goes to
that provider unchanged. Only the platform's handlers see this: every other Jupyter API keeps the
server's provider alone.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from jupyter_server.auth.identity import User
from tornado.httputil import HTTPServerRequest
from tornado.web import HTTPError

from ..errors import PermissionDenied
from ..identity.principal import Principal
from ..jobs.credentials import JobCredential, looks_like_job_token
from ..identity.permissions import PermissionScope, permission

# Actions outside any one project that a job credential may still use; every project action is
# checked against the job's project instead. Creating projects, listing jobs or resources across
# projects, and the workspace relay are refused.
JOB_CREDENTIAL_ACTIONS = frozenset({"platform.health", "platform.me", "platform.openapi", "project.list",
                                    "lineage.read"})

Verify = Callable[[str], Awaitable[JobCredential | None]]


@dataclass
class JobCredentialUser(User):
    """The job's owner, as the server's handlers see a user, with the credential that vouched for them."""

    credential: JobCredential | None = None


def presented_token(request: HTTPServerRequest) -> str | None:
    """The token of an ``Authorization: token ...`` (or ``Bearer ...``) header."""
    scheme, _, value = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() in ("token", "bearer") and value.strip():
        return value.strip()
    return None


def job_credential_allows(action: str) -> bool:
    return permission(action).scope is PermissionScope.project or action in JOB_CREDENTIAL_ACTIONS


class JobCredentialIdentity:
    """The server's identity provider with job tokens checked first; everything else is the provider's."""

    def __init__(self, provider: Any, verify: Verify) -> None:
        self._provider = provider
        self._verify = verify

    def __getattr__(self, name: str) -> Any:
        return getattr(self._provider, name)

    async def get_user(self, handler: Any) -> User | None:
        token = presented_token(handler.request)
        if token is None or not looks_like_job_token(token):
            user = self._provider.get_user(handler)
            return await user if inspect.isawaitable(user) else user
        credential = await self._verify(token)
        if credential is None:
            raise HTTPError(403, "this job credential is not valid: the job attempt it was issued to has "
                            "ended, or the token is wrong")
        # A header token is no cookie session: no XSRF check (JupyterHub's patched check reads this flag).
        handler._token_authenticated = True
        return JobCredentialUser(username=credential.owner, name=credential.owner, credential=credential)

    def is_token_authenticated(self, handler: Any) -> bool:
        if isinstance(getattr(handler, "_jupyter_current_user", None), JobCredentialUser):
            return True
        return bool(self._provider.is_token_authenticated(handler))


async def platform_principal(directory: Any, user: User) -> Principal:
    """The caller as the platform's services take it: the hub user, confined to the job's project when a
    job's credential vouched for them."""
    principal = await directory.principal(user.username, user)
    if principal is None:
        raise PermissionDenied("JupyterHub no longer knows user {username!r}", username=user.username)
    if isinstance(user, JobCredentialUser) and user.credential is not None:
        principal = dataclasses.replace(principal, job_id=user.credential.job_id,
                                        project_scope=user.credential.project)
    return principal
