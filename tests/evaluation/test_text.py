"""Evaluations and simulations as the CLI writes them for a person, from the API's answers: a model's policies
(what each run is on, how it is judged, when it runs on its own, who set it) and the lists of runs; and a
lineage graph as its relations."""

from __future__ import annotations

from aitip.evaluation.models import EvaluationSettings
from aitip.evaluation.models import Policy as EvaluationPolicy
from aitip.datasets.lineage_text import lineage_text
from aitip.datasets.models import LineageGraph
from aitip.evaluation.models import EvaluationList
from aitip.evaluation.text import evaluation_policy_text, evaluations_text, threshold_text
from aitip.simulation.models import Policy as SimulationPolicy
from aitip.simulation.models import SimulationList, SimulationSettings, Template
from aitip.simulation.text import simulation_policy_text, simulations_text, template_text

WHO = {"project": "vision", "model": "digits-mlp", "updated_by": "dave", "created_at": "2026-12-06T10:00:00Z",
       "updated_at": "2026-12-06T10:00:00Z"}


def test_an_evaluation_policy_reads_as_its_data_labels_and_what_passes() -> None:
    settings = EvaluationSettings(dataset="digits", label_column="target", thresholds={
        "accuracy_score": {"threshold": 0.9, "greater_is_better": True},
        "log_loss": {"threshold": 0.3, "greater_is_better": False, "min_relative_change": 0.05}})
    policy = EvaluationPolicy(automatic=True, settings=settings.model_dump(mode="json"), **WHO)
    lines = evaluation_policy_text(policy.model_dump(mode="json")).splitlines()
    assert lines[0] == ("evaluation policy of digits-mlp in vision — each version a training job registers is "
                        "evaluated at once")
    assert lines[1:5] == ["dataset:    digits, its newest version when it starts",
                          "task:       classification (notebook: the task's)",
                          "labels:     column target; rows whose split is test",
                          "passes if:  accuracy_score ≥ 0.9; log_loss ≤ 0.3, 5 % better than the baseline"]
    assert lines[-1].startswith("set:        by dave at 2026-12-0")
    pinned = EvaluationPolicy(automatic=False, settings={**settings.model_dump(mode="json"), "dataset_version": 2,
                                                          "split_column": None, "thresholds": {}}, **WHO)
    shown = evaluation_policy_text(pinned.model_dump(mode="json"))
    assert "— only when asked" in shown and "digits v2" in shown and "column target; every row" in shown
    assert "passes if:  it runs (no thresholds)" in shown
    assert threshold_text("rmse", {"min_absolute_change": 0.5, "greater_is_better": False}) == \
        "rmse 0.5 better than the baseline"


def test_a_simulation_policy_reads_as_its_template_and_data() -> None:
    settings = SimulationSettings(template="digits_robustness", dataset="digits", reference_version=1)
    policy = SimulationPolicy(automatic=True, settings=settings.model_dump(mode="json"), **WHO)
    lines = simulation_policy_text(policy.model_dump(mode="json")).splitlines()
    assert lines[:5] == [
        "simulation policy of digits-mlp in vision — each version whose evaluation passes is simulated at once",
        "template:      digits_robustness", "dataset:       digits, its newest version when it starts",
        "drift against: v1", "gallery:       12 adversarial examples kept"]


def test_the_lists_show_what_was_judged_on_what_the_state_and_the_headline() -> None:
    evaluation = {"id": 4, "project": "vision", "model": "digits-mlp", "model_version": 3, "model_run_id": "r",
                  "baseline_version": 2, "dataset": "digits", "dataset_version": 2, "dataset_md5": "0" * 32,
                  "job_id": 9, "notebook_sha256": "1" * 64, "state": "passed", "trigger": "job:8",
                  "settings": {"thresholds": {"f1_score": {"threshold": 0.9}}},
                  "metrics": {"accuracy_score": 0.97, "f1_score": 0.96512}, "baseline_metrics": None, "verdict": None,
                  "error": None, "reason": "", "warnings": [], "has_report": True, "created_by": "carol",
                  "created_at": "2026-12-06T10:00:00Z", "finished_at": "2026-12-06T10:01:00Z"}
    lines = evaluations_text(EvaluationList.model_validate({"evaluations": [evaluation]}).model_dump(
        mode="json")).splitlines()
    assert lines[0].split() == ["ID", "MODEL", "DATASET", "STATE", "HEADLINE", "BASELINE", "TRIGGER", "FINISHED"]
    assert lines[1].split()[:9] == ["4", "digits-mlp", "v3", "digits", "v2", "passed", "f1_score", "0.9651", "v2"]
    simulation = {"id": 5, "project": "vision", "template_name": "image_robustness", "template_version": 1,
                  "template_source": "library", "kind": "image", "model": "digits-mlp", "model_version": 3,
                  "model_run_id": None, "endpoint": None, "dataset": "digits", "dataset_version": 2,
                  "dataset_md5": "", "job_id": None, "notebook_sha256": "", "state": "error",
                  "trigger": "evaluation:4", "previous_id": None, "clean": None, "metrics": {}, "verdict": None,
                  "error": {"code": "gradients_required", "message": "..."}, "reason": "...", "has_report": False,
                  "created_by": "carol", "created_at": "2026-12-06T10:02:00Z", "finished_at": None}
    shown = simulations_text(SimulationList.model_validate({"simulations": [simulation], "total": 3}).model_dump(
        mode="json")).splitlines()
    assert shown[1].split() == ["5", "image_robustness@1", "digits-mlp", "v3", "digits", "v2", "error", "-",
                                "evaluation:4", "-"]
    assert shown[-1] == "(1 of 3)"


def test_a_lineage_reads_as_relations_between_named_things() -> None:
    graph = LineageGraph.model_validate({"root": "model:m@1", "nodes": [
        {"id": "model:m@1", "kind": "model", "label": "m v1", "attributes": {}},
        {"id": "run:abc", "kind": "run", "label": "run abc", "attributes": {}}],
        "edges": [{"source": "run:abc", "target": "model:m@1", "relation": "registered_as"}]})
    lines = lineage_text(graph.model_dump(mode="json")).splitlines()
    assert lines[0] == "lineage of model:m@1 (m v1): 2 nodes, 1 relation"
    assert lines[3].split() == ["run", "abc", "registered_as", "m", "v1"]
    assert lines[-1].split() == ["run:abc", "run", "run", "abc"]


def test_a_template_reads_as_what_it_checks_and_the_whole_of_it() -> None:
    template = Template.model_validate({
        "name": "strict", "version": 2, "source": "project", "kind": "tabular", "title": "Strict noise",
        "description": "Noise, judged strictly.", "metric": "accuracy", "conditions": ["feature_noise"],
        "thresholds": ["accuracy under clean >= 0.9"], "extends": "tabular_robustness@1", "versions": [1, 2],
        "created_by": "carol", "created_at": "2026-12-06T10:00:00Z", "template": {}, "body": {},
        "yaml": "name: strict\nversion: 2\n"}).model_dump(mode="json")
    lines = template_text(template).splitlines()
    assert lines[:2] == ["template strict@2 (project, tabular): Strict noise", "Noise, judged strictly."]
    assert lines[3:6] == ["metric:     accuracy", "conditions: feature_noise", "versions:   1, 2"]
    assert lines[-6:] == ["passes if:", "  - accuracy under clean >= 0.9", "", "what a simulation runs (YAML):",
                          "name: strict", "version: 2"]
