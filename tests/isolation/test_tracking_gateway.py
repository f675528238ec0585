"""A job kernel run as its owner reaches MLflow only through the platform: run writes through its spool,
everything else through the tracking gateway, and only within its project (a real platform server, real
kernels under the owners' accounts, MLflow's SQLite store)."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.support.notebooks import notebook
from tests.support.paths import open_to_all_accounts
from tests.support.workers import start_worker



@pytest.fixture(autouse=True)
def mlflow_globals_restored() -> Any:
    """The gateway (MLflow's server code) points this process's tracking and registry URIs at its store, as
    a platform process wants; the tests after this one get theirs back."""
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    saved = (tracking_utils._tracking_uri, registry_utils._registry_uri,
             {name: os.environ.get(name) for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")})
    yield
    tracking_utils._tracking_uri, registry_utils._registry_uri = saved[0], saved[1]
    for name, value in saved[2].items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any], isolated_home: Path,
                     monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.delenv("AITIP_SHARED_ACCOUNT")  # as root: kernels run as their owners' accounts
    open_to_all_accounts(isolated_home)
    jp_server_config["AitipExtension"]["run_jobs"] = True
    jp_server_config["AitipExtension"]["mlflow_tracking_uri"] = f"sqlite:///{isolated_home / 'mlflow.sqlite'}"
    jp_server_config["LocalExecutor"] = {"pool_sizes": {"aitip-python": 1}, "max_concurrent_jobs": 2}
    return jp_server_config


async def _wait(api: Any, job_id: int, user: str = "ann", timeout: float = 180) -> dict[str, Any]:
    for _ in range(int(timeout * 10)):
        _, job = await api("GET", f"jobs/{job_id}", user=user)
        if job["state"] in ("succeeded", "failed", "cancelled", "timed_out"):
            return job
        await asyncio.sleep(0.1)
    raise TimeoutError(job)


async def _output(api: Any, job_id: int, user: str = "ann") -> str:
    _, events = await api("GET", f"jobs/{job_id}/events", user=user, params={"limit": 10_000})
    return "".join(e["data"].get("text", "") for e in events["items"] if e["kind"] == "output")


TRAIN = notebook(
    "import mlflow, numpy as np\n"
    "from sklearn.linear_model import LogisticRegression\n"
    "for step in range(2000):\n"
    "    mlflow.log_metric('loss', 1.0 / (step + 1), step=step)\n"
    "mlflow.log_params({'C': 0.5, 'solver': 'lbfgs'})\n"
    "mlflow.set_tag('stage', 'test')",
    "run = mlflow.get_run(mlflow.active_run().info.run_id)\n"
    "print('read back', len(mlflow.tracking.MlflowClient().get_metric_history(run.info.run_id, 'loss')),"
    " run.data.params['C'], run.data.tags['stage'])",
    "open('notes.txt', 'w').write('hello')\n"
    "mlflow.log_artifact('notes.txt')\n"
    "x = np.random.default_rng(0).normal(size=(40, 3)); y = (x[:, 0] > 0).astype(int)\n"
    "info = mlflow.sklearn.log_model(LogisticRegression().fit(x, y), name='model', registered_model_name='gated',\n"
    "                                pip_requirements=['scikit-learn'])\n"
    "print('registered', info.registered_model_version)",
    "import os, urllib.request\n"
    "client = mlflow.tracking.MlflowClient()\n"
    "for name, call in [('other run', lambda: client.get_run(other_run)),\n"
    "                   ('other experiment', lambda: client.search_runs([other_experiment])),\n"
    "                   ('protected tag', lambda: client.set_tag(mlflow.active_run().info.run_id, 'aitip.job_id', '1')),\n"
    "                   ('other model', lambda: client.get_registered_model(other_model)),\n"
    "                   ('experiment create', lambda: client.create_experiment('mine')),\n"
    "                   ('store file', lambda: open(store_path, 'rb').read(16))]:\n"
    "    try:\n"
    "        call()\n"
    "        print('ALLOWED', name)\n"
    "    except Exception as error:\n"
    "        print('refused', name, type(error).__name__)",
    parameters="other_run = ''\nother_experiment = ''\nother_model = ''\nstore_path = ''",
)

OTHER = notebook(
    "import mlflow\nfrom sklearn.linear_model import LogisticRegression\nimport numpy as np\n"
    "mlflow.log_metric('secret', 42.0)\n"
    "x = np.eye(4); y = [0, 1, 0, 1]\n"
    "mlflow.sklearn.log_model(LogisticRegression().fit(x, y), name='model', registered_model_name='theirs',\n"
    "                         pip_requirements=['scikit-learn'])\n"
    "print('other', mlflow.active_run().info.run_id, mlflow.active_run().info.experiment_id)")


async def test_a_job_kernel_tracks_through_its_spool_and_the_gateway_within_its_project(
        api: Any, jp_serverapp: Any, isolated_home: Path) -> None:
    await start_worker(jp_serverapp)
    for project, user in (("lab", "ann"), ("other", "bob")):
        assert (await api("POST", "projects", user=user, body={"name": project}))[0] == 201
    status, other = await api("POST", "jobs", user="bob", body={"project": "other", "notebook": OTHER})
    assert status == 201
    other_done = await _wait(api, other["id"], "bob")
    other_printed = await _output(api, other["id"], "bob")
    assert other_done["state"] == "succeeded", (other_done["reason"], other_printed[-3000:])
    other_run, other_experiment = next(line.split()[1:3] for line in other_printed.splitlines()
                                       if line.startswith("other "))

    store = isolated_home / "mlflow.sqlite"
    status, job = await api("POST", "jobs", body={"project": "lab", "notebook": TRAIN, "parameters": {
        "other_run": other_run, "other_experiment": other_experiment, "other_model": "theirs",
        "store_path": str(store)}})
    assert status == 201
    done = await _wait(api, job["id"])
    printed = await _output(api, job["id"])
    assert done["state"] == "succeeded", (done["reason"], printed[-3000:])
    assert "read back 2000 0.5 test" in printed  # spooled writes read back through the gateway
    assert "registered 1" in printed
    refusals = {line.split(" ", 1)[1].rsplit(" ", 1)[0] for line in printed.splitlines() if line.startswith("refused")}
    assert "ALLOWED" not in printed, printed
    assert refusals == {"other run", "other experiment", "protected tag", "other model", "experiment create",
                        "store file"}

    with sqlite3.connect(store) as db:
        points = db.execute("SELECT COUNT(*) FROM metrics WHERE run_uuid = ? AND key = 'loss'",
                            (done["mlflow_run_id"],)).fetchone()[0]
        model_tags = dict(db.execute("SELECT key, value FROM registered_model_tags WHERE name = 'gated'").fetchall())
        job_tag = db.execute("SELECT value FROM tags WHERE run_uuid = ? AND key = 'aitip.job_id'",
                             (done["mlflow_run_id"],)).fetchone()[0]
    assert points == 2000 and model_tags == {"aitip.project": "lab"} and job_tag == str(job["id"])
    artifacts = isolated_home / "mlartifacts" / "lab" / done["mlflow_run_id"] / "artifacts"
    assert (artifacts / "notes.txt").read_text() == "hello"
    status, run = await api("GET", f"runs/{done['mlflow_run_id']}")
    assert status == 200 and run["metrics"]["loss"] == pytest.approx(1 / 2000)
    print(f"\n{points} points spooled and stored; refused: {sorted(refusals)}")


READ_INPUTS = notebook(
    "import os, stat, aitip.datasets\n"
    "declared = aitip.datasets.job_inputs()['people']\n"
    "info = os.stat(declared['path'])\n"
    "print('inputs under', os.path.dirname(declared['path']).endswith('/inputs'), 'uid', os.getuid(),"
    " 'owner', info.st_uid, 'mode', oct(stat.S_IMODE(info.st_mode)))\n"
    "print('emails', sorted(aitip.datasets.to_pandas('people')['email']))\n"
    "try:\n"
    "    open(declared['path'], 'a')\n"
    "    print('input writable')\n"
    "except PermissionError:\n"
    "    print('input read-only')")


async def test_declared_inputs_are_owner_readable_copies_masked_below_maintainer(api: Any, jp_serverapp: Any) -> None:
    """The registry is the platform's: a job run as its owner gets its declared inputs copied into its
    workspace, read-only to it, masked when the owner is below maintainer (as before isolation)."""
    import pwd

    await start_worker(jp_serverapp)
    assert (await api("POST", "projects", body={"name": "lab"}))[0] == 201
    assert (await api("POST", "projects/lab/members", body={"user": "carol", "role": "developer"}))[0] == 201
    status, _ = await api("POST", "projects/lab/datasets/people/versions", params={"filename": "people.csv"},
                          raw=b"email,age\nann@example.com,41\nzoe@example.com,37\n")
    assert status == 201
    status, _ = await api("PATCH", "projects/lab/datasets/people", body={"sensitive_columns": {"email": "hash"}})
    assert status == 200
    printed = {}
    for user in ("ann", "carol"):  # the project's admin, a developer
        status, job = await api("POST", "jobs", user=user, body={
            "project": "lab", "notebook": READ_INPUTS, "inputs": [{"dataset": "people", "version": 1}]})
        assert status == 201, job
        done = await _wait(api, job["id"], user)
        printed[user] = await _output(api, job["id"], user)
        assert done["state"] == "succeeded", (done["reason"], printed[user][-2000:])
    for user in ("ann", "carol"):
        uid = pwd.getpwnam(f"aitip-{user}").pw_uid
        assert f"inputs under True uid {uid} owner 0 mode 0o640" in printed[user]
        assert "input read-only" in printed[user]
    assert "emails ['ann@example.com', 'zoe@example.com']" in printed["ann"]
    masked = next(line for line in printed["carol"].splitlines() if line.startswith("emails "))
    assert "@" not in masked and len(masked.split("'")) == 5, masked  # two hashes, no address
