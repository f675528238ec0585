"""The hub's own pages in Chinese for a browser that asks for it: the home page, the token page (a new token
requested through it, and the times moment.js writes), the admin's approve-users page (a sign-up approved
through it), a refused login's message (NativeAuthenticator's, written in Python), the OAuth "authorize access"
page with its scopes' descriptions, error pages with JupyterHub's explanations (written in Python), and a starting
server's progress as JupyterHub and KubeSpawner send it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.browser.conftest import CHINESE, PAGE_TIMEOUT_MS, screenshot
from tests.support.platform import RunningPlatform

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


@pytest.fixture
def chinese_bob(chinese_sign_in: Any) -> Page:
    return chinese_sign_in("bob")


@pytest.fixture
def chinese_admin(browser: Browser, platform: RunningPlatform, people: dict[str, str]) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, extra_http_headers=CHINESE)
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    page = context.new_page()
    page.goto(f"{platform.url}/hub/login")
    page.fill("#username_input", platform.admin_user)
    page.fill("input[name=password]", platform.admin_password)
    page.click("#login_submit")
    page.wait_for_url(lambda url: "/hub/login" not in url)
    yield page
    context.close()


def test_the_home_page_speaks_chinese(platform: RunningPlatform, chinese_bob: Page, screenshots: Path) -> None:
    page = chinese_bob
    page.goto(f"{platform.url}/hub/home")
    expect(page.locator("#start")).to_have_text("启动我的服务器")
    expect(page.locator("nav").get_by_text("修改密码")).to_be_visible()
    expect(page.locator("#logout")).to_contain_text("退出登录")
    assert "Start My Server" not in page.inner_text("body")
    screenshot(page, screenshots, "hub-home-zh")


def test_a_token_requested_through_the_chinese_token_page(platform: RunningPlatform, chinese_bob: Page,
                                                         screenshots: Path) -> None:
    page = chinese_bob
    page.goto(f"{platform.url}/hub/token")
    expect(page.locator("#token-expiration-seconds option[selected]")).to_have_text("从不")
    page.fill("#token-note", "笔记本")
    page.get_by_role("button", name="申请新的 API 令牌").click()
    expect(page.locator("#token-area .card-header")).to_have_text("您的新 API 令牌")
    expect(page.locator("#token-result")).not_to_be_empty(timeout=30_000)  # the hub's answer, on a busy machine
    page.reload()
    expect(page.locator("#api-tokens-table th").first).to_have_text("备注")
    # When it was created, as token.js writes it ("几秒前", a few seconds ago) with moment.js's Chinese,
    # loaded before it ran.
    expect(page.locator("#api-tokens-table tbody tr").first.locator(".time-col").nth(1)).to_contain_text("前")
    screenshot(page, screenshots, "hub-token-zh")


def test_an_admin_approves_a_sign_up_on_the_chinese_authorize_page(platform: RunningPlatform,
                                                                    chinese_admin: Page, screenshots: Path) -> None:
    assert platform.signup("carol", "carol-pass-1234").status_code == 200
    page = chinese_admin
    page.goto(f"{platform.url}/hub/authorize")
    expect(page.locator("h1")).to_have_text("用户审批")
    expect(page.locator("tr#bob")).to_contain_text("撤销批准")
    carol = page.locator("tr#carol")
    expect(carol).to_contain_text("否")
    screenshot(page, screenshots, "hub-authorize-zh")
    carol.get_by_role("button", name="批准").click()
    expect(page.locator("tr#carol")).to_contain_text("撤销批准")
    expect(page.locator("tr#carol td").nth(2)).to_have_text("是")


def test_a_refused_login_is_told_why_in_chinese(browser: Browser, platform: RunningPlatform,
                                                people: dict[str, str]) -> None:
    context = browser.new_context(extra_http_headers=CHINESE)
    try:
        page = context.new_page()
        page.goto(f"{platform.url}/hub/login")
        page.fill("#username_input", "bob")
        page.fill("input[name=password]", "not-bobs-password")
        page.click("#login_submit")
        expect(page.locator(".login_error")).to_have_text("用户名或密码错误。")
    finally:
        context.close()


def test_the_authorize_access_page_describes_its_scopes_in_chinese(platform: RunningPlatform, chinese_admin: Page,
                                                                   people: dict[str, str], screenshots: Path) -> None:
    """The admin opening ann's server is asked to authorize access to it (it is not the admin's own): the page's
    words and JupyterHub's description of the scope are Chinese."""
    platform.spawn("ann", people["ann"])
    page = chinese_admin
    page.goto(f"{platform.url}/user/ann/lab")
    page.wait_for_url(lambda url: "/oauth2/authorize" in url)
    expect(page.locator("h1")).to_have_text("授权访问")
    # A server asks only to identify its visitor: JupyterHub's "(no_scope)" description.
    expect(page.locator("form .card-body")).to_have_text("识别发出请求者的所有者身份。")
    expect(page.locator("p").filter(has_text="它不能以您的名义执行任何操作。")).to_be_visible()
    assert "Identify the owner" not in page.inner_text("body")
    screenshot(page, screenshots, "hub-oauth-zh")
    page.get_by_role("button", name="批准").click()
    page.wait_for_url(lambda url: "/user/ann/lab" in url and "oauth2" not in url)


def test_error_pages_explain_in_chinese(platform: RunningPlatform, chinese_bob: Page, chinese_admin: Page,
                                        screenshots: Path) -> None:
    """JupyterHub's own explanations, written in Python in its handlers, reach its error pages in Chinese."""
    answer = chinese_bob.goto(f"{platform.url}/hub/spawn/bob/gpu")
    assert answer is not None and answer.status == 400
    expect(chinese_bob.locator(".error h1")).to_have_text("400 : 未启用命名服务器。")
    expect(chinese_bob.locator(".error .error-message")).to_have_text("未启用命名服务器。")
    assert "Named servers" not in chinese_bob.inner_text("body")
    screenshot(chinese_bob, screenshots, "hub-error-zh")
    answer = chinese_admin.goto(f"{platform.url}/hub/spawn/nobody-here")
    assert answer is not None and answer.status == 404
    expect(chinese_admin.locator(".error h1")).to_have_text("404 : 没有此用户：nobody-here")
    expect(chinese_admin.locator(".error")).to_contain_text("木星有很多卫星")
    screenshot(chinese_admin, screenshots, "hub-404-zh")


ENGLISH_ADMIN_TEXTS = """() => { const found = []; const hook = document.querySelector('#react-admin-hook');
  const walker = document.createTreeWalker(hook, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode())
    if (node.parentElement.tagName !== 'SCRIPT' && node.nodeValue.trim()) found.push(node.nodeValue.trim());
  hook.querySelectorAll('[placeholder],[title]').forEach(e => ['placeholder', 'title'].forEach(a => {
    if (e.getAttribute(a)) found.push(e.getAttribute(a)); }));
  return found; }"""


def test_the_admin_page_speaks_chinese(platform: RunningPlatform, chinese_admin: Page, screenshots: Path) -> None:
    """JupyterHub's React admin app, every view an admin walks through (users, add users, edit user, groups, a
    new group, editing it): its words in Chinese, none of them left in English; values (names) as they are."""
    from aitip.hub.admin_page import admin_page_messages

    english = {shown for shown, _entry in admin_page_messages() if "{" not in shown}
    page = chinese_admin

    def english_left() -> list[str]:
        return [text for text in page.evaluate(ENGLISH_ADMIN_TEXTS) if text in english]

    page.goto(f"{platform.url}/hub/admin")
    expect(page.locator(".add-users-button")).to_have_text("添加用户")
    expect(page.locator("#shutdown-button")).to_have_text("关闭 Hub")
    expect(page.get_by_placeholder("搜索用户")).to_be_visible()
    expect(page.get_by_text("仅显示运行中的服务器")).to_be_visible()
    expect(page.locator("#last-activity-header")).to_contain_text("最近活动")
    expect(page.locator("#profile-used-header")).to_have_text("配置方案")
    expect(page.locator(f"text={platform.admin_user}").first).to_be_visible()
    assert english_left() == []
    screenshot(page, screenshots, "hub-admin-zh")

    page.locator(".add-users-button").click()
    expect(page.get_by_placeholder("用户名，每行一个")).to_be_visible()
    assert english_left() == []
    page.get_by_role("button", name="返回").click()
    page.get_by_role("button", name="编辑用户").first.click()
    expect(page.get_by_text("正在编辑用户")).to_be_visible()
    expect(page.get_by_placeholder("新的用户名")).to_be_visible()
    assert english_left() == []
    page.goto(f"{platform.url}/hub/admin")
    page.get_by_role("button", name="管理组").click()
    page.get_by_role("button", name="新建组").click()
    expect(page.get_by_placeholder("组名……")).to_be_visible()
    page.get_by_placeholder("组名……").fill("reviewers")
    assert english_left() == []
    page.get_by_role("button", name="创建", exact=True).click()
    page.get_by_role("link", name="reviewers").click()
    expect(page.get_by_text("正在编辑组")).to_be_visible()
    expect(page.get_by_text("管理组成员")).to_be_visible()
    assert english_left() == []
    screenshot(page, screenshots, "hub-admin-group-zh")


SPAWN_EVENTS = [
    {"progress": 0, "message": "Server requested"},
    {"progress": 50, "message": "Spawning server..."},
    {"progress": 63, "message": '2026-12-06T08:00:00Z [Normal] Pulling image "aitip/singleuser:latest"'},
    {"message": "Server launch is taking longer than expected. Please be patient! Current time spent waiting: 42 "
                "seconds."},
    {"progress": 100, "failed": True, "message": "Spawn failed: Timeout",
     "html_message": "Spawn failed: <pre>Timeout</pre>"},
]


def test_a_starting_servers_progress_is_told_in_chinese(browser: Browser, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch, screenshots: Path) -> None:
    """The spawn-pending page, as the hub renders it for a Chinese browser, given the progress stream JupyterHub
    and KubeSpawner send (in English): each message they always send is written in Chinese as it arrives, a
    Kubernetes event as Kubernetes wrote it. The page is served from the rendered template and JupyterHub's
    static files (a local spawn is ready before the hub shows this page)."""
    import json

    from jupyterhub.app import JupyterHub
    from traitlets.config import Config

    from aitip.hub.config import configure
    from tests.hub.test_language import named_server_user, render

    monkeypatch.setenv("AITIP_HOME", str(tmp_path))
    config = Config()
    configure(config)
    html = render(config, "spawn_pending.html", CHINESE, "/hub/spawn-pending/ann",
                  progress_url="/hub/api/users/ann/server/progress", user=named_server_user())
    static = Path(JupyterHub().data_files_path) / "static"
    stream = "".join(f"data: {json.dumps(event)}\n\n" for event in SPAWN_EVENTS)

    def answer(route: Any) -> None:
        path = route.request.url.split("://", 1)[1].split("/", 1)[1].split("?")[0]
        if path == "hub/spawn-pending/ann":
            route.fulfill(body=html, content_type="text/html; charset=utf-8")
        elif path == "hub/logo":
            route.fulfill(path=str(static / "images" / "jupyterhub-80.png"))
        elif path.endswith("/server/progress"):
            route.fulfill(body=stream, content_type="text/event-stream")
        else:
            relative = path.removeprefix("hub/spawn-pending/")
            found = static / relative
            if found.is_file():
                route.fulfill(path=str(found))
            else:
                route.fulfill(status=404, body="")

    context = browser.new_context(viewport={"width": 1400, "height": 800})
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    try:
        page = context.new_page()
        page.route("http://hub.test/**", answer)
        page.goto("http://hub.test/hub/spawn-pending/ann")
        log = page.locator("#progress-log .progress-log-event")
        expect(log).to_have_count(len(SPAWN_EVENTS))
        assert log.all_text_contents() == ["已请求服务器", "正在启动服务器…",
                                         '2026-12-06T08:00:00Z [Normal] Pulling image "aitip/singleuser:latest"',
                                         "服务器启动的时间比预期长，请耐心等待！已等待 42 秒。", "启动失败：Timeout"]
        expect(page.locator("#progress-message")).to_contain_text("启动失败：")
        expect(page.locator("#progress-message pre")).to_have_text("Timeout")
        expect(page.locator("#progress-details")).to_have_attribute("open", "")
        screenshot(page, screenshots, "hub-spawn-pending-zh")
    finally:
        context.close()
