"""The process that serves one model version: it loads the model once, as the deployment owner's account,
then forks its replicas (each a :mod:`.replica` server on a Unix socket of its own) and forks a new one the
moment one dies — from the loaded model, so a replica is back in milliseconds, not after an interpreter
start. The platform drives it over a pipe: JSON lines in (``{"replicas": n}``, ``{"restart": slot}``,
``{"stop": true}``), JSON lines out (``loaded``, ``failed``, ``ready``, ``exited``).

    python -m aitip.serving.host SPEC_JSON

The host and its replicas die with the platform (``PR_SET_PDEATHSIG``); the platform starts them again.
"""

from __future__ import annotations

import ctypes
import json
import os
import selectors
import signal
import sys
import time
from pathlib import Path
from typing import Any

PR_SET_PDEATHSIG = 1
CRASH_WINDOW = 1.0  # a replica that dies within this of its start counts towards the back-off
MAX_BACKOFF = 5.0


def _emit(event: dict[str, Any]) -> None:
    os.write(1, (json.dumps(event) + "\n").encode())


def _die_with_parent(parent: int) -> None:
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(0)


class Host:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.sockets = Path(spec["sockets_dir"])
        self.wanted = int(spec.get("replicas", 1))
        self.slots: dict[int, int] = {}  # slot -> pid
        self.started: dict[int, float] = {}
        self.crashes: dict[int, int] = {}
        self.retry_at: dict[int, float] = {}
        self.stopping = False
        self.model: Any = None

    def load(self) -> bool:
        from .loading import LoadFailed, load

        try:
            self.model = load(Path(self.spec["model_dir"]), self.spec.get("backend", "python"))
        except LoadFailed as error:
            _emit({"event": "failed", "reason": str(error)})
            return False
        from . import replica  # noqa: F401 - imported once here, so that each fork starts serving at once

        _emit({"event": "loaded", "flavor": self.model.flavor, "signature": self.model.signature.describe()})
        return True

    def socket_path(self, slot: int) -> str:
        return str(self.sockets / f"replica-{slot}.sock")

    def fork(self, slot: int) -> None:
        host = os.getpid()
        pid = os.fork()
        if pid == 0:
            try:
                self._child(slot, host)
            finally:
                os._exit(1)
        self.slots[slot] = pid
        self.started[slot] = time.monotonic()

    def _child(self, slot: int, host: int) -> None:
        import asyncio

        from .replica import ReplicaState, listen, serve

        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        _die_with_parent(host)
        os.close(0)
        spec = self.spec
        state = ReplicaState(self.model, name=spec["name"], model_name=spec["model_name"],
                             version=str(spec["version"]), max_batch_size=int(spec.get("max_batch_size", 64)),
                             max_batch_wait_ms=float(spec.get("max_batch_wait_ms", 2.0)))
        path = self.socket_path(slot)
        listener = listen(path, None)
        asyncio.run(serve(state, listener, drain_seconds=float(spec.get("drain_seconds", 10)), on_ready=lambda:
                          _emit({"event": "ready", "slot": slot, "pid": os.getpid(), "socket": path})))
        os._exit(0)

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            slot = next((s for s, p in self.slots.items() if p == pid), None)
            if slot is None:
                continue
            del self.slots[slot]
            code = os.waitstatus_to_exitcode(status)
            _emit({"event": "exited", "slot": slot, "pid": pid, "code": code})
            lived = time.monotonic() - self.started.get(slot, 0.0)
            self.crashes[slot] = self.crashes.get(slot, 0) + 1 if lived < CRASH_WINDOW else 0
            delay = min(MAX_BACKOFF, 0.1 * 2 ** self.crashes[slot]) if self.crashes[slot] > 2 else 0.0
            self.retry_at[slot] = time.monotonic() + delay

    def fill(self) -> None:
        if self.stopping:
            return
        now = time.monotonic()
        for slot in range(self.wanted):
            if slot not in self.slots and self.retry_at.get(slot, 0.0) <= now:
                self.fork(slot)
        for slot, pid in list(self.slots.items()):
            if slot >= self.wanted:
                os.kill(pid, signal.SIGTERM)  # drains (the platform stopped routing to it first)

    def command(self, line: bytes) -> None:
        try:
            order = json.loads(line)
        except ValueError:
            return
        if "replicas" in order:
            self.wanted = max(0, int(order["replicas"]))
        if "restart" in order and int(order["restart"]) in self.slots:
            os.kill(self.slots[int(order["restart"])], signal.SIGKILL)
        if order.get("stop"):
            self.stopping = True

    def run(self) -> int:
        wake_read, wake_write = os.pipe()
        os.set_blocking(wake_write, False)
        signal.set_wakeup_fd(wake_write)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "stopping", True))
        selector = selectors.DefaultSelector()
        selector.register(0, selectors.EVENT_READ, "command")
        selector.register(wake_read, selectors.EVENT_READ, "signal")
        pending = b""
        self.fill()
        while not self.stopping:
            for key, _ in selector.select(timeout=0.2):
                if key.data == "signal":
                    os.read(wake_read, 512)
                    continue
                chunk = os.read(0, 65536)
                if not chunk:  # the platform is gone
                    self.stopping = True
                    break
                pending += chunk
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    self.command(line)
            self.reap()
            self.fill()
        return self.stop_all()

    def stop_all(self) -> int:
        for pid in self.slots.values():
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + float(self.spec.get("drain_seconds", 10)) + 2
        while self.slots and time.monotonic() < deadline:
            self.reap()
            time.sleep(0.02)
        for pid in self.slots.values():
            os.kill(pid, signal.SIGKILL)
        return 0


def main(arguments: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if arguments is None else arguments
    spec = json.loads(arguments[0])
    _die_with_parent(int(spec.get("parent_pid", os.getppid())))
    from ..isolation.privileges import no_new_privileges

    no_new_privileges()
    os.umask(0o077)
    host = Host(spec)
    if not host.load():
        return 3
    return host.run()


if __name__ == "__main__":
    sys.exit(main())
