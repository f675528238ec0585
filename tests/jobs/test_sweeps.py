"""Sweeps: grid, random and TPE points; bad spaces refused; trials as child jobs and MLflow child runs,
the best trial reported on the sweep and its MLflow parent run."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from aitip.errors import InvalidInput
from aitip.identity.principal import Principal
from aitip.jobs.models import SweepCreate
from aitip.jobs.sweeps import SweepController, SweepService, grid_point, grid_size, random_point, tpe_point
from aitip.experiments.job_tracker import MlflowTracker
from tests.jobs.conftest import ANN, BOB, make_platform
from tests.support.notebooks import notebook

SPACE = {"lr": {"type": "loguniform", "low": 1e-4, "high": 1e-1}, "hidden": {"type": "choice", "values": [32, 64]},
         "depth": {"type": "int", "low": 1, "high": 4}}
SCORED = notebook("import mlflow\nmlflow.log_metric('score', -(x - 3) ** 2)\nprint('score', -(x - 3) ** 2)",
                  parameters="x = 0.0\nlabel = 'a'")


def test_grid_enumerates_every_combination_in_order() -> None:
    space = {"a": {"type": "grid", "values": [1, 2]}, "b": {"type": "choice", "values": ["x", "y", "z"]}}
    assert grid_size(space) == 6
    assert [grid_point(space, i) for i in range(6)] == [
        {"a": a, "b": b} for a in (1, 2) for b in ("x", "y", "z")]


def test_random_points_are_reproducible_and_in_range() -> None:
    points = [random_point(SPACE, 7, i) for i in range(50)]
    assert points == [random_point(SPACE, 7, i) for i in range(50)]
    assert all(1e-4 <= p["lr"] <= 1e-1 and p["hidden"] in (32, 64) and 1 <= p["depth"] <= 4 for p in points)
    assert len({p["lr"] for p in points}) == 50


def test_tpe_uses_history_and_stays_in_range() -> None:
    history = [({"lr": 0.01, "hidden": 32, "depth": 2}, 0.9), ({"lr": 0.001, "hidden": 64, "depth": 1}, 0.5)]
    point = tpe_point(SPACE, 0, "maximize", history)
    assert set(point) == set(SPACE) and 1e-4 <= point["lr"] <= 1e-1 and isinstance(point["depth"], int)


@pytest.mark.parametrize(("change", "code"), [
    ({"space": {"nope": {"type": "choice", "values": [1]}}}, "undeclared_parameter"),
    ({"space": {"x": {"type": "choice", "values": [1.0]}}, "parameters": {"x": 2.0}}, "invalid_sweep"),
    ({"space": {"x": {"type": "uniform", "low": 0, "high": 1}}, "strategy": "grid"}, "invalid_sweep"),
    ({"space": {"x": {"type": "uniform", "low": 0, "high": 1}}, "strategy": "random", "trials": None},
     "invalid_sweep"),
    ({"space": {"label": {"type": "choice", "values": [1, 2]}}}, "parameter_type"),
    ({"space": {"x": {"type": "grid", "values": list(range(40))}, "label": {"type": "grid",
                                                                            "values": [str(i) for i in range(40)]}},
      "strategy": "grid"}, "invalid_sweep"),
])
@pytest.mark.asyncio
async def test_bad_sweeps_are_refused(tmp_path: Path, change: dict, code: str) -> None:
    platform = await make_platform(tmp_path)
    sweeps = SweepService(platform.catalog, platform.jobs)
    request = {"project": "lab", "notebook": SCORED, "space": {"x": {"type": "grid", "values": [1.0]}},
               "objective": "score", "strategy": "tpe", "trials": 3, **change}
    with pytest.raises(InvalidInput) as refused:
        await sweeps.create(ANN, SweepCreate(**request))
    assert refused.value.code == code
    assert (await sweeps.list(ANN, "lab")).total == 0


@pytest.mark.parametrize("bad", [{"type": "uniform", "low": 1, "high": 1}, {"type": "loguniform", "low": 0, "high": 1},
                                 {"type": "choice"}, {"type": "int", "low": 0.5, "high": 3},
                                 {"type": "grid", "values": [1], "low": 0}])
def test_malformed_dimensions_are_422_material(bad: dict) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        SweepCreate(project="lab", notebook=SCORED, space={"x": bad}, objective="score", trials=2)


async def _run_sweep(tmp_path: Path, request: SweepCreate, timeout: float = 180, who: Principal = ANN):  # noqa: ANN202
    tracker = MlflowTracker(f"sqlite:///{tmp_path / 'mlflow.sqlite'}", tmp_path / "mlartifacts")
    platform = await make_platform(tmp_path, tracker=tracker)
    sweeps = SweepService(platform.catalog, platform.jobs)
    platform.worker.sweeps = SweepController(platform.catalog, platform.jobs, tracker)
    await platform.worker.start()
    try:
        created = await sweeps.create(who, request)
        deadline = time.monotonic() + timeout
        while (sweep := await sweeps.get(who, created.id)).state == "running":
            assert time.monotonic() < deadline, sweep
            assert sum(t.state.value in ("starting", "running") for t in sweep.trial_jobs) <= request.parallelism
            await asyncio.sleep(0.5)
    finally:
        await platform.worker.stop()
        platform.catalog.dispose()
    return sweep, tracker


@pytest.mark.asyncio
async def test_grid_sweep_finds_the_best_trial_and_records_it_in_mlflow(tmp_path: Path) -> None:
    request = SweepCreate(project="lab", notebook=SCORED, strategy="grid", parallelism=2, objective="score",
                          space={"x": {"type": "grid", "values": [1.0, 2.0, 3.0, 4.0]}}, parameters={"label": "g"})
    sweep, tracker = await _run_sweep(tmp_path, request)
    assert sweep.state == "succeeded", sweep.reason
    assert [t.parameters for t in sweep.trial_jobs] == [{"label": "g", "x": v} for v in (1.0, 2.0, 3.0, 4.0)]
    assert [t.value for t in sweep.trial_jobs] == [-4.0, -1.0, 0.0, -1.0]
    assert sweep.best_value == 0.0 and sweep.best_parameters == {"label": "g", "x": 3.0}
    parent = tracker.client.get_run(sweep.mlflow_run_id)
    assert parent.data.metrics["best_score"] == 0.0 and parent.data.tags["aitip.best_job_id"] == str(sweep.best_job_id)
    children = tracker.client.search_runs([parent.info.experiment_id],
                                          f"tags.mlflow.parentRunId = '{sweep.mlflow_run_id}'")
    assert len(children) == 4


@pytest.mark.asyncio
async def test_tpe_sweep_runs_its_trials_with_bounded_parallelism(tmp_path: Path) -> None:
    request = SweepCreate(project="lab", notebook=SCORED, strategy="tpe", trials=6, parallelism=2,
                          objective="score", space={"x": {"type": "uniform", "low": 0.0, "high": 6.0}}, seed=3)
    sweep, _ = await _run_sweep(tmp_path, request)
    assert sweep.state == "succeeded" and len(sweep.trial_jobs) == 6
    values = [t.value for t in sweep.trial_jobs]
    assert all(v is not None for v in values) and sweep.best_value == max(values)
    assert all(0.0 <= t.parameters["x"] <= 6.0 for t in sweep.trial_jobs)


@pytest.mark.asyncio
async def test_a_hub_admin_who_is_not_a_member_runs_a_sweep(tmp_path: Path) -> None:
    """Hub admins are admins of every project: their plain jobs run there, and so do their sweeps' trials
    (they used to be submitted as a bare principal and fail: "project does not exist")."""
    root = Principal("root", is_admin=True)  # not a member of lab
    request = SweepCreate(project="lab", notebook=SCORED, strategy="grid", parallelism=2, objective="score",
                          space={"x": {"type": "grid", "values": [2.0, 3.0]}})
    sweep, _ = await _run_sweep(tmp_path, request, who=root)
    assert sweep.state == "succeeded", sweep.reason
    assert sweep.owner == "root" and [t.state.value for t in sweep.trial_jobs] == ["succeeded", "succeeded"]
    assert sweep.best_value == 0.0


def test_trials_are_submitted_with_the_creators_standing() -> None:
    from aitip.jobs.sweeps import trial_submitter

    assert trial_submitter("gil", {"submitted_as": {"groups": ["ml", "vision"], "admin": False}}) == \
        Principal("gil", groups=frozenset({"ml", "vision"}))
    assert trial_submitter("root", {"submitted_as": {"groups": [], "admin": True}}).is_admin
    assert trial_submitter("old", {}) == Principal("old")  # sweeps created before the standing was kept


def test_a_sweep_names_one_notebook() -> None:
    from pydantic import ValidationError

    space = {"x": {"type": "grid", "values": [1.0]}}
    for sources in ({}, {"notebook": SCORED, "job": 1}, {"shipped": "train/digits_sklearn", "job": 1},
                    {"notebook": SCORED, "shipped": "train/digits_sklearn"}):
        with pytest.raises(ValidationError, match="give the notebook|give one of the notebook"):
            SweepCreate(project="lab", space=space, objective="score", **sources)


@pytest.mark.asyncio
async def test_a_sweep_of_a_jobs_notebook_keeps_its_settings_and_pins_the_inputs(tmp_path: Path) -> None:
    """A job's notebook searched without sending it: the job's fixed parameters (not the searched one), name and
    resources; the trials all read the dataset version that was the latest when the sweep started, even after a
    newer one arrives."""
    from aitip.datasets.job_inputs import DatasetJobInputs
    from aitip.datasets.registry import DataRegistry
    from aitip.datasets.service import DatasetService
    from aitip.jobs.models import JobInput, JobRerun, JobSubmit, Resources

    tracker = MlflowTracker(f"sqlite:///{tmp_path / 'mlflow.sqlite'}", tmp_path / "mlartifacts")
    platform = await make_platform(tmp_path, tracker=tracker)
    datasets = DatasetService(platform.catalog, DataRegistry(tmp_path / "registry"), tmp_path / "staging")
    platform.jobs.inputs = platform.worker.inputs = DatasetJobInputs(datasets)
    sweeps = SweepService(platform.catalog, platform.jobs)
    platform.worker.sweeps = SweepController(platform.catalog, platform.jobs, tracker)

    async def register(rows: bytes) -> None:
        upload = datasets.start_upload("points.csv")
        upload.write(rows)
        upload.finish()
        await datasets.register(ANN, "lab", "points", upload)

    try:
        await register(b"a,label\n1,0\n")
        job = await platform.jobs.submit(ANN, JobSubmit(
            project="lab", notebook=SCORED, notebook_name="score.ipynb", parameters={"x": 1.0, "label": "j"},
            resources=Resources(cpus=0.5), inputs=[JobInput(dataset="points")]))
        await register(b"a,label\n1,0\n2,1\n")
        space = {"x": {"type": "grid", "values": [2.0, 3.0]}}
        mine = await sweeps.create(BOB, SweepCreate(project="lab", job=job.id, space=space, strategy="grid",
                                                    objective="score"))
        assert (mine.job, mine.parameters, [(i.dataset, i.version) for i in mine.inputs]) == (
            job.id, {"label": "j"}, [("points", 1)])  # the job's own version
        newest = await sweeps.create(ANN, SweepCreate(project="lab", job=job.id, space=space, strategy="grid",
                                                      objective="score", parameters={"label": "k"},
                                                      inputs=[JobInput(dataset="points")]))
        assert [(i.dataset, i.version) for i in newest.inputs] == [("points", 2)]
        await register(b"a,label\n1,0\n2,1\n3,0\n")  # after the sweep started: its trials do not read it
        await platform.worker.start()
        deadline = time.monotonic() + 180
        for created, version, label in ((newest, 2, "k"), (mine, 1, "j")):
            while (sweep := await sweeps.get(ANN, created.id)).state == "running":
                assert time.monotonic() < deadline, sweep
                await asyncio.sleep(0.5)
            assert sweep.state == "succeeded", sweep.reason
            assert sweep.best_parameters == {"label": label, "x": 3.0}
            for trial in sweep.trial_jobs:
                ran = await platform.jobs.get(ANN, trial.job_id)
                assert (ran.notebook_name, ran.resources["cpus"]) == ("score.ipynb", 0.5)
                assert [(i.dataset, i.version, i.how) for i in ran.inputs] == [("points", version, "declared")]
        trial = await platform.jobs.get(ANN, sweep.trial_jobs[0].job_id)
        assert {"sweep", "trial"} <= set(trial.tags)
        again = await platform.jobs.rerun(BOB, trial.id, JobRerun(tags={"why": "check"}))
        assert again.tags == {"why": "check"} and again.rerun_of == trial.id  # no longer a trial of that sweep
    finally:
        await platform.worker.stop()
        datasets.registry.close()
        platform.catalog.dispose()


@pytest.mark.asyncio
async def test_a_sweep_of_a_job_elsewhere_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    from aitip.errors import NotFound
    from aitip.jobs.models import JobSubmit
    from aitip.projects.models import ProjectCreate

    platform = await make_platform(tmp_path)
    sweeps = SweepService(platform.catalog, platform.jobs)
    try:
        await platform.projects.create(ANN, ProjectCreate(name="other"))
        elsewhere = await platform.jobs.submit(ANN, JobSubmit(project="other", notebook=SCORED))
        space = {"x": {"type": "grid", "values": [2.0]}}
        with pytest.raises(InvalidInput, match="is in project 'other', not 'lab'"):
            await sweeps.create(ANN, SweepCreate(project="lab", job=elsewhere.id, space=space, objective="score"))
        with pytest.raises(NotFound):  # bob is not in "other": the job does not exist for him
            await sweeps.create(BOB, SweepCreate(project="lab", job=elsewhere.id, space=space, objective="score"))
        assert (await sweeps.list(ANN, "lab")).total == 0
    finally:
        platform.catalog.dispose()
