"""Hub users as Linux accounts, the way The Littlest JupyterHub does it: ``aitip-<escaped name>``, created
on first use with a group of its own and a home of mode 0700 that only it owns.

The escaping cannot collide: lower-case letters, digits and ``-`` stand for themselves, and every other
byte of the name's UTF-8 is ``_`` and two hex digits (``_`` itself included), so two hub names never map
to one account. A name whose account would exceed Linux's 32 characters is refused with a clear message,
never shortened. An existing account of that name that AITIP did not create is refused too.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import stat
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..file_lock import exclusive_file_lock
from ..i18n import N_

PREFIX = "aitip-"
MAX_ACCOUNT_NAME = 32  # useradd's limit on Debian (utmp's ut_user)
COMMENT_PREFIX = "AITIP hub user "
# Why a name cannot be an account (the sign-up page shows it, in the page's language: aitip.hub.language).
EMPTY_NAME = N_("an empty user name cannot have a system account")
TOO_LONG = N_("user name {user} cannot have a system account: escaped it is {account}, {length} characters, and "
              "Linux allows {limit}; choose a shorter name (at most {letters} letters, digits or '-')")
_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")


class UnmappableName(ValueError):
    """A hub name that cannot become an account (too long once escaped, or empty)."""


class AccountConflict(RuntimeError):
    """The account name is taken by an account AITIP did not create."""


@dataclass(frozen=True)
class Account:
    hub_name: str
    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: Path


def account_name(hub_name: str) -> str:
    """The system account of a hub user; :class:`UnmappableName` when it cannot have one."""
    if not hub_name:
        raise UnmappableName(EMPTY_NAME)
    escaped = "".join(chr(byte) if chr(byte) in _PLAIN else f"_{byte:02x}" for byte in hub_name.encode("utf-8"))
    name = PREFIX + escaped
    if len(name) > MAX_ACCOUNT_NAME:
        raise UnmappableName(TOO_LONG.format(user=repr(hub_name), account=repr(name), length=len(name),
                                             limit=MAX_ACCOUNT_NAME, letters=MAX_ACCOUNT_NAME - len(PREFIX)))
    return name


def hub_name_of(account: str) -> str | None:
    """The hub name an account stands for, or None for an account not made by :func:`account_name`."""
    if not account.startswith(PREFIX):
        return None
    escaped, raw = account[len(PREFIX):], bytearray()
    index = 0
    while index < len(escaped):
        char = escaped[index]
        if char == "_":
            try:
                raw.append(int(escaped[index + 1:index + 3], 16))
            except ValueError:
                return None
            index += 3
        else:
            raw.append(ord(char))
            index += 1
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


class Accounts:
    """Creates and finds the accounts of hub users; homes live under ``home_root`` (mode 0711: reachable
    by name, not listable). ``lock_path`` serializes creation between the hub and the platform."""

    @classmethod
    def of_platform(cls, home: Path) -> Accounts:
        """The accounts of the platform whose state is ``home`` ($AITIP_HOME): homes under ``users/``."""
        return cls(home / "users", home / "accounts.lock")

    def __init__(self, home_root: Path, lock_path: Path, *, shell: str = "/bin/bash") -> None:
        self.home_root = home_root
        self.lock_path = lock_path
        self.shell = shell
        self._lock = threading.Lock()

    def lookup(self, hub_name: str) -> Account | None:
        name = account_name(hub_name)
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            return None
        if not (entry.pw_gecos or "").startswith(COMMENT_PREFIX):
            raise AccountConflict(f"the system account {name!r} exists but AITIP did not create it; "
                                  f"hub user {hub_name!r} cannot be mapped onto it")
        groups = tuple(sorted(set(os.getgrouplist(name, entry.pw_gid))))
        return Account(hub_name, name, entry.pw_uid, entry.pw_gid, groups, self.home_root / name)

    def ensure(self, hub_name: str) -> Account:
        """The user's account, created (with its home) if it does not exist yet."""
        account = self.lookup(hub_name)
        if account is None:
            with self._creating():
                account = self.lookup(hub_name) or self._create(hub_name)
        self._ensure_home(account)
        return account

    @contextlib.contextmanager
    def _creating(self) -> Iterator[None]:
        with self._lock, exclusive_file_lock(self.lock_path):
            yield

    def _create(self, hub_name: str) -> Account:
        name = account_name(hub_name)
        home = self.home_root / name
        command = ["useradd", "--user-group", "--no-create-home", "--home-dir", str(home), "--shell", self.shell,
                   "--comment", f"{COMMENT_PREFIX}{hub_name}"[:200], name]
        for _ in range(20):  # useradd refuses while another tool holds /etc/passwd's lock
            result = subprocess.run(command, capture_output=True, text=True, timeout=60)
            if result.returncode == 0 or "already exists" in result.stderr:
                break
            if "lock" not in result.stderr:
                raise RuntimeError(f"could not create the system account {name!r}: {result.stderr.strip()}")
            threading.Event().wait(0.1)
        else:
            raise RuntimeError(f"could not create the system account {name!r}: /etc/passwd stayed locked")
        account = self.lookup(hub_name)
        if account is None:
            raise RuntimeError(f"useradd reported success but {name!r} is not in the user database")
        return account

    def _ensure_home(self, account: Account) -> None:
        """The home under this platform's ``home_root``; the account's entry follows it (an account made by
        another platform on this machine, e.g. a test's, pointed elsewhere)."""
        if pwd.getpwnam(account.name).pw_dir != str(account.home):
            subprocess.run(["usermod", "--home", str(account.home), account.name], capture_output=True, timeout=60)
        self.home_root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.home_root, 0o711)
        home = account.home
        with contextlib.suppress(FileExistsError):  # two jobs of one new user start at once
            home.mkdir(mode=0o700)
        info = os.lstat(home)
        if not stat.S_ISDIR(info.st_mode):
            raise RuntimeError(f"{home} should be {account.name}'s home directory but is not a directory")
        if (info.st_uid, info.st_gid) != (account.uid, account.gid):
            os.chown(home, account.uid, account.gid)
        if info.st_mode & 0o777 != 0o700:
            os.chmod(home, 0o700)
