"""A model's evaluation and simulation policies as the CLI writes them for a person, from the API's answers:
what each run is on, how it is judged, when it runs on its own and who set it."""

from __future__ import annotations

from aitip.evaluation.models import EvaluationSettings
from aitip.evaluation.models import Policy as EvaluationPolicy
from aitip.evaluation.text import evaluation_policy_text, threshold_text
from aitip.simulation.models import Policy as SimulationPolicy
from aitip.simulation.models import SimulationSettings
from aitip.simulation.text import simulation_policy_text

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
