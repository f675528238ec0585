"""Hub users as Linux accounts: an escaping that cannot collide, names that cannot be mapped refused with
the reason, accounts created once with a private home, and no hijacking of an account AITIP did not make."""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
import uuid
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aitip.isolation.accounts import (
    MAX_ACCOUNT_NAME,
    AccountConflict,
    Accounts,
    UnmappableName,
    account_name,
    hub_name_of,
)
from tests.support.paths import open_to_all_accounts

VALID_ACCOUNT = r"^[a-z_][a-z0-9_-]*$"


@pytest.mark.parametrize("hub_name, account", [
    ("ann", "aitip-ann"), ("a-b", "aitip-a-b"), ("a.b", "aitip-a_2eb"), ("a_b", "aitip-a_5fb"),
    ("ann@example", "aitip-ann_40example"), ("Ann", "aitip-_41nn"), ("李", "aitip-_e6_9d_8e")])
def test_names_are_escaped_into_valid_accounts(hub_name: str, account: str) -> None:
    assert account_name(hub_name) == account
    assert hub_name_of(account) == hub_name


@settings(max_examples=500, deadline=None)
@given(st.text(min_size=1, max_size=26), st.text(min_size=1, max_size=26))
def test_two_hub_names_never_share_an_account(first: str, second: str) -> None:
    try:
        a, b = account_name(first), account_name(second)
    except UnmappableName:
        return
    assert (a == b) == (first == second)
    assert hub_name_of(a) == first
    import re

    assert re.match(VALID_ACCOUNT, a) and len(a) <= MAX_ACCOUNT_NAME


@pytest.mark.parametrize("hub_name", ["", "x" * 27, "é" * 9, "a.b.c.d.e.f.g.h.i"])
def test_a_name_that_cannot_be_an_account_is_refused_with_the_reason(hub_name: str) -> None:
    with pytest.raises(UnmappableName, match="cannot have a system account|empty"):
        account_name(hub_name)


@pytest.fixture
def accounts(tmp_path: Path) -> Accounts:
    (tmp_path / "home").mkdir()
    return Accounts.of_platform(open_to_all_accounts(tmp_path / "home"))


def test_an_account_is_created_once_with_a_group_and_a_private_home(accounts: Accounts) -> None:
    name = f"t{uuid.uuid4().hex[:8]}"
    first = accounts.ensure(name)
    again = accounts.ensure(name)
    assert first == again and first.name == f"aitip-{name}"
    entry = pwd.getpwnam(first.name)
    assert (entry.pw_uid, entry.pw_gid, entry.pw_dir) == (first.uid, first.gid, str(first.home))
    assert entry.pw_gecos == f"AITIP hub user {name}" and first.uid != 0 and first.gid != 0
    info = os.stat(first.home)
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (first.uid, first.gid, 0o700)
    assert stat.S_IMODE(os.stat(accounts.home_root).st_mode) == 0o711
    subprocess.run(["userdel", first.name], check=True)


def test_an_account_aitip_did_not_create_is_never_taken_over() -> None:
    name = f"t{uuid.uuid4().hex[:8]}"
    subprocess.run(["useradd", "--no-create-home", f"aitip-{name}"], check=True)
    try:
        with pytest.raises(AccountConflict, match="AITIP did not create it"):
            Accounts(Path("/nonexistent"), Path("/tmp/aitip-test-accounts.lock")).ensure(name)
    finally:
        subprocess.run(["userdel", f"aitip-{name}"], check=True)
