"""``aitip serve optimize``: a registered model version packaged for Triton by Triton Model Navigator.

The navigator cannot run in the platform's environment (it pins numpy<2 and needs TensorRT), so each packaging is
a sandboxed job of ``notebooks/serve/optimize_triton.ipynb`` on the ``aitip-triton`` kernel (kernels/triton): the
version is staged read-only into it, it holds no platform credential and reaches no network. The job is the
record: its tags name the model version and the options, its executed notebook carries the navigator's summary
(read back here, never from the owner's files), and its working directory the package and Triton repository,
handed out as one archive of regular files."""

from __future__ import annotations

import asyncio
import json
import os
import re
import stat
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from ..catalog.service import CatalogService
from ..errors import Conflict, NotFound
from ..i18n import N_
from ..identity.principal import Principal
from ..jobs import reads as job_reads
from ..jobs.models import JobSubmit, Resources, Sandbox, SandboxModel
from ..notebook_results import read_last
from ..operations.actions import performs
from ..projects.access import authorize
from ..shipped_notebooks import shipped_notebooks
from .models import (
    NavigatorSummary,
    Optimization,
    OptimizationList,
    OptimizationListQuery,
    OptimizationStart,
    OptimizeDevice,
)
from .optimize import KERNEL, NOTEBOOK, normalize_summary

JOB_SUBMIT = "job.submit"  # packaging is a job: its starter must be allowed to run one
NOTEBOOK_NAME = "serve-optimize.ipynb"  # the jobs of this service, among a project's
SUMMARY_MIME = "application/vnd.aitip.navigator-summary+json"
OUTPUT_DIR = "triton"  # under the job's working directory
SKIPPED_IN_PACKAGE = ("navigator_workspace",)  # the navigator's scratch: every intermediate model and log
CPU_FORMATS = ["onnx"]  # what every flavor can be packaged as without a GPU


def triton_name(model: str) -> str:
    """A registered model's name as a Triton model folder: other characters made '-'."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "-", model).lstrip("-_.")[:128]
    return name or "model"


class OptimizationService(CatalogService):
    def __init__(self, catalog: Any, jobs: Any, experiments: Any, packages_dir: Path) -> None:
        super().__init__(catalog)
        self.jobs = jobs
        self.experiments = experiments
        self.packages_dir = packages_dir

    @performs
    async def start(self, principal: Principal | None, project: str, body: OptimizationStart, *,
                    action: str) -> Optimization:
        """Submit the packaging job; answers at once with it (queued), its summary follows when it ends."""
        principal = self._signed_in(principal)
        await self._in_transaction(lambda s: authorize(s, principal, action, project))
        if KERNEL not in self.jobs.kernels.specs():
            raise Conflict("this platform has no {kernel} kernel: Triton Model Navigator runs in an environment of "
                           "its own, built on a GPU machine by kernels/triton/install.sh",
                           code="kernel_not_installed", kernel=KERNEL)
        registered = await asyncio.to_thread(self.experiments.project_model, project, body.model)
        if body.version not in {entry.version for entry in registered.versions}:
            have = ", ".join(str(entry.version) for entry in registered.versions) or "none"
            raise NotFound("model {model!r} has no version {version} in project {project!r} (it has: {have})",
                           code="unknown_model_version",
                           model=body.model, version=body.version, project=project, have=have)
        formats = list(dict.fromkeys(name.value for name in body.formats)) if body.formats is not None else (
            CPU_FORMATS if body.device is OptimizeDevice.cpu else None)
        name = body.triton_name or triton_name(body.model)
        parameters: dict[str, Any] = {
            "model_dir": f"models:/{body.model}/{body.version}", "output_dir": OUTPUT_DIR,
            "batch_sizes": sorted(set(body.batch_sizes)), "model_name": name, "target_device": body.device.value,
            "stability_percentage": body.stability_percentage}
        if formats is not None:
            parameters["target_formats"] = formats
        notebook = json.loads((shipped_notebooks() / NOTEBOOK).read_text(encoding="utf-8"))
        gpu = body.device is OptimizeDevice.cuda
        # No address-space limit on a GPU: the CUDA driver reserves far more virtual memory than it uses.
        sandbox = Sandbox(memory_mb=None if gpu else 8192, cpu_seconds=max(60, body.timeout_seconds * 2), cpus=2,
                          models=[SandboxModel(name=body.model, version=body.version)])
        tags = {"optimized_model": f"{body.model}/{body.version}"[:250], "optimize_device": body.device.value,
                "optimize_formats": ",".join(formats) if formats is not None else "",
                "optimize_batch_sizes": ",".join(str(size) for size in parameters["batch_sizes"])[:250],
                "optimize_triton_name": name}
        request = JobSubmit(project=project, notebook=notebook, notebook_name=NOTEBOOK_NAME, parameters=parameters,
                            kernel=KERNEL, resources=Resources(cpus=2, gpus=1 if gpu else 0),
                            timeout_seconds=body.timeout_seconds, max_attempts=1, tags=tags, sandbox=sandbox)
        job = await self.jobs.submit(principal, request, action=JOB_SUBMIT)
        brief = await self._in_transaction(lambda s: job_reads.job(s, job.id))  # the caller was authorized above
        assert brief is not None, "the job just submitted"
        return await asyncio.to_thread(self._answer, brief)

    @performs
    async def get(self, principal: Principal | None, project: str, job_id: int, *, action: str) -> Optimization:
        principal = self._signed_in(principal)
        brief = await self._in_transaction(lambda s: self._load(s, principal, project, job_id, action))
        return await asyncio.to_thread(self._answer, brief)

    @performs
    async def list(self, principal: Principal | None, project: str, query: OptimizationListQuery, *,
                   action: str) -> OptimizationList:
        principal = self._signed_in(principal)

        def read(session: Any) -> list[job_reads.JobBrief]:
            project_record, _ = authorize(session, principal, action, project)
            return job_reads.runs_of_notebook(
                session, project_record.id, NOTEBOOK_NAME, limit=query.limit,
                tag_prefix=("optimized_model", f"{query.model}/") if query.model is not None else None)

        briefs = await self._in_transaction(read)
        return OptimizationList(optimizations=await asyncio.to_thread(lambda: [self._answer(b) for b in briefs]))

    async def package_path(self, principal: Principal | None, project: str, job_id: int, *, action: str) -> Path:
        """The package, the Triton repository and the summary as one .tar.gz (made on first asking)."""
        principal = self._signed_in(principal)
        brief = await self._in_transaction(lambda s: self._load(s, principal, project, job_id, action))
        answer = await asyncio.to_thread(self._answer, brief)
        if not answer.has_package:
            raise NotFound(N_("optimization {job_id} has no package (its job is {state}: {reason})") if answer.reason
                           else N_("optimization {job_id} has no package (its job is {state})"), code="no_package",
                           job_id=job_id, state=answer.state, reason=answer.reason)
        archive = self.packages_dir / f"{job_id}.tar.gz"
        if not archive.is_file():
            await asyncio.to_thread(self._archive, brief, archive)
        return archive

    @staticmethod
    def _load(session: Any, principal: Principal, project: str, job_id: int, action: str) -> job_reads.JobBrief:
        project_record, _ = authorize(session, principal, action, project)
        brief = job_reads.job(session, job_id)
        if brief is None or brief.project.id != project_record.id or brief.notebook_name != NOTEBOOK_NAME:
            raise NotFound("project {project!r} has no optimization {job_id}", project=project, job_id=job_id)
        return brief

    @staticmethod
    def _answer(brief: job_reads.JobBrief) -> Optimization:
        tags = brief.tags
        model, _, version = tags.get("optimized_model", "").rpartition("/")
        summary, reason = None, brief.reason
        if brief.state == "succeeded":
            try:
                found = read_last(brief.output_path, SUMMARY_MIME)
                if found is None:
                    reason = "the optimize notebook ended without showing its summary"
                else:
                    summary = NavigatorSummary.model_validate(normalize_summary(found, f"job {brief.id}'s summary"))
            except ValueError as error:
                reason = str(error)
        output = job_reads.work_directory(brief) / OUTPUT_DIR
        return Optimization(
            id=brief.id, project=brief.project.name, model=model, version=int(version or 0),
            device=tags.get("optimize_device", ""), formats=[name for name in tags.get("optimize_formats", "")
                                                             .split(",") if name] or None,
            batch_sizes=[int(size) for size in tags.get("optimize_batch_sizes", "").split(",") if size],
            triton_name=tags.get("optimize_triton_name", ""), state=brief.state, created_by=brief.owner,
            submitted_at=brief.submitted_at, finished_at=brief.finished_at, reason=reason, summary=summary,
            has_package=summary is not None and summary.package is not None and output.is_dir())

    @staticmethod
    def _archive(brief: job_reads.JobBrief, archive: Path) -> None:
        """Regular files and folders of the output only, each opened without following a link at any step
        (the folder is the job owner's: a link in it, or one swapped in while this reads, must not hand out a
        file of the platform's). Written whole or not at all."""
        root = job_reads.work_directory(brief) / OUTPUT_DIR
        archive.parent.mkdir(parents=True, exist_ok=True)
        try:
            root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except OSError:
            raise NotFound("optimization {id}'s output folder is gone", code="no_package", id=brief.id) from None
        try:
            with tempfile.NamedTemporaryFile(dir=archive.parent, suffix=".tmp", delete=False) as handle:
                with tarfile.open(fileobj=handle, mode="w:gz") as tar:
                    _add_tree(tar, root_fd, str(brief.id), skip=SKIPPED_IN_PACKAGE)
        finally:
            os.close(root_fd)
        Path(handle.name).replace(archive)


def _add_tree(tar: tarfile.TarFile, directory_fd: int, arcname: str, *, skip: tuple[str, ...] = ()) -> None:
    info = tarfile.TarInfo(arcname)
    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, int(os.fstat(directory_fd).st_mtime)
    tar.addfile(info)
    for name in sorted(os.listdir(directory_fd)):
        if name in skip:
            continue
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=directory_fd)
        except OSError:  # a link (ELOOP), or gone
            continue
        try:
            status = os.fstat(fd)
            if stat.S_ISDIR(status.st_mode):
                _add_tree(tar, fd, f"{arcname}/{name}")
            elif stat.S_ISREG(status.st_mode):
                info = tarfile.TarInfo(f"{arcname}/{name}")
                info.size, info.mode, info.mtime = status.st_size, 0o644, int(status.st_mtime)
                with os.fdopen(os.dup(fd), "rb") as source:
                    tar.addfile(info, source)
        finally:
            os.close(fd)
