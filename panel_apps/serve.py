"""``panel serve`` of the dashboards, in the two places they run.

As the JupyterHub-managed service ``dashboards`` (``python -m panel_apps.serve``): Panel's generic
OAuth provider signs viewers in at the hub, and the token the hub issues carries
``access:services!service=aitip``, so the pages call the platform API as the viewer.

Inside a user's server (``python -m panel_apps.serve --workspace``, started by jupyter-server-proxy):
no OAuth; the user server has already authenticated the browser, and the pages call the platform
through that server's workspace relay with the server's own token (the server's owner).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import secrets
import sys
from pathlib import Path
from urllib.parse import urlparse

PAGES = ("overview", "jobs", "experiments", "models", "evaluations", "simulations", "serving", "releases",
         "datasets", "annotate")
PACKAGE_DIR = Path(__file__).resolve().parent
PLATFORM_SERVICE = "aitip"
MODE_VARIABLE = "AITIP_DASHBOARDS_MODE"
API_URL_VARIABLE = "AITIP_DASHBOARDS_API_URL"


def page_files() -> list[str]:
    """One script per page; ``panel serve`` names each route after its file (/overview, /jobs, ...)."""
    return [str(PACKAGE_DIR / f"{page}.py") for page in PAGES]


def panel_serve_command(prefix: str, *, origins: list[str], port: int | None = None,
                        unix_socket: str | None = None, oauth: bool = False) -> list[str]:
    """Both proxies in front (configurable-http-proxy, jupyter-server-proxy with ``absolute_url``)
    forward the full path, so Panel serves under ``--prefix`` and needs no ``--root-path``; the
    site's root shows the Overview."""
    command = [sys.executable, "-m", "panel", "serve", *page_files(), "--prefix", prefix.rstrip("/"),
               "--index", "overview", "--setup", str(PACKAGE_DIR / "startup.py")]
    if unix_socket:
        command += ["--unix-socket", unix_socket]
    else:
        command += ["--address", "127.0.0.1", "--port", str(port or 0)]
    for origin in origins:
        command += ["--allow-websocket-origin", origin]
    if oauth:
        command += ["--oauth-provider", "generic"]
    return command


def dashboard_secrets(path: Path) -> tuple[str, str]:
    """Panel's cookie secret and its cookie encryption key, derived from one secret kept (0600) in
    the platform's state so that a restarted service keeps its viewers signed in."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_hex(32) + "\n")
    seed = path.read_text().strip().encode()
    cookie_secret = hashlib.sha256(seed + b"/cookie").hexdigest()
    encryption_key = base64.urlsafe_b64encode(hashlib.sha256(seed + b"/encryption").digest()).decode()
    return cookie_secret, encryption_key


def oauth_scopes(environ: dict[str, str]) -> list[str]:
    """Hub scopes to request: access to this service (so the hub lets the viewer in) and to the
    platform service (so the platform accepts the token). Panel's OpenID default is refused, and so
    is the bare ``access:services`` the hub lists among a service's access scopes."""
    service = environ.get("JUPYTERHUB_SERVICE_NAME", "dashboards")
    return [f"access:services!service={service}", f"access:services!service={PLATFORM_SERVICE}"]


def hub_service_launch(environ: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """The command and environment of the hub service, from what the hub gives a managed service."""
    prefix = environ["JUPYTERHUB_SERVICE_PREFIX"]
    hub_base = environ.get("JUPYTERHUB_BASE_URL", "/")
    hub_api = environ["JUPYTERHUB_API_URL"].rstrip("/")
    port = urlparse(environ["JUPYTERHUB_SERVICE_URL"]).port
    origins = [origin for origin in environ.get("AITIP_DASHBOARDS_ORIGINS", "").split(",") if origin]
    home = Path(environ.get("AITIP_HOME", "."))
    cookie_secret, encryption_key = dashboard_secrets(home / "hub" / "dashboards_secret")
    env = {name: value for name, value in environ.items() if not name.startswith("PANEL_")}
    # The service's own hub token is the OAuth client secret only; no page may call the API with it.
    client_secret = env.pop("JUPYTERHUB_API_TOKEN")
    env.pop("JPY_API_TOKEN", None)
    env.update({
        MODE_VARIABLE: "hub",
        API_URL_VARIABLE: environ["AITIP_PLATFORM_URL"],
        "PANEL_OAUTH_KEY": environ["JUPYTERHUB_CLIENT_ID"],
        "PANEL_OAUTH_SECRET": client_secret,
        "PANEL_OAUTH_AUTHORIZE_URL": f"{hub_base.rstrip('/')}/hub/api/oauth2/authorize",
        "PANEL_OAUTH_TOKEN_URL": f"{hub_api}/oauth2/token",
        "PANEL_OAUTH_USER_URL": f"{hub_api}/user",
        "PANEL_OAUTH_REDIRECT_URI": f"{prefix.rstrip('/')}/login",
        "PANEL_OAUTH_SCOPE": ",".join(oauth_scopes(environ)),
        "PANEL_USER_KEY": "name",
        "PANEL_COOKIE_SECRET": cookie_secret,
        "PANEL_OAUTH_ENCRYPTION": encryption_key,
        "PANEL_COOKIE_PATH": prefix,
    })
    return panel_serve_command(prefix, origins=origins, port=port, oauth=True), env


def workspace_launch(prefix: str, *, unix_socket: str | None, port: int | None,
                     environ: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """Inside a user's server: jupyter-server-proxy authenticates the browser and checks the origin
    of websockets; Panel listens on a private Unix socket (or loopback port) behind it."""
    env = {name: value for name, value in environ.items() if not name.startswith("PANEL_")}
    env[MODE_VARIABLE] = "workspace"
    return panel_serve_command(prefix, origins=["*"], port=port, unix_socket=unix_socket), env


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m panel_apps.serve", description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", action="store_true", help="run inside a user's server (jupyter-server-proxy)")
    parser.add_argument("--prefix", help="URL prefix (workspace mode; the hub service uses its own)")
    parser.add_argument("--unix-socket", help="listen on this Unix socket (workspace mode)")
    parser.add_argument("--port", type=int, help="listen on this loopback port (workspace mode)")
    args = parser.parse_args(argv)
    if args.workspace:
        if not args.prefix:
            parser.error("--workspace needs --prefix")
        command, env = workspace_launch(args.prefix, unix_socket=args.unix_socket, port=args.port,
                                        environ=dict(os.environ))
    else:
        command, env = hub_service_launch(dict(os.environ))
    os.execve(command[0], command, env)


if __name__ == "__main__":
    main()
