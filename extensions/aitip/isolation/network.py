"""A network of its own for a sandboxed kernel: a new network namespace holding only a loopback device.

Made in the kernel's process before it opens a socket or starts a thread (the fork server's child, or this
module as a launcher for a kernel started as a plain process), so nothing in the kernel — no thread, no
ZeroMQ I/O thread — is left in the platform's namespace: its channels use the ``ipc`` transport (Unix socket
paths, which cross namespaces). The only way out is what the platform hands it: a Unix socket of an egress
proxy that forwards to the endpoint under test alone (:mod:`aitip.jobs.egress`).
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import socket
import struct
import sys

CLONE_NEWNET = 0x40000000
CLONE_NEWUSER = 0x10000000
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1
ISOLATED_ENV = "AITIP_NETWORK_ISOLATED"


def _unshare(flags: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(flags) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))


def _map_own_ids(uid: int, gid: int) -> None:
    """In a new user namespace of an unprivileged platform: stay who we were."""
    with open("/proc/self/setgroups", "w") as handle:
        handle.write("deny")
    with open("/proc/self/uid_map", "w") as handle:
        handle.write(f"{uid} {uid} 1")
    with open("/proc/self/gid_map", "w") as handle:
        handle.write(f"{gid} {gid} 1")


def loopback_up() -> None:
    """Bring up ``lo`` in the new namespace (a notebook may serve itself on 127.0.0.1)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        request = struct.pack("16sH14s", b"lo", 0, b"")
        flags = struct.unpack("16sH14s", fcntl.ioctl(probe, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(probe, SIOCSIFFLAGS, struct.pack("16sH14s", b"lo", flags | IFF_UP, b""))


def isolate_network() -> None:
    """Move this (single-threaded) process into a network namespace of its own; raise OSError if it cannot
    be done: a sandboxed kernel never runs with the platform's network."""
    try:
        _unshare(CLONE_NEWNET)
    except PermissionError:
        uid, gid = os.getuid(), os.getgid()
        try:
            _unshare(CLONE_NEWUSER | CLONE_NEWNET)
            _map_own_ids(uid, gid)
        except OSError as error:
            raise OSError(error.errno, f"cannot isolate the kernel's network (unshare: {error.strerror}); "
                          "run the platform as root or allow unprivileged user namespaces") from None
    loopback_up()
    os.environ[ISOLATED_ENV] = "1"


def interfaces() -> list[str]:
    """The network devices this process sees (a sandboxed kernel: ``lo`` alone)."""
    return sorted(name for _, name in socket.if_nameindex())


def main(arguments: list[str]) -> int:
    """``python -m aitip.isolation.network -- COMMAND…``: run COMMAND in a network of its own."""
    if arguments[:1] == ["--"]:
        arguments = arguments[1:]
    if not arguments:
        print("usage: python -m aitip.isolation.network -- COMMAND [ARGUMENTS…]", file=sys.stderr)
        return 2
    try:
        isolate_network()
    except OSError as error:
        print(f"aitip: {error.strerror or error}", file=sys.stderr)
        return 70
    os.execvp(arguments[0], arguments)
    return 0  # not reached: exec replaced this process


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
