"""The hub configuration aitip applies: roles, the platform service, token scopes, spawners."""

from __future__ import annotations

from pathlib import Path

import pytest
from traitlets.config import Config

from aitip.hub.config import DASHBOARDS_SERVICE, SERVICE_NAME, configure
from aitip.operations.inputs import MAX_INLINE_ENV
from aitip.webhooks.targets import ALLOWED_NETWORKS_ENV


@pytest.fixture
def hub_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("AITIP_HOME", str(tmp_path))
    for name, value in {"AITIP_PORT": "18000", "AITIP_HUB_PORT": "18081", "AITIP_PROXY_API_PORT": "18001",
                        "AITIP_SERVICE_PORT": "18181", "AITIP_ADMIN_USER": "boss",
                        "AITIP_ADMIN_PASSWORD": "secret-pass"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AITIP_SPAWNER", raising=False)
    return tmp_path


def test_local_mode(hub_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AITIP_SHARED_ACCOUNT")
    c = Config()
    settings = configure(c)
    assert c.JupyterHub.spawner_class == "aitip.hub.spawner.AccountSpawner"  # run as root: accounts of their own
    assert c.AitipNativeAuthenticator.separate_accounts is True and c.NativeAuthenticator.enable_signup is True
    assert "--ServerApp.allow_root=True" not in c.Spawner.args
    assert c.JupyterHub.ip == "127.0.0.1" and c.JupyterHub.port == 18000
    assert Path(c.ConfigurableHTTPProxy.command[0]).name == "configurable-http-proxy"
    assert "node_modules" in c.ConfigurableHTTPProxy.command[0], "the pinned npm proxy, not the PyPI port"
    assert c.Authenticator.admin_users == {"boss"}
    assert c.AitipNativeAuthenticator.bootstrap_admin_password == "secret-pass"
    assert c.NativeAuthenticator.open_signup is False
    assert c.JupyterHub.db_url == f"sqlite:///{hub_env / 'hub' / 'jupyterhub.sqlite'}"
    assert settings.platform_url == "http://127.0.0.1:18181/services/aitip/"


def test_users_may_reach_the_platform_service_and_servers_may_relay(hub_env: Path) -> None:
    c = Config()
    configure(c)
    roles = {role["name"]: role for role in c.JupyterHub.load_roles}
    assert set(roles["user"]["scopes"]) == {"self", f"access:services!service={SERVICE_NAME}",
                                            f"access:services!service={DASHBOARDS_SERVICE}"}
    assert roles["aitip-platform"]["services"] == [SERVICE_NAME]
    assert {"read:users", "read:groups"} <= set(roles["aitip-platform"]["scopes"])
    assert f"access:services!service={SERVICE_NAME}" in c.Spawner.server_token_scopes
    assert c.Spawner.environment["AITIP_PLATFORM_URL"].endswith("/services/aitip/")


def test_platform_service_runs_the_extension_in_platform_mode(hub_env: Path) -> None:
    c = Config()
    configure(c)
    services = {service["name"]: service for service in c.JupyterHub.services}
    assert set(services) == {SERVICE_NAME, DASHBOARDS_SERVICE}
    service = services[SERVICE_NAME]
    assert service["url"] == "http://127.0.0.1:18181"
    assert service["command"][1:] == ["-m", "aitip.server.platform"]
    assert service["environment"]["AITIP_MODE"] == "platform"
    assert service["environment"]["AITIP_HOME"] == str(hub_env)


def test_unknown_spawner_is_refused(hub_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AITIP_SPAWNER", "docker")
    with pytest.raises(ValueError, match="expected 'local' or 'kubernetes'"):
        configure(Config())


def test_platform_service_argv_keeps_other_apis_out() -> None:
    from aitip.server.platform import platform_argv

    argv = platform_argv()
    assert "--ServerApp.jpserver_extensions=aitip=True" in argv
    assert "--ServerApp.authorizer_class=aitip.server.authorizer.PlatformAuthorizer" in argv
    assert "--ServerApp.allow_unauthenticated_access=False" in argv


def test_a_dead_platform_service_is_noticed_within_seconds(hub_env: Path) -> None:
    from jupyterhub.services.service import _ServiceSpawner

    from aitip.hub.config import SERVICE_POLL_SECONDS

    c = Config()
    configure(c)
    assert _ServiceSpawner().poll_interval == SERVICE_POLL_SECONDS
    assert c.Spawner.poll_interval == 30


@pytest.mark.parametrize("shared, signup", [("1", True), (None, False)])
def test_single_trust_mode_shares_one_account_and_takes_sign_ups_only_on_purpose(
        hub_env: Path, monkeypatch: pytest.MonkeyPatch, shared: str | None, signup: bool) -> None:
    """As a normal user the platform cannot switch uids (here: as root with AITIP_SHARED_ACCOUNT=1, or
    simulated as a normal user): every server under one account; sign-ups only when chosen."""
    if shared is None:
        monkeypatch.delenv("AITIP_SHARED_ACCOUNT")
        monkeypatch.setattr("os.geteuid", lambda: 1000)
    else:
        monkeypatch.setenv("AITIP_SHARED_ACCOUNT", shared)
    c = Config()
    configure(c)
    assert c.JupyterHub.spawner_class == "aitip.hub.spawner.SharedAccountSpawner"
    assert c.AitipNativeAuthenticator.separate_accounts is False
    assert c.NativeAuthenticator.enable_signup is signup


def test_the_public_address_given_to_aitip_up_becomes_the_hubs(hub_env: Path, monkeypatch) -> None:
    """``$AITIP_PUBLIC_URL`` is JupyterHub's ``public_url``, which the hub hands its services as
    ``$JUPYTERHUB_PUBLIC_HUB_URL`` (the platform links what it sends out to its pages from it); unset, the hub
    keeps working out its address from each request."""
    c = Config()
    configure(c)
    assert "public_url" not in c.JupyterHub
    monkeypatch.setenv("AITIP_PUBLIC_URL", "https://aitip.example.org")
    c = Config()
    configure(c)
    assert c.JupyterHub.public_url == "https://aitip.example.org/"


@pytest.mark.parametrize(("name", "value"), [
    ("AITIP_SMTP_HOST", "smtp.example.org"), (ALLOWED_NETWORKS_ENV, "10.20.0.0/16"), (MAX_INLINE_ENV, "1048576"),
    ("AITIP_GPUS", "2"), ("AITIP_DATA_REMOTE", "/srv/dvc-remote"), ("AITIP_DATA_REGISTRY", "/srv/registry"),
    ("AITIP_CATALOG_URL", "postgresql://aitip@db/aitip"),
])
def test_what_the_operator_sets_reaches_the_platform_service(hub_env: Path, monkeypatch, name: str,
                                                             value: str) -> None:
    """JupyterHub starts a service with only the environment it is given: each setting the README documents
    for the platform service is handed on by name (an e-mail server set before `aitip up` was lost so)."""
    monkeypatch.setenv(name, value)
    c = Config()
    configure(c)
    services = {service["name"]: service for service in c.JupyterHub.services}
    assert services[SERVICE_NAME]["environment"][name] == value
    assert "AITIP_ADMIN_PASSWORD" not in services[SERVICE_NAME]["environment"]


# The README's configuration rows that the platform service does not read, and who does instead.
READ_OUTSIDE_THE_PLATFORM_SERVICE = {
    "AITIP_PORT": "hub", "AITIP_BIND": "hub", "AITIP_HOME": "hub (and given to the service as such)",
    "AITIP_ADMIN_USER": "hub", "AITIP_ADMIN_PASSWORD": "hub",
    "AITIP_SPAWNER": "hub", "AITIP_K8S_PROFILES": "hub", "AITIP_IMAGE": "hub", "AITIP_K8S_NAMESPACE": "hub",
    "AITIP_K8S_PLATFORM_URL": "hub", "AITIP_HUB_PORT": "hub", "AITIP_PROXY_API_PORT": "hub",
    "AITIP_SERVICE_PORT": "hub", "AITIP_URL": "SDK and CLI", "AITIP_TOKEN": "SDK and CLI",
    "AITIP_CONFIG_DIR": "CLI", "AITIP_PUBLIC_URL": "hub (public_url, handed on as $JUPYTERHUB_PUBLIC_HUB_URL)",
}


def readme_configuration_names() -> set[str]:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    table = readme.split("## Configuration", 1)[1].split("\n\n", 2)[1]
    names: set[str] = set()
    for row in table.splitlines()[2:]:
        first_cell = row.split("|")[1]
        names.update(part.strip("` ") for part in first_cell.split(","))
    return names


def test_every_documented_setting_is_handed_to_the_platform_service_or_read_elsewhere(hub_env: Path) -> None:
    """A row added to the README's configuration table must say where it is read: a setting of the platform
    service that is not handed on is silently ignored (as the e-mail server was)."""
    from aitip.hub.config import PLATFORM_SETTINGS

    documented = readme_configuration_names()
    assert len(documented) > 20, documented
    undecided = documented - set(PLATFORM_SETTINGS) - set(READ_OUTSIDE_THE_PLATFORM_SERVICE)
    assert not undecided, f"say whether the platform service reads these: {sorted(undecided)}"
    assert not (set(PLATFORM_SETTINGS) & set(READ_OUTSIDE_THE_PLATFORM_SERVICE))
    assert set(READ_OUTSIDE_THE_PLATFORM_SERVICE) <= documented, "a name here that the README no longer documents"
