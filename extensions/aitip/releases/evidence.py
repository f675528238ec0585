"""A model release's evidence gates: for its exact model version and dataset version, the newest ended
evaluation must have passed, and so must the newest ended simulation under each template the policy names.
Evaluations and simulations run the platform's shipped notebooks and are judged by the platform, so what
passed here was not written by the requester's code. The project's own test notebooks (a policy's test runs)
are its team's code: a maintainer may pin their content by hash."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from ..datasets import reads as datasets
from ..errors import Phrase
from ..i18n import N_
from ..evaluation import reads as evaluations
from ..jobs import reads as jobs
from ..simulation import reads as simulations
from .models import Evidence, MissingEvidence, ReleasePolicySet


@dataclass
class Found:
    dataset_version: int | None
    evidence: list[Evidence] = field(default_factory=list)
    missing: list[MissingEvidence] = field(default_factory=list)
    said: list[Phrase] = field(default_factory=list)  # each missing gate as a refusal says it, in any language

    def lacks(self, kind: str, requirement: Phrase, reason: Phrase) -> None:
        self.missing.append(MissingEvidence(kind=kind, requirement=str(requirement), reason=str(reason)))
        self.said.append(Phrase(N_("{requirement} ({reason})"), requirement=requirement, reason=reason))


def _evidence(kind: str, outcome: Any, template: str | None = None) -> Evidence:
    return Evidence(kind=kind, id=outcome.id, state=outcome.state, model=outcome.model,
                    model_version=outcome.model_version, dataset=outcome.dataset,
                    dataset_version=outcome.dataset_version, dataset_md5=outcome.dataset_md5, template=template,
                    notebook_sha256=outcome.notebook_sha256, job_id=outcome.job_id, finished_at=outcome.finished_at)


def _judge(kind: str, what: Phrase, outcomes: list[Any], dataset_version: int, found: Found,
           template: str | None = None) -> None:
    on_version = [outcome for outcome in outcomes if outcome.dataset_version == dataset_version]
    if not on_version:
        others = sorted({outcome.dataset_version for outcome in outcomes})
        found.lacks(kind, what, Phrase(N_("none ended on this dataset version (there are some on version "
                                          "{versions})"), versions=", ".join(map(str, others))) if others else
                    Phrase(N_("none ended on this dataset version")))
        return
    newest = on_version[0]
    if newest.state != "passed":
        found.lacks(kind, what, Phrase(N_("the newest, evaluation {id}, {state}") if kind == "evaluation" else
                                       N_("the newest, simulation {id}, {state}"), id=newest.id, state=newest.state))
        return
    name = f"{newest.template_name}@{newest.template_version}" if template else None
    found.evidence.append(_evidence(kind, newest, name))


def gather(session: Session, project_id: int, policy: ReleasePolicySet, model: str, model_version: int,
           dataset: str, dataset_version: int | None) -> Found:
    """The evidence the policy asks for, and what is missing. Without a dataset version, the newest one with a
    passed evaluation of the model version (or, where the policy asks for none, a passed simulation)."""
    evaluated = evaluations.outcomes_for(session, project_id, model, model_version, dataset)
    simulated = simulations.outcomes_for(session, project_id, model, model_version, dataset)
    if dataset_version is None:
        passed = [o for o in (evaluated if policy.evaluation else simulated) if o.state == "passed"]
        if not passed:
            found = Found(None)
            subject = Phrase(N_("{model} version {model_version} on dataset {dataset}"), model=model,
                             model_version=model_version, dataset=dataset)
            nowhere = Phrase(N_("none passed on any version of the dataset"))
            if policy.evaluation or not policy.simulations:
                found.lacks("evaluation", Phrase(N_("a passed evaluation of {subject}"), subject=subject), nowhere)
            for name in policy.simulations:
                found.lacks("simulation", Phrase(N_("a passed simulation {name} of {subject}"), name=name,
                                                 subject=subject), nowhere)
            return found
        dataset_version = passed[0].dataset_version
    found = Found(dataset_version)
    where = Phrase(N_("{model} version {model_version} on dataset {dataset} version {dataset_version}"),
                   model=model, model_version=model_version, dataset=dataset, dataset_version=dataset_version)
    if policy.evaluation:
        _judge("evaluation", Phrase(N_("a passed evaluation of {subject}"), subject=where), evaluated,
               dataset_version, found)
    for name in policy.simulations:
        under = [outcome for outcome in simulated if outcome.template_name == name]
        _judge("simulation", Phrase(N_("a passed simulation under {name} of {subject}"), name=name, subject=where),
               under, dataset_version, found, template=name)
    for gate in policy.test_runs:
        _judge_test_run(session, project_id, gate, model, model_version, dataset, dataset_version, where, found)
    return found


def _judge_test_run(session: Session, project_id: int, gate: Any, model: str, model_version: int, dataset: str,
                    dataset_version: int, where: Phrase, found: Found) -> None:
    """The newest ended run of the gate's notebook on exactly this model version (its parameters) and dataset
    version (an input it declared or reported) must have succeeded, with the pinned content if one is."""
    what = Phrase(N_("a succeeded run of {notebook} on {subject}"), notebook=gate.notebook, subject=where)
    runs = [run for run in jobs.ended_runs(session, project_id, gate.notebook)
            if run.parameters.get("model_name") == model and run.parameters.get("model_version") == model_version
            and datasets.job_read(session, run.id, dataset, dataset_version)]
    if not runs:
        found.lacks("test_run", what, Phrase(N_("no run with parameters model_name and model_version of this "
                                                "version that read this dataset version")))
        return
    newest = runs[0]
    if gate.notebook_sha256 is not None and newest.notebook_sha256 != gate.notebook_sha256:
        found.lacks("test_run", Phrase(N_("{requirement} (pinned content)"), requirement=what),
                    Phrase(N_("the newest, job {id}, ran other content (SHA-256 {sha256}…)"), id=newest.id,
                           sha256=newest.notebook_sha256[:12]))
        return
    if newest.state != "succeeded":
        found.lacks("test_run", what, Phrase(N_("the newest, job {id}, {state}"), id=newest.id, state=newest.state))
        return
    brief = datasets.version_brief(session, project_id, dataset, dataset_version)
    found.evidence.append(Evidence(kind="test_run", id=newest.id, state=newest.state, model=model,
                                   model_version=model_version, dataset=dataset, dataset_version=dataset_version,
                                   dataset_md5=brief.content_md5, notebook=gate.notebook,
                                   notebook_sha256=newest.notebook_sha256, job_id=newest.id,
                                   finished_at=newest.finished_at))
