"""Running the CLI in-process against a test platform server, as a user, capturing what it prints."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable

from aitip.cli import main
from tests.server.conftest import TOKENS

Run = Callable[..., tuple[int, str, str]]


def cli_runner(url: str) -> Run:
    """``aitip(*argv, user="ann") -> (exit code, stdout, stderr)`` against the platform at ``url``. The CLI is
    synchronous: call it from a thread while the server answers on the test's loop."""

    def aitip(*argv: str, user: str = "ann") -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["--url", url, "--token", TOKENS[user], *argv])
        return code, out.getvalue(), err.getvalue()

    return aitip
