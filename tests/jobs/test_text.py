"""A job as ``aitip jobs show`` writes it for a person, and a sweep as ``aitip sweeps show`` does, from the
API's own answers."""

from __future__ import annotations

from aitip.jobs.models import Job, Sweep
from aitip.jobs.text import job_text, sweep_text
from aitip.text_tables import elapsed


def job(**changes: object) -> dict:
    answer = {"id": 7, "project": "vision", "owner": "carol", "state": "failed", "notebook_name": "train.ipynb",
              "notebook_sha256": "ab" * 32, "parameters": {"dataset": "digits", "epochs": 3}, "kernel": "aitip-python",
              "resources": {"cpus": 2.0, "gpus": 1, "memory_mb": 4096}, "priority": 50, "timeout_seconds": 5400,
              "max_attempts": 3, "attempt": 2, "tags": {}, "code_version": "4120526c0a22a67a", "retry_of": 6,
              "cancel_requested": False, "reason": "cell 3 raised ValueError",
              "failed_cell": {"index": 3, "source": "raise ValueError('no')\n", "ename": "ValueError",
                              "evalue": "no", "traceback": "ValueError: no"},
              "mlflow_run_id": "f5587aac", "mlflow_experiment_id": "1",
              "inputs": [{"dataset": "digits", "version": 2, "how": "declared"}],
              "submitted_at": "2026-12-06T10:00:00Z", "started_at": "2026-12-06T10:00:02.500Z",
              "first_cell_at": None, "finished_at": "2026-12-06T10:03:02.500Z"}
    answer.update(changes)
    return Job.model_validate(answer).model_dump(mode="json")


def test_a_job_reads_as_what_ran_on_what_for_how_long_and_why_it_failed() -> None:
    lines = job_text(job()).splitlines()
    assert lines[0] == "job 7: train.ipynb in vision — failed (attempt 2 of 3)"
    assert lines[1:5] == [
        "owner:      carol",
        "kernel:     aitip-python; 2 CPU, 1 GPU, 4096 MB; time limit 1 h 30 min; priority 50",
        "parameters: dataset='digits', epochs=3",
        "inputs:     digits v2 (declared)"]
    assert lines[5] == "notebook:   SHA-256 abababababababab… · code 4120526c0a22"
    assert lines[6].startswith("times:      submitted 2026-12-0") and lines[6].endswith(
        "; started after 2.5 s; ended after 3 min")
    assert lines[7:10] == ["MLflow run: f5587aac", "retry of:   job 6", "reason:     cell 3 raised ValueError"]
    assert "rerun of" not in job_text(job())
    assert "rerun of:   job 5" in job_text(job(retry_of=None, rerun_of=5))
    assert lines[-4:] == ["failed cell 3:", "raise ValueError('no')", "", "ValueError: no"]


def test_a_queued_job_says_only_when_it_was_submitted() -> None:
    shown = job_text(job(state="queued", started_at=None, finished_at=None, reason=None, failed_cell=None,
                         max_attempts=1, attempt=1, retry_of=None, mlflow_run_id=None, code_version=None))
    assert shown.splitlines()[0] == "job 7: train.ipynb in vision — queued"
    assert "started after" not in shown and "MLflow run" not in shown and "· code" not in shown


def test_spans_of_time_drop_the_units_that_are_zero() -> None:
    assert [elapsed(s) for s in (6.54, 60, 200, 3600, 7500)] == ["6.5 s", "1 min", "3 min 20 s", "1 h", "2 h 5 min"]


def test_a_sweep_of_a_jobs_notebook_says_which_job_and_what_its_trials_read() -> None:
    sweep = Sweep.model_validate({
        "id": 3, "project": "vision", "owner": "carol", "state": "running", "strategy": "grid",
        "space": {"lr": {"type": "grid", "values": [0.1, 0.3]}}, "parameters": {"epochs": 2}, "trials": 2,
        "parallelism": 2, "objective": "accuracy", "direction": "maximize", "created_trials": 2, "best_job_id": 9,
        "best_value": 0.95, "best_parameters": {"epochs": 2, "lr": 0.3}, "mlflow_run_id": None, "reason": None,
        "created_at": "2026-12-07T04:00:00Z", "finished_at": None, "job": 7,
        "inputs": [{"dataset": "digits", "version": 2, "how": "declared"}],
        "trial_jobs": [{"job_id": 8, "index": 0, "parameters": {"epochs": 2, "lr": 0.1}, "state": "succeeded",
                        "value": 0.9}, {"job_id": 9, "index": 1, "parameters": {"epochs": 2, "lr": 0.3},
                                        "state": "succeeded", "value": 0.95}]}).model_dump(mode="json")
    lines = sweep_text(sweep).splitlines()
    assert lines[:3] == ["sweep 3 (grid) in vision: running, 2/2 trials, maximize accuracy",
                         "notebook of job 7; reads digits v2",
                         'best: 0.95 from job 9 with {"epochs": 2, "lr": 0.3}']
    assert lines[-1].split() == ["1", "9", "succeeded", "0.95", '{"lr":', "0.3}"]  # the searched value alone
    plain = sweep_text({**sweep, "job": None, "inputs": [], "best_job_id": None})
    assert "notebook of job" not in plain and "best: none yet" in plain
