"""Each job is an MLflow run: parameters, per-epoch metrics from plain mlflow calls in the notebook,
the executed notebook as ipynb and HTML, and the registered model that came from it."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow.artifacts
import pytest

from aitip.jobs.models import JobState, JobSubmit
from aitip.experiments.job_tracker import MlflowTracker
from tests.jobs.conftest import ANN, make_platform
from tests.support.requirements import skip_without

pytestmark = pytest.mark.asyncio
EXAMPLES = Path(__file__).resolve().parents[2] / "notebooks" / "train"


async def test_training_job_is_a_tracked_mlflow_run_with_a_registered_model(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.sqlite'}"
    tracker = MlflowTracker(uri, tmp_path / "mlartifacts")
    platform = await make_platform(tmp_path, tracker=tracker)
    await platform.worker.start()
    try:
        notebook = json.loads((EXAMPLES / "digits_sklearn.ipynb").read_text())
        job = await platform.jobs.submit(ANN, JobSubmit(project="lab", notebook=notebook,
                                                        notebook_name="digits_sklearn.ipynb",
                                                        parameters={"epochs": 3, "model_name": "digits-test"},
                                                        tags={"purpose": "test"}))
        done = await platform.wait(job.id, JobState.succeeded, JobState.failed, timeout=180)
        assert done.state is JobState.succeeded, (done.reason, done.failed_cell)
    finally:
        await platform.worker.stop()
        platform.catalog.dispose()

    client = tracker.client
    run = client.get_run(done.mlflow_run_id)
    assert run.info.experiment_id == done.mlflow_experiment_id
    assert client.get_experiment(run.info.experiment_id).name == "aitip/lab"
    assert run.info.status == "FINISHED"
    assert run.data.params["epochs"] == "3" and run.data.params["model_name"] == "digits-test"
    # Every parameter the notebook ran with, its defaults included; the run named after notebook and job.
    assert run.data.params["learning_rate"] == "0.01" and run.data.params["hidden"] == "64"
    assert run.data.tags["mlflow.runName"] == f"digits_sklearn · job {job.id}"
    assert run.data.tags["aitip.job_id"] == str(job.id) and run.data.tags["aitip.user"] == "ann"
    assert run.data.tags["aitip.notebook_sha256"] == job.notebook_sha256
    assert run.data.tags["aitip.tag.purpose"] == "test"
    history = client.get_metric_history(run.info.run_id, "test_accuracy")
    assert [m.step for m in history] == [1, 2, 3]
    assert run.data.metrics["final_test_accuracy"] > 0.8
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "notebook")}
    assert artifacts == {"notebook/output.ipynb", "notebook/output.html"}
    (version,) = client.search_model_versions("name='digits-test'")
    assert version.run_id == run.info.run_id
    # The notebook says what the model needs; MLflow's guess (a subprocess loading the model again) is skipped.
    model = client.get_logged_model(version.source.removeprefix("models:/"))
    requirements = Path(mlflow.artifacts.download_artifacts(f"{model.artifact_location}/requirements.txt",
                                                            dst_path=str(tmp_path / "got"))).read_text().split()
    assert [line.split("==")[0] for line in requirements] == ["mlflow", "scikit-learn", "skops"]


async def test_pytorch_training_job(tmp_path: Path) -> None:
    skip_without("torch", "the PyTorch example needs `pip install -e .[torch]` (torch==2.13.0)")
    uri = f"sqlite:///{tmp_path / 'mlflow.sqlite'}"
    tracker = MlflowTracker(uri, tmp_path / "mlartifacts")
    platform = await make_platform(tmp_path, tracker=tracker)
    await platform.worker.start()
    try:
        notebook = json.loads((EXAMPLES / "digits_torch.ipynb").read_text())
        job = await platform.jobs.submit(ANN, JobSubmit(project="lab", notebook=notebook,
                                                        parameters={"epochs": 4, "model_name": "digits-torch-test"}))
        done = await platform.wait(job.id, JobState.succeeded, JobState.failed, timeout=240)
        assert done.state is JobState.succeeded, (done.reason, done.failed_cell)
    finally:
        await platform.worker.stop()
        platform.catalog.dispose()
    history = tracker.client.get_metric_history(done.mlflow_run_id, "test_accuracy")
    assert [m.step for m in history] == [1, 2, 3, 4] and history[-1].value > 0.8
    (version,) = tracker.client.search_model_versions("name='digits-torch-test'")
    assert version.run_id == done.mlflow_run_id
