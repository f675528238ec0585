"""NativeAuthenticator for AITIP: sign-up with admin approval, the first admin bootstrapped from
configuration, and the shim NativeAuthenticator 1.3.0 needs under JupyterHub 6."""

from __future__ import annotations

import bcrypt
from nativeauthenticator import NativeAuthenticator
from nativeauthenticator.handlers import LoginHandler as NativeLoginHandler
from nativeauthenticator.handlers import SignUpHandler as NativeSignUpHandler
from nativeauthenticator.handlers import ToggleAuthorizationHandler as NativeToggleAuthorizationHandler
from nativeauthenticator.orm import UserInfo
from jupyterhub.utils import maybe_future
from traitlets import Bool, Unicode

from ..isolation.accounts import UnmappableName, account_name


class _NoOpTimer:
    def start(self) -> _NoOpTimer:
        return self

    def stop(self, send: bool = True) -> None:
        return None

    def send(self) -> None:
        return None


class NoOpStatsd:
    """Stands in for the ``statsd`` client JupyterHub 6 no longer gives handlers.

    NativeAuthenticator 1.3.0's login handler calls ``self.statsd.timer(...).start()`` and
    ``.stop(send=False)``, ``.send()``, ``incr`` and ``timing``; without this every login is a 500.
    """

    def timer(self, *args: object, **kwargs: object) -> _NoOpTimer:
        return _NoOpTimer()

    def incr(self, *args: object, **kwargs: object) -> None:
        return None

    def decr(self, *args: object, **kwargs: object) -> None:
        return None

    def timing(self, *args: object, **kwargs: object) -> None:
        return None

    def gauge(self, *args: object, **kwargs: object) -> None:
        return None


class AitipLoginHandler(NativeLoginHandler):
    @property
    def statsd(self) -> NoOpStatsd:
        return NoOpStatsd()


class AitipSignUpHandler(NativeSignUpHandler):
    """Sign-up that says why a name cannot be a Linux account, instead of NativeAuthenticator's generic
    "something went wrong"."""

    async def post(self) -> None:
        if self.authenticator.enable_signup and self.authenticator.separate_accounts:
            name = self.authenticator.normalize_username(self.get_body_argument("username", "", strip=False))
            try:
                account_name(name)
            except UnmappableName as error:
                html = await self.render_template(
                    "signup.html", ask_email=self.authenticator.ask_email_on_signup, result_message=str(error),
                    alert="alert-danger", two_factor_auth=self.authenticator.allow_2fa, two_factor_auth_user=False,
                    two_factor_auth_value="", recaptcha_key=self.authenticator.recaptcha_key,
                    tos=self.authenticator.tos)
                self.set_status(400)
                self.finish(html)
                return
        await super().post()


class AitipToggleAuthorizationHandler(NativeToggleAuthorizationHandler):
    """Approving a sign-up makes the JupyterHub user at once, as JupyterHub's own "Add users" does: an admin adds
    the person to a project right after approving them, not only after their first sign-in."""

    async def get(self, slug: str) -> None:  # type: ignore[override]
        await super().get(slug)  # the admin:users check, the toggle, the redirect
        account = UserInfo.find(self.db, slug)
        if account is not None and account.is_authorized and self.find_user(slug) is None:
            await maybe_future(self.authenticator.add_user(self.user_from_username(slug)))


class AitipNativeAuthenticator(NativeAuthenticator):
    """Users sign up; an admin approves them at ``/hub/authorize``; admins log in from the start."""

    bootstrap_admin_password = Unicode(
        "",
        help="""Password of the first admin (the single entry of Authenticator.admin_users). When set, the
        admin's NativeAuthenticator account is created approved (or its password reset) at hub start,
        so a fresh platform can be logged into at once. `aitip up` sets it from $AITIP_ADMIN_PASSWORD.""",
    ).tag(config=True)

    separate_accounts = Bool(
        False,
        help="""Every hub user runs as a Linux account of their own (aitip-<escaped name>): names that
        cannot become one (too long once escaped) are refused at sign-up and login. `aitip up` sets it
        when the platform runs as root.""",
    ).tag(config=True)

    def validate_username(self, username: str) -> bool:
        if not super().validate_username(username):
            return False
        if self.separate_accounts:
            try:
                account_name(username)
            except UnmappableName as error:
                self.log.warning("aitip: refusing user name %r: %s", username, error)
                return False
        return True

    def __init__(self, add_new_table: bool = True, *args: object, **kwargs: object) -> None:
        super().__init__(add_new_table, *args, **kwargs)
        if self.bootstrap_admin_password:
            self.ensure_admin_accounts(self.bootstrap_admin_password)

    def ensure_admin_accounts(self, password: str) -> None:
        for username in sorted(self.admin_users):
            name = self.normalize_username(username)
            hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt())
            account = UserInfo.find(self.db, name)
            if account is None:
                self.db.add(UserInfo(username=name, password=hashed, is_authorized=True))
                self.log.info("aitip: created the approved admin account %r", name)
            elif not (account.is_authorized and account.is_valid_password(password)):
                account.password = hashed
                account.is_authorized = True
                self.log.info("aitip: reset the admin account %r to the configured password", name)
        self.db.commit()

    def get_handlers(self, app: object) -> list[tuple[str, type]]:
        return [
            (pattern, {NativeLoginHandler: AitipLoginHandler, NativeSignUpHandler: AitipSignUpHandler,
                       NativeToggleAuthorizationHandler: AitipToggleAuthorizationHandler}.get(handler, handler))
            for pattern, handler in super().get_handlers(app)
        ]
