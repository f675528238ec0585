"""``client.ops``, generated from the operation table, against the real platform server (the SDK is
synchronous: it runs in a thread while the server answers on the test's loop)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from aitip.client import AitipAPIError, Client
from aitip.datasets.models import DatasetVersion, VersionDiff
from aitip.projects.models import Member, Project
from tests.server.conftest import TOKENS
from tests.support.notebooks import TRIVIAL


async def test_generated_methods_call_the_platform_and_answer_with_the_rows_models(
        api: Any, jp_http_port: int, jp_base_url: str, tmp_path: Path) -> None:
    first, second = tmp_path / "v1.csv", tmp_path / "v2.csv"
    first.write_text("a,b\n1,2\n")
    second.write_text("a,b\n1,2\n3,4\n")

    def journey() -> dict[str, Any]:
        with Client(url=f"http://127.0.0.1:{jp_http_port}{jp_base_url}", token=TOKENS["ann"]) as client:
            created = client.ops.projects.create(name="alpha", description="from the SDK")
            member = client.ops.members.add(project="alpha", user="bob", role="viewer")
            versions = [client.ops.datasets.register(project="alpha", dataset="digits", file=path)
                        for path in (first, second)]
            diff = client.ops.datasets.diff(project="alpha", dataset="digits", from_version=1, to_version=2)
            job = client.submit_job("alpha", TRIVIAL, inputs=["digits@1", "digits"])
            with pytest.raises(TypeError, match="missing required arguments"):
                client.ops.projects.get()
            with pytest.raises(AitipAPIError) as refused:
                client.ops.projects.update(project="nowhere", description="x")
            return {"created": created, "member": member, "versions": versions, "diff": diff, "job": job,
                    "refused": refused.value}

    done = await asyncio.to_thread(journey)
    assert isinstance(done["created"], Project) and done["created"].description == "from the SDK"
    assert isinstance(done["member"], Member) and done["member"].role == "viewer"
    assert [v.version for v in done["versions"]] == [1, 2] and isinstance(done["versions"][0], DatasetVersion)
    assert isinstance(done["diff"], VersionDiff)
    assert [(i.dataset, i.version) for i in done["job"].inputs] == [("digits", 1), ("digits", 2)]
    assert done["refused"].status == 404
