"""``aitip up``: start the local platform (JupyterHub, configurable-http-proxy, the platform service)
in the foreground, print where to log in, and stop everything on Ctrl-C or SIGTERM."""

from __future__ import annotations

import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import httpx

from .catalog import Catalog
from .hub.config import REPO_ROOT, find_proxy_command
from .isolation.mode import Isolation, isolation
from .isolation.state import secure_home
from .settings import aitip_home, catalog_url


@dataclass(frozen=True)
class Launch:
    home: Path
    url: str  # where this machine reaches the proxy (the readiness probe)
    admin_user: str
    admin_password: str
    password_generated: bool
    env: dict[str, str]
    config_file: Path
    isolation: Isolation
    public_url: str = ""  # where people reach it ($AITIP_PUBLIC_URL), when it is not ``url``

    @property
    def shown_url(self) -> str:
        """The address the banner gives people."""
        return (self.public_url or self.url).rstrip("/")


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port(host: str = "127.0.0.1") -> int:
    """A free port below the kernel's ephemeral range (so no outgoing connection takes it before the
    server binds it) and above Ray's worker ports (10002-19999)."""
    low, _ = _ephemeral_range()
    candidates = list(range(20000, max(20001, low)))
    random.shuffle(candidates)
    for port in candidates[:500]:
        if port_is_free(host, port):
            return port
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def port_is_free(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def admin_password(home: Path) -> tuple[str, bool]:
    """$AITIP_ADMIN_PASSWORD, else the one generated on first start and kept (0600) in the home."""
    configured = os.environ.get("AITIP_ADMIN_PASSWORD")
    if configured:
        return configured, False
    stored = home / "admin-password"
    if stored.exists():
        return stored.read_text().strip(), True
    generated = secrets.token_urlsafe(15)
    descriptor = os.open(stored, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(generated + "\n")
    return generated, True


def hub_config_file() -> Path:
    configured = os.environ.get("AITIP_HUB_CONFIG")
    if configured:
        return Path(configured)
    in_repo = REPO_ROOT / "hub" / "jupyterhub_config.py"
    return in_repo if in_repo.exists() else Path(__file__).parent / "hub" / "default_config.py"


def prepare(environ: dict[str, str] | None = None) -> Launch:
    """Resolve ports, the admin account and the catalog; raise SystemExit with a clear message."""
    environ = dict(os.environ if environ is None else environ)
    home = aitip_home()
    os.umask(0o077)  # the hub, the proxy and the services inherit it: what they create is private
    mode = isolation(environ)
    secure_home(home, separate_accounts=mode.separate_accounts)
    if mode.separate_accounts:
        problem = unreachable_environment(home)
        if problem:
            raise SystemExit(f"aitip: {problem}")
    (home / "hub").mkdir(parents=True, exist_ok=True)
    bind = environ.get("AITIP_BIND", "127.0.0.1")
    port = int(environ.get("AITIP_PORT", "8000"))
    if not port_is_free(bind, port):
        raise SystemExit(f"aitip: port {port} on {bind} is in use; stop what holds it or set AITIP_PORT")
    password, generated = admin_password(home)
    if len(password) < 8:
        raise SystemExit("aitip: AITIP_ADMIN_PASSWORD must have at least 8 characters")
    admin = environ.get("AITIP_ADMIN_USER", "admin")
    try:
        find_proxy_command()
    except RuntimeError as exc:
        raise SystemExit(f"aitip: {exc}") from exc
    url = catalog_url(home)
    catalog = Catalog(url)
    try:
        catalog.migrate()
    except Exception as exc:  # noqa: BLE001 - any failure here is reported, not traced
        raise SystemExit(f"aitip: cannot open the catalog at {catalog.engine.url!r}: {exc}") from exc
    finally:
        catalog.dispose()
    environ.update(
        AITIP_HOME=str(home),
        AITIP_BIND=bind,
        AITIP_PORT=str(port),
        AITIP_ADMIN_USER=admin,
        AITIP_ADMIN_PASSWORD=password,
        AITIP_HUB_PORT=environ.get("AITIP_HUB_PORT") or str(free_port()),
        AITIP_PROXY_API_PORT=environ.get("AITIP_PROXY_API_PORT") or str(free_port()),
        AITIP_SERVICE_PORT=environ.get("AITIP_SERVICE_PORT") or str(free_port()),
        AITIP_DASHBOARDS_PORT=environ.get("AITIP_DASHBOARDS_PORT") or str(free_port()),
        CONFIGPROXY_AUTH_TOKEN=environ.get("CONFIGPROXY_AUTH_TOKEN") or secrets.token_hex(32),
    )
    return Launch(home=home, url=f"http://{bind}:{port}", admin_user=admin, admin_password=password,
                  password_generated=generated, env=environ, config_file=hub_config_file(), isolation=mode,
                  public_url=environ.get("AITIP_PUBLIC_URL", "").strip())


PROBE_ACCOUNT = "nobody"


def _closed_directory(target: Path, what: str, remedy: str) -> str | None:
    """Why users' accounts cannot reach ``target`` (the first directory on the way that others may not
    enter), or None."""
    for directory in [*reversed(target.parents), target]:
        mode = directory.stat().st_mode
        if directory.is_dir() and not mode & 0o001:
            return (f"users' accounts cannot reach {what}: {directory} is mode {mode & 0o777:o} (others may not "
                    f"enter it). {remedy}, or `chmod o+x {directory}`; or set AITIP_SHARED_ACCOUNT=1 to run "
                    "everyone under this account (single-trust).")
    return None


def unreachable_environment(home: Path) -> str | None:
    """Why users' own accounts could not run the platform's Python environment or reach their homes
    under ``home`` (None when they can): each user's server runs this interpreter and imports this package
    as that user. Checked as ``nobody``, which has no more rights than a new account."""
    import pwd

    closed = _closed_directory(home, f"their homes under {home}", "Set AITIP_HOME to a directory every account "
                               "can pass through (default for root: /var/lib/aitip)")
    if closed is not None:
        return closed
    try:
        probe = pwd.getpwnam(PROBE_ACCOUNT)
    except KeyError:
        return None
    package = Path(__file__).resolve().parent

    def as_probe() -> None:
        os.setgroups([])
        os.setgid(probe.pw_gid)
        os.setuid(probe.pw_uid)

    result = subprocess.run([sys.executable, "-c", "import aitip, jupyterhub"], preexec_fn=as_probe, cwd="/",
                            capture_output=True, text=True, timeout=120, env={"PATH": os.environ.get("PATH", "")})
    if result.returncode == 0:
        return None
    for target in (Path(sys.executable), package):
        closed = _closed_directory(target, str(target), "Install AITIP where every account can read it (e.g. "
                                   "/opt/aitip)")
        if closed is not None:
            return closed
    last = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
    return f"users' accounts cannot run {sys.executable} with AITIP: {last}"


def _ready(client: httpx.Client, url: str) -> bool:
    """The hub answers through the proxy, the platform service is healthy, and the dashboards
    answer (with a redirect to sign in)."""
    try:
        return (all(client.get(check).status_code == 200
                    for check in (f"{url}/hub/api/", f"{url}/services/aitip/api/aitip/v1/health"))
                and client.get(f"{url}/services/dashboards/overview").status_code in (200, 302))
    except httpx.HTTPError:
        return False


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (Linux /proc), deepest last; spawners start theirs in new sessions,
    so a process-group kill would miss them."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
            parent = int(stat[stat.rindex(")") + 2:].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found: list[int] = []
    frontier = [pid]
    while frontier:
        current = frontier.pop()
        for child in children.get(current, []):
            found.append(child)
            frontier.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:
        return "(zombie)" not in (Path("/proc") / str(pid) / "status").read_text().split("State:")[1][:20]
    except (OSError, IndexError):
        return True


def start_time(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot), so a number reused by a new process is told apart;
    None when there is no such process."""
    try:
        stat = (Path("/proc") / str(pid) / "stat").read_text()
        return int(stat[stat.rindex(")") + 2:].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _terminate(pids: list[int], grace: float) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
            time.sleep(0.1)


def stop(process: subprocess.Popen[bytes], grace: float = 30.0, orphans: Mapping[int, int] | None = None) -> int:
    """Stop the hub (it stops its proxy, services and user servers), then anything it left behind:
    its descendants now and ``orphans``, those seen earlier with their start times (a hub that exited on
    its own leaves its proxy and services running, reparented away from it)."""
    leftovers = [*descendants(process.pid),
                 *(pid for pid, started in (orphans or {}).items() if start_time(pid) == started)]
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    _terminate([pid for pid in leftovers if _alive(pid)], grace=5.0)
    return process.returncode or 0


def isolation_lines(launch: Launch) -> list[str]:
    """What the banner says about users and OS accounts: never silent about single-trust mode."""
    mode = launch.isolation
    if mode.separate_accounts:
        return [f"  users:         each hub user is a Linux account of their own (aitip-<name>), homes in "
                f"{launch.home / 'users'}; the platform's state is private"]
    account = pwd_name(os.geteuid())
    lines = [f"  SINGLE-TRUST:  every user shares the OS account {account!r} ({mode.reason}): anyone with a",
             "                 notebook or terminal can read every project's data and the platform's state"]
    if mode.shared_on_purpose:
        lines.append(f"  sign up:       {launch.shown_url}/hub/signup   (open: AITIP_SHARED_ACCOUNT=1 is set; "
                     f"admins approve at {launch.shown_url}/hub/authorize)")
    else:
        lines.append("  sign up:       off (set AITIP_SHARED_ACCOUNT=1 to let other users sign up anyway, "
                     "or run as root for separate accounts)")
    return lines


def pwd_name(uid: int) -> str:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def banner(launch: Launch) -> str:
    password_note = f" (generated; kept in {launch.home / 'admin-password'})" if launch.password_generated else ""
    url = launch.shown_url
    signup = ([f"  sign up:       {url}/hub/signup   (admins approve at {url}/hub/authorize)"]
              if launch.isolation.separate_accounts else [])
    return "\n".join([
        "",
        f"  AITIP is up at {url}/",
        f"  admin login:   {launch.admin_user} / {launch.admin_password}{password_note}",
        *signup,
        *isolation_lines(launch),
        f"  platform API:  {url}/services/aitip/api/aitip/v1/",
        f"  dashboards:    {url}/services/dashboards/   (also in JupyterLab: /user/<name>/aitip-dashboards/)",
        f"  state:         {launch.home}",
        "  Ctrl-C stops everything.",
        "",
    ])


HUB_STARTS = 3  # JupyterHub exits when a managed service dies before it answered; start it again, like Restart=on-failure


def up(print_fn: Callable[[str], None] = print) -> int:
    launch = prepare()
    requested: list[int] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        requested.append(signum)

    # Handlers first, so the hub (and through it the services) start with default signal dispositions
    # even when this process was started with SIGINT ignored (a background job of a script).
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    for start in range(1, HUB_STARTS + 1):
        ready, returncode = _run_hub(launch, requested, print_fn)
        if requested:
            print_fn("aitip: stopped")
            return 0
        if ready or returncode is None or start == HUB_STARTS:
            break
        print_fn(f"aitip: JupyterHub exited with status {returncode} while starting (a service died before it "
                 f"answered); starting it again ({start + 1}/{HUB_STARTS})")
    if returncode is None:
        return 1
    print_fn(f"aitip: JupyterHub exited with status {returncode}; see its log above")
    return returncode or 1


def _run_hub(launch: Launch, requested: list[int], print_fn: Callable[[str], None]) -> tuple[bool, int | None]:
    """Run the hub until it exits or a stop is requested: (whether it was ever ready, its exit status;
    None when it was stopped for not coming up). Whatever it started is stopped with it, even when it
    exited first and left its proxy or services orphaned."""
    command = [sys.executable, "-m", "jupyterhub", "-f", str(launch.config_file)]
    process = subprocess.Popen(command, cwd=launch.home / "hub", env=launch.env, start_new_session=True)
    started: dict[int, int | None] = {}
    ready = False
    deadline = time.monotonic() + 180
    with httpx.Client(timeout=2.0) as probe:
        while process.poll() is None and not requested:
            started.update({pid: start_time(pid) for pid in descendants(process.pid) if pid not in started})
            if not ready and _ready(probe, launch.url):
                ready = True
                print_fn(banner(launch))
            elif not ready and time.monotonic() > deadline:
                print_fn("aitip: the platform did not come up within 180 s; see the log above. Stopping.")
                stop(process, orphans=started)
                return False, None
            time.sleep(0.5 if not ready else 1.0)
    if requested:
        print_fn(f"aitip: stopping ({signal.Signals(requested[0]).name})...")
    return ready, stop(process, orphans=started)
