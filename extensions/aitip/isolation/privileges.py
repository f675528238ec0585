"""Dropping a process to a user's account for good: supplementary groups, gid, uid (real, effective and
saved, so root cannot be regained), no new privileges through set-uid binaries, and a private umask.

``drop_code`` is the same drop as Python source, run first in a job's pre-started kernel: glibc applies
``setgroups``/``setgid``/``setuid`` to every thread of the process, and the kernel's threads inherited
``PR_SET_NO_NEW_PRIVS`` from the fork that made them (:func:`no_new_privileges`).
"""

from __future__ import annotations

import ctypes
import os

PR_SET_NO_NEW_PRIVS = 38


def no_new_privileges() -> None:
    """``prctl(PR_SET_NO_NEW_PRIVS)``: exec can never raise this thread's (and its children's) privileges."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"prctl(PR_SET_NO_NEW_PRIVS): {os.strerror(errno)}")


def drop_to(uid: int, gid: int, groups: tuple[int, ...] | list[int]) -> None:
    """Become ``uid``/``gid`` with exactly ``groups``; raise unless the old identity is gone for good."""
    os.setgroups(list(groups))
    os.setgid(gid)
    os.setuid(uid)
    check_dropped(uid, gid, groups)


def check_dropped(uid: int, gid: int, groups: tuple[int, ...] | list[int]) -> None:
    if os.getresuid() != (uid, uid, uid) or os.getresgid() != (gid, gid, gid) \
            or set(os.getgroups()) - set(groups):
        raise PermissionError(f"could not switch to uid {uid}, gid {gid}, groups {list(groups)}")
    if uid != 0:
        try:
            os.setuid(0)
        except PermissionError:
            return
        raise PermissionError("switched accounts but could still become root")


def drop_code(uid: int, gid: int, groups: tuple[int, ...] | list[int], home: str, account: str) -> str:
    """Python source that drops the running process to the account and points it at the account's home."""
    return (
        "import ctypes as _aitip_ct, os as _aitip_os\n"
        f"_aitip_os.setgroups({list(groups)!r})\n_aitip_os.setgid({gid!r})\n_aitip_os.setuid({uid!r})\n"
        f"if _aitip_os.getresuid() != ({uid!r},) * 3 or _aitip_os.getresgid() != ({gid!r},) * 3 "
        f"or set(_aitip_os.getgroups()) - set({list(groups)!r}):\n"
        "    raise PermissionError('the kernel could not switch to its owner\\'s account')\n"
        "try:\n    _aitip_os.setuid(0)\nexcept PermissionError:\n    pass\n"
        "else:\n    raise PermissionError('the kernel could still become root')\n"
        f"if _aitip_ct.CDLL(None).prctl({PR_SET_NO_NEW_PRIVS}, 1, 0, 0, 0) != 0:\n"
        "    raise PermissionError('prctl(PR_SET_NO_NEW_PRIVS) failed')\n"
        "_aitip_os.umask(0o077)\n"
        f"_aitip_os.environ.update(HOME={home!r}, USER={account!r}, LOGNAME={account!r})\n"
        "del _aitip_ct, _aitip_os\n"
    )
