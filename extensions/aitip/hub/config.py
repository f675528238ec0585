"""JupyterHub configuration for AITIP, from ``AITIP_*`` environment variables (set by ``aitip up``).

Local mode (default): each hub user's server under a Linux account of its own (``AccountSpawner``; as
root), or all under the platform's account in single-trust mode (``SharedAccountSpawner``);
configurable-http-proxy from npm; NativeAuthenticator.
Kubernetes mode (``AITIP_SPAWNER=kubernetes``): KubeSpawner with CPU/GPU profiles.
Both run the platform service ``aitip`` and the Panel dashboards ``dashboards`` as hub-managed services.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..faults import FAULT_ENV, ONCE_ENV
from ..i18n import ENVIRONMENT_VARIABLE
from ..isolation.mode import SHARED_ACCOUNT_ENV, Isolation, isolation
from ..settings import aitip_home
from .kubernetes import PANEL_PREVIEW_OFF
from .language import configure_languages, spawning_language

SERVICE_NAME = "aitip"
DASHBOARDS_SERVICE = "dashboards"
REPO_ROOT = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class HubSettings:
    home: Path
    bind: str
    port: int
    hub_port: int
    proxy_api_port: int
    service_port: int
    dashboards_port: int
    admin_user: str
    admin_password: str
    spawner: str
    proxy_command: str
    isolation: Isolation = field(default_factory=isolation)

    @property
    def service_url(self) -> str:
        return f"http://127.0.0.1:{self.service_port}"

    @property
    def platform_url(self) -> str:
        """Where workspace relays reach the platform: the service directly, under its hub prefix."""
        return f"{self.service_url}/services/{SERVICE_NAME}/"


def find_proxy_command() -> str:
    """configurable-http-proxy from npm: the project's pinned copy first, then PATH."""
    configured = os.environ.get("AITIP_PROXY_COMMAND")
    if configured:
        return configured
    pinned = REPO_ROOT / "node_modules" / ".bin" / "configurable-http-proxy"
    if pinned.exists():
        return str(pinned)
    found = shutil.which("configurable-http-proxy")
    if found:
        return found
    raise RuntimeError("configurable-http-proxy not found: run `make deps` (npm ci) or set AITIP_PROXY_COMMAND")


def settings_from_env() -> HubSettings:
    env = os.environ
    return HubSettings(
        home=aitip_home(),
        bind=env.get("AITIP_BIND", "127.0.0.1"),
        port=int(env.get("AITIP_PORT", "8000")),
        hub_port=int(env.get("AITIP_HUB_PORT", "8081")),
        proxy_api_port=int(env.get("AITIP_PROXY_API_PORT", "8001")),
        service_port=int(env.get("AITIP_SERVICE_PORT", "8181")),
        dashboards_port=int(env.get("AITIP_DASHBOARDS_PORT", "8182")),
        admin_user=env.get("AITIP_ADMIN_USER", "admin"),
        admin_password=env.get("AITIP_ADMIN_PASSWORD", ""),
        spawner=env.get("AITIP_SPAWNER", "local"),
        proxy_command=find_proxy_command(),
    )


SERVICE_POLL_SECONDS = 2


def restart_dead_services_within(seconds: int) -> None:
    """The hub restarts a managed service that died once it polls it, every 30 s by default: the
    platform API would be down that long. JupyterHub builds service spawners without configuration,
    so the service spawner class's own initial value is set (traitlets keeps one per class); user
    servers keep 30 s through ``c.Spawner``."""
    from jupyterhub.services.service import _ServiceSpawner

    initial = getattr(_ServiceSpawner, "_static_immutable_initial_values", None)
    if isinstance(initial, dict):
        initial["poll_interval"] = seconds


def server_token_scopes() -> list[str]:
    """A user server's own token may reach the platform service as its owner (workspace relay)."""
    return ["access:servers!server", "users:activity!user", f"access:services!service={SERVICE_NAME}"]


# What the operator sets before `aitip up` that the platform service reads; JupyterHub starts a service with only
# the environment it is given (and PATH, LANG...), so each is handed on by name. Not the admin's password.
PLATFORM_SETTINGS = ("AITIP_CATALOG_URL", "AITIP_DIRECTORY_CACHE_SECONDS", "AITIP_TOKEN_CACHE_SECONDS",
                     "AITIP_MLFLOW_TRACKING_URI", "AITIP_DATA_REGISTRY", "AITIP_DATA_REMOTE", "AITIP_GPUS",
                     "AITIP_SMTP_HOST", "AITIP_WEBHOOK_ALLOWED_NETWORKS", "AITIP_MAX_INLINE_FILE_BYTES",
                     "AITIP_SERVING_METRICS_SECONDS", "PYTHONPATH", SHARED_ACCOUNT_ENV, FAULT_ENV, ONCE_ENV)


def platform_service(settings: HubSettings) -> dict[str, Any]:
    environment = {"AITIP_HOME": str(settings.home), "AITIP_MODE": "platform"}
    for name in PLATFORM_SETTINGS:
        if os.environ.get(name):
            environment[name] = os.environ[name]
    return {
        "name": SERVICE_NAME,
        "url": settings.service_url,
        "command": [sys.executable, "-m", "aitip.server.platform"],
        "environment": environment,
        "cwd": str(settings.home),
        "oauth_no_confirm": True,
        "display": True,
        "info": {"description": "AITIP platform API", "api": f"/services/{SERVICE_NAME}/api/aitip/v1/"},
    }


def dashboard_origins(settings: HubSettings) -> list[str]:
    """Origins whose pages may open the dashboards' websockets: the public address as browsers
    spell it (Bokeh refuses any other origin)."""
    hosts = {settings.bind, "127.0.0.1", "localhost"}
    if settings.bind in ("0.0.0.0", "", "::"):
        hosts |= {socket.gethostname(), socket.getfqdn()}
        hosts.discard(settings.bind)
    return sorted(f"{host}:{settings.port}" for host in hosts if host)


def dashboards_service(settings: HubSettings) -> dict[str, Any]:
    """``panel serve`` of the dashboards as a managed service. Its OAuth client may only ask for
    access to the platform service, so a viewer's token reaches the platform API as the viewer and
    nothing else; Panel's callback is its own ``login`` endpoint."""
    environment = {"AITIP_HOME": str(settings.home), "AITIP_PLATFORM_URL": settings.platform_url,
                   "AITIP_DASHBOARDS_ORIGINS": ",".join(dashboard_origins(settings))}
    for name in ("PYTHONPATH", SHARED_ACCOUNT_ENV):
        if os.environ.get(name):
            environment[name] = os.environ[name]
    return {
        "name": DASHBOARDS_SERVICE,
        "url": f"http://127.0.0.1:{settings.dashboards_port}",
        "command": [sys.executable, "-m", "panel_apps.serve"],
        "environment": environment,
        "cwd": str(settings.home),
        "oauth_no_confirm": True,
        "oauth_client_allowed_scopes": [f"access:services!service={SERVICE_NAME}"],
        "oauth_redirect_uri": f"/services/{DASHBOARDS_SERVICE}/login",
        "timeout": 120,
        "display": True,
        "info": {"description": "AITIP dashboards: GPUs, jobs, experiments, models"},
    }


def user_server_args(separate_accounts: bool = False) -> list[str]:
    """Arguments of every user server: Panel's auto-enabled preview extension slows every spawn and is
    not used (the dashboards run through jupyter-server-proxy, which stays on). A server runs as
    root only in single-trust mode started by root."""
    args = [PANEL_PREVIEW_OFF]
    if os.geteuid() == 0 and not separate_accounts:
        args.append("--ServerApp.allow_root=True")
    return args


def roles() -> list[dict[str, Any]]:
    return [
        # The default user role has only `self`; users need to reach the platform and the dashboards.
        {"name": "user", "scopes": ["self", f"access:services!service={SERVICE_NAME}",
                                    f"access:services!service={DASHBOARDS_SERVICE}"]},
        {"name": "aitip-platform", "services": [SERVICE_NAME],
         "scopes": ["read:users", "list:users", "read:groups", "list:groups"]},
    ]


def configure(c: Any, settings: HubSettings | None = None) -> HubSettings:
    settings = settings or settings_from_env()
    hub_dir = settings.home / "hub"
    hub_dir.mkdir(parents=True, exist_ok=True)

    c.JupyterHub.ip = settings.bind
    c.JupyterHub.port = settings.port
    public_url = os.environ.get("AITIP_PUBLIC_URL", "").strip()
    if public_url:  # the address people reach the platform at, for links sent out (webhooks, e-mail)
        c.JupyterHub.public_url = public_url.rstrip("/") + "/"
    c.JupyterHub.hub_ip = "127.0.0.1"
    c.JupyterHub.hub_port = settings.hub_port
    c.JupyterHub.db_url = f"sqlite:///{hub_dir / 'jupyterhub.sqlite'}"
    c.JupyterHub.cookie_secret_file = str(hub_dir / "jupyterhub_cookie_secret")
    c.JupyterHub.pid_file = str(hub_dir / "jupyterhub.pid")
    c.JupyterHub.cleanup_servers = True
    c.JupyterHub.cleanup_proxy = True

    c.ConfigurableHTTPProxy.command = [settings.proxy_command]
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{settings.proxy_api_port}"
    c.ConfigurableHTTPProxy.pid_file = str(hub_dir / "proxy.pid")

    configure_languages(c)  # the hub's pages in English or Chinese, as the request asks
    c.JupyterHub.authenticator_class = "aitip.hub.authenticator.AitipNativeAuthenticator"
    c.Authenticator.admin_users = {settings.admin_user}
    # NativeAuthenticator lets only approved accounts log in, so every authenticated user is allowed.
    c.Authenticator.allow_all = True
    c.NativeAuthenticator.open_signup = False
    # Single-trust mode (everyone shares one OS account) takes no sign-ups unless that was chosen on purpose.
    c.NativeAuthenticator.enable_signup = settings.isolation.signup_open
    c.AitipNativeAuthenticator.separate_accounts = settings.isolation.separate_accounts
    c.NativeAuthenticator.minimum_password_length = 8
    c.NativeAuthenticator.check_common_password = True
    c.AitipNativeAuthenticator.bootstrap_admin_password = settings.admin_password

    c.JupyterHub.load_roles = roles()
    c.JupyterHub.services = [platform_service(settings), dashboards_service(settings)]
    c.JupyterHub.default_url = "/hub/home"

    c.Spawner.default_url = "/lab"
    c.Spawner.http_timeout = 60
    c.Spawner.start_timeout = 120
    c.Spawner.server_token_scopes = server_token_scopes()
    restart_dead_services_within(SERVICE_POLL_SECONDS)
    c.Spawner.poll_interval = 30  # user servers keep JupyterHub's usual check
    c.Spawner.environment = {"AITIP_PLATFORM_URL": settings.platform_url, "AITIP_MODE": "workspace",
                             ENVIRONMENT_VARIABLE: spawning_language}

    if settings.spawner == "kubernetes":
        from .kubernetes import configure_kubespawner

        configure_kubespawner(c, platform_url=os.environ.get("AITIP_K8S_PLATFORM_URL", settings.platform_url),
                              token_scopes=server_token_scopes())
    elif settings.spawner == "local":
        separate = settings.isolation.separate_accounts
        c.JupyterHub.spawner_class = (
            "aitip.hub.spawner.AccountSpawner" if separate else "aitip.hub.spawner.SharedAccountSpawner")
        c.Spawner.cmd = [sys.executable, "-m", "aitip.server.workspace"]
        c.Spawner.args = user_server_args(separate)
    else:
        raise ValueError(f"AITIP_SPAWNER={settings.spawner!r}: expected 'local' or 'kubernetes'")
    return settings
