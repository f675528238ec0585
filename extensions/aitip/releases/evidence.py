"""A model release's evidence gates: for its exact model version and dataset version, the newest ended
evaluation must have passed, and so must the newest ended simulation under each template the policy names.
Evaluations and simulations run the platform's shipped notebooks and are judged by the platform, so what
passed here was not written by the requester's code."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from ..evaluation import reads as evaluations
from ..simulation import reads as simulations
from .models import Evidence, MissingEvidence, ReleasePolicySet


@dataclass
class Found:
    dataset_version: int | None
    evidence: list[Evidence] = field(default_factory=list)
    missing: list[MissingEvidence] = field(default_factory=list)


def _evidence(kind: str, outcome: Any, template: str | None = None) -> Evidence:
    return Evidence(kind=kind, id=outcome.id, state=outcome.state, model=outcome.model,
                    model_version=outcome.model_version, dataset=outcome.dataset,
                    dataset_version=outcome.dataset_version, dataset_md5=outcome.dataset_md5, template=template,
                    notebook_sha256=outcome.notebook_sha256, job_id=outcome.job_id, finished_at=outcome.finished_at)


def _judge(kind: str, what: str, outcomes: list[Any], dataset_version: int, found: Found,
           template: str | None = None) -> None:
    on_version = [outcome for outcome in outcomes if outcome.dataset_version == dataset_version]
    if not on_version:
        others = sorted({outcome.dataset_version for outcome in outcomes})
        elsewhere = f" (there are some on version {', '.join(map(str, others))})" if others else ""
        found.missing.append(MissingEvidence(kind=kind, requirement=what,
                                             reason=f"none ended on this dataset version{elsewhere}"))
        return
    newest = on_version[0]
    if newest.state != "passed":
        found.missing.append(MissingEvidence(kind=kind, requirement=what,
                                             reason=f"the newest, {kind} {newest.id}, {newest.state}"))
        return
    name = f"{newest.template_name}@{newest.template_version}" if template else None
    found.evidence.append(_evidence(kind, newest, name))


def gather(session: Session, project_id: int, policy: ReleasePolicySet, model: str, model_version: int,
           dataset: str, dataset_version: int | None) -> Found:
    """The evidence the policy asks for, and what is missing. Without a dataset version, the newest one with a
    passed evaluation of the model version (or, where the policy asks for none, a passed simulation)."""
    evaluated = evaluations.outcomes_for(session, project_id, model, model_version, dataset)
    simulated = simulations.outcomes_for(session, project_id, model, model_version, dataset)
    subject = f"{model} version {model_version} on dataset {dataset}"
    if dataset_version is None:
        passed = [o for o in (evaluated if policy.evaluation else simulated) if o.state == "passed"]
        if not passed:
            found = Found(None)
            gates = (["evaluation"] if policy.evaluation else []) + \
                [f"simulation {name}" for name in policy.simulations]
            for gate in gates or ["evaluation"]:
                kind = "evaluation" if gate == "evaluation" else "simulation"
                found.missing.append(MissingEvidence(kind=kind, requirement=f"a passed {gate} of {subject}",
                                                     reason="none passed on any version of the dataset"))
            return found
        dataset_version = passed[0].dataset_version
    found = Found(dataset_version)
    where = f"{subject} version {dataset_version}"
    if policy.evaluation:
        _judge("evaluation", f"a passed evaluation of {where}", evaluated, dataset_version, found)
    for name in policy.simulations:
        under = [outcome for outcome in simulated if outcome.template_name == name]
        _judge("simulation", f"a passed simulation under {name} of {where}", under, dataset_version, found,
               template=name)
    return found
