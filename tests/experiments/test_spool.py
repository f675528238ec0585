"""A job's tracking spool: written by the kernel's buffered store, drained by the platform into MLflow.
No point is lost when the kernel exits without flushing, nor when the platform is killed mid-drain (the
next drain resumes; replayed lines change nothing); untrusted lines are refused, never half-applied."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from aitip.experiments.scope import ProjectScope
from aitip.experiments.spool import SpoolDrainer
from aitip.experiments.tracking_store import ensure_tracking_store, forget_ready_stores

POINTS = 25_000

KERNEL = """
import os, sys
import mlflow
for step in range(int(sys.argv[1])):
    mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
mlflow.log_param("lr", "0.1")
mlflow.set_tag("stage", "spooled")
# no flush: the process just ends, as a kernel does when its job is over
"""

DRAIN = """
import sys
from pathlib import Path
from mlflow.tracking import MlflowClient
from aitip.experiments.scope import ProjectScope
from aitip.experiments.spool import SpoolDrainer
store = MlflowClient(tracking_uri=sys.argv[1])._tracking_client.store
scope = ProjectScope(store)
result = SpoolDrainer(store).drain(Path(sys.argv[2]), Path(sys.argv[3]), lambda run: scope.run_refusal(run, "lab"))
print("stored", result.stored, "errors", result.errors)
"""


@pytest.fixture
def run(tmp_path: Path) -> tuple[str, str, Path]:
    """A project's experiment and an active run in a fresh store; the job's (empty) spool."""
    forget_ready_stores()
    uri = f"sqlite:///{tmp_path / 'mlflow.sqlite'}"
    ensure_tracking_store(uri, tmp_path / "artifacts")
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("aitip/lab", tags={"aitip.project": "lab"})
    run_id = client.create_run(experiment).info.run_id
    spool = tmp_path / "tracking.spool"
    spool.touch()
    return uri, run_id, spool


def _kernel(uri: str, run_id: str, spool: Path, points: int) -> None:
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"aitip:{uri}", "MLFLOW_RUN_ID": run_id,
           "AITIP_MLFLOW_SPOOL": str(spool), "AITIP_MLFLOW_ARTIFACTS": str(spool.parent / "artifacts")}
    done = subprocess.run([sys.executable, "-c", KERNEL, str(points)], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


def _stored(uri: str, run_id: str) -> tuple[int, dict[str, str], dict[str, str]]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    history = client.get_metric_history(run_id, "loss")
    data = client.get_run(run_id).data
    assert len({m.step for m in history}) == len(history), "a point stored twice"
    return len(history), dict(data.params), {k: v for k, v in data.tags.items() if not k.startswith("mlflow.")}


def test_a_kernel_that_exits_without_flushing_leaves_every_point_in_its_spool(run, tmp_path: Path) -> None:
    uri, run_id, spool = run
    _kernel(uri, run_id, spool, POINTS)
    assert spool.stat().st_size > 0
    from mlflow.tracking import MlflowClient

    assert MlflowClient(tracking_uri=uri).get_metric_history(run_id, "loss") == []  # nothing bypassed the spool
    store = MlflowClient(tracking_uri=uri)._tracking_client.store
    scope = ProjectScope(store)
    result = SpoolDrainer(store).drain(spool, tmp_path / "offset", lambda r: scope.run_refusal(r, "lab"))
    assert (result.stored, result.errors) == (POINTS + 2, [])
    assert _stored(uri, run_id) == (POINTS, {"lr": "0.1"}, {"stage": "spooled"})
    again = SpoolDrainer(store).drain(spool, tmp_path / "offset", lambda r: scope.run_refusal(r, "lab"))
    assert again.stored == 0  # drained once: the offset moved past it


@pytest.mark.parametrize("killed_after", [1, 2])
def test_a_drain_killed_midway_is_resumed_and_stores_every_point_once(run, tmp_path: Path, killed_after: int) -> None:
    """The platform dies (SIGKILL) after committing a batch but before moving its offset; the next drain
    replays that batch: nothing is lost, nothing is stored twice."""
    uri, run_id, spool = run
    _kernel(uri, run_id, spool, POINTS)
    offset = tmp_path / "offset"
    env = {**os.environ, "AITIP_FAULT_POINT": "spool.written", "AITIP_FAULT_ONCE_FILE": str(tmp_path / "fired")}
    for _ in range(killed_after):
        (tmp_path / "fired").unlink(missing_ok=True)
        killed = subprocess.run([sys.executable, "-c", DRAIN, uri, str(spool), str(offset)], env=env,
                                capture_output=True, text=True, timeout=300)
        assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    resumed = subprocess.run([sys.executable, "-c", DRAIN, uri, str(spool), str(offset)], capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0 and "errors []" in resumed.stdout, resumed.stderr[-3000:]
    assert _stored(uri, run_id) == (POINTS, {"lr": "0.1"}, {"stage": "spooled"})


def test_untrusted_lines_are_refused_and_the_rest_applied(run, tmp_path: Path) -> None:
    uri, run_id, spool = run
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    elsewhere = client.create_run(client.create_experiment("aitip/other", tags={"aitip.project": "other"}))
    lines = [
        {"r": run_id, "m": [["ok", 1.0, 1, 0]]},
        {"r": elsewhere.info.run_id, "m": [["stolen", 1.0, 1, 0]]},  # another project's run
        {"r": run_id, "t": [["aitip.job_id", "99"]]},  # the platform's tag
        {"r": run_id, "m": [["bad key/..", 1.0, 1, 0]]},  # MLflow refuses the key
        {"r": "not-a-run"},
        "not json",
        {"r": run_id, "m": [["ok", 2.0, 2, 1]]},
    ]
    spool.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n{\"r\":")
    store = client._tracking_client.store
    scope = ProjectScope(store)
    result = SpoolDrainer(store).drain(spool, tmp_path / "offset", lambda r: scope.run_refusal(r, "lab"))
    assert result.stored == 2 and len(result.errors) == 5, result.errors
    assert result.pending_bytes == len('{"r":')  # an incomplete last line waits for its end
    assert [m.value for m in client.get_metric_history(run_id, "ok")] == [1.0, 2.0]
    assert client.get_metric_history(elsewhere.info.run_id, "stolen") == []
    assert "aitip.job_id" not in client.get_run(run_id).data.tags
