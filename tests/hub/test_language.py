"""The hub's pages in the request's language, rendered from the same template paths,
Jinja options and per-request transform the hub is configured with (the live hub page is checked by
tests/browser/test_languages.py)."""

from __future__ import annotations

import ast
import contextvars
import json
import re
from http.client import responses
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jinja2
import jupyterhub
import nativeauthenticator
import pytest
from jupyterhub.app import JupyterHub
from jupyterhub.handlers.base import BaseHandler
from jupyterhub.handlers.base import reasons as jupyterhub_reasons
from jupyterhub.scopes import scope_definitions
from tornado import httputil
from traitlets.config import Config

from aitip.hub.admin_page import ADMIN_PAGE_ALERTS, ADMIN_PAGE_WORDS, ADMIN_PAGE_WORDS_IN_CONTEXT, javascript_pattern
from aitip.hub.config import configure
from aitip.hub.spawn_progress import JUPYTERHUB_PROGRESS, KUBESPAWNER_PROGRESS
from aitip.hub import language
from aitip.hub.language import (
    HTTP_REASONS,
    HUB_ERRORS,
    HUB_SPAWN_REASONS,
    NATIVE_MESSAGES,
    SCOPE_DESCRIPTIONS,
    RequestLanguage,
    current_language,
    hub_message,
)

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


def render(c: Config, template: str, headers: dict[str, str], uri: str = "/hub/login", **context: Any) -> str:
    """``template`` as the hub renders it for a request with these headers (``context``: what its handler
    gives it)."""
    def rendered() -> str:
        request = httputil.HTTPServerRequest(method="GET", uri=uri, headers=httputil.HTTPHeaders(headers))
        for transform in c.JupyterHub.tornado_settings["transforms"]:
            transform(request)
        variables = {name: value(None) if callable(value) else value
                     for name, value in c.JupyterHub.template_vars.items()}
        namespace = dict(base_url="/hub/", login_url="/hub/login", logout_url="/hub/logout",
                         static_url=lambda path, **_kw: path, user=None, parsed_scopes=[], services=[], xsrf="x",
                         next="", enable_signup=True, **variables)
        return environment(c).get_template(template).render(**{**namespace, **context})

    # The request's language is set in a context of its own, as the hub's request has: it does not stay set for
    # the tests that run after in this process.
    return contextvars.copy_context().run(rendered)


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



def named_server_user() -> SimpleNamespace:
    spawner = SimpleNamespace(name="gpu", display_name="", ready=True, active=True, pending=None, last_activity=None)
    return SimpleNamespace(name="ann", admin=True, json_escaped_name="ann", spawner=SimpleNamespace(options_form=None),
                           all_spawners=lambda include_default=True: [spawner],
                           server_url=lambda name: f"/user/ann/{name}")


TOKEN_OPTIONS = '<option value="3600">1 Hour</option>\n<option selected="selected" value="">Never</option>'
OAUTH_CLIENT = SimpleNamespace(description="Server at /user/ann/", redirect_uri="/user/ann/oauth_callback")
USERS = [SimpleNamespace(username="ann", email="", has_2fa=False, is_authorized=True),
         SimpleNamespace(username="carol", email="", has_2fa=False, is_authorized=False)]

# Each overridden page: what it is given, its Chinese, its English, and the hooks JupyterHub's or
# NativeAuthenticator's scripts and handlers rely on (ids, classes, form field names).
PAGES = [
    ("stop_pending.html", {"user": named_server_user()}, ["您的服务器正在停止。", "停止完成后即可再次启动。", ">刷新</a>"],
     ["Your server is stopping.", "once it has finished stopping", ">refresh</a>"], ['id="refresh"', "window.location.reload()"]),
    ("logout.html", {"user": None}, ["已成功退出登录。"], ["Successfully logged out."], ['id="logout-main"']),
    ("accept-share.html", {"user": SimpleNamespace(**{**vars(named_server_user()), "name": "bob"}), "owner": SimpleNamespace(name="ann"),
                           "spawner": SimpleNamespace(name="gpu"), "spawner_url": "/user/ann/gpu/",
                           "spawner_ready": False, "code": "c0de", "next_url": "/user/ann/gpu/",
                           "scope_descriptions": [{"description": "Access user servers via API or browser.",
                                                   "filter": "server=ann/gpu"}]},
     ["接受共享邀请", "您（bob）受邀访问 ann (gpu) 的服务器", "/user/ann/gpu/ 上的服务器当前未运行", "请 ann 启动该服务器",
      "通过 API 或浏览器访问用户服务器", "适用于 server=ann/gpu。", "接受邀请"],
     ["Accept sharing invitation", "have been invited", "is not currently running", "Applies to",
      "Access user servers via API or browser.", "Accept invitation"],
     ['name="code" value="c0de"', 'name="_xsrf"', 'type="submit"']),
    ("home.html", {"default_server": SimpleNamespace(active=True), "url": "/user/ann/", "allow_named_servers": True,
                   "named_server_limit_per_user": 0, "user": named_server_user()},
     ["停止我的服务器", "我的服务器", "命名服务器", "添加新服务器", ">停止</a>"],
     ["Stop My Server", "Named Servers", "Add New Server", ">stop</a>"],
     ['id="stop"', 'id="start"', 'class="new-server-name', 'class="new-server-btn', 'id="stop-gpu"',
      'data-server-name="gpu"', 'require(["home"])']),
    ("spawn_pending.html", {"progress_url": "/hub/api/users/ann/server/progress", "user": named_server_user()},
     ["您的服务器正在启动。", "事件日志", "停止服务器"],
     ["Your server is starting up.", "Event log", "Stop Server", "Stopping server..."],
     ['id="progress-bar"', 'id="sr-progress"', 'id="progress-log"', 'id="stop-server-btn"', "_jupyterhub_page_loaded"]),
    ("not_running.html", {"failed": True, "server_name": "gpu", "failed_message": "out of memory",
                          "spawn_url": "/hub/spawn/ann/gpu", "user": named_server_user()},
     ["启动失败", "最近一次启动服务器 gpu 失败了。", "重新启动服务器 gpu", "out of memory"],
     ["Spawn failed", "The latest attempt to start your server gpu has failed.", "Relaunch Server gpu"],
     ['id="start"', 'require(["not_running"])']),
    ("error.html", {"status_code": 403, "status_message": "Forbidden", "message": "Action is not authorized"},
     ["403 : 禁止访问", "Action is not authorized"], ["403 : Forbidden"], ["_remove_redirects_from_url"]),
    ("error.html", {"status_code": 404, "status_message": "No such user: carol", "message": "No such user: carol"},
     ["404 : 没有此用户：carol", '<p class="error-message">没有此用户：carol</p>'], ["No such user"],
     ["_remove_redirects_from_url"]),
    ("error.html", {"status_code": 503, "status_message": "Service Unavailable", "message": (
        "Failed to reach your server.  Please try again later.  Contact admin if the issue persists."),
                    "extra_error_html": "You can try restarting your server from the <a href='/hub/home'>home page</a>."},
     ["503 : 服务不可用", "无法连接到您的服务器。", "您可以在<a href='/hub/home'>主页</a>上尝试重新启动您的服务器。"],
     ["Failed to reach your server", "home page</a>"], ["_remove_redirects_from_url"]),
    ("spawn.html", {"url": "/hub/spawn/ann", "spawner_options_form": '<select name="profile"></select>',
                    "error_message": "Named servers are not enabled.", "for_user": SimpleNamespace(name="bob"),
                    "user": named_server_user()},
     ["服务器选项", "正在为 bob 启动服务器", "错误：未启用命名服务器。", ">启动</button>"],
     ["Server Options", "Spawning server for", "Error: Named", ">Start</button>"],
     ['id="spawn_form"', '<select name="profile"></select>', 'class="spawn-error-msg']),
    ("404.html", {"status_code": 404, "status_message": "Not Found"},
     ["404 : 未找到", "木星有很多卫星"], ["404 : Not Found", "Jupyter has lots of moons"], ['class="error"']),
    ("token.html", {"api_tokens": [], "oauth_clients": [], "token_expires_in_options_html": TOKEN_OPTIONS,
                    "user": named_server_user()},
     ["申请新的 API 令牌", "令牌有效期", '>1 小时</option>', '>从不</option>', "备注"],
     ["Request new API token", "Token expires in", ">1 Hour</option>", ">Never</option>"],
     ['id="request-token-form"', 'id="token-note"', 'id="token-expiration-seconds"', 'id="token-scopes"',
      'id="token-area"', 'id="token-result"', 'require(["token"])']),
    ("oauth.html", {"oauth_client": OAUTH_CLIENT, "allowed_scopes": ["identify"],
                    "scope_descriptions": [{"scope": None, "description": "Identify you.", "filter": ""}]},
     ["授权访问", "OAuth 地址：/user/ann/oauth_callback", "它不能以您的名义执行任何操作。", ">批准</button>"],
     ["Authorize access", "would like permission to identify you.", ">Authorize</button>"],
     ['name="scopes" value="identify"', 'name="raw-scopes"', 'name="_xsrf"']),
    ("oauth.html", {"oauth_client": OAUTH_CLIENT, "allowed_scopes": ["access:services!service=aitip"],
                    "scope_descriptions": [{"scope": "access:services", "filter": "service=aitip",
                                            "description": "Access services via API or browser."},
                                           {"scope": "read:users:name", "filter": "",
                                            "description": "Read names of users."}]},
     ["通过 API 或浏览器访问服务。", "适用于 service=aitip。", "读取用户名。"],
     ["Access services via API or browser.", "Read names of users."],
     ['name="scopes" value="access:services!service=aitip"', 'name="raw-scopes"']),
    ("authorization-area.html", {"users": USERS, "ask_email": False, "user": named_server_user()},
     ["用户审批", "已批准？", "撤销批准", ">批准</a>", "修改密码", ">删除</a>"],
     ["Authorization area", "Is authorized?", "Unauthorize", ">Authorize</a>", "Discard"],
     ['id=carol', 'href="/hub/authorize/carol"', 'href="/hub/discard/carol"', 'href="/hub/change-password/ann"']),
    ("change-password.html", {"user_name": "ann", "post_url": "/hub/change-password", "alert": "alert-danger",
                              "result_message": "Your current password was incorrect. Please try again.",
                              "user": named_server_user()},
     ["修改 ann 的密码", "当前密码：", "确认新密码：", "当前密码不正确，请重试。"],
     ["Change password for ann", "Old password:", "Your current password was incorrect."],
     ['name="old_password"', 'name="new_password"', 'name="new_password_confirmation"', 'id="eye"']),
    ("change-password-admin.html", {"user_name": "bob", "post_url": "/hub/change-password/bob",
                                    "alert": "alert-danger", "user": named_server_user(),
                                    "result_message": "Something went wrong!\nBe sure the new password for bob "
                                                      "has at least 8 characters and is not too common."},
     ["修改 bob 的密码", "请输入要为 bob 设置的新密码。", "请确认 bob 的新密码至少有 8 个字符"],
     ["Change password for bob", "Please enter the new password you want to set for bob.",
      "Be sure the new password for bob has at least 8 characters"],
     ['name="new_password"', 'name="new_password_confirmation"', 'id="signup_submit"']),
    ("my_message.html", {"message": "carol has been authorized!"},
     ["carol 已获批准！", '<a href="/hub/login">登录</a>'], ["carol has been authorized!", ">log in</a>"], []),
]


@pytest.mark.parametrize("template, context, chinese, english, hooks", PAGES,
                         ids=[f"{page[0]}-{index}" for index, page in enumerate(PAGES)])
def test_each_hub_page_speaks_chinese_for_a_chinese_browser_and_english_otherwise(
        hub_config: Config, template: str, context: dict[str, Any], chinese: list[str], english: list[str],
        hooks: list[str]) -> None:
    zh = render(hub_config, template, {"Accept-Language": "zh-CN,zh;q=0.9"}, "/hub/home", **context)
    en = render(hub_config, template, {"Accept-Language": "en-US,en;q=0.9"}, "/hub/home", **context)
    assert [word for word in chinese if word not in zh] == []
    assert [word for word in english if word in zh] == []
    assert [word for word in english if word not in en] == []
    assert [word for word in chinese if word in en and not word.isascii()] == []
    assert [hook for hook in hooks if hook not in zh or hook not in en] == [], "hooks the scripts and handlers use"


def native_messages() -> set[str]:
    """What NativeAuthenticator's handlers assign to ``message`` or ``error`` (the sentences they show), its
    f-strings' values as {placeholders} and white space collapsed, as :data:`NATIVE_MESSAGES` lists them."""
    tree = ast.parse((Path(nativeauthenticator.__file__).parent / "handlers.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(isinstance(target, ast.Name) and target.id in ("message", "error")
                                                for target in node.targets):
            parts = node.value.values if isinstance(node.value, ast.JoinedStr) else [node.value]
            text = "".join(part.value if isinstance(part, ast.Constant) else "{" + ast.unparse(part.value) + "}"
                           for part in parts if isinstance(part, (ast.Constant, ast.FormattedValue)))
            found.add(" ".join(text.split()))
    return found


def test_every_sentence_nativeauthenticator_writes_has_a_catalog_entry() -> None:
    assert native_messages() == set(NATIVE_MESSAGES)


@pytest.mark.parametrize("template, variable", [("native-login.html", "login_error"),
                                                ("signup.html", "result_message")])
def test_nativeauthenticators_messages_reach_the_page_in_its_language(hub_config: Config, template: str,
                                                                       variable: str) -> None:
    said = {"login_error": "User carol has not been authorized by an administrator yet.",
            "result_message": "Your information has been sent to the admin."}[variable]
    page = render(hub_config, template, {"Accept-Language": "zh"}, "/hub/login", alert="alert-info",
                  **{variable: said})
    assert {"login_error": "用户 carol 尚未获得管理员批准。",
            "result_message": "您的注册信息已提交给管理员，请等待批准。"}[variable] in page and said not in page
    assert said in render(hub_config, template, {}, "/hub/login", alert="alert-info", **{variable: said})


def hub_errors() -> set[str]:
    """What JupyterHub's page handlers give ``web.HTTPError`` to say (the explanation its error page shows): a
    text, an f-string or a %-format, their values as {placeholders} named after their expressions (word
    characters only), white space collapsed, as :data:`HUB_ERRORS` lists them."""
    def placeholder(expression: ast.expr) -> str:
        return "{" + re.sub(r"\W+", "_", ast.unparse(expression)).strip("_") + "}"

    found = set()
    for handlers in ("base.py", "pages.py", "login.py"):
        for node in ast.walk(ast.parse((Path(jupyterhub.__file__).parent / "handlers" / handlers).read_text())):
            if not (isinstance(node, ast.Call) and ast.unparse(node.func).endswith("HTTPError") and len(node.args) > 1):
                continue
            said = node.args[1]
            if isinstance(said, ast.Constant) and isinstance(said.value, str):
                text = said.value
                for value in node.args[2:]:
                    text = text.replace("%s", placeholder(value), 1)
            elif isinstance(said, ast.JoinedStr):
                text = "".join(part.value if isinstance(part, ast.Constant) else placeholder(part.value)
                               for part in said.values if isinstance(part, (ast.Constant, ast.FormattedValue)))
            else:
                continue  # a variable: the handler's own (a spawner's or an authenticator's message)
            found.add(" ".join(text.split()))
    return found


def test_every_explanation_jupyterhubs_error_pages_give_has_a_catalog_entry() -> None:
    assert hub_errors() == set(HUB_ERRORS)
    home_link = BaseHandler.spawn_home_error.fget(SimpleNamespace(hub=SimpleNamespace(base_url="/hub/")))
    assert {" ".join(text.split()) for text in (*jupyterhub_reasons.values(), home_link.replace("/hub/home", "{home}"))} \
        == set(HUB_SPAWN_REASONS)
    assert set(HTTP_REASONS) <= set(responses.values()), "worded as the hub's status messages are"


def test_every_scope_the_authorize_page_can_list_has_a_catalog_entry() -> None:
    assert {scope["description"] for scope in scope_definitions.values()} == set(SCOPE_DESCRIPTIONS)


@pytest.mark.parametrize("said, chinese", [
    ("No such user: carol", "没有此用户：carol"),
    ("Spawner failed to start [status=1]. The logs for ann's server may contain details.",
     "启动器未能启动服务器 [status=1]。ann's server 的日志中可能有详细信息。"),
    ("Too Many Requests", "请求过多"),
    ("Read users’ group membership.", "读取用户所属的用户组。"),
])
def test_jupyterhubs_own_sentences_reach_the_page_in_its_language(said: str, chinese: str) -> None:
    token = language._LANGUAGE.set("zh_CN")
    try:
        assert hub_message(said) == chinese
    finally:
        language._LANGUAGE.reset(token)
    assert hub_message(said) == said, "English as written"


def test_a_message_it_does_not_know_is_shown_as_written() -> None:
    assert hub_message("the name ann-ölçü cannot become a Linux account") == \
        "the name ann-ölçü cannot become a Linux account"
    assert hub_message(None) is None


ADMIN_BUNDLE = Path(JupyterHub().data_files_path) / "static" / "js" / "admin-react.js"
# Texts the admin app builds from pieces: the pieces, as its bundle writes them.
ADMIN_PAGE_PIECES = {
    "of {total}": ['"of ".concat('], "{count} users": ['" users"'],
    **{f"{{count}} {unit} ago": [f'" {unit} ago"'] for unit in ("seconds", "minutes", "hours", "days", "months")},
    "{count} years ago": ['" years ago"'],
    '"{name}" is not a valid JupyterHub user.': ['\'" is not a valid JupyterHub user.\''],
    **{f"Failed to {verb} server.": ['"Failed to ".concat(a.toLowerCase(),".")', f'"{verb.title()} Server"']
       for verb in ("start", "stop", "delete")},
    **{f"Failed to {verb} {{count}} server. Is it already {state}?": [
        f'"Failed to {verb} ".concat(t.length," ").concat(t.length>1?"servers":"server",". ")'
        f'.concat(t.length>1?"Are they ":"Is it "," already {state}?")']
       for verb, state in (("start", "running"), ("stop", "stopped"))},
    **{f"Failed to {verb} {{count}} servers. Are they already {state}?": [
        f'"Failed to {verb} ".concat(t.length," ").concat(t.length>1?"servers":"server",". ")'
        f'.concat(t.length>1?"Are they ":"Is it "," already {state}?")']
       for verb, state in (("start", "running"), ("stop", "stopped"))},
}


@pytest.mark.parametrize("message", [*ADMIN_PAGE_WORDS, *ADMIN_PAGE_ALERTS, *ADMIN_PAGE_WORDS_IN_CONTEXT])
def test_every_word_listed_for_the_admin_page_is_written_so_in_jupyterhubs_bundle(message: str) -> None:
    """An upgrade of JupyterHub that rewords its admin app fails here (a text, with the space the app puts
    before a value, or the pieces it is built from)."""
    bundle = ADMIN_BUNDLE.read_text(encoding="utf-8")
    pieces = ADMIN_PAGE_PIECES.get(message) or [[f'"{message}"', f'"{message} "']]
    if message in ADMIN_PAGE_PIECES:
        assert [piece for piece in pieces if piece not in bundle] == []
    else:
        assert any(literal in bundle for literal in pieces[0]), message


def test_the_admin_page_is_given_its_words_in_chinese_and_left_as_jupyterhub_writes_it_in_english(
        hub_config: Config) -> None:
    context = {"api_page_limit": 50, "server_version": "6.1.1", "user": named_server_user()}
    zh = render(hub_config, "admin.html", {"Accept-Language": "zh-CN"}, "/hub/admin", **context)
    en = render(hub_config, "admin.html", {"Accept-Language": "en-US"}, "/hub/admin", **context)
    for page in (zh, en):
        assert 'id="react-admin-hook"' in page and "js/admin-react.js" in page and "window.api_page_limit" in page
    assert "aitip-admin-words" in zh
    assert all(json.dumps(said)[1:-1] in zh for said in ("添加用户", "{count} 秒前")), "as JSON in the script"
    assert "aitip-admin-words" not in en
    assert json.dumps("性能剖析")[1:-1] not in zh, "the spawn profile is not an evaluation's profiling"
    assert zh.index("aitip-admin-words") < zh.index("js/admin-react.js"), "watching before the app draws"


@pytest.mark.parametrize("message, shown, values", [
    ("Add Users", "Add Users", {}), ("{count} seconds ago", "19 seconds ago", {"count": "19"}),
    ('"{name}" is not a valid JupyterHub user.', '"a.b (c)" is not a valid JupyterHub user.', {"name": "a.b (c)"}),
    ("group name...", "group name...", {}), ("group name...", "group nameXYZ", None),
    ("of {total}", "of 3", {"total": "3"}), ("Add Users", "Add Users now", None),
])
def test_each_admin_page_word_is_matched_whole_with_its_values(message: str, shown: str,
                                                                values: dict[str, str] | None) -> None:
    """The JavaScript pattern, read as Python reads the same syntax: the whole text, dots and brackets literal."""
    found = re.fullmatch(javascript_pattern(message).replace("(?<", "(?P<").strip("^$"), shown)
    assert (found.groupdict() if found else None) == values


def test_why_a_name_cannot_become_an_account_is_said_in_the_pages_language() -> None:
    """The sign-up page's refusal of a name too long for a Linux account (the platform's own sentence)."""
    from aitip.isolation.accounts import UnmappableName, account_name

    with pytest.raises(UnmappableName) as refused:
        account_name("ann-" + "ö" * 12)
    said = str(refused.value)
    token = language._LANGUAGE.set("zh_CN")
    try:
        chinese = hub_message(said)
    finally:
        language._LANGUAGE.reset(token)
    assert chinese != said and "'ann-öööööööööööö'" in chinese and "32" in chinese and "26" in chinese
    assert hub_message(said) == said


JUPYTERHUB_SOURCES = [Path(jupyterhub.__file__).parent / "spawner.py",
                      Path(jupyterhub.__file__).parent / "apihandlers" / "users.py"]


@pytest.mark.parametrize("message", [*JUPYTERHUB_PROGRESS, *KUBESPAWNER_PROGRESS])
def test_every_progress_message_listed_is_written_so_by_jupyterhub_or_kubespawner(message: str) -> None:
    """An upgrade that rewords a progress message fails here: each piece of it between its {values}, as the
    source writes it (``f"Spawn failed: {message}"`` holds ``Spawn failed: ``)."""
    import kubespawner

    sources = JUPYTERHUB_SOURCES if message in JUPYTERHUB_PROGRESS else [Path(kubespawner.__file__).parent / "spawner.py"]
    text = "".join(source.read_text(encoding="utf-8") for source in sources)
    pieces = [piece for piece in re.split(r"\{\w+\}", message) if piece]
    if pieces == [message]:  # a whole sentence: a string of its own
        assert f'"{message}"' in text or f"'{message}'" in text
    else:
        assert all(piece in text for piece in pieces)


def test_the_spawn_pending_page_is_given_the_progress_words_in_chinese_only(hub_config: Config) -> None:
    context = {"progress_url": "/hub/api/users/ann/server/progress", "user": named_server_user()}
    zh = render(hub_config, "spawn_pending.html", {"Accept-Language": "zh-CN"}, "/hub/spawn-pending/ann", **context)
    en = render(hub_config, "spawn_pending.html", {"Accept-Language": "en"}, "/hub/spawn-pending/ann", **context)
    assert all(json.dumps(said)[1:-1] in zh for said in ("已请求服务器", "服务器已就绪：{url}", "已等待 {seconds} 秒"))
    assert "var spawnWords = [].map" in en, "English: the messages as they are sent"
    assert zh.index("spawnWords") < zh.index("evtSource.onmessage"), "translated as each one arrives"


@pytest.mark.parametrize("message, shown, values", [
    ("Server requested", "Server requested", {}), ("Spawning server...", "Spawning server...", {}),
    ("Spawning server...", "Spawning serverXYZ", None),
    ("Server ready at {url}", 'Server ready at <a href="/user/ann/">/user/ann/</a>', {
        "url": '<a href="/user/ann/">/user/ann/</a>'}),
    ("Spawn failed: {reason}", "Spawn failed: Timeout", {"reason": "Timeout"}), ("Spawn failed", "Spawn failed", {}),
    (KUBESPAWNER_PROGRESS[0], KUBESPAWNER_PROGRESS[0].format(seconds=42), {"seconds": "42"}),
])
def test_each_progress_message_is_matched_whole_with_its_values(message: str, shown: str,
                                                                values: dict[str, str] | None) -> None:
    found = re.fullmatch(javascript_pattern(message).replace("(?<", "(?P<").strip("^$"), shown, re.DOTALL)
    assert (found.groupdict() if found else None) == values


def _starting(spawner: Any, requester: str | None, headers: dict[str, str]) -> None:
    """JupyterHub hands the spawner the handler of the request that starts it (none when it starts it itself)."""
    request = httputil.HTTPServerRequest(method="POST", uri=f"/hub/api/users/{spawner.user.name}/server",
                                         headers=httputil.HTTPHeaders(headers))
    spawner.handler = None if requester is None else SimpleNamespace(
        request=request, current_user=SimpleNamespace(name=requester))


@pytest.mark.parametrize("spawner_class", ["SharedAccountSpawner", "AccountSpawner"])
def test_a_server_speaks_the_language_its_owner_last_started_it_in_whoever_starts_it_and_after_a_hub_restart(
        spawner_class: str) -> None:
    from aitip.hub import spawner as spawners

    kind = getattr(spawners, spawner_class)
    ann = kind(user=SimpleNamespace(name="ann"))
    _starting(ann, "admin", {"Accept-Language": "zh-CN"})
    assert language.spawning_language(ann) == "en"  # an admin's page says nothing of ann's language
    _starting(ann, "ann", {"Cookie": "aitip_lang=zh_CN"})
    assert language.spawning_language(ann) == "zh_CN"
    _starting(ann, "admin", {"Accept-Language": "en-US"})
    assert language.spawning_language(ann) == "zh_CN"  # started from the English admin page: still ann's
    _starting(ann, None, {})
    assert language.spawning_language(ann) == "zh_CN"  # started again by the hub

    ann.clear_state()  # a stopped server; the hub saves the spawner's state and a restarted hub loads it
    after_restart = kind(user=SimpleNamespace(name="ann"))
    after_restart.load_state(ann.get_state())
    _starting(after_restart, "admin", {})
    assert language.spawning_language(after_restart) == "zh_CN"
    _starting(after_restart, "ann", {"Accept-Language": "en"})
    assert language.spawning_language(after_restart) == "en" and after_restart.get_state()["aitip_language"] == "en"
