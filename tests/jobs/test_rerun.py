"""A job's notebook run again as the caller's own job, with what they change (``jobs.rerun``): the rest kept, the
inputs switched to a newer dataset version when asked, and every refusal before anything is written."""

from __future__ import annotations

from pathlib import Path

import pytest

from aitip.datasets.job_inputs import DatasetJobInputs
from aitip.datasets.registry import DataRegistry
from aitip.datasets.service import DatasetService
from aitip.errors import InvalidInput, NotFound, PermissionDenied
from aitip.identity.principal import Principal
from aitip.jobs.models import JobInput, JobListQuery, JobRerun, JobState, JobSubmit, Resources
from tests.jobs.conftest import ANN, BOB, VIC, JobPlatform, make_platform
from tests.support.notebooks import TRIVIAL

pytestmark = pytest.mark.asyncio


async def test_a_rerun_changes_what_it_is_given_and_keeps_the_rest(platform: JobPlatform) -> None:
    first = await platform.jobs.submit(ANN, JobSubmit(
        project="lab", notebook=TRIVIAL, notebook_name="double.ipynb", parameters={"x": 5}, priority=70,
        timeout_seconds=300, tags={"team": "vision"}, resources=Resources(cpus=0.5)))
    await platform.wait(first.id, JobState.succeeded)

    again = await platform.jobs.rerun(BOB, first.id, JobRerun(parameters={"x": 21}, tags={"why": "agent"},
                                                              resources={"memory_mb": 512}))
    assert (again.owner, again.rerun_of, again.retry_of) == ("bob", first.id, None)
    assert again.notebook_sha256 == first.notebook_sha256 and again.notebook_name == "double.ipynb"
    assert again.parameters == {"x": 21} and again.tags == {"team": "vision", "why": "agent"}
    assert (again.priority, again.timeout_seconds) == (70, 300)
    assert again.resources == {"cpus": 0.5, "gpus": 0, "memory_mb": 512}
    done = await platform.wait(again.id, JobState.succeeded)
    events, _ = await platform.jobs.events(BOB, done.id)
    assert "".join(e.data["text"] for e in events if e.kind == "output") == "result 42\n"
    assert (await platform.jobs.get(ANN, first.id)).parameters == {"x": 5}  # the earlier job is untouched


@pytest.mark.parametrize(("caller", "job", "change", "refusal", "code"), [
    (BOB, 1, {"parameters": {"y": 1}}, InvalidInput, "undeclared_parameter"),
    (BOB, 1, {"parameters": {"x": "two"}}, InvalidInput, "parameter_type"),
    (BOB, 1, {"tags": {f"extra{i}": "v" for i in range(3)}}, InvalidInput, "invalid_input"),  # 33 in all
    (VIC, 1, {}, PermissionDenied, "forbidden"),
    (Principal("mallory"), 1, {}, NotFound, "not_found"),
    (BOB, 999, {}, NotFound, "not_found"),
])
async def test_a_refused_rerun_writes_nothing(tmp_path: Path, caller: Principal, job: int, change: dict,
                                               refusal: type[Exception], code: str) -> None:
    platform = await make_platform(tmp_path)
    try:
        tags = {f"tag{i}": "v" for i in range(30)}
        await platform.jobs.submit(ANN, JobSubmit(project="lab", notebook=TRIVIAL, parameters={"x": 1}, tags=tags))
        with pytest.raises(refusal) as refused:
            await platform.jobs.rerun(caller, job, JobRerun(**change))
        assert refused.value.code == code, refused.value  # type: ignore[attr-defined]
        assert (await platform.jobs.list(ANN, JobListQuery())).total == 1
    finally:
        platform.catalog.dispose()


async def test_a_rerun_reads_the_same_versions_unless_told_which(tmp_path: Path) -> None:
    """No worker runs: what is recorded at submission is what is checked."""
    platform = await make_platform(tmp_path)
    datasets = DatasetService(platform.catalog, DataRegistry(tmp_path / "registry"), tmp_path / "staging")
    platform.jobs.inputs = DatasetJobInputs(datasets)
    try:
        for rows in (b"a,label\n1,0\n", b"a,label\n1,0\n2,1\n"):
            upload = datasets.start_upload("points.csv")
            upload.write(rows)
            upload.finish()
            await datasets.register(ANN, "lab", "points", upload)
            if rows.count(b"\n") == 2:
                first = await platform.jobs.submit(ANN, JobSubmit(project="lab", notebook=TRIVIAL,
                                                                  inputs=[JobInput(dataset="points")]))
        assert [(i.dataset, i.version) for i in first.inputs] == [("points", 1)]

        same = await platform.jobs.rerun(BOB, first.id, JobRerun())
        newest = await platform.jobs.rerun(BOB, first.id, JobRerun(inputs=[JobInput(dataset="points")]))
        pinned = await platform.jobs.rerun(BOB, newest.id, JobRerun(inputs=[JobInput(dataset="points", version=1)]))
        assert [[(i.dataset, i.version, i.how) for i in job.inputs] for job in (same, newest, pinned)] == [
            [("points", 1, "declared")], [("points", 2, "declared")], [("points", 1, "declared")]]
        with pytest.raises(InvalidInput, match="has no version"):
            await platform.jobs.rerun(BOB, first.id, JobRerun(inputs=[JobInput(dataset="points", version=7)]))
        assert (await platform.jobs.list(ANN, JobListQuery())).total == 4
    finally:
        datasets.registry.close()
        platform.catalog.dispose()
