"""`aitip up`'s preparation: admin password, ports, catalog, and the process-tree cleanup."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aitip import launcher
from tests.support.paths import open_to_all_accounts


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    monkeypatch.setenv("AITIP_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("AITIP_ADMIN_PASSWORD", raising=False)
    monkeypatch.delenv("AITIP_CATALOG_URL", raising=False)
    monkeypatch.setenv("AITIP_PORT", str(launcher.free_port()))
    umask = os.umask(0o022)
    os.umask(umask)
    yield tmp_path / "home"
    os.umask(umask)  # prepare() sets the platform's umask (077) in this process


def test_separate_accounts_are_said_and_the_state_is_private(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AITIP_SHARED_ACCOUNT")
    open_to_all_accounts(home.parent)
    launch = launcher.prepare()
    text = launcher.banner(launch)
    assert "each hub user is a Linux account of their own" in text and "SINGLE-TRUST" not in text
    assert "/hub/signup" in text
    assert stat.S_IMODE(home.stat().st_mode) == 0o711
    for private in ("hub", "catalog.sqlite", "admin-password"):
        assert (home / private).stat().st_mode & 0o077 == 0, private


def test_single_trust_mode_is_said_and_sign_ups_are_off(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run as a normal user (simulated: uids cannot change) without AITIP_SHARED_ACCOUNT=1."""
    monkeypatch.delenv("AITIP_SHARED_ACCOUNT")
    monkeypatch.setattr("os.geteuid", lambda: 4242)
    text = launcher.banner(launcher.prepare())
    assert "SINGLE-TRUST:  every user shares the OS account '4242'" in text
    assert "sign up:       off (set AITIP_SHARED_ACCOUNT=1" in text and "/hub/signup" not in text
    assert stat.S_IMODE(home.stat().st_mode) == 0o700


def test_single_trust_on_purpose_keeps_sign_ups_open(home: Path) -> None:
    text = launcher.banner(launcher.prepare())  # the tests' default: AITIP_SHARED_ACCOUNT=1
    assert "SINGLE-TRUST" in text and "open: AITIP_SHARED_ACCOUNT=1 is set" in text and "/hub/signup" in text


def test_a_home_users_cannot_reach_is_refused_with_what_to_do(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AITIP_SHARED_ACCOUNT")
    home.parent.chmod(0o700)
    with pytest.raises(SystemExit, match="cannot reach their homes under .* is mode 700 .*chmod o\\+x"):
        launcher.prepare()


def test_generated_admin_password_is_kept_private_and_stable(home: Path) -> None:
    first = launcher.prepare()
    again = launcher.prepare()
    assert first.password_generated and len(first.admin_password) >= 16
    assert again.admin_password == first.admin_password
    stored = home / "admin-password"
    assert stored.stat().st_mode & 0o077 == 0
    assert (home / "catalog.sqlite").exists(), "the catalog is migrated before the hub starts"
    assert first.env["AITIP_ADMIN_PASSWORD"] == first.admin_password
    ports = {first.env[k] for k in ("AITIP_PORT", "AITIP_HUB_PORT", "AITIP_PROXY_API_PORT", "AITIP_SERVICE_PORT")}
    assert len(ports) == 4


def test_configured_admin_password_wins(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AITIP_ADMIN_PASSWORD", "configured-1")
    launch = launcher.prepare()
    assert launch.admin_password == "configured-1" and not launch.password_generated
    assert "configured-1" in launcher.banner(launch)


def test_short_admin_password_is_refused(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AITIP_ADMIN_PASSWORD", "short")
    with pytest.raises(SystemExit, match="at least 8 characters"):
        launcher.prepare()


def test_a_busy_port_is_a_clear_error(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        monkeypatch.setenv("AITIP_PORT", str(holder.getsockname()[1]))
        with pytest.raises(SystemExit, match="is in use; stop what holds it or set AITIP_PORT"):
            launcher.prepare()


def test_an_unreachable_catalog_is_a_clear_error(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AITIP_CATALOG_URL", f"postgresql://nobody@127.0.0.1:{launcher.free_port()}/none")
    with pytest.raises(SystemExit, match="cannot open the catalog"):
        launcher.prepare()


def _parent_of_a_detached_child() -> subprocess.Popen[bytes]:
    """A process whose child left its process group (as the hub's proxy and services do), once it is there."""
    script = ("import subprocess, sys, time\n"
              "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'], start_new_session=True)\n"
              "time.sleep(60)\n")
    parent = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    deadline = time.monotonic() + 10
    while not launcher.descendants(parent.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return parent


def test_stop_reaps_descendants_that_left_the_process_group() -> None:
    parent = _parent_of_a_detached_child()
    children = launcher.descendants(parent.pid)
    assert len(children) == 1
    launcher.stop(parent, grace=5)
    assert parent.poll() is not None
    assert not any(launcher._alive(pid) for pid in children)


def test_stop_reaps_what_a_hub_that_exited_first_left_running() -> None:
    """JupyterHub exiting on a service that died while starting leaves its proxy behind, reparented."""
    parent = _parent_of_a_detached_child()
    seen = {pid: launcher.start_time(pid) for pid in launcher.descendants(parent.pid)}
    parent.kill()
    parent.wait()
    assert launcher.descendants(parent.pid) == [] and all(launcher._alive(pid) for pid in seen)
    launcher.stop(parent, grace=5, orphans={**seen, 999_999_999: 1})
    assert not any(launcher._alive(pid) for pid in seen)


def test_the_banner_gives_the_public_address_people_reach(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Behind a reverse proxy (``AITIP_PUBLIC_URL``) people are told the public address; the launcher itself
    still waits on the local one."""
    monkeypatch.setenv("AITIP_PUBLIC_URL", "https://aitip.example.org/")
    launch = launcher.prepare()
    text = launcher.banner(launch)
    assert "AITIP is up at https://aitip.example.org/\n" in text
    assert "dashboards:    https://aitip.example.org/services/dashboards/" in text
    assert launch.url.startswith("http://127.0.0.1:")
