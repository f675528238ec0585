"""Lineage across domains with the real engines: a dataset version declared as a job's input, the job's
MLflow run, and the model version the notebook registered — walked from either end, and hidden from
callers outside the project."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aitip.datasets.lineage import mlflow_registry_view
from aitip.datasets.models import LineageQuery
from aitip.datasets.registry import DataRegistry
from aitip.datasets.service import DatasetService
from aitip.errors import InvalidInput, NotFound
from aitip.identity.principal import Principal
from aitip.jobs.models import JobInput, JobListQuery, JobState, JobSubmit
from aitip.datasets.job_inputs import DatasetJobInputs
from aitip.experiments.job_tracker import MlflowTracker
from tests.jobs.conftest import ANN, make_platform

pytestmark = pytest.mark.asyncio
EXAMPLES = Path(__file__).resolve().parents[2] / "notebooks" / "train"


async def test_dataset_to_job_to_run_to_model_and_back(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.sqlite'}"
    tracker = MlflowTracker(uri, tmp_path / "mlartifacts")
    platform = await make_platform(tmp_path, tracker=tracker)
    datasets = DatasetService(platform.catalog, DataRegistry(tmp_path / "registry"), tmp_path / "staging",
                              models=mlflow_registry_view(uri))
    platform.jobs.inputs = platform.worker.inputs = DatasetJobInputs(datasets)  # as the datasets domain plugs in
    upload = datasets.start_upload("digits.csv")
    upload.write(b"pixel0,pixel1,label\n0,16,1\n3,2,0\n")
    upload.finish()
    version = await datasets.register(ANN, "lab", "digits", upload, message="bundled digits")

    notebook = json.loads((EXAMPLES / "digits_sklearn.ipynb").read_text())
    for missing in (JobInput(dataset="nope"), JobInput(dataset="digits", version=9)):
        with pytest.raises(InvalidInput, match="does not exist|has no version"):
            await platform.jobs.submit(ANN, JobSubmit(project="lab", notebook=notebook, inputs=[missing]))
    assert (await platform.jobs.list(ANN, JobListQuery())).total == 0  # nothing half-written
    await platform.worker.start()
    try:
        job = await platform.jobs.submit(ANN, JobSubmit(project="lab", notebook=notebook,
                                                        notebook_name="digits_sklearn.ipynb",
                                                        parameters={"epochs": 1, "model_name": "digits-lineage"},
                                                        inputs=[JobInput(dataset="digits", version=1)]))
        assert [(i.dataset, i.version, i.how) for i in job.inputs] == [("digits", 1, "declared")]
        done = await platform.wait(job.id, JobState.succeeded, JobState.failed, timeout=180)
        assert done.state is JobState.succeeded, (done.reason, done.failed_cell)
    finally:
        await platform.worker.stop()

    root = f"dataset:lab/digits@{version.version}"
    graph = await datasets.lineage(ANN, LineageQuery(node=root))
    edges = {(e.source, e.relation, e.target) for e in graph.edges}
    run, model = f"run:{done.mlflow_run_id}", "model:digits-lineage@1"
    assert edges == {(root, "read_by", f"job:{job.id}"), (f"job:{job.id}", "tracked_as", run),
                     (run, "registered_as", model)}
    upstream = await datasets.lineage(ANN, LineageQuery(node=model))
    assert {n.id for n in upstream.nodes} == {root, f"job:{job.id}", run, model}

    shallow = await datasets.lineage(ANN, LineageQuery(node=root, depth=1))
    assert {n.id for n in shallow.nodes} == {root, f"job:{job.id}"}
    with pytest.raises(NotFound):  # outsiders learn nothing, not even that the model exists
        await datasets.lineage(Principal("eve"), LineageQuery(node=model))
    with pytest.raises(InvalidInput):
        await datasets.lineage(ANN, LineageQuery(node="dataset:../../etc@1"))
    datasets.registry.close()
    platform.catalog.dispose()


async def test_a_job_opens_its_declared_input_by_version_masked_for_a_developer(tmp_path: Path) -> None:
    import nbformat

    from aitip.datasets.models import DatasetSettings
    from tests.jobs.conftest import BOB

    platform = await make_platform(tmp_path)
    datasets = DatasetService(platform.catalog, DataRegistry(tmp_path / "registry"), tmp_path / "staging")
    platform.jobs.inputs = platform.worker.inputs = DatasetJobInputs(datasets)
    for content in (b"id,email\n1,a@x.org\n", b"id,email\n1,a@x.org\n2,b@x.org\n"):
        upload = datasets.start_upload("users.csv")
        upload.write(content)
        upload.finish()
        await datasets.register(ANN, "lab", "users", upload, settings=DatasetSettings(sensitive_columns={"email": "redact"}))
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(
        "import aitip.datasets\ndf = aitip.datasets.to_pandas('users', 1)\n"
        "print('ROWS', len(df), 'EMAILS', sorted(df['email']))")]
    notebook.metadata["kernelspec"] = {"name": "aitip-python", "display_name": "AITIP", "language": "python"}
    await platform.worker.start()
    try:
        outputs = {}
        for who in (ANN, BOB):  # ann administers the project; bob is a developer
            job = await platform.jobs.submit(who, JobSubmit(project="lab", notebook=dict(notebook),
                                                            inputs=[JobInput(dataset="users", version=1)]))
            done = await platform.wait(job.id, JobState.succeeded, JobState.failed, timeout=120)
            assert done.state is JobState.succeeded, (done.reason, done.failed_cell)
            executed = json.loads(Path(await platform.jobs.output_notebook_path(who, job.id)).read_text())
            outputs[who.name] = "".join(executed["cells"][0]["outputs"][0]["text"])
    finally:
        await platform.worker.stop()
        datasets.registry.close()
        platform.catalog.dispose()
    assert outputs["ann"].strip() == "ROWS 1 EMAILS ['a@x.org']"
    assert outputs["bob"].strip() == "ROWS 1 EMAILS ['[redacted]']"
