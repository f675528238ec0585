"""Evaluations in the lineage graph: model version → evaluation ← dataset version, and the evaluation → the
job that ran it. An evaluation is evidence about exactly these versions; the graph shows which."""

from __future__ import annotations

from sqlalchemy import select

from ..datasets.lineage import NODE, LineageContributor, LineageWalk
from ..jobs import reads as job_reads
from .tables import EvaluationRecord


class EvaluationLineage(LineageContributor):
    kind = "evaluation"

    def root(self, walk: LineageWalk, node_id: str) -> str | None:
        evaluation = walk.session.get(EvaluationRecord, int(node_id.partition(":")[2]))
        return self._node(walk, evaluation) if evaluation is not None else None

    def neighbours(self, walk: LineageWalk, node_id: str, found: list[str]) -> None:
        kind, _, rest = node_id.partition(":")
        if kind == self.kind:
            evaluation = walk.session.get(EvaluationRecord, int(rest))
            if evaluation is None or not walk.may_read(evaluation.project):
                return
            walk.link(walk.model_node(evaluation.model, str(evaluation.model_version)), node_id, "evaluated_by",
                      found, reverse=True)
            walk.link(walk.dataset_version_node(evaluation.project, evaluation.dataset, evaluation.dataset_version),
                      node_id, "evaluated_on", found, reverse=True)
            job = job_reads.job(walk.session, evaluation.job_id) if evaluation.job_id is not None else None
            if job is not None:
                walk.link(node_id, walk.job_node(job), "ran_as", found)
            return
        match = NODE.match(node_id)
        if match is None:
            return
        if kind == "model":
            statement = select(EvaluationRecord).where(EvaluationRecord.model == match["model"],
                                                       EvaluationRecord.model_version == int(match["model_version"]))
            for evaluation in walk.session.scalars(statement.order_by(EvaluationRecord.id)):
                walk.link(node_id, self._node(walk, evaluation), "evaluated_by", found)
        elif kind == "dataset":
            statement = select(EvaluationRecord).where(EvaluationRecord.dataset == match["dataset"],
                                                       EvaluationRecord.dataset_version == int(match["version"]))
            for evaluation in walk.session.scalars(statement.order_by(EvaluationRecord.id)):
                if evaluation.project.name == match["project"]:
                    walk.link(node_id, self._node(walk, evaluation), "evaluated_on", found)
        elif kind == "job":
            for evaluation in walk.session.scalars(select(EvaluationRecord).where(
                    EvaluationRecord.job_id == int(match["job"]))):
                walk.link(self._node(walk, evaluation), node_id, "ran_as", found, reverse=True)

    def _node(self, walk: LineageWalk, evaluation: EvaluationRecord) -> str | None:
        if not walk.may_read(evaluation.project):
            return None
        verdict = (evaluation.verdict or {}).get("passed")
        return walk.node(f"evaluation:{evaluation.id}", "evaluation",
                         f"evaluation {evaluation.id} ({evaluation.state})",
                         {"project": evaluation.project.name, "state": evaluation.state, "passed": verdict,
                          "model": f"{evaluation.model}@{evaluation.model_version}",
                          "dataset": f"{evaluation.dataset}@{evaluation.dataset_version}",
                          "accuracy_score": (evaluation.metrics or {}).get("accuracy_score")})
