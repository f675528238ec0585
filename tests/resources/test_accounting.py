"""GPU-hours per user and per project from job rows in a real catalog, and who may see which."""

from __future__ import annotations

from datetime import UTC, datetime

import pydantic
import pytest
import pytest_asyncio
from aitip.catalog import Catalog
from aitip.errors import NotAuthenticated, NotFound
from aitip.identity.principal import Principal
from aitip.resources.accounting import gpu_hours
from aitip.resources.attribution import Lineage
from aitip.resources.gpus import NvmlProbe
from aitip.resources.models import GpuHoursQuery, SeriesQuery
from aitip.resources.monitor import GpuMonitor
from aitip.resources.service import ResourceService

from .conftest import FakeClock, FakeNvml, add_job, fixed_host_stats, make_projects


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 1, 5, hour, minute, tzinfo=UTC)


NOW = at(13)


@pytest_asyncio.fixture
async def jobs_catalog(catalog: Catalog) -> Catalog:
    await make_projects(catalog)
    add_job(catalog, "lab", "ann", 2, "succeeded", at(10), at(12))  # 4 GPU-hours
    add_job(catalog, "lab", "bob", 1, "running", at(11))  # 2 by 13:00, still counting
    add_job(catalog, "vision", "carol", 4, "failed", at(9), at(9, 30))  # 2
    add_job(catalog, "vision", "carol", 1, "starting", at(12, 30))  # 0.5 by 13:00
    add_job(catalog, "lab", "ann", 0, "succeeded", at(10), at(11))  # CPU only: none
    add_job(catalog, "lab", "bob", 3, "queued", at(8))  # requeued, waiting: its old start counts nothing
    add_job(catalog, "lab", "bob", 2, "cancelled")  # cancelled before it started: none
    return catalog


WINDOWS = [
    # (by, since, until, {name: (gpu_hours, jobs, running_jobs)})
    ("user", None, None, {"ann": (4, 1, 0), "bob": (2, 1, 1), "carol": (2.5, 2, 1)}),
    ("project", None, None, {"lab": (6, 2, 1), "vision": (2.5, 2, 1)}),
    ("user", at(11), at(12, 30), {"ann": (2, 1, 0), "bob": (1.5, 1, 1)}),
    ("project", at(11), at(12, 30), {"lab": (3.5, 2, 1)}),
    ("user", at(9, 15), at(10, 30), {"ann": (1, 1, 0), "carol": (1, 1, 0)}),
    ("project", at(12), None, {"lab": (1, 1, 1), "vision": (0.5, 1, 1)}),
    ("user", None, at(15), {"ann": (4, 1, 0), "bob": (2, 1, 1), "carol": (2.5, 2, 1)}),  # future: capped at now
    ("user", at(14), None, {}),
]


@pytest.mark.parametrize(("by", "since", "until", "expected"), WINDOWS)
def test_gpu_hours(jobs_catalog: Catalog, by: str, since: datetime | None, until: datetime | None,
                   expected: dict[str, tuple[float, int, int]]) -> None:
    with jobs_catalog.session() as session:
        report = gpu_hours(session, by=by, since=since, until=until, now=NOW)
    found = {item.name: (round(item.gpu_hours, 9), item.jobs, item.running_jobs) for item in report.items}
    assert found == expected
    assert report.total_gpu_hours == pytest.approx(sum(hours for hours, _, _ in expected.values()))
    assert [item.gpu_hours for item in report.items] == sorted(found[n][0] for n in found)[::-1]
    assert report.until == min(until or NOW, NOW)


def test_running_jobs_count_up_to_now(jobs_catalog: Catalog) -> None:
    with jobs_catalog.session() as session:
        later = gpu_hours(session, by="user", now=at(14))
    assert {item.name: item.gpu_hours for item in later.items}["bob"] == pytest.approx(3)


def service_for(catalog: Catalog, monitor: GpuMonitor | None = None) -> ResourceService:
    return ResourceService(catalog, monitor or GpuMonitor(NvmlProbe(host_stats=fixed_host_stats)))


VISIBILITY = [
    # (principal, project, {name: gpu_hours})
    (Principal("root", is_admin=True), None, {"lab": 6, "vision": 2.5}),
    (Principal("vic"), None, {"lab": 6}),
    (Principal("carol"), None, {"vision": 2.5}),
    (Principal("dan", frozenset({"vision-team"})), None, {"vision": 2.5}),
    (Principal("stranger"), None, {}),
    (Principal("vic"), "lab", {"lab": 6}),
    (Principal("root", is_admin=True), "vision", {"vision": 2.5}),
]


@pytest.mark.asyncio
@pytest.mark.parametrize(("principal", "project", "expected"), VISIBILITY)
async def test_callers_see_gpu_hours_of_their_projects(jobs_catalog: Catalog, principal: Principal,
                                                       project: str | None, expected: dict[str, float]) -> None:
    report = await service_for(jobs_catalog).gpu_hours(principal, GpuHoursQuery(by="project", project=project),
                                                       now=NOW)
    assert {item.name: item.gpu_hours for item in report.items} == pytest.approx(expected)


@pytest.mark.asyncio
async def test_gpu_hours_refusals(jobs_catalog: Catalog) -> None:
    service = service_for(jobs_catalog)
    with pytest.raises(NotFound, match="'vision' does not exist or you are not a member"):
        await service.gpu_hours(Principal("vic"), GpuHoursQuery(project="vision"))
    with pytest.raises(NotAuthenticated):
        await service.gpu_hours(None, GpuHoursQuery())


@pytest.mark.parametrize(("body", "message"), [
    ({"since": "2026-01-05T13:00:00Z", "until": "2026-01-05T12:00:00Z"}, "'since' must be before 'until'"),
    ({"by": "team"}, "Input should be 'user' or 'project'"),
    ({"project": "Not A Name"}, "String should match pattern"),
])
def test_gpu_hours_query_says_what_to_fix(body: dict[str, str], message: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=message):
        GpuHoursQuery.model_validate(body, strict=False)


def test_a_query_without_a_zone_is_utc() -> None:
    query = GpuHoursQuery.model_validate({"since": "2026-01-05T11:00:00"}, strict=False)
    assert query.since == at(11)


@pytest.mark.asyncio
async def test_snapshot_hides_jobs_of_projects_the_caller_is_not_in(jobs_catalog: Catalog, fake_nvml: FakeNvml,
                                                                    clock: FakeClock) -> None:
    from aitip.resources.attribution import JobRef

    kernels = {4242: JobRef(1, "lab", "ann", 1), 5151: JobRef(3, "vision", "carol", 4)}
    lineage = {4242: Lineage("svc", ()), 5151: Lineage("svc", ()), 6161: Lineage("eve", ())}
    monitor = GpuMonitor(NvmlProbe(host_stats=fixed_host_stats), job_lookup=kernels.get, clock=clock,
                         lineage=lambda pid: lineage[pid])
    service = service_for(jobs_catalog, monitor)
    everything = await service.snapshot(Principal("root", is_admin=True))
    assert everything["devices"][1]["users"] == ["carol", "eve"] and everything["devices"][1]["jobs"] == [3]
    seen = await service.snapshot(Principal("vic"))
    first, second = seen["devices"]
    assert first["processes"][0]["job"] == {"id": 1, "project": "lab", "owner": "ann", "gpus": 1}
    assert [p["job"] for p in second["processes"]] == [{"hidden": True}, None]
    assert (second["jobs"], second["users"]) == ([], ["eve"])
    assert monitor.current().devices[1].processes[0].job["owner"] == "carol", "the monitor's copy is untouched"
    with pytest.raises(NotAuthenticated):
        await service.snapshot(None)


@pytest.mark.asyncio
async def test_series_and_inventory_through_the_service(jobs_catalog: Catalog, fake_nvml: FakeNvml,
                                                        clock: FakeClock) -> None:
    monitor = GpuMonitor(NvmlProbe(host_stats=fixed_host_stats), clock=clock)
    service = service_for(jobs_catalog, monitor)
    for _ in range(4):
        monitor.sample_once()
        clock.advance(5)
    series = await service.series(Principal("vic"), SeriesQuery(max_points=2))
    assert len(series["host"]["t"]) == 2 and [len(d["t"]) for d in series["devices"]] == [2, 2]
    inventory = await service.inventory(Principal("vic"))
    assert (inventory["count"], inventory["source"]) == (2, "nvml")
    assert fake_nvml.initialized == 1, "the service's inventory reuses the monitor's NVML session"
