"""The hub's login and sign-up pages in the request's language, rendered from the same template paths,
Jinja options and per-request transform the hub is configured with (the live hub page is checked by
tests/browser/test_languages.py)."""

from __future__ import annotations

from pathlib import Path

import jinja2
import nativeauthenticator
import pytest
from jupyterhub.app import JupyterHub
from tornado import httputil
from traitlets.config import Config

from aitip.hub.config import configure
from aitip.hub.language import RequestLanguage, current_language

NATIVE_TEMPLATES = Path(nativeauthenticator.__file__).parent / "templates"


@pytest.fixture
def hub_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Config:
    monkeypatch.setenv("AITIP_HOME", str(tmp_path))
    c = Config()
    configure(c)
    return c


def environment(c: Config) -> jinja2.Environment:
    """The hub's Jinja environment as JupyterHub builds it (init_tornado_settings), with NativeAuthenticator's
    folder last, as its handlers add it."""
    default = JupyterHub()._template_paths_default()[0]
    loader = jinja2.ChoiceLoader([
        jinja2.PrefixLoader({"templates": jinja2.FileSystemLoader([default])}, "/"),
        jinja2.FileSystemLoader([*c.JupyterHub.template_paths, default]),
        jinja2.FileSystemLoader([str(NATIVE_TEMPLATES)]),
    ])
    return jinja2.Environment(loader=loader, autoescape=True, **c.JupyterHub.jinja_environment_options)


def render(c: Config, template: str, headers: dict[str, str], uri: str = "/hub/login") -> str:
    """``template`` as the hub renders it for a request with these headers."""
    request = httputil.HTTPServerRequest(method="GET", uri=uri, headers=httputil.HTTPHeaders(headers))
    for transform in c.JupyterHub.tornado_settings["transforms"]:
        transform(request)
    variables = {name: value(None) if callable(value) else value for name, value in c.JupyterHub.template_vars.items()}
    return environment(c).get_template(template).render(
        base_url="/hub/", login_url="/hub/login", logout_url="/hub/logout", static_url=lambda path, **_kw: path,
        user=None, parsed_scopes=[], services=[], xsrf="x", next="", enable_signup=True, **variables)


def test_the_hub_is_configured_to_translate_its_pages(hub_config: Config) -> None:
    assert hub_config.JupyterHub.template_paths[0] == str(Path(__file__).resolve().parents[2] / "templates")
    assert RequestLanguage in hub_config.JupyterHub.tornado_settings["transforms"]
    assert "aitip.hub.language.HubI18n" in hub_config.JupyterHub.jinja_environment_options["extensions"]
    assert hub_config.JupyterHub.template_vars["aitip_language"] is current_language


@pytest.mark.parametrize("headers, uri, words, absent", [
    ({"Accept-Language": "zh-CN,zh;q=0.9"}, "/hub/login", ["登录", "用户名：", "注册</a>", 'id="login_submit"'], "Sign in"),
    ({"Accept-Language": "en-US,en;q=0.9"}, "/hub/login", ["Sign in", "Username:", 'id="login_submit"'], "登录"),
    ({}, "/hub/login", ["Sign in", "Password:"], "登录"),
    ({"Accept-Language": "zh-CN", "Cookie": "aitip_lang=en"}, "/hub/login", ["Sign in"], "登录"),
    ({"Accept-Language": "en"}, "/hub/login?lang=zh_CN", ["登录", 'id="lang-zh_CN"'], "Sign in"),
])
def test_the_login_page_speaks_the_requests_language(hub_config: Config, headers: dict[str, str], uri: str,
                                                     words: list[str], absent: str) -> None:
    page = render(hub_config, "native-login.html", headers, uri)
    assert [word for word in words if word not in page] == []
    assert absent not in page
    assert 'id="username_input"' in page and 'name="password"' in page, "the form the CLI and tests post to"


def test_the_signup_page_speaks_chinese(hub_config: Config) -> None:
    page = render(hub_config, "signup.html", {"Accept-Language": "zh"}, "/hub/signup")
    assert "注册" in page and "确认密码" in page and "创建用户" in page and "Create user" not in page
    assert 'name="signup_password_confirmation"' in page

