"""The notebooks the platform ships, run by name (``shipped``) instead of sent: what ``notebooks.list`` says of
each, a job that runs one with its parameters checked against the shipped parameters cell, and a sweep that
searches one to the end through MLflow."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from aitip.errors import InvalidInput
from aitip.experiments.job_tracker import MlflowTracker
from aitip.jobs import library
from aitip.jobs.models import JobListQuery, JobSubmit, SweepCreate
from aitip.jobs.notebook_store import canonical_bytes
from aitip.jobs.sweeps import SweepController, SweepService
from aitip.shipped_notebooks import shipped_notebooks
from tests.jobs.conftest import ANN, BOB, make_platform

@pytest.mark.asyncio
async def test_the_list_says_what_each_shipped_notebook_is_and_takes(tmp_path: Path) -> None:
    platform = await make_platform(tmp_path)
    try:
        listed = {notebook.name: notebook for notebook in await platform.jobs.shipped_notebooks(BOB)}
    finally:
        platform.catalog.dispose()
    on_disk = {f"{folder}/{path.stem}" for folder in ("train", "test")
               for path in shipped_notebooks(folder).glob("*.ipynb")}
    assert set(listed) == on_disk and {"train/digits_sklearn", "test/model_contract"} <= on_disk
    assert not any(name.startswith(("evaluate/", "simulate/", "serve/")) for name in listed)  # the services' own
    training = listed["train/digits_sklearn"]
    assert (training.title, training.file_name, training.kernel) == (
        "Digits classifier (scikit-learn)", "digits_sklearn.ipynb", "aitip-python")
    assert training.summary.startswith("Trains a small multi-layer perceptron")
    parameters = {parameter.name: parameter for parameter in training.parameters}
    assert (parameters["epochs"].default, parameters["epochs"].type, parameters["epochs"].help) == (
        10, "int", "passes over the training set")
    assert (parameters["model_name"].default, parameters["model_name"].type) == ("digits-mlp", "str")


@pytest.mark.asyncio
async def test_a_job_runs_a_shipped_notebook_by_name_and_checks_its_parameters(tmp_path: Path) -> None:
    """No worker runs: what is recorded at submission is what is checked."""
    platform = await make_platform(tmp_path)
    try:
        job = await platform.jobs.submit(BOB, JobSubmit(project="lab", shipped="train/digits_sklearn",
                                                        parameters={"epochs": 2, "model_name": ""}))
        shipped = (shipped_notebooks("train") / "digits_sklearn.ipynb").read_text(encoding="utf-8")
        assert job.notebook_sha256 == hashlib.sha256(canonical_bytes(json.loads(shipped))).hexdigest()
        assert (job.notebook_name, job.kernel, job.parameters) == (
            "digits_sklearn.ipynb", "aitip-python", {"epochs": 2, "model_name": ""})
        named = await platform.jobs.submit(BOB, JobSubmit(project="lab", shipped="test/model_contract",
                                                          notebook_name="contract-v2.ipynb"))
        assert named.notebook_name == "contract-v2.ipynb"
        for parameters, code in (({"epoch": 2}, "undeclared_parameter"), ({"epochs": "two"}, "parameter_type")):
            with pytest.raises(InvalidInput) as refused:
                await platform.jobs.submit(BOB, JobSubmit(project="lab", shipped="train/digits_sklearn",
                                                          parameters=parameters))
            assert refused.value.code == code
        assert (await platform.jobs.list(BOB, JobListQuery())).total == 2
    finally:
        platform.catalog.dispose()


def test_a_shipped_name_is_one_the_library_has() -> None:
    for name in ("train/no_such_notebook", "evaluate/classification", "simulate/custom", "../../etc/passwd",
                 "train/digits_sklearn.ipynb"):
        with pytest.raises(ValidationError, match=rf"no shipped notebook is named '{re.escape(name)}'; there are: "
                                                  r"train/digits_images, train/digits_sklearn, .*test/model_contract"):
            JobSubmit(project="lab", shipped=name)
    with pytest.raises(ValidationError, match="string_too_long"):  # not echoed back whole
        JobSubmit(project="lab", shipped="train/" + "x" * 200)
    first = JobSubmit(project="lab", shipped="train/digits_sklearn")
    first.notebook["cells"].clear()  # a job's copy: the library's own stays whole
    assert library.document("train/digits_sklearn")["cells"]


@pytest.mark.asyncio
async def test_a_sweep_searches_a_shipped_training_notebook_to_the_end(tmp_path: Path) -> None:
    tracker = MlflowTracker(f"sqlite:///{tmp_path / 'mlflow.sqlite'}", tmp_path / "mlartifacts")
    platform = await make_platform(tmp_path, tracker=tracker)
    sweeps = SweepService(platform.catalog, platform.jobs)
    platform.worker.sweeps = SweepController(platform.catalog, platform.jobs, tracker)
    try:
        created = await sweeps.create(BOB, SweepCreate(
            project="lab", shipped="train/digits_sklearn", strategy="grid", objective="final_test_accuracy",
            space={"classifier": {"type": "grid", "values": ["logistic", "mlp"]}},
            parameters={"epochs": 2, "model_name": ""}))
        await platform.worker.start()
        deadline = time.monotonic() + 240
        while (sweep := await sweeps.get(ANN, created.id)).state == "running":
            assert time.monotonic() < deadline, sweep
            await asyncio.sleep(0.5)
        assert sweep.state == "succeeded", sweep.reason
        assert len(sweep.trial_jobs) == 2 and sweep.best_value is not None and sweep.best_value > 0.8, sweep
        for trial in sweep.trial_jobs:
            ran = await platform.jobs.get(BOB, trial.job_id)
            assert (ran.notebook_name, ran.state.value) == ("digits_sklearn.ipynb", "succeeded")
    finally:
        await platform.worker.stop()
        platform.catalog.dispose()
