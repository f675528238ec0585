"""The dashboards as a hub-managed service (OAuth client, scopes, websocket origins, the launch of
``panel serve``), inside user servers (jupyter-server-proxy), and the spawn arguments that keep
Panel's preview extension out of user servers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from traitlets.config import Config

from aitip.hub.config import DASHBOARDS_SERVICE, SERVICE_NAME, configure
from panel_apps import proxy, serve


@pytest.fixture
def hub_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("AITIP_HOME", str(tmp_path))
    for name, value in {"AITIP_PORT": "18000", "AITIP_HUB_PORT": "18081", "AITIP_PROXY_API_PORT": "18001",
                        "AITIP_SERVICE_PORT": "18181", "AITIP_DASHBOARDS_PORT": "18182",
                        "AITIP_ADMIN_USER": "boss", "AITIP_ADMIN_PASSWORD": "secret-pass"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AITIP_SPAWNER", raising=False)
    monkeypatch.delenv("AITIP_BIND", raising=False)
    return tmp_path


def dashboards(c: Config) -> dict:
    return next(service for service in c.JupyterHub.services if service["name"] == DASHBOARDS_SERVICE)


def test_dashboards_are_a_managed_service_whose_tokens_reach_only_the_platform(hub_env: Path) -> None:
    c = Config()
    configure(c)
    service = dashboards(c)
    assert service["url"] == "http://127.0.0.1:18182"
    assert service["command"][1:] == ["-m", "panel_apps.serve"]
    assert service["oauth_client_allowed_scopes"] == [f"access:services!service={SERVICE_NAME}"]
    assert service["oauth_redirect_uri"] == f"/services/{DASHBOARDS_SERVICE}/login"
    assert service["oauth_no_confirm"] is True
    assert service["timeout"] >= 60, "the hub exits when a managed service is not up in time"
    environment = service["environment"]
    assert environment["AITIP_PLATFORM_URL"] == "http://127.0.0.1:18181/services/aitip/"
    assert set(environment["AITIP_DASHBOARDS_ORIGINS"].split(",")) == {"127.0.0.1:18000", "localhost:18000"}
    roles = {role["name"]: role for role in c.JupyterHub.load_roles}
    assert f"access:services!service={DASHBOARDS_SERVICE}" in roles["user"]["scopes"]


def test_user_servers_start_without_panels_preview_extension(hub_env: Path) -> None:
    c = Config()
    configure(c)
    assert "--ServerApp.jpserver_extensions=panel.io.jupyter_server_extension=False" in c.Spawner.args


def hub_environment(tmp_path: Path) -> dict[str, str]:
    """What the hub gives the managed service (JupyterHub 6.1), plus the service's own environment."""
    return {
        "JUPYTERHUB_SERVICE_NAME": "dashboards", "JUPYTERHUB_SERVICE_URL": "http://127.0.0.1:18182",
        "JUPYTERHUB_SERVICE_PREFIX": "/services/dashboards/", "JUPYTERHUB_BASE_URL": "/",
        "JUPYTERHUB_API_URL": "http://127.0.0.1:18081/hub/api", "JUPYTERHUB_API_TOKEN": "service-secret",
        "JUPYTERHUB_CLIENT_ID": "service-dashboards",
        "JUPYTERHUB_OAUTH_ACCESS_SCOPES": json.dumps(["access:services", "access:services!service=dashboards"]),
        "AITIP_HOME": str(tmp_path), "AITIP_PLATFORM_URL": "http://127.0.0.1:18181/services/aitip/",
        "AITIP_DASHBOARDS_ORIGINS": "127.0.0.1:18000,localhost:18000", "PANEL_OAUTH_PROVIDER": "stale",
    }


def test_the_hub_service_runs_panel_serve_with_generic_oauth_against_the_hub(tmp_path: Path) -> None:
    command, env = serve.hub_service_launch(hub_environment(tmp_path))
    assert command[1:4] == ["-m", "panel", "serve"]
    pages = 4 + len(serve.PAGES)
    assert [Path(path).stem for path in command[4:pages]] == list(serve.PAGES)
    options = " ".join(command[pages:])
    assert "--prefix /services/dashboards" in options and "--port 18182" in options
    assert "--oauth-provider generic" in options and "--index overview" in options
    assert command.count("--allow-websocket-origin") == 2
    assert env["PANEL_OAUTH_AUTHORIZE_URL"] == "/hub/api/oauth2/authorize", "the browser's own origin"
    assert env["PANEL_OAUTH_TOKEN_URL"] == "http://127.0.0.1:18081/hub/api/oauth2/token"
    assert env["PANEL_OAUTH_USER_URL"] == "http://127.0.0.1:18081/hub/api/user"
    assert env["PANEL_OAUTH_REDIRECT_URI"] == "/services/dashboards/login"
    assert env["PANEL_USER_KEY"] == "name"
    # Hub scopes only (OpenID's are refused), and never the bare access:services the hub lists.
    assert env["PANEL_OAUTH_SCOPE"].split(",") == ["access:services!service=dashboards",
                                                   "access:services!service=aitip"]
    assert env["PANEL_OAUTH_SECRET"] == "service-secret" and env["PANEL_OAUTH_KEY"] == "service-dashboards"
    assert "JUPYTERHUB_API_TOKEN" not in env, "pages must not find the service's own token"
    assert "PANEL_OAUTH_PROVIDER" not in env, "panel refuses a provider given twice"
    assert env["PANEL_COOKIE_PATH"] == "/services/dashboards/"
    assert env[serve.MODE_VARIABLE] == "hub" and env[serve.API_URL_VARIABLE].endswith("/services/aitip/")


def test_cookie_secrets_are_kept_private_and_stable(tmp_path: Path) -> None:
    first = serve.dashboard_secrets(tmp_path / "hub" / "secret")
    again = serve.dashboard_secrets(tmp_path / "hub" / "secret")
    assert first == again and first[0] != first[1]
    assert (tmp_path / "hub" / "secret").stat().st_mode & 0o077 == 0
    from cryptography.fernet import Fernet

    Fernet(first[1].encode())  # a valid encryption key for Panel's cookies


def test_inside_a_user_server_panel_listens_on_a_private_socket(tmp_path: Path) -> None:
    process = proxy.server_process()
    assert process["unix_socket"] is True and process["absolute_url"] is True
    assert "{unix_socket}" in process["command"] and "{base_url}aitip-dashboards" in process["command"]
    assert Path(process["launcher_entry"]["icon_path"]).exists()
    command, env = serve.workspace_launch("/user/ann/aitip-dashboards", unix_socket=str(tmp_path / "socket"),
                                          port=None, environ={"JUPYTERHUB_API_TOKEN": "ann-server-token",
                                                              "PANEL_OAUTH_KEY": "x"})
    assert "--oauth-provider" not in command and "--unix-socket" in command and "--port" not in command
    assert env[serve.MODE_VARIABLE] == "workspace" and "PANEL_OAUTH_KEY" not in env
    assert env["JUPYTERHUB_API_TOKEN"] == "ann-server-token", "the server's owner is the identity"


def test_the_proxy_entry_point_is_registered() -> None:
    from importlib.metadata import entry_points

    (entry,) = [e for e in entry_points(group="jupyter_serverproxy_servers") if e.name == proxy.NAME]
    assert entry.load() is proxy.server_process


@pytest.mark.parametrize(("language", "own_choice", "category"), [
    ("zh_CN", None, "笔记本"), ("en", None, "Notebook"), (None, None, "Notebook"),
    ("zh_CN", '{"locale": "en"}', "Notebook"),  # the person chose English in JupyterLab: its groups are English
])
def test_the_dashboards_launcher_entry_joins_jupyterlabs_notebook_group_in_its_language(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, language: str | None, own_choice: str | None,
        category: str) -> None:
    """JupyterLab groups its launcher by the category's words; the language pack's own word for Notebook keeps
    the dashboards entry beside the notebooks instead of a group of its own."""
    monkeypatch.setenv("JUPYTERLAB_SETTINGS_DIR", str(tmp_path))
    if language is None:
        monkeypatch.delenv("AITIP_LANG", raising=False)
    else:
        monkeypatch.setenv("AITIP_LANG", language)
    if own_choice is not None:
        settings = tmp_path / "@jupyterlab" / "translation-extension" / "plugin.jupyterlab-settings"
        settings.parent.mkdir(parents=True)
        settings.write_text(own_choice)
    assert proxy.server_process()["launcher_entry"]["category"] == category
