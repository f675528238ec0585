"""What the project's webhook subscribers are told when an evaluation or a simulation ends: one line a channel
reads (what was judged, the headline and why it failed) and the fields a program filters on."""

from __future__ import annotations

from datetime import UTC, datetime

from aitip.evaluation.notices import evaluation_payload
from aitip.evaluation.tables import EvaluationRecord
from aitip.projects.tables import ProjectRecord
from aitip.simulation.notices import simulation_payload
from aitip.simulation.tables import SimulationRecord

ENDED = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)


def test_a_failed_evaluation_says_what_was_judged_its_headline_and_each_failed_check() -> None:
    evaluation = EvaluationRecord(
        id=7, project=ProjectRecord(name="vision"), model="digits-mlp", model_version=3, dataset="digits",
        dataset_version=2, baseline_version=2, state="failed", trigger="job:12", job_id=13,
        settings={"thresholds": {"f1_score": {"threshold": 0.97}}}, metrics={"accuracy_score": 0.96, "f1_score": 0.955},
        verdict={"passed": False, "reasons": [
            {"metric": "f1_score", "passed": False, "skipped": False, "message": "f1_score: 0.955 is below 0.97."},
            {"metric": "accuracy_score", "passed": True, "skipped": False, "message": "fine"}]},
        reason="", finished_at=ENDED)
    told = evaluation_payload(evaluation)
    assert told["summary"] == ("evaluation 7 of digits-mlp v3 on digits v2 failed (f1_score 0.955): f1_score: 0.955 "
                               "is below 0.97.")
    assert (told["state"], told["headline"], told["failed_checks"]) == (
        "failed", {"metric": "f1_score", "value": 0.955}, ["f1_score: 0.955 is below 0.97."])
    assert told["finished_at"] == "2026-12-06T10:00:00+00:00"


def test_a_simulation_says_its_scenario_target_and_what_failed() -> None:
    simulation = SimulationRecord(
        id=4, project=ProjectRecord(name="vision"), template_name="noise", template_version=2, model="digits-mlp",
        model_version=3, dataset="digits", dataset_version=None, state="failed", trigger="evaluation:7", job_id=20,
        result={"clean": 0.97}, verdict={"passed": False, "reasons": ["accuracy under noise@0.5 is 0.61 < 0.8"]},
        reason="", finished_at=ENDED)
    told = simulation_payload(simulation)
    assert told["summary"] == ("simulation 4 (noise@2) of digits-mlp v3 failed (clean 0.97): accuracy under "
                               "noise@0.5 is 0.61 < 0.8")
    assert (told["template"], told["failed_checks"], told["clean"]) == (
        "noise@2", ["accuracy under noise@0.5 is 0.61 < 0.8"], 0.97)
