"""Operation x caller: who may do what, for every row of the operation table, over HTTP.

One seeded server answers a read for every caller, and a write for the callers it refuses; each caller a write
allows gets a server of its own (``caller_groups``).

The cases are the rows themselves (``aitip.operations.table.operations()``); what each caller should get
comes from the permission table (the row's action: its scope and least role) and the few rules below that
a role alone does not say. CASES adds only what a row cannot: concrete path values, a valid body or query,
and the state the call needs. A row without a case, or a case for no row, fails
``test_every_operation_has_a_case``: a new operation cannot arrive without its place in the matrix.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from aitip.identity.permissions import PERMISSIONS, PermissionScope
from aitip.identity.roles import Role
from aitip.jobs.tables import JobRecord
from aitip.projects.tables import ProjectRecord
from aitip.operations.table import Operation, by_name, operations
from tests.server.conftest import TOKENS
from tests.support.notebooks import TRIVIAL
from tests.support.operation_calls import build_tracking_runs, fetch, query_pairs, row_path

ROLE_HOLDERS = {"viewer": "bob", "developer": "carol", "maintainer": "dave", "admin": "ann"}
CALLERS = ["anonymous", "outsider", "viewer", "developer", "maintainer", "admin", "hub-admin"]
CALLER_USERS: dict[str, str | None] = {**ROLE_HOLDERS, "outsider": "erin", "hub-admin": "root", "anonymous": None}

# Rules a least role does not say, by action.
# The seeded annotation task assigns its items to every project member; a hub admin outside the project
# may label in principle but has nothing assigned.
ASSIGNEE_RULE = {"annotation.label"}
# Job 1 and sweep 1 belong to the developer: cancel and retry are for their owner or a maintainer and above.
OWNER_RULE = {"job.cancel", "job.retry", "sweep.cancel"}
# Only a job's own credential records its reads and stores its tracking (tests/server/test_job_credentials.py):
# no person may.
JOB_ONLY_RULE = {"job.record_input", "job.track"}
# The tracking gateway names no project in its path: it serves a job's credential alone, and refuses anyone
# else (tests/isolation/test_tracking_gateway.py drives it with a real job's kernel).
JOB_CREDENTIAL_ONLY = {"tracking.gateway"}
# Release 1 is the developer's request: nobody decides on their own (the seeded policy lets developers approve).
REQUESTER_RULE = {"release.approve"}
# Any signed-in user may ask for lineage, but a node outside the caller's projects does not exist for them.
MEMBERS_SEE_RULE = {"lineage.read"}

# The values of the path parameters, unless a case says otherwise: what seed() and the seeders make.
PATH_VALUES: dict[str, Any] = {"project": "alpha", "kind": "users", "member": "erin-ro", "job": 1, "sweep": 1,
                               "dataset": "base", "version": 1, "task": 1, "item": 1, "subscription": 1,
                               "endpoint": "clf", "model_version": 1, "release": 1, "rollout": 1,
                               "device": 1, "device_rollout": 1}
SWEEP = {"project": "alpha", "notebook": TRIVIAL, "strategy": "grid", "objective": "y",
         "space": {"x": {"type": "grid", "values": [1, 2]}}}


@dataclass(frozen=True)
class Case:
    """What calling one row takes beyond the row: path values (over PATH_VALUES; ``{name}`` in a query value
    is filled from them), a body or query a caller allowed to may send, the seeders it needs on top of seed(),
    and the status when allowed (None: the row's own)."""

    path: dict[str, Any] = field(default_factory=dict)
    body: Any = None
    query: dict[str, Any] | None = None
    raw: bytes | None = None  # a streamed upload's bytes
    needs: tuple[str, ...] = ()
    allowed: int | None = None


DATA = ("data",)
CASES: dict[str, Case] = {
    "platform.health": Case(),
    "platform.me": Case(),
    "platform.openapi": Case(),
    "projects.list": Case(query={"limit": 10}),
    "projects.create": Case(body={"name": "mine"}),
    "projects.get": Case(),
    "projects.update": Case(body={"description": "new"}),
    "projects.archive": Case(),
    "projects.unarchive": Case(needs=("archived",)),
    "members.list": Case(),
    "members.add": Case(body={"user": "frank", "role": "viewer"}),
    "members.update": Case(body={"role": "developer"}),
    "members.remove": Case(),
    "jobs.list": Case(query={"limit": 10}),
    "notebooks.list": Case(),
    "jobs.submit": Case(body={"project": "alpha", "notebook": TRIVIAL, "resources": {"cpus": 1, "gpus": 0},
                              "inputs": [{"dataset": "base", "version": 1}],
                              "callback": {"url": "https://8.8.8.8/hook"}}, needs=DATA),
    "jobs.get": Case(),
    "jobs.cancel": Case(),
    "jobs.retry": Case(),
    "jobs.rerun": Case(body={"parameters": {"x": 2}, "inputs": [{"dataset": "base", "version": 1}],
                             "priority": 60, "tags": {"why": "again"}}, needs=DATA),
    "jobs.events": Case(query={"after": 0}),
    "jobs.notebook": Case(needs=("executed",)),
    "jobs.record_input": Case(body={"dataset": "base", "version": 1}, needs=DATA),
    "jobs.track": Case(),
    "sweeps.list": Case(query={"project": "alpha"}),
    "sweeps.create": Case(body=SWEEP),
    "sweeps.get": Case(),
    "sweeps.cancel": Case(),
    "experiments.list": Case(query={"include_deleted": False}),
    "runs.list": Case(query={"max_results": 10}),
    "runs.compare": Case(query={"run": ["{run}", "{other_run}"]}, needs=("runs",)),
    "runs.get": Case(needs=("runs",)),
    "runs.metric_history": Case(query={"key": "y"}, needs=("runs",)),
    "models.list": Case(),
    "models.set_alias": Case(path={"model": "digits-clf", "alias": "staging"}, body={"version": 1}, needs=("model",)),
    "models.delete_alias": Case(path={"model": "digits-clf", "alias": "champion"}, needs=("model",)),
    "evaluations.list": Case(query={"model": "digits-clf", "limit": 10}),
    "evaluations.create": Case(body={"model": "digits-clf", "version": 1, "dataset": "base", "label_column": "b"},
                               needs=(*DATA, "model")),
    "evaluations.get": Case(needs=("evaluation",)),
    "evaluations.report": Case(query={"format": "html", "lang": "en"}, needs=("evaluation",)),
    "evaluation_policies.list": Case(),
    "evaluation_policies.get": Case(path={"model": "digits-clf"}, needs=("evaluation",)),
    "evaluation_policies.set": Case(path={"model": "digits-clf"}, body={"dataset": "base", "label_column": "b"},
                                    needs=DATA),
    "evaluation_policies.delete": Case(path={"model": "digits-clf"}, needs=("evaluation",)),
    "simulation_templates.list": Case(),
    "simulation_templates.get": Case(path={"template": "custom"}, query={"version": 1}),
    "simulation_templates.save": Case(path={"template": "sensors"},
                                      body={"document": {"extends": "custom", "input": {"label_column": "b"}}}),
    "simulations.list": Case(query={"model": "digits-clf", "template": "custom", "limit": 10}),
    "simulations.create": Case(body={"template": "columns_b", "model": "digits-clf", "version": 1,
                                     "dataset": "base"}, needs=("model", "simulation")),
    "simulations.get": Case(needs=("simulation",)),
    "simulations.compare": Case(query={"other": 1}, needs=("simulation",)),
    "simulations.report": Case(query={"format": "html", "lang": "en"}, needs=("simulation",)),
    "simulation_policies.list": Case(),
    "simulation_policies.get": Case(path={"model": "digits-clf"}, needs=("simulation",)),
    "simulation_policies.set": Case(path={"model": "digits-clf"}, body={"template": "columns_b", "dataset": "base"},
                                    needs=("simulation",)),
    "simulation_policies.delete": Case(path={"model": "digits-clf"}, needs=("simulation",)),
    "endpoints.list": Case(needs=("endpoint",)),
    "endpoints.get": Case(needs=("endpoint",)),
    "endpoints.deploy": Case(body={"name": "fresh", "model": "digits-clf", "version": 1, "mode": "kubernetes"},
                             needs=("model",)),
    "endpoints.add_version": Case(body={"version": 2, "weight": 20}, needs=("endpoint",)),
    "endpoints.traffic": Case(body={"weights": {"1": 80, "2": 20}}, needs=("endpoint", "canary")),
    "endpoints.remove_version": Case(path={"model_version": 2}, needs=("endpoint", "canary")),
    "endpoints.scale": Case(body={"replicas_min": 1, "replicas_max": 3, "target_concurrency": 2}, needs=("endpoint",)),
    "endpoints.delete": Case(needs=("endpoint",)),
    "endpoints.metrics": Case(query={"minutes": 30}, needs=("endpoint",)),
    "endpoints.samples": Case(query={"limit": 10}, needs=("endpoint",)),
    "endpoints.manifests": Case(query={"namespace": "serving"}, needs=("endpoint",)),
    "endpoints.prometheus": Case(needs=("endpoint",)),
    "endpoint_keys.list": Case(needs=("endpoint",)),
    "endpoint_keys.create": Case(body={"name": "ci"}, needs=("endpoint",)),
    "endpoint_keys.revoke": Case(path={"key": 1}, needs=("endpoint", "key")),
    # No aitip-triton kernel here: an allowed caller gets past the checks of who may to the 409 saying so.
    "endpoints.optimize": Case(body={"model": "digits-clf", "version": 1, "device": "cpu"}, needs=("model",),
                               allowed=409),
    "endpoints.optimizations": Case(query={"model": "digits-clf"}, needs=("optimization",)),
    "endpoints.optimization": Case(needs=("optimization",)),
    "endpoints.package": Case(needs=("optimization",)),
    "release_policy.get": Case(),
    "release_policy.set": Case(body={"evaluation": True, "simulations": ["custom"],
                                     "approvals": [{"role": "maintainer", "count": 2}], "ordered": True}),
    "releases.list": Case(query={"limit": 10, "state": "requested"}, needs=("release",)),
    "releases.get": Case(needs=("release",)),
    "releases.request": Case(body={"kind": "configuration", "name": "limits", "version": "1.0.0",
                                   "configuration": {"max_batch": 64}}),
    "releases.decide": Case(body={"decision": "approve", "comment": "looks right"}, needs=("release",)),
    "releases.promote": Case(body={"environment": "test"}, needs=("release",)),
    "releases.verify": Case(needs=("release",)),
    "releases.signing_key": Case(),
    "rollouts.start": Case(body={"endpoint": "clf", "steps": [{"set_weight": 10}, {"pause": {}}, {"set_weight": 100}]},
                           needs=("model_release",)),
    "rollouts.list": Case(query={"state": "paused"}, needs=("rolled_out",)),
    "rollouts.get": Case(needs=("rolled_out",)),
    "rollouts.promote": Case(body={"full": False}, needs=("rolled_out",)),
    "rollouts.abort": Case(needs=("rolled_out",)),
    "rollouts.retry": Case(needs=("rolled_out", "aborted")),
    "rollouts.rollback": Case(needs=("rolled_out",)),
    "devices.register": Case(body={"name": "new-board", "hardware": "board-x1", "group": "early", "tags": ["lab"]}),
    "devices.list": Case(query={"group": "canary", "limit": 10}, needs=("device",)),
    "devices.get": Case(needs=("device",)),
    "devices.delete": Case(needs=("device",)),
    "devices.fleet": Case(needs=("device",)),
    "device_rollouts.start": Case(body={"groups": [{"group": "canary", "success_threshold": 90}], "poll_seconds": 5},
                                  needs=("device", "firmware_release")),
    "device_rollouts.list": Case(needs=("device_rollout",)),
    "device_rollouts.get": Case(needs=("device_rollout",)),
    "device_rollouts.pause": Case(needs=("device_rollout",)),
    "device_rollouts.resume": Case(needs=("device_rollout", "paused_device_rollout")),
    "device_rollouts.stop": Case(body={"reason": "a bad batch"}, needs=("device_rollout",)),
    "datasets.list": Case(needs=DATA),
    "datasets.get": Case(needs=DATA),
    "datasets.update": Case(body={"description": "edited", "sensitive_columns": {"a": "hash"}}, needs=DATA),
    "datasets.versions": Case(needs=DATA),
    "datasets.register": Case(path={"dataset": "fresh"}, raw=b"a,b\n5,6\n", query={"filename": "fresh.csv"}),
    "registrations.create": Case(path={"dataset": "fresh"}, raw=b"a,b\n5,6\n", query={"filename": "fresh.csv"}),
    "registrations.get": Case(needs=("registration",)),
    "registrations.list": Case(query={"state": "working", "limit": 10}, needs=("registration",)),
    "datasets.version": Case(needs=DATA),
    "datasets.preview": Case(query={"limit": 5}, needs=DATA),
    "datasets.download": Case(needs=DATA),
    "datasets.thumbnails": Case(path={"dataset": "pets"}, query={"per_class": 2, "size": 64}, needs=("images",)),
    "datasets.restore": Case(body={"message": "back to 1"}, needs=DATA),
    "datasets.diff": Case(query={"from": 1, "to": 2}, needs=DATA),
    "lineage.get": Case(query={"node": "dataset:alpha/base@1"}, needs=DATA),
    "annotations.list": Case(needs=DATA),
    "annotations.create": Case(body={"name": "more", "dataset": "base", "labels": ["a", "b"], "annotators": ["bob"]},
                               needs=DATA),
    "annotations.get": Case(needs=DATA),
    "annotations.queue": Case(query={"all": True}, needs=DATA),
    "annotations.label": Case(body={"label": "a"}, needs=DATA),
    "annotations.review": Case(body={"decision": "accepted"}, needs=(*DATA, "labelled")),
    "annotations.export": Case(body={"dataset": "base-labels"}, needs=(*DATA, "reviewed")),
    "resources.now": Case(),
    "resources.history": Case(query={"max_points": 10}),
    "resources.inventory": Case(),
    "resources.usage": Case(query={"by": "project"}),
    # A public address given as a literal: checked without DNS; nothing is sent until an event happens.
    "webhooks.list": Case(query={"include_inactive": True}),
    "webhooks.subscribe": Case(body={"url": "https://8.8.8.8/hook", "events": ["job.*"]}),
    "webhooks.unsubscribe": Case(needs=("webhook",)),
    "webhooks.ping": Case(needs=("webhook",)),
    "webhooks.deliveries": Case(query={"limit": 10}),
}

# Routes outside the operation table that act in a project: (action, method, path, status when allowed).
EXTRA_ROUTES: list[tuple[str, str, str, int]] = [
    ("tracking.gateway", "GET", "tracking/api/2.0/mlflow/experiments/get?experiment_id=1", 200),
]


# Project actions of routes outside the API whose callers are tested where their state is real.
COVERED_ELSEWHERE = {
    "serving.invoke": "tests/serving/test_endpoints_api.py: an endpoint's route called by a viewer (200), an "
                      "outsider (404) and with a wrong API key (403), on a deployed version",
    "serving.label": "tests/serving/test_endpoints_api.py: an endpoint's feedback refused to a viewer (403), taken "
                     "from a developer (200), an outsider told nothing (404)",
}


# ----- seeding -----

async def seed_data(api: Any) -> None:
    for content in (b"a,b\n1,2\n", b"a,b\n1,2\n3,4\n"):
        status, version = await api("POST", "projects/alpha/datasets/base/versions", user="ann", raw=content,
                                    params={"filename": "base.csv"})
        assert status == 201, version
    status, task = await api("POST", "projects/alpha/annotations", user="ann", body={
        "name": "seed", "dataset": "base", "labels": ["a", "b"], "annotators": sorted(ROLE_HOLDERS.values()),
        "overlap": len(ROLE_HOLDERS)})
    assert status == 201 and task["id"] == 1, task


async def seed(api: Any) -> Any:
    assert (await api("POST", "projects", user="ann", body={"name": "alpha"}))[0] == 201
    for role, user in ROLE_HOLDERS.items():
        if role != "admin":
            status, _ = await api("POST", "projects/alpha/members", user="ann", body={"user": user, "role": role})
            assert status == 201
    status, _ = await api("POST", "projects/alpha/members", user="ann", body={"user": "erin-ro", "role": "viewer"})
    assert status == 201
    status, job = await api("POST", "jobs", user=ROLE_HOLDERS["developer"], body={"project": "alpha",
                                                                                   "notebook": TRIVIAL})
    assert status == 201 and job["id"] == 1, job
    status, sweep = await api("POST", "sweeps", user=ROLE_HOLDERS["developer"], body=SWEEP)
    assert status == 201 and sweep["id"] == 1, sweep
    return api


@dataclass
class Seeding:
    """What a seeder may use, and the path values it adds."""

    api: Any
    jp_fetch: Any
    serverapp: Any
    tmp_path: Path
    runs: list[str]
    values: dict[str, Any] = field(default_factory=dict)


async def _labelled(seeding: Seeding) -> None:
    status, assignment = await seeding.api("POST", "projects/alpha/annotations/1/items/1/label", user="bob",
                                           body={"label": "a"})
    assert status == 200, assignment
    seeding.values["assignment"] = assignment["id"]


async def _reviewed(seeding: Seeding) -> None:
    await _labelled(seeding)
    status, review = await seeding.api(
        "POST", f"projects/alpha/annotations/1/assignments/{seeding.values['assignment']}/review", user="ann",
        body={"decision": "accepted"})
    assert status == 200, review


async def _images(seeding: Seeding) -> None:
    import io
    import zipfile

    from PIL import Image

    sink = io.BytesIO()
    with zipfile.ZipFile(sink, "w") as archive:
        for name in ("cat/1.png", "cat/2.png", "dog/1.png"):
            picture = io.BytesIO()
            Image.new("RGB", (40, 30), "orange").save(picture, format="PNG")
            archive.writestr(name, picture.getvalue())
    status, version = await seeding.api("POST", "projects/alpha/datasets/pets/versions", user="ann",
                                        raw=sink.getvalue(), params={"filename": "pets.zip"})
    assert status == 201, version


async def _archived(seeding: Seeding) -> None:
    assert (await seeding.api("POST", "projects/alpha/archive", user="ann"))[0] == 200


async def _webhook(seeding: Seeding) -> None:
    status, hook = await seeding.api("POST", "projects/alpha/webhooks", user="ann",
                                     body={"url": "https://8.8.8.8/hook"})
    assert status == 201 and hook["id"] == 1, hook


async def _executed(seeding: Seeding) -> None:
    """Job 1 as the worker leaves it when it has run: its executed notebook written, its row pointing at it."""
    output = seeding.tmp_path / "job-1-output.ipynb"
    output.write_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    with seeding.serverapp.web_app.settings["aitip"].catalog.session() as session:
        job = session.get(JobRecord, 1)
        job.state, job.output_path = "succeeded", str(output)


async def _model(seeding: Seeding) -> None:
    """Model digits-clf with version 1 from the project's first run, its alias champion on it and no staging
    (the MLflow store is the module's: every test finds them so again)."""
    from mlflow import MlflowClient

    uri = seeding.serverapp.web_app.settings["aitip"].experiments.tracking_uri
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    if not client.search_registered_models(filter_string="name = 'digits-clf'"):
        client.create_registered_model("digits-clf")
        client.create_model_version("digits-clf", f"runs:/{seeding.runs[0]}/model", run_id=seeding.runs[0])
    client.set_registered_model_alias("digits-clf", "champion", "1")
    if "staging" in client.get_registered_model("digits-clf").aliases:
        client.delete_registered_model_alias("digits-clf", "staging")


async def _registration(seeding: Seeding) -> None:
    status, handle = await seeding.api("POST", "projects/alpha/datasets/base/registrations", user="ann",
                                       raw=b"a,b\n7,8\n", params={"filename": "base.csv"})
    assert status == 202, handle
    seeding.values["registration"] = handle["id"]
    while handle["state"] == "working":  # its work in the background ends before the calls measure writes
        await asyncio.sleep(0.05)
        status, handle = await seeding.api("GET", f"projects/alpha/datasets/base/registrations/{handle['id']}",
                                           user="ann")
    assert handle["state"] == "registered", handle


async def _evaluation(seeding: Seeding) -> None:
    """Model digits-clf's evaluation policy, and evaluation 1 of its version 1 as one whose job ended leaves it:
    judged, with its HTML report stored."""
    from aitip.catalog.base import utcnow
    from aitip.evaluation.tables import EvaluationRecord

    await seed_data(seeding.api)
    status, policy = await seeding.api("PUT", "projects/alpha/evaluation-policies/digits-clf", user="ann",
                                       body={"dataset": "base", "label_column": "b", "automatic": False})
    assert status == 200, policy
    context = seeding.serverapp.web_app.settings["aitip"]
    report = context.evaluations.reports_dir / "1" / "report.en.html"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text("<html><body>evaluation 1</body></html>")
    with context.catalog.session() as session:
        project_id = session.scalar(select(ProjectRecord.id).where(ProjectRecord.name == "alpha"))
        session.add(EvaluationRecord(project_id=project_id, model="digits-clf", model_version=1, dataset="base",
                                     dataset_version=1, state="passed", metrics={"accuracy_score": 1.0},
                                     verdict={"passed": True, "reasons": []}, report_path=str(report.parent),
                                     created_by="carol", finished_at=utcnow()))
    seeding.values["evaluation"] = 1


async def _simulation(seeding: Seeding) -> None:
    """The project's template columns_b (the custom one, reading column b), model digits-clf's simulation policy,
    and simulation 1 of its version 1 as one whose job ended leaves it: judged, with its HTML report stored."""
    from aitip.catalog.base import utcnow
    from aitip.simulation.tables import SimulationRecord

    await seed_data(seeding.api)
    status, template = await seeding.api("PUT", "projects/alpha/simulation-templates/columns_b", user="ann",
                                         body={"document": {"extends": "custom", "input": {"label_column": "b"}}})
    assert status == 200, template
    status, policy = await seeding.api("PUT", "projects/alpha/simulation-policies/digits-clf", user="ann",
                                       body={"template": "columns_b", "dataset": "base", "automatic": False})
    assert status == 200, policy
    context = seeding.serverapp.web_app.settings["aitip"]
    report = context.simulations.reports_dir / "1" / "report.en.html"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text("<html><body>simulation 1</body></html>")
    result = {"kind": "custom", "metric": "accuracy", "rows": 2, "clean": 1.0, "conditions": [
        {"condition": "feature_dropout", "parameter": "share", "value": 0.1, "metric": 0.5}]}
    with context.catalog.session() as session:
        project_id = session.scalar(select(ProjectRecord.id).where(ProjectRecord.name == "alpha"))
        session.add(SimulationRecord(project_id=project_id, template_name="columns_b", template_version=1,
                                     template_source="project", template=template["template"], kind="custom",
                                     model="digits-clf", model_version=1, dataset="base", dataset_version=1,
                                     state="passed", result=result, verdict={"passed": True, "checks": [],
                                                                             "regressions": [], "reasons": []},
                                     report_path=str(report.parent), created_by="carol", finished_at=utcnow()))
    seeding.values["simulation"] = 1


async def _endpoint(seeding: Seeding) -> None:
    """Endpoint clf of model digits-clf version 1, in Kubernetes mode (rendered, nothing runs: the matrix is about
    who may, tests/serving runs the real thing); version 2 registered for a canary."""
    from mlflow import MlflowClient

    await _model(seeding)
    uri = seeding.serverapp.web_app.settings["aitip"].experiments.tracking_uri
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    if len(client.search_model_versions("name = 'digits-clf'")) < 2:
        client.create_model_version("digits-clf", f"runs:/{seeding.runs[1]}/model", run_id=seeding.runs[1])
    status, endpoint = await seeding.api("POST", "projects/alpha/endpoints", user="ann", body={
        "name": "clf", "model": "digits-clf", "version": 1, "mode": "kubernetes"})
    assert status == 201, endpoint


async def _canary(seeding: Seeding) -> None:
    status, endpoint = await seeding.api("POST", "projects/alpha/endpoints/clf/versions", user="ann",
                                         body={"version": 2, "weight": 0})
    assert status == 200, endpoint


async def _key(seeding: Seeding) -> None:
    status, key = await seeding.api("POST", "projects/alpha/endpoints/clf/keys", user="ann", body={"name": "seed"})
    assert status == 201, key
    seeding.values["key"] = key["id"]


async def _optimization(seeding: Seeding) -> None:
    """Optimization 2: the developer's Triton packaging of digits-clf version 1 as its job leaves it when it ended
    (the summary in its executed notebook, the package in its working directory)."""
    import json

    from aitip.serving.optimizations import NOTEBOOK_NAME, SUMMARY_MIME

    status, job = await seeding.api("POST", "jobs", user=ROLE_HOLDERS["developer"], body={
        "project": "alpha", "notebook": TRIVIAL, "notebook_name": NOTEBOOK_NAME,
        "tags": {"optimized_model": "digits-clf/1", "optimize_device": "cpu", "optimize_formats": "onnx",
                 "optimize_batch_sizes": "1,8", "optimize_triton_name": "digits-clf"}})
    assert status == 201 and job["id"] == 2, job
    summary = {"schema": 1, "navigator_version": "0.14.0", "model_name": "digits-clf", "flavor": "sklearn",
               "target_device": "cpu", "batch_sizes": [1, 8], "models": {"onnx": {
                   "format": "onnx", "status": "OK", "conversion": {}, "runners": {}}},
               "best": None, "package": "model.nav", "repository": None}
    output = seeding.tmp_path / "job-2-output.ipynb"
    output.write_text(json.dumps({"cells": [{"cell_type": "code", "source": "", "metadata": {},
                                             "execution_count": 1, "outputs": [{
                                                 "output_type": "display_data", "metadata": {},
                                                 "data": {SUMMARY_MIME: summary, "text/plain": "summary"}}]}],
                                  "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    package = Path(os.environ["AITIP_HOME"]) / "job-workspaces" / "2.1" / "work" / "triton"
    package.mkdir(parents=True)
    (package / "model.nav").write_bytes(b"navigator package")
    with seeding.serverapp.web_app.settings["aitip"].catalog.session() as session:
        record = session.get(JobRecord, 2)
        record.state, record.output_path, record.attempt = "succeeded", str(output), 1
    seeding.values["optimization"] = 2


async def _release_policy(seeding: Seeding) -> None:
    status, policy = await seeding.api("PUT", "projects/alpha/release-policy", user="ann",
                                       body={"approvals": [{"role": "developer", "count": 1}]})
    assert status == 200, policy


async def _release(seeding: Seeding) -> None:
    """Release 1: a configuration the developer requested, under a policy whose one stage a developer may fill."""
    await _release_policy(seeding)
    status, release = await seeding.api("POST", "projects/alpha/releases", user="carol", body={
        "kind": "configuration", "name": "settings", "version": "1.0.0", "configuration": {"threshold": 0.5}})
    assert status == 201 and release["id"] == 1, release


async def _model_release(seeding: Seeding) -> None:
    """Release 1: digits-clf version 2, approved, with the passed evaluation of it that a job would leave (the
    evidence its policy asks for); endpoint clf serving version 1 in Kubernetes mode."""
    from aitip.catalog.base import utcnow
    from aitip.evaluation.tables import EvaluationRecord

    await seed_data(seeding.api)
    await _endpoint(seeding)
    context = seeding.serverapp.web_app.settings["aitip"]
    with context.catalog.session() as session:
        project_id = session.scalar(select(ProjectRecord.id).where(ProjectRecord.name == "alpha"))
        session.add(EvaluationRecord(project_id=project_id, model="digits-clf", model_version=2, dataset="base",
                                     dataset_version=1, state="passed", metrics={"accuracy_score": 1.0},
                                     verdict={"passed": True, "reasons": []}, created_by="carol",
                                     finished_at=utcnow()))
    status, release = await seeding.api("POST", "projects/alpha/releases", user="carol", body={
        "kind": "model", "name": "clf", "version": "1.0.0", "model": "digits-clf", "model_version": 2,
        "dataset": "base"})
    assert status == 201 and release["id"] == 1, release
    status, approved = await seeding.api("POST", "projects/alpha/releases/1/decisions", user="dave",
                                         body={"decision": "approve"})
    assert status == 200 and approved["state"] == "approved", approved


async def _rolled_out(seeding: Seeding) -> None:
    """Rollout 1 of release 1 onto clf: version 2 at 10 %, paused until promoted."""
    await _model_release(seeding)
    status, rollout = await seeding.api("POST", "projects/alpha/releases/1/rollouts", user="ann", body={
        "endpoint": "clf", "steps": [{"set_weight": 10}, {"pause": {}}, {"set_weight": 100}]})
    assert status == 201 and rollout["id"] == 1 and rollout["state"] == "paused", rollout


async def _aborted(seeding: Seeding) -> None:
    status, rollout = await seeding.api("POST", "projects/alpha/rollouts/1/abort", user="ann")
    assert status == 200 and rollout["state"] == "degraded", rollout


async def _runs(seeding: Seeding) -> None:
    seeding.values["run"], seeding.values["other_run"] = seeding.runs


async def _device(seeding: Seeding) -> None:
    """Device 1: a board of group canary."""
    status, device = await seeding.api("POST", "projects/alpha/devices", user="ann", body={
        "name": "seed-board", "hardware": "board-x1", "group": "canary"})
    assert status == 201 and device["device"]["id"] == 1, device


async def _firmware_release(seeding: Seeding) -> None:
    """Release 1: firmware for board-x1, requested by the developer and approved by the maintainer."""
    import base64

    await _release_policy(seeding)
    status, release = await seeding.api("POST", "projects/alpha/releases", user="carol", body={
        "kind": "firmware", "name": "board-fw", "version": "1.0.0", "hardware": "board-x1",
        "firmware_base64": base64.b64encode(b"firmware image").decode()})
    assert status == 201 and release["id"] == 1, release
    status, decided = await seeding.api("POST", "projects/alpha/releases/1/decisions", user="dave",
                                        body={"decision": "approve"})
    assert status == 200 and decided["state"] == "approved", decided


async def _device_rollout(seeding: Seeding) -> None:
    """Device rollout 1: release 1 sent to group canary (device 1), waiting for it."""
    await _device(seeding)
    await _firmware_release(seeding)
    status, rollout = await seeding.api("POST", "projects/alpha/releases/1/device-rollouts", user="ann",
                                        body={"groups": [{"group": "canary"}]})
    assert status == 201 and rollout["id"] == 1, rollout


async def _paused_device_rollout(seeding: Seeding) -> None:
    status, rollout = await seeding.api("POST", "projects/alpha/device-rollouts/1/pause", user="ann")
    assert status == 200 and rollout["state"] == "paused", rollout


SEEDERS: dict[str, Callable[[Seeding], Awaitable[None]]] = {
    "data": lambda seeding: seed_data(seeding.api), "labelled": _labelled, "reviewed": _reviewed, "images": _images,
    "archived": _archived, "webhook": _webhook, "executed": _executed, "runs": _runs,
    "registration": _registration, "model": _model, "evaluation": _evaluation, "simulation": _simulation,
    "endpoint": _endpoint, "canary": _canary, "key": _key, "release": _release, "model_release": _model_release,
    "rolled_out": _rolled_out, "aborted": _aborted, "device": _device, "firmware_release": _firmware_release,
    "device_rollout": _device_rollout, "paused_device_rollout": _paused_device_rollout,
    "optimization": _optimization,
}


# ----- an MLflow store with two runs in project alpha -----

@pytest.fixture(scope="module")
def tracking_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[str]]:
    return build_tracking_runs(tmp_path_factory.mktemp("mlflow-matrix"))


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any], tracking_runs: tuple[str, list[str]]) -> dict[str, Any]:
    jp_server_config["AitipExtension"]["mlflow_tracking_uri"] = tracking_runs[0]
    return jp_server_config


# ----- what each caller gets -----

def expected(action: str, caller: str, allowed: int) -> int:
    """The status ``caller`` gets for an operation needing ``action``, from the permission table: a project
    hides itself from non-members (404), refuses members below the least role (403); a hub admin acts as a
    project admin; no sign-in is 403 unless the action is public."""
    rule = PERMISSIONS[action]
    if caller == "anonymous":
        return allowed if rule.scope is PermissionScope.public else 403
    if rule.scope is not PermissionScope.project:
        return 404 if action in MEMBERS_SEE_RULE and caller == "outsider" else allowed
    assert rule.min_role is not None
    if action in JOB_CREDENTIAL_ONLY:
        return 403
    if caller == "outsider":
        return 404
    if action in JOB_ONLY_RULE:
        return 403
    role = Role.admin if caller == "hub-admin" else Role(caller)
    if action in OWNER_RULE and role is Role.developer:
        return allowed  # the developer owns job 1 and sweep 1
    if action in REQUESTER_RULE and role is Role.developer:
        return 403
    if action in ASSIGNEE_RULE and caller == "hub-admin":
        return 404
    return allowed if role.at_least(rule.min_role) else 403


async def call_row(row: Operation, case: Case, seeding: Seeding, user: str | None) -> tuple[int, Any]:
    """The row called as ``user`` with the case's path values, body (or upload) and query."""
    values = {**PATH_VALUES, **seeding.values, **case.path}
    query = {name: [item.format(**values) if isinstance(item, str) else item for item in value]
             if isinstance(value, list) else value.format(**values) if isinstance(value, str) else value
             for name, value in (case.query or {}).items()}
    content_type = "application/octet-stream" if case.raw is not None else "application/json"
    return await fetch(seeding.jp_fetch, row.method, row_path(row, values), token=TOKENS[user] if user else None,
                       body=case.body, raw=case.raw, params=query_pairs(query), content_type=content_type)


async def seeded(api: Any, jp_fetch: Any, jp_serverapp: Any, tmp_path: Path, runs: list[str], case: Case) -> Seeding:
    seeding = Seeding(await seed(api), jp_fetch, jp_serverapp, tmp_path, runs)
    for need in case.needs:
        await SEEDERS[need](seeding)
    return seeding


def caller_groups() -> list[tuple[str, tuple[str, ...]]]:
    """The callers one seeded server may answer in turn, by operation: every caller of a read; of a write, those
    it refuses together (the check of who may comes before any write), and each it allows alone, on
    state no other caller has changed."""
    groups: list[tuple[str, tuple[str, ...]]] = []
    for row in operations():
        if row.method == "GET":
            groups.append((row.name, tuple(CALLERS)))
            continue
        allowed = CASES[row.name].allowed or row.status
        refused = tuple(caller for caller in CALLERS if expected(row.action, caller, allowed) != allowed)
        if refused:
            groups.append((row.name, refused))
        groups += [(row.name, (caller,)) for caller in CALLERS if caller not in refused]
    return groups


GROUPS = caller_groups()


@pytest.mark.parametrize(("name", "callers"), GROUPS, ids=[f"{name}-{'+'.join(callers)}" for name, callers in GROUPS])
async def test_operation_by_caller(api, jp_fetch, jp_serverapp, tmp_path, tracking_runs, name: str,
                                   callers: tuple[str, ...]) -> None:
    """Each operation, called by each kind of caller, answers what the permission table says."""
    row, case = by_name()[name], CASES[name]
    seeding = await seeded(api, jp_fetch, jp_serverapp, tmp_path, tracking_runs[1], case)
    allowed = case.allowed or row.status
    answers = {caller: await call_row(row, case, seeding, CALLER_USERS[caller]) for caller in callers}
    refusal_codes = {403: "forbidden", 404: "not_found"}
    wrong = {caller: (status, answer) for caller, (status, answer) in answers.items()
             if status != expected(row.action, caller, allowed)
             or status in refusal_codes and answer["error"]["code"] != refusal_codes[status]}
    assert wrong == {}, {caller: (f"expected {expected(row.action, caller, allowed)}", *answer)
                         for caller, answer in wrong.items()}


def test_the_groups_hold_every_caller_of_every_operation_once() -> None:
    """Grouping callers onto one server must not drop a cell of the matrix."""
    cells = sorted((name, caller) for name, callers in GROUPS for caller in callers)
    assert cells == sorted((row.name, caller) for row in operations() for caller in CALLERS)


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize(("action", "method", "path", "allowed"), EXTRA_ROUTES, ids=[r[2] for r in EXTRA_ROUTES])
async def test_routes_outside_the_table_by_caller(api, caller: str, action: str, method: str, path: str,
                                                  allowed: int) -> None:
    """A project route the operation table does not declare (the tracking gateway) is held to the same rules."""
    await seed(api)
    path, _, query = path.partition("?")
    params = dict(pair.split("=", 1) for pair in query.split("&")) if query else None
    status, response = await api(method, path, user=CALLER_USERS[caller], params=params)
    assert status == expected(action, caller, allowed), response


def test_every_operation_has_a_case() -> None:
    """A row without a case would be missing from the matrix; a case without a row is one left behind."""
    names = [row.name for row in operations()]
    assert sorted(set(names) - set(CASES)) == [], "add these operations to CASES"
    assert sorted(set(CASES) - set(names)) == [], "these CASES name no operation"
    for name, case in CASES.items():
        row = by_name()[name]
        assert set(case.needs) <= set(SEEDERS), name
        assert (case.body is not None) == (row.body is not None), f"{name}: a body exactly where the row takes one"
        assert set(case.path) <= set(row.parameters), f"{name}: path values for parameters it does not have"


def test_the_matrix_covers_every_project_action() -> None:
    """Every project action is reached by some operation of the matrix or an extra route."""
    project_actions = {action for action, rule in PERMISSIONS.items() if rule.scope is PermissionScope.project}
    covered = {row.action for row in operations()} | {route[0] for route in EXTRA_ROUTES} | set(COVERED_ELSEWHERE)
    assert project_actions - covered == set()


def test_the_special_rules_name_declared_actions() -> None:
    """A rule for an action that no longer exists would silently stop applying."""
    for rule in (ASSIGNEE_RULE, OWNER_RULE, JOB_ONLY_RULE, JOB_CREDENTIAL_ONLY, MEMBERS_SEE_RULE, REQUESTER_RULE):
        assert rule <= set(PERMISSIONS)


async def test_a_developer_cannot_cancel_someone_elses_job(api) -> None:
    seeded_api = await seed(api)
    status, _ = await seeded_api("POST", "projects/alpha/members", user="ann",
                                 body={"user": "frank", "role": "developer"})
    assert status == 201
    status, body = await seeded_api("POST", "jobs/1/cancel", user="frank")
    assert status == 403 and "owner" in body["error"]["message"]
