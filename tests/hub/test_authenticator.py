"""The NativeAuthenticator shim and the first-admin bootstrap (the full login runs in integration)."""

from __future__ import annotations

from pathlib import Path

import bcrypt
import pytest
from jupyterhub import orm
from nativeauthenticator.handlers import LoginHandler as NativeLoginHandler
from nativeauthenticator.orm import UserInfo

from aitip.hub.authenticator import AitipLoginHandler, AitipNativeAuthenticator, NoOpStatsd


def test_login_handler_has_the_statsd_jupyterhub_6_dropped() -> None:
    statsd = AitipLoginHandler.statsd.fget(None)  # type: ignore[attr-defined]
    timer = statsd.timer("login.authenticate").start()
    timer.stop(send=False)
    timer.send()
    statsd.incr("login.success")
    assert isinstance(statsd, NoOpStatsd)


@pytest.fixture
def authenticator(tmp_path: Path) -> AitipNativeAuthenticator:
    # JupyterHub hands authenticators its database session this way (Authenticator._deprecated_db_session).
    session = orm.new_session_factory(f"sqlite:///{tmp_path / 'hub.sqlite'}")()
    return AitipNativeAuthenticator(_deprecated_db_session=session, admin_users={"boss"},
                                    bootstrap_admin_password="first-pass-1")


def test_handlers_use_the_shimmed_login(authenticator: AitipNativeAuthenticator) -> None:
    handlers = dict(authenticator.get_handlers(None))
    assert handlers["/login"] is AitipLoginHandler
    assert NativeLoginHandler not in handlers.values()
    assert "/signup" in handlers and "/authorize/([^/]*)" in handlers


def test_first_admin_is_created_approved_and_reset_to_the_configured_password(
        authenticator: AitipNativeAuthenticator) -> None:
    account = UserInfo.find(authenticator.db, "boss")
    assert account is not None and account.is_authorized and account.is_valid_password("first-pass-1")
    authenticator.ensure_admin_accounts("second-pass-2")
    account = UserInfo.find(authenticator.db, "boss")
    assert account.is_valid_password("second-pass-2") and not account.is_valid_password("first-pass-1")
    assert bcrypt.checkpw(b"second-pass-2", account.password)
