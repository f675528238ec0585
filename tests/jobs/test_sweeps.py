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
from tests.jobs.conftest import ANN, make_platform
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
