"""Local user servers, each under its user's own Linux account (the platform runs as root), or all under
the platform's account in single-trust mode.

``AccountSpawner`` maps the hub user to ``aitip-<escaped name>`` (:mod:`aitip.isolation.accounts`),
creating the account and its 0700 home on first spawn, then starts the server, its terminals and kernels
under that uid, its own group, and umask 077. A hub name that cannot be mapped is refused with the reason.
``SharedAccountSpawner`` is single-trust mode: every server runs as the platform's own account, each in a
home of its own under ``users/``.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from jupyterhub.spawner import LocalProcessSpawner
from traitlets import Unicode, default

from ..isolation.accounts import Account, Accounts, UnmappableName, account_name
from ..isolation.privileges import drop_to, no_new_privileges
from ..isolation.state import USERS_DIR
from ..settings import aitip_home
from .language import OWNERS_LANGUAGE


class OwnersLanguage(LocalProcessSpawner):
    """Keeps the language the owner last started the server in (:func:`aitip.hub.language.spawning_language`) in
    the spawner's saved state, so that a server an admin starts, or the hub starts again after its own restart,
    still speaks it."""

    aitip_language: str | None = None

    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        if self.aitip_language:
            state[OWNERS_LANGUAGE] = self.aitip_language
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        if state.get(OWNERS_LANGUAGE):
            self.aitip_language = state[OWNERS_LANGUAGE]


class AccountSpawner(OwnersLanguage):
    """A user's server as that user's own account."""

    aitip_home = Unicode(help="The platform's state directory ($AITIP_HOME); homes are under its users/.").tag(
        config=True)

    @default("aitip_home")
    def _default_aitip_home(self) -> str:
        return str(aitip_home())

    _account: Account | None = None

    async def start(self) -> Any:
        try:
            account_name(self.user.name)
        except UnmappableName as error:
            raise ValueError(str(error)) from None  # the hub shows this on the spawn page
        self._account = await asyncio.to_thread(Accounts.of_platform(Path(self.aitip_home)).ensure, self.user.name)
        return await super().start()

    def make_preexec_fn(self, name: str) -> Any:
        account = self._account
        assert account is not None, "start() looks the account up before the server is launched"

        def preexec() -> None:
            drop_to(account.uid, account.gid, account.groups)
            no_new_privileges()
            os.umask(0o077)
            os.chdir(account.home)

        return preexec

    def user_env(self, env: dict[str, str]) -> dict[str, str]:
        account = self._account
        assert account is not None
        env.update(USER=account.name, LOGNAME=account.name, HOME=str(account.home), SHELL="/bin/bash")
        return env

    async def move_certs(self, paths: dict[str, str]) -> dict[str, str]:
        raise NotImplementedError("internal SSL is not supported with AITIP's local accounts")


class SharedAccountSpawner(OwnersLanguage):
    """Single-trust mode: every server under the platform's own account, a home each under users/."""

    aitip_home = Unicode(help="The platform's state directory ($AITIP_HOME).").tag(config=True)

    @default("aitip_home")
    def _default_aitip_home(self) -> str:
        return str(aitip_home())

    @property
    def home_dir(self) -> Path:
        return Path(self.aitip_home) / USERS_DIR / account_name(self.user.name)

    async def start(self) -> Any:
        try:
            self.home_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        except UnmappableName as error:
            raise ValueError(str(error)) from None
        return await super().start()

    def make_preexec_fn(self, name: str) -> Any:
        home = self.home_dir

        def preexec() -> None:
            os.chdir(home)

        return preexec

    def user_env(self, env: dict[str, str]) -> dict[str, str]:
        env.update(USER=self.user.name, HOME=str(self.home_dir), SHELL="/bin/bash")
        return env

    async def move_certs(self, paths: dict[str, str]) -> dict[str, str]:
        return paths
