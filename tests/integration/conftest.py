"""One real platform for the whole integration session, torn down (and checked) at the end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.platform import RunningPlatform, start_platform


# Serving writes its metric points every second (5 s by default), so that rollout analyses can run every few seconds.
SERVING_METRICS_SECONDS = 1


@pytest.fixture(scope="session")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    running = start_platform(tmp_path_factory.mktemp("aitip-home"),
                             environment={"AITIP_SERVING_METRICS_SECONDS": str(SERVING_METRICS_SECONDS)})
    yield running
    code, left = running.stop()
    assert code == 0, running.log()[-3000:]
    assert left == [], f"processes left after shutdown: {left}"


PASSWORDS = {"ann": "ann-pass-1234", "bob": "bob-pass-1234", "carol": "carol-pass-1234"}


@pytest.fixture(scope="session")
def people(platform: RunningPlatform) -> dict[str, str]:
    """ann, bob and carol signed up through NativeAuthenticator, approved by the admin; their tokens."""
    tokens = {}
    for name, password in PASSWORDS.items():
        response = platform.signup(name, password)
        assert response.status_code == 200, response.text
        with pytest.raises(PermissionError):
            platform.browser_login(name, password)  # not yet approved
        platform.approve(name)
        tokens[name] = platform.token(name, password)
    tokens["admin"] = platform.token(platform.admin_user, platform.admin_password)
    return tokens
