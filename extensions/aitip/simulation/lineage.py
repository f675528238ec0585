"""Simulations in the lineage graph: model version → simulation ← dataset version, and the simulation → the
job that ran it. A simulation is evidence about exactly these versions; the graph shows which."""

from __future__ import annotations

from sqlalchemy import select

from ..datasets.lineage import NODE, LineageContributor, LineageWalk
from ..jobs import reads as job_reads
from .tables import SimulationRecord


class SimulationLineage(LineageContributor):
    kind = "simulation"

    def root(self, walk: LineageWalk, node_id: str) -> str | None:
        simulation = walk.session.get(SimulationRecord, int(node_id.partition(":")[2]))
        return self._node(walk, simulation) if simulation is not None else None

    def neighbours(self, walk: LineageWalk, node_id: str, found: list[str]) -> None:
        kind, _, rest = node_id.partition(":")
        if kind == self.kind:
            simulation = walk.session.get(SimulationRecord, int(rest))
            if simulation is None or not walk.may_read(simulation.project):
                return
            if simulation.model is not None:
                walk.link(walk.model_node(simulation.model, str(simulation.model_version)), node_id,
                          "simulated_by", found, reverse=True)
            if simulation.dataset is not None:
                walk.link(walk.dataset_version_node(simulation.project, simulation.dataset,
                                                    simulation.dataset_version), node_id, "simulated_on", found,
                          reverse=True)
            job = job_reads.job(walk.session, simulation.job_id) if simulation.job_id is not None else None
            if job is not None:
                walk.link(node_id, walk.job_node(job), "ran_as", found)
            return
        match = NODE.match(node_id)
        if match is None:
            return
        if kind == "model":
            statement = select(SimulationRecord).where(SimulationRecord.model == match["model"],
                                                       SimulationRecord.model_version == int(match["model_version"]))
            for simulation in walk.session.scalars(statement.order_by(SimulationRecord.id)):
                walk.link(node_id, self._node(walk, simulation), "simulated_by", found)
        elif kind == "dataset":
            statement = select(SimulationRecord).where(SimulationRecord.dataset == match["dataset"],
                                                       SimulationRecord.dataset_version == int(match["version"]))
            for simulation in walk.session.scalars(statement.order_by(SimulationRecord.id)):
                if simulation.project.name == match["project"]:
                    walk.link(node_id, self._node(walk, simulation), "simulated_on", found)
        elif kind == "job":
            for simulation in walk.session.scalars(select(SimulationRecord).where(
                    SimulationRecord.job_id == int(match["job"]))):
                walk.link(self._node(walk, simulation), node_id, "ran_as", found, reverse=True)

    def _node(self, walk: LineageWalk, simulation: SimulationRecord) -> str | None:
        if not walk.may_read(simulation.project):
            return None
        return walk.node(f"simulation:{simulation.id}", "simulation",
                         f"simulation {simulation.id} ({simulation.template_name}, {simulation.state})",
                         {"project": simulation.project.name, "state": simulation.state,
                          "passed": (simulation.verdict or {}).get("passed"),
                          "template": f"{simulation.template_name}@{simulation.template_version}",
                          "model": f"{simulation.model}@{simulation.model_version}" if simulation.model else None,
                          "dataset": f"{simulation.dataset}@{simulation.dataset_version}"
                          if simulation.dataset else None,
                          "clean": (simulation.result or {}).get("clean")})
