"""Whether users get accounts of their own, or share the platform's (single-trust mode).

Run as root, the platform gives every hub user a Linux account and runs their servers, terminals and job
kernels under it. Run as a normal user it cannot change uids: everyone then shares one OS account, which
the banner says, and sign-ups of other users are off unless ``AITIP_SHARED_ACCOUNT=1`` is set on purpose.
Root may choose single-trust mode the same way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

SHARED_ACCOUNT_ENV = "AITIP_SHARED_ACCOUNT"


@dataclass(frozen=True)
class Isolation:
    separate_accounts: bool
    shared_on_purpose: bool  # AITIP_SHARED_ACCOUNT=1: single-trust chosen, sign-ups stay open
    reason: str

    @property
    def signup_open(self) -> bool:
        return self.separate_accounts or self.shared_on_purpose


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def isolation(environ: dict[str, str] | os._Environ[str] | None = None) -> Isolation:
    environ = os.environ if environ is None else environ
    shared = _truthy(environ.get(SHARED_ACCOUNT_ENV))
    if os.geteuid() != 0:
        return Isolation(False, shared, "the platform runs as a normal user and cannot switch accounts")
    if shared:
        return Isolation(False, True, f"{SHARED_ACCOUNT_ENV}=1 is set")
    return Isolation(True, False, "the platform runs as root: every hub user gets a Linux account")
