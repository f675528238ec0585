"""The lineage graph: dataset version → job that read it → the job's MLflow run → model versions
registered from that run, walked both ways from any node. Only nodes in projects the caller may read
appear; the rest are cut off without a trace."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import InvalidInput, NotFound
from ..identity.principal import Principal
from ..jobs import reads as job_reads
from ..jobs.reads import JobBrief
from ..projects.access import effective_role, find_project
from ..schema import DATASET_NAME_REGEX
from .models import LineageEdge, LineageGraph, LineageNode
from .tables import DatasetRecord, DatasetVersionRecord, JobInputRecord

if TYPE_CHECKING:
    from ..projects.tables import ProjectRecord

NODE = re.compile(r"^(?:dataset:(?P<project>[a-z0-9-]{1,63})/(?P<dataset>" + DATASET_NAME_REGEX + r")@(?P<version>\d{1,9})"
                  r"|job:(?P<job>\d{1,18})|run:(?P<run>[0-9a-f]{32})"
                  r"|model:(?P<model>[^@]{1,255})@(?P<model_version>\d{1,9})"
                  r"|(?P<other_kind>[a-z]{1,32}):(?P<other_id>\d{1,18}))$")


class LineageContributor:
    """Another domain's part of the graph (evaluations...): the nodes of its own kind, and its edges to any
    node. It reads its own tables in the walk's session, and shows only what the walk's caller may read."""

    kind: str  # its nodes are "<kind>:<id>"

    def root(self, walk: LineageWalk, node_id: str) -> str | None:
        """The node itself, when it exists and the caller may read it."""
        raise NotImplementedError

    def neighbours(self, walk: LineageWalk, node_id: str, found: list[str]) -> None:
        """Link ``node_id`` (of any kind) to this domain's nodes, through ``walk.link``."""
        raise NotImplementedError


@dataclass
class ModelRegistryView:
    """What lineage needs from MLflow's model registry: versions registered from a run, and a version's run."""

    versions_of_run: Callable[[str], list[tuple[str, str]]]
    run_of_version: Callable[[str, str], str | None]


@dataclass
class LineageWalk:
    session: Session
    principal: Principal
    models: ModelRegistryView | None
    contributors: tuple[LineageContributor, ...] = ()
    nodes: dict[str, LineageNode] = field(default_factory=dict)
    edges: set[tuple[str, str, str]] = field(default_factory=set)
    readable: dict[int, bool] = field(default_factory=dict)

    def may_read(self, project: ProjectRecord) -> bool:
        if project.id not in self.readable:
            self.readable[project.id] = effective_role(self.principal, project) is not None
        return self.readable[project.id]

    # ----- nodes -----

    def dataset_node(self, version: DatasetVersionRecord) -> str | None:
        dataset = version.dataset
        if not self.may_read(dataset.project):
            return None
        node_id = f"dataset:{dataset.project.name}/{dataset.name}@{version.version}"
        self.nodes.setdefault(node_id, LineageNode(id=node_id, kind="dataset", label=f"{dataset.name} v{version.version}",
                                                   attributes={"project": dataset.project.name, "rows": version.rows,
                                                               "content_md5": version.content_md5,
                                                               "tag": version.tag}))
        return node_id

    def job_node(self, job: JobBrief) -> str | None:
        if not self.may_read(job.project):
            return None
        node_id = f"job:{job.id}"
        self.nodes.setdefault(node_id, LineageNode(id=node_id, kind="job", label=f"job {job.id} ({job.notebook_name})",
                                                   attributes={"project": job.project.name, "state": job.state,
                                                               "owner": job.owner}))
        return node_id

    def run_node(self, run_id: str, project: str) -> str:
        node_id = f"run:{run_id}"
        self.nodes.setdefault(node_id, LineageNode(id=node_id, kind="run", label=f"run {run_id[:8]}",
                                                   attributes={"project": project}))
        return node_id

    def node(self, node_id: str, kind: str, label: str, attributes: dict[str, Any]) -> str:
        """A node of another domain's kind (see LineageContributor)."""
        self.nodes.setdefault(node_id, LineageNode(id=node_id, kind=kind, label=label, attributes=attributes))
        return node_id

    def dataset_version_node(self, project: ProjectRecord, name: str, version: int) -> str | None:
        """The node of a project's dataset version, by name (None where it is gone or unreadable)."""
        found = self.session.scalar(select(DatasetVersionRecord).join(DatasetRecord).where(
            DatasetRecord.project_id == project.id, DatasetRecord.name == name,
            DatasetVersionRecord.version == version, DatasetVersionRecord.state == "ready"))
        return self.dataset_node(found) if found is not None else None

    def model_node(self, name: str, version: str) -> str:
        node_id = f"model:{name}@{version}"
        self.nodes.setdefault(node_id, LineageNode(id=node_id, kind="model", label=f"{name} v{version}",
                                                   attributes={"name": name, "version": version}))
        return node_id

    # ----- neighbours -----

    def neighbours(self, node_id: str) -> list[str]:
        kind, _, rest = node_id.partition(":")
        found: list[str] = []
        for contributor in self.contributors:
            contributor.neighbours(self, node_id, found)
        if kind == "dataset":
            version = self._dataset_version(node_id)
            readers = self.session.scalars(select(JobInputRecord.job_id)
                                           .where(JobInputRecord.dataset_version_id == version.id))
            for job in job_reads.jobs(self.session, readers):
                self.link(node_id, self.job_node(job), "read_by", found)
            for other in self.session.scalars(select(DatasetVersionRecord).where(
                    DatasetVersionRecord.dataset_id == version.dataset_id, DatasetVersionRecord.state == "ready",
                    DatasetVersionRecord.restored_from == version.version)):
                self.link(node_id, self.dataset_node(other), "restored_as", found)
            if version.derived_from is not None:
                self.link(self.dataset_node(version.derived_from), node_id, "annotated_as", found, reverse=True)
            for derived in self.session.scalars(select(DatasetVersionRecord).where(
                    DatasetVersionRecord.derived_from_id == version.id, DatasetVersionRecord.state == "ready")):
                self.link(node_id, self.dataset_node(derived), "annotated_as", found)
            if version.restored_from is not None:
                source = self.session.scalar(select(DatasetVersionRecord).where(
                    DatasetVersionRecord.dataset_id == version.dataset_id,
                    DatasetVersionRecord.version == version.restored_from))
                if source is not None:
                    self.link(self.dataset_node(source), node_id, "restored_as", found, reverse=True)
        elif kind == "job":
            job = job_reads.job(self.session, int(rest))
            if job is None:
                return found
            for version in self.session.scalars(select(DatasetVersionRecord).join(
                    JobInputRecord, JobInputRecord.dataset_version_id == DatasetVersionRecord.id)
                    .where(JobInputRecord.job_id == job.id)):
                self.link(self.dataset_node(version), node_id, "read_by", found, reverse=True)
            if job.mlflow_run_id:
                self.link(node_id, self.run_node(job.mlflow_run_id, job.project.name), "tracked_as", found)
        elif kind == "run":
            job = job_reads.job_of_run(self.session, rest)
            if job is None or self.job_node(job) is None:
                return found
            self.link(self.job_node(job), node_id, "tracked_as", found, reverse=True)
            if self.models is not None:
                for name, version in self.models.versions_of_run(rest):
                    self.link(node_id, self.model_node(name, version), "registered_as", found)
        elif kind == "model" and self.models is not None:
            name, _, version = rest.rpartition("@")
            run_id = self.models.run_of_version(name, version)
            if run_id is not None:
                job = job_reads.job_of_run(self.session, run_id)
                if job is not None and self.job_node(job) is not None:
                    self.link(self.run_node(run_id, job.project.name), node_id, "registered_as", found, reverse=True)
        return found

    def link(self, source: str | None, target: str | None, relation: str, found: list[str],
             reverse: bool = False) -> None:
        """An edge ``source -relation-> target``; the far end (``target``, or ``source`` when ``reverse``) is
        walked on. Nothing where either end is hidden (None)."""
        if source is None or target is None:
            return
        self.edges.add((source, target, relation))
        found.append(source if reverse else target)


    def _dataset_version(self, node_id: str) -> DatasetVersionRecord:
        match = NODE.match(node_id)
        assert match is not None
        project = find_project(self.session, match["project"])
        version = None if project is None else self.session.scalar(
            select(DatasetVersionRecord).join(DatasetRecord)
            .where(DatasetRecord.project_id == project.id, DatasetRecord.name == match["dataset"],
                   DatasetVersionRecord.version == int(match["version"]), DatasetVersionRecord.state == "ready"))
        if version is None:
            raise NotFound("{node_id} does not exist or you may not read it", node_id=node_id)
        return version


def lineage_graph(session: Session, principal: Principal, node: str, depth: int,
                  models: ModelRegistryView | None,
                  contributors: tuple[LineageContributor, ...] = ()) -> LineageGraph:
    match = NODE.match(node)
    kinds = {contributor.kind: contributor for contributor in contributors}
    if match is None or (match["other_kind"] and match["other_kind"] not in kinds):
        others = "".join(f", {kind}:<id>" for kind in kinds)
        raise InvalidInput("node must be dataset:<project>/<name>@<version>, job:<id>, run:<32 hex>, "
                           "model:<name>@<version>{others}", others=others)
    walk = LineageWalk(session, principal, models, tuple(contributors))
    root = _root(walk, node, match)
    seen = {root}
    frontier: deque[tuple[str, int]] = deque([(root, 0)])
    while frontier:
        current, distance = frontier.popleft()
        if distance >= depth:
            continue
        for neighbour in walk.neighbours(current):
            if neighbour not in seen:
                seen.add(neighbour)
                frontier.append((neighbour, distance + 1))
    return LineageGraph(root=root, nodes=sorted(walk.nodes.values(), key=lambda n: n.id),
                        edges=[LineageEdge(source=s, target=t, relation=r) for s, t, r in sorted(walk.edges)])


def _root(walk: LineageWalk, node: str, match: re.Match[str]) -> str:
    hidden = NotFound("{node} does not exist or you may not read it", node=node)
    if match["other_kind"]:
        contributor = next(c for c in walk.contributors if c.kind == match["other_kind"])
        root = contributor.root(walk, node)
    elif match["dataset"]:
        root = walk.dataset_node(walk._dataset_version(node))
    elif match["job"]:
        job = job_reads.job(walk.session, int(match["job"]))
        root = walk.job_node(job) if job is not None else None
    elif match["run"]:
        job = job_reads.job_of_run(walk.session, match["run"])
        root = walk.run_node(match["run"], job.project.name) if job is not None and walk.may_read(job.project) else None
    else:
        run_id = walk.models.run_of_version(match["model"], match["model_version"]) if walk.models else None
        job = job_reads.job_of_run(walk.session, run_id) if run_id else None
        root = (walk.model_node(match["model"], match["model_version"])
                if job is not None and walk.may_read(job.project) else None)
    if root is None:
        raise hidden
    return root


def mlflow_registry_view(tracking_uri: str) -> ModelRegistryView:
    """The model registry through MLflow's client (imported on first use: it costs seconds)."""
    client: dict[str, Any] = {}

    def get() -> Any:
        if "client" not in client:
            from mlflow.tracking import MlflowClient

            client["client"] = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        return client["client"]

    def versions_of_run(run_id: str) -> list[tuple[str, str]]:
        return [(v.name, str(v.version)) for v in get().search_model_versions(f"run_id = '{run_id}'")]

    def run_of_version(name: str, version: str) -> str | None:
        try:
            return get().get_model_version(name, version).run_id
        except Exception:  # noqa: BLE001 - an unknown model version has no lineage
            return None

    return ModelRegistryView(versions_of_run, run_of_version)
