"""`aitip up`'s preparation: admin password, ports, catalog, and the process-tree cleanup."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aitip import launcher


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("AITIP_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("AITIP_ADMIN_PASSWORD", raising=False)
    monkeypatch.delenv("AITIP_CATALOG_URL", raising=False)
    monkeypatch.setenv("AITIP_PORT", str(launcher.free_port()))
    return tmp_path / "home"


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


def test_stop_reaps_descendants_that_left_the_process_group() -> None:
    script = ("import subprocess, sys, time\n"
              "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'], start_new_session=True)\n"
              "time.sleep(60)\n")
    parent = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    deadline = time.monotonic() + 10
    while not launcher.descendants(parent.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    children = launcher.descendants(parent.pid)
    assert len(children) == 1
    launcher.stop(parent, grace=5)
    assert parent.poll() is not None
    assert not any(launcher._alive(pid) for pid in children)
