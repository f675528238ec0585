"""The CLI's commands generated from the operation table, run against the real platform server (the CLI is
synchronous: it runs in a thread while the server answers on the test's loop)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from aitip import i18n
from tests.support.cli import cli_runner


async def test_generated_commands_print_tables_and_json_and_refuse_in_one_line(
        api: Any, jp_http_port: int, jp_base_url: str, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{jp_http_port}{jp_base_url}"
    data = tmp_path / "people.csv"
    data.write_text("name,email,age\nann,ann@example.com,31\nbob,bob@example.com,42\n")
    aitip = cli_runner(url)

    def session() -> dict[str, tuple[int, str, str]]:
        return {
            "create": aitip("projects", "create", "alpha"),
            "register": aitip("datasets", "register", "--project", "alpha", "--dataset", "people", "--file",
                              str(data)),
            "mask": aitip("datasets", "update", "--project", "alpha", "--dataset", "people",
                          "--sensitive-columns", '{"email": "hash"}', "--description", "who is who"),
            "versions": aitip("datasets", "versions", "--project", "alpha", "--dataset", "people"),
            "versions_json": aitip("--json", "datasets", "versions", "--project", "alpha", "--dataset", "people"),
            "show": aitip("data", "show", "--project", "alpha", "people"),
            "version": aitip("datasets", "version", "--project", "alpha", "--dataset", "people", "--version", "1"),
            "runs": aitip("runs", "list", "--project", "alpha"),
            "refused": aitip("datasets", "update", "--project", "alpha", "--dataset", "people", "--description",
                             "mine", user="bob"),
            "bad": aitip("runs", "list", "--project", "alpha", "--max-results", "0"),
        }

    done = await asyncio.to_thread(session)
    assert done["create"][0] == 0
    assert done["register"][0] == 0 and "people" in done["register"][1]
    assert done["mask"][0] == 0 and "who is who" in done["mask"][1]
    code, table, _ = done["versions"]
    assert code == 0 and table.splitlines()[0].split()[:3] == ["PROJECT", "DATASET", "VERSION"]
    assert json.loads(done["versions_json"][1])["versions"][0]["version"] == 1
    code, shown, _ = done["show"]
    assert code == 0 and "people v1  csv, 2 rows" in shown and "email" in shown and "{" not in shown
    assert done["version"] == done["show"], "the generated command reads the version as `aitip data show` does"
    assert done["runs"][0] in (0, 1)  # tracking is off in this server: an answer or a one-line refusal
    code, out, err = done["refused"]
    assert code == 1 and out == "" and err.startswith("aitip: ") and err.count("\n") == 1
    code, _, err = done["bad"]
    assert code == 1 and "max_results" in err


async def test_people_read_the_cli_in_chinese_and_programs_read_json(
        api: Any, jp_http_port: int, jp_base_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """``AITIP_LANG=zh_CN``: headings, labels and the error line are Chinese; ``--json`` is the same data."""
    url = f"http://127.0.0.1:{jp_http_port}{jp_base_url}"
    monkeypatch.setenv("AITIP_LANG", "zh_CN")
    monkeypatch.setenv("LANG", "en_US.UTF-8")
    aitip = cli_runner(url)

    def session() -> dict[str, tuple[int, str, str]]:
        return {
            "create": aitip("projects", "create", "beta", "--display-name", "Beta"),
            "list": aitip("projects", "list"),
            "list_json": aitip("--json", "projects", "list"),
            "members": aitip("projects", "members", "list", "beta"),
            "refused": aitip("projects", "update", "beta", "--description", "mine", user="bob"),
            "bad": aitip("runs", "list", "--project", "beta", "--max-results", "0"),
        }

    done = await asyncio.to_thread(session)
    code, shown, _ = done["create"]
    assert code == 0 and "名称:" in shown and "显示名称:" in shown and "name:" not in shown
    code, shown, _ = done["list"]
    assert code == 0 and shown.splitlines()[0].split()[:3] == ["名称", "显示名称", "我的角色"]
    assert "beta" in shown and "否" in shown and "管理员" in shown  # not archived; the creator's role
    listed = json.loads(done["list_json"][1])["items"][0]
    assert listed["archived"] is False and listed["my_role"] == "admin"  # data, not words
    code, shown, _ = done["members"]
    assert code == 0 and shown.splitlines()[0].split()[:3] == ["类型", "名称", "角色"]
    assert shown.splitlines()[1].split()[2] == "管理员", shown
    code, out, err = done["refused"]
    assert code == 1 and out == "" and err.startswith("aitip：出错：") and err.count("\n") == 1
    assert "beta" in err and "does not exist" not in err  # the platform's own message, in Chinese too
    code, _, err = done["bad"]
    reason = i18n.translator("zh_CN").gettext("Input should be greater than or equal to {ge}").format(ge=1)
    assert code == 1 and "max_results" in err and reason in err and "should" not in err
