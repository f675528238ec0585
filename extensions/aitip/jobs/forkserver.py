"""A fork server for kernels: imports ipykernel (and optionally numpy, pandas, ...) once, then forks a
fresh kernel process per request, so a job's kernel starts without waiting for interpreter start-up and
imports.

Every kernel is still a new process used for one job: the fork happens before any user code runs. The
server itself never runs user code and holds no threads when it forks (BLAS pools are limited to one
thread while preloading; each kernel gets its own pool size back). Children reseed the random
generators they inherit, start a new session, and watch the server: if it dies, they exit.

Protocol: one request per connection on a Unix socket, a JSON line each way. ``spawn`` answers with
the kernel's pid and hands over a pidfd (SCM_RIGHTS), so the caller can poll and signal the kernel
without racing pid reuse; ``status`` gives a reaped kernel's exit code; ``ping`` reports readiness.

    python -m aitip.jobs.forkserver SOCKET_PATH [--preload numpy,pandas]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import selectors
import signal
import socket
import sys
import threading
import time
import traceback
from collections import OrderedDict
from typing import Any

# While preloading, native thread pools must not start in the parent (a fork keeps only one thread):
# BLAS/OpenMP pools pinned to one thread, and Arrow's jemalloc without its background purging thread.
PRELOAD_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
               "JE_ARROW_MALLOC_CONF": "background_thread:false"}
BLAS_THREAD_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
KERNEL_MODULES = ("ipykernel.kernelapp", "ipykernel.ipkernel", "ipykernel.zmqshell", "ipykernel.debugger",
                  "IPython.core.interactiveshell")
MAX_REQUEST_BYTES = 1 << 20
MAX_REMEMBERED_EXITS = 4096


class ForkServer:
    def __init__(self, socket_path: str, preload: list[str]) -> None:
        self.socket_path = socket_path
        self.preload = preload
        self.preloaded: list[str] = []
        self.exits: OrderedDict[int, int] = OrderedDict()
        self.children: set[int] = set()
        self.pid = os.getpid()
        self.parent_pid = os.getppid()
        self.listener: socket.socket | None = None
        self.selector: selectors.BaseSelector | None = None
        self.wakeup: tuple[socket.socket, socket.socket] | None = None

    # ----- set-up (parent) -----

    def load(self) -> None:
        saved = {name: os.environ.get(name) for name in PRELOAD_ENV}
        os.environ.update(PRELOAD_ENV)
        try:
            for module in (*KERNEL_MODULES, *self.preload):
                try:
                    importlib.import_module(module)
                    self.preloaded.append(module)
                except ImportError as error:
                    print(f"aitip forkserver: not preloading {module}: {error}", file=sys.stderr)
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

    def bind(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket_path)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.socket_path)
        os.chmod(self.socket_path, 0o600)
        self.listener.listen(64)
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.listener, selectors.EVENT_READ)
        self.wakeup = socket.socketpair()
        self.wakeup[0].setblocking(False)
        self.wakeup[1].setblocking(False)
        self.selector.register(self.wakeup[0], selectors.EVENT_READ)
        signal.set_wakeup_fd(self.wakeup[1].fileno())
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, self._terminate)

    def _terminate(self, *_: Any) -> None:
        raise SystemExit(0)

    # ----- the loop (parent) -----

    def serve(self) -> dict[str, Any] | None:
        """Serve until told to stop or the platform goes; in a forked child, return its launch request."""
        assert self.listener is not None and self.selector is not None
        while True:
            for key, _ in self.selector.select(timeout=1.0):
                if key.fileobj is self.listener:
                    launch = self._accept()
                    if launch is not None:
                        return launch
                else:
                    with contextlib.suppress(BlockingIOError):
                        self.wakeup[0].recv(4096)  # type: ignore[index]
            self._reap()
            if os.getppid() != self.parent_pid:
                return None  # the platform is gone: so are we (and, through their poller, our kernels)

    def _reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.children.clear()
                return
            if pid == 0:
                return
            self.children.discard(pid)
            self.exits[pid] = os.waitstatus_to_exitcode(status)
            while len(self.exits) > MAX_REMEMBERED_EXITS:
                self.exits.popitem(last=False)

    def _accept(self) -> dict[str, Any] | None:
        assert self.listener is not None
        try:
            connection, _ = self.listener.accept()
        except OSError:
            return None
        with connection:
            connection.settimeout(10)
            try:
                request = self._read(connection)
                op = request.get("op")
                if op == "spawn":
                    return self._spawn(connection, request)
                if op == "status":
                    self._reap()
                    pid = int(request["pid"])
                    running = pid in self.children
                    self._send(connection, {"running": running, "returncode": self.exits.get(pid)})
                elif op == "ping":
                    self._send(connection, {"pid": self.pid, "preloaded": self.preloaded})
                else:
                    self._send(connection, {"error": f"unknown op {op!r}"})
            except Exception as error:  # noqa: BLE001 - one bad request never stops the server
                with contextlib.suppress(OSError):
                    self._send(connection, {"error": f"{type(error).__name__}: {error}"})
        return None

    @staticmethod
    def _read(connection: socket.socket) -> dict[str, Any]:
        data = b""
        while not data.endswith(b"\n"):
            chunk = connection.recv(65536)
            if not chunk:
                break
            data += chunk
            if len(data) > MAX_REQUEST_BYTES:
                raise ValueError("request too large")
        request = json.loads(data)
        if not isinstance(request, dict):
            raise ValueError("a request is a JSON object")
        return request

    @staticmethod
    def _send(connection: socket.socket, message: dict[str, Any], fds: list[int] | None = None) -> None:
        data = json.dumps(message).encode() + b"\n"
        if fds:
            socket.send_fds(connection, [data], fds)
        else:
            connection.sendall(data)

    def _spawn(self, connection: socket.socket, request: dict[str, Any]) -> dict[str, Any] | None:
        threads = len(os.listdir("/proc/self/task")) if os.path.isdir("/proc/self/task") else threading.active_count()
        if threads != 1:
            self._send(connection, {"error": f"the fork server holds {threads} threads; refusing to fork"})
            return None
        pid = os.fork()
        if pid == 0:
            return request
        self.children.add(pid)
        pidfd = os.pidfd_open(pid)
        try:
            self._send(connection, {"pid": pid}, [pidfd])
        finally:
            os.close(pidfd)
        return None

    def close(self) -> None:
        if os.getpid() != self.pid:
            return
        if self.listener is not None:
            self.listener.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.socket_path)
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)

    # ----- in the child -----

    def release_parent_resources(self) -> None:
        signal.set_wakeup_fd(-1)
        for signum in (signal.SIGCHLD, signal.SIGTERM):
            signal.signal(signum, signal.SIG_DFL)
        if self.selector is not None:
            self.selector.close()
        for sock in (self.listener, *(self.wakeup or ())):
            if sock is not None:
                sock.close()
        self.children.clear()


def reseed_inherited_generators() -> None:
    """Forked children share their parent's RNG state; give each kernel its own (``random`` reseeds itself)."""
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()


def restore_thread_pools() -> None:
    """Preloading pinned BLAS/OpenMP pools to one thread; let the kernel use what its environment says."""
    if "numpy" not in sys.modules:
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    configured = [os.environ.get(name) for name in BLAS_THREAD_ENV]
    limit = next((int(value) for value in configured if value and value.isdigit()), None)
    threadpool_limits(limits=limit or os.cpu_count() or 1)


def detach_from_platform() -> None:
    """Keep nothing of the platform's: standard streams on /dev/null (ipykernel forwards a cell's output
    itself), every other inherited descriptor closed, and no new privileges for any thread the kernel
    starts, so when the platform later drops it to its job's owner nothing can raise it again."""
    devnull = os.open(os.devnull, os.O_RDWR)
    for descriptor in (0, 1, 2):
        os.dup2(devnull, descriptor)
    os.closerange(3, os.sysconf("SC_OPEN_MAX") if os.sysconf("SC_OPEN_MAX") > 0 else 65536)
    from aitip.isolation.privileges import no_new_privileges

    no_new_privileges()


def run_kernel(request: dict[str, Any], server_pid: int) -> int:
    """Become the kernel the request describes (in the forked child) and return its exit code."""
    os.setsid()
    if request.get("isolate_network"):
        from aitip.isolation.network import isolate_network

        isolate_network()  # before any thread or socket; a failure ends the child, said on its stderr
    detach_from_platform()
    os.chdir(request.get("cwd") or os.getcwd())
    os.environ.clear()
    os.environ.update({str(k): str(v) for k, v in (request.get("env") or {}).items()})
    os.environ["JPY_PARENT_PID"] = str(server_pid)
    if sys.path and sys.path[0] != "":
        sys.path[0] = os.getcwd()
    reseed_inherited_generators()
    restore_thread_pools()
    from ipykernel.kernelapp import IPKernelApp

    argv = [str(a) for a in request.get("argv") or []]
    sys.argv = [sys.executable, "-m", "ipykernel_launcher", *argv]
    try:
        IPKernelApp.launch_instance(argv=[*argv, f"--IPKernelApp.parent_handle={server_pid}"])
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    return 0


def main(arguments: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aitip.jobs.forkserver")
    parser.add_argument("socket_path")
    parser.add_argument("--preload", default="", help="comma-separated modules to import once, before forking")
    options = parser.parse_args(arguments)
    server = ForkServer(options.socket_path, [m for m in options.preload.split(",") if m.strip()])
    started = time.monotonic()
    server.load()
    server.bind()
    print(f"aitip forkserver: ready in {time.monotonic() - started:.2f} s, preloaded {', '.join(server.preloaded)}",
          file=sys.stderr, flush=True)
    launch: dict[str, Any] | None = None
    try:
        launch = server.serve()
    except (SystemExit, KeyboardInterrupt):
        launch = None
    finally:
        server.close()
    if launch is None:
        return 0
    server.release_parent_resources()
    try:
        return run_kernel(launch, server.pid)
    except BaseException:  # noqa: BLE001 - a kernel that cannot start says why on stderr, if it still has one
        traceback.print_exc()
        return 1


if __name__ == "__main__":
    sys.exit(main())
