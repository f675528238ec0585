"""The job worker: picks queued jobs (priority, fair share, quotas, free GPUs), claims each with a lease,
runs it on the executor, renews the lease by heartbeat, and finishes it. On start and on every pass it
recovers jobs whose worker died: requeued while attempts are left, else failed with the reason.

A lease is the only right to write a running job. A worker that loses its lease stops the kernel and
writes nothing; a job is requeued only once its old kernel is known dead (same host) or its lease has
expired, so no job ever runs twice at once.
"""

from __future__ import annotations

import asyncio
import json
import contextlib
import logging
import os
import signal
import socket
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from traitlets import Dict, Float, Integer, Unicode
from traitlets.config import LoggingConfigurable

from ..catalog import Catalog
from ..catalog.base import utcnow
from ..isolation.accounts import AccountConflict, Accounts, UnmappableName
from ..isolation.state import WORKSPACES_DIR
from ..isolation.workspaces import JobWorkspace, Workspaces
from . import credentials
from .events import JobSignals
from .egress import EgressProxy
from .inputs import JobInputs
from .sandbox import MODELS_DIR, SandboxModels
from .executor import ExecutionRequest, ExecutionResult, Executor, Stop
from .models import JobState
from .notebook_store import NotebookStore
from .notices import JobNotices
from .parameters import effective_parameters
from .service import add_event
from .tables import JobEventRecord, JobRecord, SweepRecord
from .tracking import KernelTrackingAccess, RunInfo, Tracker

log = logging.getLogger("aitip.jobs.worker")
ACTIVE = (JobState.starting.value, JobState.running.value)


def _process_start_ticks(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rindex(")") + 2:].split()[19]
    except (OSError, IndexError):
        return None


def worker_identity() -> str:
    """host/pid/start-ticks/random: enough to tell, on the same host, whether the worker still lives."""
    pid = os.getpid()
    return f"{socket.gethostname()}/{pid}/{_process_start_ticks(pid) or 0}/{uuid.uuid4().hex[:6]}"


def worker_is_dead(worker_id: str | None, host: str) -> bool:
    """True only when we can prove it: the worker ran on this host and its process is gone."""
    if not worker_id:
        return True
    parts = worker_id.split("/")
    if len(parts) != 4 or parts[0] != host:
        return False
    pid, ticks = int(parts[1]), parts[2]
    return _process_start_ticks(pid) != ticks


def kill_orphan_kernel(pid: int | None, host: str | None) -> bool:
    """Kill a dead worker's kernel (and its process group) if it is still running on this host."""
    if not pid or host != socket.gethostname():
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    if b"ipykernel" not in cmdline:
        return False
    with contextlib.suppress(OSError):
        os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)
    return True


class _Observer:
    """Turns execution progress into job events and state. Events are batched off the cell path
    (written every ``flush_seconds`` and before any state change); stream output is coalesced."""

    flush_seconds = 0.1

    def __init__(self, worker: JobWorker, job_id: int, attempt: int) -> None:
        self.worker = worker
        self.job_id = job_id
        self.attempt = attempt
        self._first_cell_at: Any = None  # set once, when the first cell starts; written with the next flush
        self._first_cell_seen = False
        self._pending: list[tuple[str, dict[str, Any]]] = []
        self._flusher: asyncio.Task[None] | None = None

    def _queue(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "output" and self._pending and self._pending[-1][0] == "output":
            last = self._pending[-1][1]
            if last["index"] == data["index"] and last["name"] == data["name"]:
                last["text"] += data["text"]
                return
        self._pending.append((kind, data))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.ensure_future(self._flush_soon())

    async def _flush_soon(self) -> None:
        await asyncio.sleep(self.flush_seconds)
        await self.flush()

    async def flush(self) -> None:
        if self._state_write is not None:
            await self._state_write
        if not self._pending and self._first_cell_at is None:
            return
        pending, self._pending = self._pending, []
        first_cell_at, self._first_cell_at = self._first_cell_at, None

        def work(session: Session) -> None:
            job = session.get(JobRecord, self.job_id)
            if job is None or job.lease_owner != self.worker.worker_id:
                return
            if first_cell_at is not None:
                job.first_cell_at = first_cell_at
            for kind, data in pending:
                add_event(session, job, kind, data)

        await self.worker.in_transaction(work)
        self.worker.signals.job_changed(self.job_id)

    async def kernel_started(self, pid: int | None, host: str) -> None:
        """Recorded while the job's first cells already run; events queued meanwhile are written after it."""
        self._state_write = asyncio.ensure_future(self._record_kernel(pid, host))

    _state_write: asyncio.Future[None] | None = None

    async def _record_kernel(self, pid: int | None, host: str) -> None:
        def work(session: Session) -> None:
            job = session.get(JobRecord, self.job_id)
            if job is None or job.lease_owner != self.worker.worker_id:
                return
            job.state = JobState.running.value
            job.kernel_pid, job.kernel_host = pid, host
            add_event(session, job, "state", {"state": "running", "kernel_pid": pid, "host": host})

        await self.worker.in_transaction(work)
        self.worker.signals.job_changed(self.job_id)

    async def cell_started(self, index: int, source: str) -> None:
        if not self._first_cell_seen:
            self._first_cell_seen = True
            self._first_cell_at = utcnow()
        self._queue("cell_started", {"index": index})

    async def cell_finished(self, index: int, status: str, seconds: float) -> None:
        self._queue("cell_finished", {"index": index, "status": status, "seconds": round(seconds, 4)})

    async def output(self, index: int, name: str, text: str) -> None:
        self._queue("output", {"index": index, "name": name, "text": text})


class JobWorker(LoggingConfigurable):
    lease_seconds = Float(15.0, help="How long a claim on a running job lasts without a heartbeat.").tag(config=True)
    heartbeat_seconds = Float(2.0, help="How often a running job's lease is renewed.").tag(config=True)
    poll_seconds = Float(1.0, help="How often the queue is checked when nothing signals a change.").tag(config=True)
    project_max_jobs = Integer(0, help="Concurrent jobs allowed per project (0: no limit).").tag(config=True)
    project_quotas = Dict(
        help="Per-project overrides: {project: {'jobs': N, 'gpus': N}}.",
    ).tag(config=True)
    gpu_count = Integer(-1, help="GPUs this worker offers (-1: from NVML or $AITIP_GPUS).").tag(config=True)
    api_url = Unicode(
        help="The platform API's URL as job kernels reach it, handed to them as $AITIP_URL with the job's own "
        "token as $AITIP_TOKEN (default: the platform service's own URL; set it where kernels run elsewhere, "
        "e.g. on a Ray cluster). Empty: kernels get no API credential.",
    ).tag(config=True)

    def __init__(self, catalog: Catalog, executor: Executor, store: NotebookStore, signals: JobSignals,
                 tracker: Tracker, jobs_dir: Path, *, accounts: Accounts | None = None,
                 workspaces_dir: Path | None = None, **kwargs: Any) -> None:
        """``jobs_dir`` keeps each attempt's report (the platform's alone); ``workspaces_dir`` each attempt's
        working directories (default: next to ``jobs_dir``). With ``accounts``, kernels run as the job's
        owner's account; without, as the platform's (single-trust mode)."""
        super().__init__(**kwargs)
        self.catalog = catalog
        self.executor = executor
        self.store = store
        self.signals = signals
        self.tracker = tracker
        self.jobs_dir = jobs_dir
        self.accounts = accounts
        self.notices: JobNotices | None = None  # set where the platform delivers webhooks
        self.workspaces = Workspaces(workspaces_dir or jobs_dir.parent / WORKSPACES_DIR,
                                     separate_accounts=accounts is not None)
        self.worker_id = worker_identity()
        self.host = socket.gethostname()
        # -1: the resources domain counts them (NVML or $AITIP_GPUS) and offers them before the start.
        self._free_gpus = list(range(max(self.gpu_count, 0)))
        self._running: dict[int, asyncio.Task[None]] = {}
        # Reports (MLflow artifacts, HTML) are stored one at a time, off the jobs' path.
        self._reports = ThreadPoolExecutor(max_workers=1, thread_name_prefix="aitip-reports")
        self._loop_task: asyncio.Task[None] | None = None
        # Drains kernels' tracking spools (kernels run as their owners); set by the experiments domain.
        self.spools: Any = None
        self.sweeps: Any = None  # a SweepController, when the platform runs sweeps
        self.inputs = JobInputs()  # the datasets domain's, where the platform has a data registry
        self.sandbox_models = SandboxModels()  # the experiments domain's, where the platform tracks models
        self._stopping = False

    async def in_transaction(self, work: Any) -> Any:
        def run() -> Any:
            with self.catalog.session() as session:
                return work(session)

        return await asyncio.to_thread(run)

    # ----- lifecycle -----

    def use_tracking(self, tracker: Tracker, spools: Any) -> None:
        """The experiments domain's tracker (a run per job) and the drain of kernels' spools."""
        self.tracker = tracker
        self.spools = spools
        if self.sweeps is not None:
            self.sweeps.tracker = tracker

    def offer_gpus(self, count: int) -> None:
        """The GPUs this machine has, where the configuration left the count to the platform (-1)."""
        if self.gpu_count < 0 and self._loop_task is None:
            self.gpu_count = count
            self._free_gpus = list(range(count))

    async def start(self) -> None:
        if self.gpu_count < 0:
            self.gpu_count = 0  # nothing counted them
        await self.executor.start()
        if self.spools is not None:
            await asyncio.to_thread(self.spools.recover)  # what a crash left in spools reaches MLflow first
        await self.in_transaction(self._recover)
        self._loop_task = asyncio.ensure_future(self._loop())
        log.info("job worker %s started: %d slots, %d GPUs", self.worker_id, self.executor.slots, self.gpu_count)

    async def stop(self) -> None:
        """Graceful stop: running jobs are interrupted and requeued without using up an attempt."""
        self._stopping = True
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=15)
        await asyncio.to_thread(self._reports.shutdown, wait=True)
        await self.executor.stop()

    async def _loop(self) -> None:
        last_recovery = 0.0
        loop = asyncio.get_running_loop()
        while not self._stopping:
            try:
                if loop.time() - last_recovery >= self.poll_seconds:
                    await self.in_transaction(self._recover)
                    last_recovery = loop.time()
                await self._schedule()
                if self.sweeps is not None:
                    await self.sweeps.advance()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("job worker pass failed; retrying")
            await self.signals.wait_queue(self.poll_seconds)

    # ----- recovery -----

    def _recover(self, session: Session) -> int:
        now = utcnow()
        stale = session.scalars(select(JobRecord).where(JobRecord.state.in_(ACTIVE))).all()
        recovered = 0
        for job in stale:
            if job.lease_owner == self.worker_id:
                continue
            expired = job.lease_expires_at is None or job.lease_expires_at < now
            dead = worker_is_dead(job.lease_owner, self.host)
            if not (expired or dead):
                continue
            killed = kill_orphan_kernel(job.kernel_pid, job.kernel_host)
            if not dead and not killed and job.kernel_host not in (None, self.host):
                # Another host's kernel may still run; its worker stops it when its heartbeat fails.
                # Wait a further lease before reusing the job.
                if job.lease_expires_at is not None and job.lease_expires_at > now - timedelta(seconds=self.lease_seconds):
                    continue
            why = "its worker died" if dead else "its worker stopped renewing the lease"
            self._release(job)
            if job.cancel_requested:
                job.state, job.finished_at = JobState.cancelled.value, now
                job.reason = f"cancelled; {why} while stopping it"
            elif job.attempt < job.max_attempts:
                job.state = JobState.queued.value
                job.reason = f"requeued after attempt {job.attempt}: {why}"
            else:
                job.state, job.finished_at = JobState.failed.value, now
                job.reason = f"{why} during attempt {job.attempt} and no attempts are left"
            add_event(session, job, "state", {"state": job.state, "reason": job.reason, "recovered": True})
            if self.notices is not None and JobState(job.state).finished:
                self.notices.queue(session, job)
            recovered += 1
        if recovered:
            log.warning("recovered %d job(s) from lost workers", recovered)
            session.flush()
        return recovered

    @staticmethod
    def _release(job: JobRecord) -> None:
        job.credential_sha256 = None
        job.lease_owner = None
        job.lease_expires_at = None
        job.kernel_pid = None
        job.kernel_host = None

    # ----- scheduling -----

    def _quota(self, project: str, kind: str) -> int:
        override = (self.project_quotas.get(project) or {}).get(kind)
        if override is not None:
            return int(override)
        return self.project_max_jobs if kind == "jobs" else 0

    def _pick(self, session: Session, slots: int, free_gpus: int) -> list[int]:
        active = session.execute(select(JobRecord.owner, JobRecord.project_id, JobRecord.gpus)
                                 .where(JobRecord.state.in_(ACTIVE))).all()
        per_owner = Counter(row.owner for row in active)
        per_project = Counter(row.project_id for row in active)
        project_gpus: Counter[int] = Counter()
        for row in active:
            project_gpus[row.project_id] += row.gpus
        queued = list(session.scalars(select(JobRecord).where(JobRecord.state == JobState.queued.value)
                                      .order_by(JobRecord.priority.desc(), JobRecord.id).limit(500)).unique())
        picked: list[int] = []
        while slots > 0 and queued:
            eligible = []
            for job in queued:
                name = job.project.name
                jobs_quota, gpu_quota = self._quota(name, "jobs"), self._quota(name, "gpus")
                if job.gpus > free_gpus:
                    continue
                if jobs_quota and per_project[job.project_id] >= jobs_quota:
                    continue
                if gpu_quota and job.gpus and project_gpus[job.project_id] + job.gpus > gpu_quota:
                    continue
                eligible.append(job)
            if not eligible:
                break
            best = max(eligible, key=lambda j: (j.priority, -per_owner[j.owner], -j.id))
            picked.append(best.id)
            queued.remove(best)
            per_owner[best.owner] += 1
            per_project[best.project_id] += 1
            project_gpus[best.project_id] += best.gpus
            slots -= 1
            free_gpus -= best.gpus
        return picked

    def _claim(self, session: Session, job_id: int) -> dict[str, Any] | None:
        now = utcnow()
        token, token_sha256 = credentials.mint(job_id)
        claimed = session.execute(
            update(JobRecord)
            .where(JobRecord.id == job_id, JobRecord.state == JobState.queued.value)
            .values(state=JobState.starting.value, attempt=JobRecord.attempt + 1, lease_owner=self.worker_id,
                    lease_expires_at=now + timedelta(seconds=self.lease_seconds), started_at=now, reason=None,
                    credential_sha256=token_sha256)
            .execution_options(synchronize_session=False)
        ).rowcount
        if claimed != 1:
            return None
        job = session.get(JobRecord, job_id)
        assert job is not None
        session.refresh(job)
        add_event(session, job, "state", {"state": "starting", "attempt": job.attempt, "worker": self.worker_id})
        parent_run = None
        if job.sweep_id is not None:
            sweep = session.get(SweepRecord, job.sweep_id)
            parent_run = sweep.mlflow_run_id if sweep is not None else None
        return {"parent_run_id": parent_run, "id": job.id, "attempt": job.attempt, "project": job.project.name, "owner": job.owner,
                "notebook_sha256": job.notebook_sha256, "notebook_name": job.notebook_name,
                "parameters": job.parameters or {}, "kernel": job.kernel, "gpus": job.gpus,
                "timeout_seconds": job.timeout_seconds, "tags": job.tags or {}, "code_version": job.code_version,
                "has_inputs": bool(self.inputs.refs(session, [job.id])), "credential": token,
                "sandbox": job.sandbox}

    def _pick_and_claim(self, session: Session, slots: int, free_gpus: int) -> list[dict[str, Any]]:
        claimed = []
        for job_id in self._pick(session, slots, free_gpus):
            snapshot = self._claim(session, job_id)
            if snapshot is not None:  # else another worker claimed it first
                claimed.append(snapshot)
        return claimed

    async def _schedule(self) -> None:
        slots = self.executor.slots - len(self._running)
        if slots <= 0 or self._stopping:
            return
        claimed = await self.in_transaction(lambda s: self._pick_and_claim(s, slots, len(self._free_gpus)))
        for snapshot in claimed:
            job_id = snapshot["id"]
            gpus = [self._free_gpus.pop(0) for _ in range(snapshot["gpus"])]
            self.signals.job_changed(job_id)
            task = asyncio.ensure_future(self._run(snapshot, gpus))
            self._running[job_id] = task
            task.add_done_callback(lambda _t, j=job_id, g=gpus: self._done(j, g))

    def _done(self, job_id: int, gpus: list[int]) -> None:
        self._running.pop(job_id, None)
        self._free_gpus = sorted(self._free_gpus + gpus)
        self.signals.queue_changed()

    # ----- running one job -----

    async def _run(self, job: dict[str, Any], gpus: list[int]) -> None:
        job_id, attempt = job["id"], job["attempt"]
        stop: asyncio.Future[Stop] = asyncio.get_running_loop().create_future()
        heartbeat = asyncio.ensure_future(self._heartbeat(job_id, stop))
        output_path = self.jobs_dir / str(job_id) / f"attempt-{attempt}" / "output.ipynb"
        run: RunInfo | None = None
        # The MLflow run is created while the job starts; only the kernel's first `import mlflow` waits for it.
        tracking = asyncio.ensure_future(asyncio.to_thread(self._start_tracking, job))
        late_env = asyncio.ensure_future(self._run_env(job_id, tracking))
        draining = asyncio.ensure_future(self._drain_while_running(job)) if self.spools is not None else None
        sandbox = job.get("sandbox")
        egress: EgressProxy | None = None
        try:
            notebook = self.store.cached(job["notebook_sha256"]) or await asyncio.to_thread(self.store.get,
                                                                                          job["notebook_sha256"])
            workspace = await asyncio.to_thread(self._workspace, job)
            env = {"AITIP_JOB_ID": str(job_id), "AITIP_JOB_ATTEMPT": str(attempt), "AITIP_PROJECT": job["project"]}
            if self.api_url and sandbox is None:  # a sandboxed job holds no platform credential
                env.update(AITIP_URL=self.api_url, AITIP_TOKEN=job["credential"])
            if sandbox is not None and sandbox.get("models"):
                staged = await asyncio.to_thread(self._stage_models, sandbox["models"], workspace)
                env["AITIP_MODELS"] = json.dumps(staged)
            if job.get("has_inputs"):
                inputs = await asyncio.to_thread(self._materialize_inputs, job_id, workspace)
                if inputs:
                    env["AITIP_INPUTS"] = json.dumps(inputs)
            if sandbox is not None and sandbox.get("egress"):
                egress = await self._start_egress(sandbox["egress"], workspace)
                env["AITIP_EGRESS_SOCKET"] = str(egress.socket_path)
            request = ExecutionRequest(job_id, attempt, notebook, job["parameters"], job["kernel"],
                                       job["timeout_seconds"], workspace.work, output_path, env, gpus,
                                       None if sandbox is not None else late_env, workspace=workspace,
                                       sandbox=sandbox)
            observer = _Observer(self, job_id, attempt)
            result = await self.executor.execute(request, observer, stop)
            await observer.flush()
        except asyncio.CancelledError:
            heartbeat.cancel()
            await asyncio.shield(self.in_transaction(lambda s: self._requeue_on_shutdown(s, job_id)))
            raise
        except Exception as exc:  # noqa: BLE001 - reported on the job, never lost
            log.exception("job %s failed in the platform", job_id)
            result = ExecutionResult("failed", f"the platform could not run the job: {type(exc).__name__}: {exc}")
        finally:
            heartbeat.cancel()
            if draining is not None:
                draining.cancel()
            if egress is not None:
                await egress.close()
        if sandbox is not None:
            with contextlib.suppress(Exception):  # the kernel never saw it; its run still holds the report
                await late_env
        if self.spools is not None:
            await asyncio.to_thread(self._drain_spool, job)  # what the kernel wrote last, before the run ends
        if late_env.done() and not late_env.cancelled() and late_env.exception() is None:
            run = tracking.result()
        if result.status == "lost":
            log.warning("job %s: lease lost; its new owner decides what happens", job_id)
            return
        await self.in_transaction(lambda s: self._finish(s, job_id, result, output_path))
        self.signals.job_changed(job_id)
        if self.notices is not None:
            self.notices.sent()
        if run is not None:
            self._reports.submit(self._store_report, job_id, run, result.status, output_path)

    def _start_tracking(self, job: dict[str, Any]) -> RunInfo | None:
        """The job's MLflow run, with every parameter the notebook runs with (defaults included). A kernel run
        as its owner cannot open the store: it gets the tracking gateway, the job's credential and its spool
        instead."""
        if self.tracker.tracks:
            notebook = self.store.cached(job["notebook_sha256"]) or self.store.get(job["notebook_sha256"])
            job = {**job, "parameters": effective_parameters(notebook, job["parameters"])}
        if self.accounts is None or not self.tracker.tracks:
            return self.tracker.start(job)
        if not self.api_url:
            raise RuntimeError("job kernels run as their owners reach MLflow through the platform API, and this "
                               "worker has none (set JobWorker.api_url)")
        base = self.api_url.rstrip("/") + "/api/aitip/v1"
        access = KernelTrackingAccess(gateway_url=f"{base}/tracking", token=job["credential"],
                                      spool=self.workspaces.spool_path(job["id"], job["attempt"]),
                                      confirm_url=f"{base}/jobs/{job['id']}/tracking")
        return self.tracker.start(job, access)

    async def _drain_while_running(self, job: dict[str, Any], interval: float = 1.0) -> None:
        assert self.spools is not None
        while True:
            await asyncio.sleep(interval)
            if self.spools.grew(job["id"], job["attempt"]):
                await asyncio.to_thread(self._drain_spool, job)

    def _drain_spool(self, job: dict[str, Any]) -> None:
        assert self.spools is not None
        try:
            self.spools.drain(job["id"], job["attempt"], job["project"])
        except Exception:  # noqa: BLE001 - kept in the spool; drained again later or at the next start
            log.exception("job %s: its tracking spool could not be drained", job["id"])

    def _workspace(self, job: dict[str, Any]) -> JobWorkspace:
        """The attempt's directories, for its owner's account (created on first use) when users are separate."""
        try:
            account = self.accounts.ensure(job["owner"]) if self.accounts is not None else None
        except (UnmappableName, AccountConflict) as error:
            raise RuntimeError(f"the job cannot run as its owner: {error}") from None
        return self.workspaces.create(job["id"], job["attempt"], account)

    def _stage_models(self, models: list[dict[str, Any]], workspace: JobWorkspace) -> dict[str, str]:
        """A sandbox's model versions, copied into the inputs the owner may read but not change."""
        staged = self.sandbox_models.stage(models, workspace.inputs / MODELS_DIR)
        workspace.seal_inputs()
        return staged

    async def _start_egress(self, origins: list[str], workspace: JobWorkspace) -> EgressProxy:
        """The sandbox's one way out: a socket only the job's owner (and the platform) may connect to."""
        owner = (workspace.account.uid, workspace.account.gid) if workspace.account is not None else None
        proxy = EgressProxy(origins, owner=owner)
        await proxy.start()
        return proxy

    def _materialize_inputs(self, job_id: int, workspace: JobWorkspace) -> dict[str, dict[str, Any]]:
        inputs = self.inputs.materialize(job_id, workspace.inputs, private_registry=workspace.account is not None)
        workspace.seal_inputs()
        return inputs

    async def _run_env(self, job_id: int, tracking: asyncio.Future[RunInfo | None]) -> dict[str, str]:
        run = await tracking
        if run is None:
            return {}
        await self.in_transaction(lambda s: self._set_run(s, job_id, run))
        return run.env

    def _store_report(self, job_id: int, run: RunInfo, status: str, output_path: Path) -> None:
        try:
            self.tracker.finish(run, status, output_path)
        except Exception:  # noqa: BLE001 - the job's result stands; the report is best effort, logged
            log.exception("job %s: could not store its report in MLflow", job_id)
            return
        with self.catalog.session() as session:
            job = session.get(JobRecord, job_id)
            if job is not None:
                add_event(session, job, "report_stored", {"mlflow_run_id": run.run_id})

    def _set_run(self, session: Session, job_id: int, run: RunInfo) -> None:
        session.execute(update(JobRecord).where(JobRecord.id == job_id, JobRecord.lease_owner == self.worker_id)
                        .values(mlflow_run_id=run.run_id, mlflow_experiment_id=run.experiment_id)
                        .execution_options(synchronize_session=False))

    def _finish(self, session: Session, job_id: int, result: ExecutionResult, output_path: Path) -> None:
        job = session.get(JobRecord, job_id)
        if job is None or job.lease_owner != self.worker_id:
            log.warning("job %s: lease lost before finishing; result %s not written", job_id, result.status)
            return
        job.state = result.status
        job.reason = result.reason
        job.failed_cell = result.failed_cell
        job.finished_at = utcnow()
        job.output_path = str(output_path) if output_path.exists() else None
        self._release(job)
        add_event(session, job, "state", {"state": result.status, "reason": result.reason})
        if self.notices is not None:
            self.notices.queue(session, job)

    def _requeue_on_shutdown(self, session: Session, job_id: int) -> None:
        job = session.get(JobRecord, job_id)
        if job is None or job.lease_owner != self.worker_id:
            return
        self._release(job)
        job.state = JobState.queued.value
        job.attempt -= 1
        job.reason = "requeued: the platform shut down while it ran"
        add_event(session, job, "state", {"state": "queued", "reason": job.reason})

    async def _heartbeat(self, job_id: int, stop: asyncio.Future[Stop]) -> None:
        while not stop.done():
            await self.signals.wait_job(job_id, self.heartbeat_seconds)
            owned, cancel_by = await self.in_transaction(lambda s: self._renew(s, job_id))
            if stop.done():
                return
            if not owned:
                stop.set_result(Stop("lost", "the job's lease was lost"))
            elif cancel_by is not None:
                stop.set_result(Stop("cancelled", f"cancelled by {cancel_by}"))

    def _renew(self, session: Session, job_id: int) -> tuple[bool, str | None]:
        renewed = session.execute(
            update(JobRecord)
            .where(JobRecord.id == job_id, JobRecord.lease_owner == self.worker_id, JobRecord.state.in_(ACTIVE))
            .values(lease_expires_at=utcnow() + timedelta(seconds=self.lease_seconds))
            .execution_options(synchronize_session=False)
        ).rowcount
        if renewed != 1:
            return False, None
        job = session.get(JobRecord, job_id)
        if job is None or not job.cancel_requested:
            return True, None
        requested = session.scalar(select(JobEventRecord).where(JobEventRecord.job_id == job_id,
                                                                JobEventRecord.kind == "cancel_requested")
                                   .order_by(JobEventRecord.id.desc()).limit(1))
        return True, (requested.data or {}).get("by", "a user") if requested else "a user"
