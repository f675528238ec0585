"""The SDK and the CLI upload to a real server with ``Expect: 100-continue``: a refused upload is not
sent, and every refusal is one clear line — the platform's own message, or for an answer that is not the
API's (here Jupyter Server's HTML 404 page), its status, reason and words, never its markup."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from aitip.client import AitipAPIError, Client
from tests.server.conftest import TOKENS

AITIP = str(Path(sys.executable).parent / "aitip")
LIMIT = 1 << 20


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    jp_server_config["AitipExtension"]["data_registry_path"] = str(tmp_path / "registry")
    jp_server_config["AitipExtension"]["max_upload_bytes"] = LIMIT
    return jp_server_config


@pytest.fixture
def url(jp_http_port: int, jp_base_url: str) -> str:
    return f"http://127.0.0.1:{jp_http_port}{jp_base_url}"


async def make_lab(api: Any) -> None:
    assert (await api("POST", "projects", body={"name": "lab"}))[0] == 201
    assert (await api("POST", "projects/lab/members", body={"user": "bob", "role": "viewer"}))[0] == 201


class Body:
    """``chunks`` MiB of CSV-ish bytes made as they are read; counts what the client took."""

    def __init__(self, chunks: int) -> None:
        self.chunks, self.taken = chunks, 0

    def __iter__(self) -> Any:
        for _ in range(self.chunks):
            self.taken += 1
            yield b"a,b\n" + b"1,2\n" * ((1 << 18) - 1)


def _upload(url: str, user: str, body: Body, filename: str = "d.csv") -> Any:
    with Client(url, TOKENS[user]) as client:
        return client.upload("projects/lab/datasets/d/versions", body, body.chunks << 20,
                             params={"filename": filename})


@pytest.mark.parametrize(("user", "chunks", "status", "code"), [
    ("bob", 3, 403, "forbidden"),
    ("erin", 3, 404, "not_found"),
    ("ann", 2, 413, "payload_too_large"),
])
async def test_a_refused_upload_is_not_sent(api: Any, url: str, tmp_path: Path, user: str, chunks: int,
                                            status: int, code: str) -> None:
    await make_lab(api)
    body = Body(chunks)
    with pytest.raises(AitipAPIError) as refused:
        await asyncio.to_thread(_upload, url, user, body)
    assert (refused.value.status, refused.value.code, body.taken) == (status, code, 0)
    assert "<" not in refused.value.message and refused.value.message
    assert list((tmp_path / "staging").iterdir()) == []


async def test_an_accepted_upload_is_sent_after_100_continue(api: Any, url: str, tmp_path: Path) -> None:
    await make_lab(api)
    body = Body(1)
    version = await asyncio.to_thread(_upload, url, "ann", body)
    assert (version["version"], version["rows"], version["bytes"], body.taken) == (1, (1 << 18) - 1, 1 << 20, 1)


async def test_sdk_add_registers_a_file_and_a_folder(api: Any, url: str, tmp_path: Path) -> None:
    await make_lab(api)
    table = tmp_path / "users.csv"
    table.write_bytes(b"id,score\n" + b"".join(b"%d,0.5\n" % i for i in range(1000)))
    folder = tmp_path / "pets"
    for label in ("cat", "dog"):
        (folder / label).mkdir(parents=True)
        (folder / label / "1.png").write_bytes(b"\x89PNG" + label.encode() * 100)

    def add() -> tuple[Any, Any]:
        with Client(url, TOKENS["ann"]) as client:
            return client.datasets.add("lab", "users", table), client.datasets.add("lab", "pets", folder)

    users, pets = await asyncio.to_thread(add)
    assert (users.version, users.rows) == (1, 1000)
    assert (pets.format, pets.files) == ("images", 2)


async def run_cli(url: str, user: str, *args: str) -> tuple[int, str, str]:
    env = {**os.environ, "AITIP_URL": url, "AITIP_TOKEN": TOKENS[user]}
    process = await asyncio.create_subprocess_exec(AITIP, *args, env=env, stdout=asyncio.subprocess.PIPE,
                                                   stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_cli_says_a_refusal_in_one_line(api: Any, url: str, tmp_path: Path) -> None:
    await make_lab(api)
    big = tmp_path / "big.csv"
    with big.open("wb") as handle:
        handle.truncate(3 << 20)  # sparse: 3 MiB that take no disk
    code, out, err = await run_cli(url, "bob", "data", "add", "d", str(big), "-P", "lab")
    assert (code, out) == (1, "")
    assert err.splitlines() == ["aitip: dataset.write needs the developer role in project 'lab'; you are viewer "
                                "(403 forbidden)"], err
    code, out, err = await run_cli(url, "ann", "data", "add", "d", str(big), "-P", "lab")
    assert err.splitlines() == [f"aitip: the upload is {3 << 20} bytes; the limit is {LIMIT} "
                                "(413 payload_too_large)"], err


async def test_an_html_answer_is_told_in_words(api: Any, jp_http_port: int, jp_base_url: str,
                                               tmp_path: Path) -> None:
    """A URL that is not the API's: Jupyter Server answers its own HTML 404 page."""
    wrong = f"http://127.0.0.1:{jp_http_port}{jp_base_url}not-the-platform/"
    table = tmp_path / "d.csv"
    table.write_bytes(b"a,b\n1,2\n")

    def add() -> AitipAPIError:
        with Client(wrong, TOKENS["ann"]) as client, pytest.raises(AitipAPIError) as refused:
            client.datasets.add("lab", "d", table)
        return refused.value

    error = await asyncio.to_thread(add)
    assert (error.status, error.code) == (404, "http_error")
    assert error.message.startswith("Not Found") and "<" not in error.message and "\n" not in error.message
    code, out, err = await run_cli(wrong, "ann", "data", "add", "d", str(table), "-P", "lab")
    assert code == 1 and len(err.splitlines()) == 1 and "<" not in err, err
    assert err.startswith("aitip: Not Found") and err.rstrip().endswith("(404 http_error)")
