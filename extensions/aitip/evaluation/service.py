"""Evaluations of a project's registered model versions: the policies that say how each model is judged,
manual evaluations, and reading them back. Each evaluation runs as a job (an evaluation notebook, a
snapshot, its own MLflow run tagged with the model's run); the controller (:mod:`.controller`) starts the
automatic ones and judges each when its job ends."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..audit import record
from ..catalog.base import utcnow
from ..catalog.service import CatalogService
from ..datasets import reads as dataset_reads
from ..errors import InvalidInput, NotFound
from ..identity.principal import Principal
from ..jobs.models import JobInput, JobSubmit
from ..operations.actions import performs
from ..projects.access import authorize, refuse_if_archived
from ..shipped_notebooks import shipped_notebooks
from .models import (
    Evaluation,
    EvaluationCreate,
    EvaluationDetail,
    EvaluationList,
    EvaluationListQuery,
    EvaluationSettings,
    Policy,
    PolicyList,
    PolicySet,
    Task,
    settings_from_json,
)
from .tables import EvaluationPolicyRecord, EvaluationRecord

log = logging.getLogger("aitip.evaluation")

DEFAULT_NOTEBOOKS = {Task.classification: "classification", Task.regression: "regression",
                     Task.text_generation: "text_generation", Task.ranking: "ranking"}
JOB_SUBMIT = "job.submit"  # an evaluation is a job: its starter must be allowed to run one


def policy_answer(policy: EvaluationPolicyRecord) -> Policy:
    return Policy(project=policy.project.name, model=policy.model, automatic=policy.automatic,
                  settings=policy.settings, updated_by=policy.updated_by, created_at=policy.created_at,
                  updated_at=policy.updated_at)


def evaluation_answer(record: EvaluationRecord, *, detail: bool = False) -> Evaluation:
    fields: dict[str, Any] = dict(
        id=record.id, project=record.project.name, model=record.model, model_version=record.model_version,
        model_run_id=record.model_run_id, baseline_version=record.baseline_version, dataset=record.dataset,
        dataset_version=record.dataset_version, dataset_md5=record.dataset_md5, job_id=record.job_id,
        notebook_sha256=record.notebook_sha256, state=record.state, trigger=record.trigger, settings=record.settings,
        metrics=record.metrics, baseline_metrics=record.baseline_metrics, verdict=record.verdict, error=record.error,
        reason=record.reason, warnings=list(record.warnings or ()), has_report=record.report_path is not None, created_by=record.created_by,
        created_at=record.created_at, finished_at=record.finished_at)
    return EvaluationDetail(**fields, result=record.result) if detail else Evaluation(**fields)


def baseline_version(rule: str, candidate: int, versions: list[int], aliases: dict[str, int]) -> int | None:
    """The version a candidate is compared with under ``rule`` (see EvaluationSettings.baseline); None where
    there is none to compare with (a first version). A named version the model lacks is a 422."""
    if rule == "none":
        return None
    if rule.isdigit():
        if int(rule) not in versions:
            raise InvalidInput("the baseline version {rule} does not exist", code="unknown_baseline", rule=rule)
        return int(rule) if int(rule) != candidate else None
    champion = aliases.get("champion")
    if rule == "champion" and champion is not None and champion != candidate:
        return champion
    earlier = [version for version in versions if version < candidate]
    return max(earlier) if earlier else None


def check_label_column(data: dataset_reads.VersionBrief, label_column: str) -> None:
    """A table must have the label column (422 naming it and the columns it has); an image folder's label is
    its class folder."""
    if data.columns is not None and label_column not in data.columns:
        raise InvalidInput("dataset {dataset!r} v{version} has no column {label_column!r} (the label column); it "
                           "has: {columns}", code="unknown_label_column",
                           detail=[{"field": "label_column", "message": "not a column of the dataset",
                                    "type": "value_error"}],
                           dataset=data.dataset, version=data.version, label_column=label_column,
                           columns=', '.join(data.columns[:20]))


class EvaluationService(CatalogService):
    def __init__(self, catalog: Any, jobs: Any, experiments: Any, reports_dir: Path) -> None:
        super().__init__(catalog)
        self.jobs = jobs
        self.experiments = experiments
        self.reports_dir = reports_dir
        self._changed: dict[int, asyncio.Event] = {}

    # ----- policies -----

    @performs
    async def set_policy(self, principal: Principal | None, project: str, model: str, body: PolicySet, *,
                         action: str) -> Policy:
        """Say how a model is evaluated; with ``automatic``, each version a training job of this project
        registers from now on is evaluated at once (the model may have no version yet: its first is too)."""
        principal = self._signed_in(principal)
        settings = body.model_dump(mode="json", exclude={"automatic"})
        if body.notebook_document is not None:
            self.jobs.validate_notebook(body.notebook_document)

        def work(session: Session) -> Policy:
            record_, _ = authorize(session, principal, action, project)
            refuse_if_archived(record_)
            check_label_column(dataset_reads.version_brief(session, record_.id, body.dataset, body.dataset_version),
                               body.label_column)
            policy = session.scalar(select(EvaluationPolicyRecord).where(
                EvaluationPolicyRecord.project_id == record_.id, EvaluationPolicyRecord.model == model))
            now = utcnow()
            if policy is None:
                policy = EvaluationPolicyRecord(project_id=record_.id, model=model, created_at=now)
                policy.project = record_
                session.add(policy)
            policy.settings, policy.automatic = settings, body.automatic
            policy.updated_by, policy.updated_at = principal.name, now
            session.flush()
            record(session, principal.name, action, f"model:{model}",
                   {"project": project, "evaluation_policy": settings, "automatic": body.automatic})
            return policy_answer(policy)

        return await self._in_transaction(work)

    @performs
    async def get_policy(self, principal: Principal | None, project: str, model: str, *, action: str) -> Policy:
        principal = self._signed_in(principal)
        return await self._in_transaction(lambda s: policy_answer(self._policy(s, principal, project, model,
                                                                               action)))

    @performs
    async def list_policies(self, principal: Principal | None, project: str, *, action: str) -> PolicyList:
        principal = self._signed_in(principal)

        def read(session: Session) -> PolicyList:
            project_record, _ = authorize(session, principal, action, project)
            rows = session.scalars(select(EvaluationPolicyRecord).where(
                EvaluationPolicyRecord.project_id == project_record.id).order_by(EvaluationPolicyRecord.model))
            return PolicyList(policies=[policy_answer(row) for row in rows])

        return await self._in_transaction(read)

    @performs
    async def delete_policy(self, principal: Principal | None, project: str, model: str, *, action: str) -> None:
        principal = self._signed_in(principal)

        def work(session: Session) -> None:
            policy = self._policy(session, principal, project, model, action)
            refuse_if_archived(policy.project)
            session.delete(policy)
            record(session, principal.name, action, f"model:{model}", {"project": project,
                                                                       "evaluation_policy": None})

        await self._in_transaction(work)

    @staticmethod
    def _policy(session: Session, principal: Principal, project: str, model: str,
                action: str) -> EvaluationPolicyRecord:
        project_record, _ = authorize(session, principal, action, project)
        policy = session.scalar(select(EvaluationPolicyRecord).where(
            EvaluationPolicyRecord.project_id == project_record.id, EvaluationPolicyRecord.model == model))
        if policy is None:
            raise NotFound("model {model!r} has no evaluation policy in project {project!r}",
                           model=model, project=project)
        return policy

    # ----- evaluations -----

    @performs
    async def create(self, principal: Principal | None, project: str, body: EvaluationCreate, *,
                     action: str) -> Evaluation:
        """Evaluate one version now: the model's policy, with what the request gives instead. Answers at once
        (queued, with its job); the verdict comes when the job ends."""
        principal = self._signed_in(principal)

        def merged(session: Session) -> EvaluationSettings:
            project_record, _ = authorize(session, principal, action, project)
            refuse_if_archived(project_record)
            policy = session.scalar(select(EvaluationPolicyRecord).where(
                EvaluationPolicyRecord.project_id == project_record.id, EvaluationPolicyRecord.model == body.model))
            given = body.model_dump(mode="json", exclude={"model", "version"}, exclude_none=True)
            settings = {**(policy.settings if policy is not None else {}), **given}
            if "dataset" not in settings:
                raise InvalidInput("model {model!r} has no evaluation policy: name the dataset to evaluate on",
                                   code="dataset_required",
                                   detail=[{"field": "dataset", "message": "required without a policy",
                                            "type": "value_error"}], model=body.model)
            return settings_from_json(settings)

        settings = await self._in_transaction(merged)
        return await self.start(principal, project, body.model, body.version, settings, trigger="manual",
                                action=action)

    async def start(self, principal: Principal, project: str, model: str, version: int,
                    settings: EvaluationSettings, *, trigger: str, action: str) -> Evaluation:
        """Record the evaluation and submit its job: the model version and the dataset version are fixed here,
        so the evidence names exactly what was judged."""
        found = await asyncio.to_thread(self.experiments.project_model, project, model)
        versions = {entry.version: entry for entry in found.versions}
        if version not in versions:
            raise NotFound("model {model!r} has no version {version} from project {project!r}",
                           model=model, version=version, project=project)
        baseline = baseline_version(settings.baseline, version, sorted(versions), found.aliases)
        if settings.notebook_document is not None:  # the caller's own, checked whole before anything is written
            notebook_name, notebook = "custom", settings.notebook_document
            self.jobs.validate_notebook(notebook)
        else:
            notebook_name = settings.notebook or DEFAULT_NOTEBOOKS[settings.task]
            notebook_path = shipped_notebooks("evaluate") / f"{notebook_name}.ipynb"
            if not notebook_path.is_file():
                raise InvalidInput("there is no evaluation notebook named {notebook_name!r} (notebooks/evaluate/)",
                                   code="unknown_notebook", notebook_name=notebook_name)
            notebook = json.loads(await asyncio.to_thread(notebook_path.read_text, encoding="utf-8"))

        def create(session: Session) -> tuple[int, dict[str, Any]]:
            project_record, _ = authorize(session, principal, action, project)
            refuse_if_archived(project_record)
            authorize(session, principal, JOB_SUBMIT, project)
            data = dataset_reads.version_brief(session, project_record.id, settings.dataset,
                                               settings.dataset_version)
            check_label_column(data, settings.label_column)
            split = settings.split_column if data.columns is not None and settings.split_column in data.columns \
                else None
            warnings = []
            trained_by = versions[version].job_id
            training_data = dataset_reads.versions_read_by(session, trained_by) if trained_by is not None else []
            # A table without the split column holds nothing to keep its test rows apart. An image folder's split
            # is a file list inside it, which its notebook reads, and its notebook counts the files shared with
            # the training data by their hashes (the same warning then comes from the published overlap).
            if split is None and data.columns is not None and trained_by is not None and dataset_reads.job_read(
                    session, trained_by, data.dataset, data.version):
                warnings.append(f"the model was trained by job {trained_by}, which read {data.dataset} "
                                f"v{data.version}, and this evaluation has no split column to keep to its test "
                                "rows: it is judged on data it was trained on")
            evaluation = EvaluationRecord(
                project_id=project_record.id, model=model, model_version=version,
                model_run_id=versions[version].run_id, baseline_version=baseline, dataset=data.dataset,
                dataset_version=data.version, dataset_md5=data.content_md5,
                settings={**settings.model_dump(mode="json", exclude={"notebook_document"}), "notebook": notebook_name},
                state="queued",
                trigger=trigger, warnings=warnings, created_by=principal.name)
            evaluation.project = project_record
            session.add(evaluation)
            session.flush()
            record(session, principal.name, action, f"evaluation:{evaluation.id}",
                   {"project": project, "model": f"{model}/{version}", "dataset": f"{data.dataset}@v{data.version}",
                    "trigger": trigger})
            parameters = {
                **{key: value for key, value in settings.parameters.items()},
                "model_uri": f"models:/{model}/{version}",
                "baseline_model_uri": f"models:/{model}/{baseline}" if baseline is not None else "",
                "dataset": data.dataset, "label_column": settings.label_column, "split_column": split or "",
                "test_split": settings.test_split, "profile": settings.profile,
                "training_data": [f"{name}@{number}" for name, number in training_data],
                "training_split_column": settings.split_column or ""}
            return evaluation.id, {"parameters": parameters, "dataset_version": data.version,
                                   "dataset": data.dataset, "training_data": training_data}

        evaluation_id, job_plan = await self._in_transaction(create)
        tags = {"evaluation": str(evaluation_id), "evaluated_model": f"{model}/{version}"[:250],
                "evaluated_dataset": f"{job_plan['dataset']}@v{job_plan['dataset_version']}"}
        if versions[version].run_id:
            tags["evaluated_run"] = versions[version].run_id or ""
        request = JobSubmit(project=project, notebook=notebook, notebook_name=f"evaluate-{notebook_name}.ipynb",
                            parameters=_known_parameters(notebook, job_plan["parameters"]),
                            timeout_seconds=settings.timeout_seconds, max_attempts=1, tags=tags,
                            inputs=[JobInput(dataset=name, version=number) for name, number in dict.fromkeys(
                                [(job_plan["dataset"], job_plan["dataset_version"]), *job_plan["training_data"]])])
        try:
            job = await self.jobs.submit(principal, request, action=JOB_SUBMIT)
        except Exception as error:
            message = getattr(error, "message", str(error))
            await self._in_transaction(lambda s: self._fail_unsubmitted(s, evaluation_id, message))
            raise

        def attach(session: Session) -> Evaluation:
            evaluation = session.get(EvaluationRecord, evaluation_id)
            assert evaluation is not None
            evaluation.job_id, evaluation.notebook_sha256 = job.id, job.notebook_sha256
            return evaluation_answer(evaluation)

        answer = await self._in_transaction(attach)
        self.changed(evaluation_id)
        return answer

    @staticmethod
    def _fail_unsubmitted(session: Session, evaluation_id: int, message: str) -> None:
        evaluation = session.get(EvaluationRecord, evaluation_id)
        if evaluation is not None:
            evaluation.state, evaluation.finished_at = "error", utcnow()
            evaluation.error = {"code": "job_not_submitted", "message": message}

    @performs
    async def get(self, principal: Principal | None, project: str, evaluation_id: int, *,
                  action: str) -> EvaluationDetail:
        principal = self._signed_in(principal)
        return await self._in_transaction(lambda s: evaluation_answer(
            self._load(s, principal, project, evaluation_id, action), detail=True))  # type: ignore[return-value]

    @performs
    async def list(self, principal: Principal | None, project: str, query: EvaluationListQuery, *,
                   action: str) -> EvaluationList:
        principal = self._signed_in(principal)

        def read(session: Session) -> EvaluationList:
            project_record, _ = authorize(session, principal, action, project)
            statement = select(EvaluationRecord).where(EvaluationRecord.project_id == project_record.id)
            if query.model is not None:
                statement = statement.where(EvaluationRecord.model == query.model)
            if query.state is not None:
                statement = statement.where(EvaluationRecord.state == query.state.value)
            rows = session.scalars(statement.order_by(EvaluationRecord.id.desc()).offset(query.offset)
                                   .limit(query.limit))
            return EvaluationList(evaluations=[evaluation_answer(row) for row in rows])

        return await self._in_transaction(read)

    @staticmethod
    def _load(session: Session, principal: Principal, project: str, evaluation_id: int,
              action: str) -> EvaluationRecord:
        project_record, _ = authorize(session, principal, action, project)
        evaluation = session.get(EvaluationRecord, evaluation_id)
        if evaluation is None or evaluation.project_id != project_record.id:
            raise NotFound("project {project!r} has no evaluation {evaluation_id}",
                           project=project, evaluation_id=evaluation_id)
        return evaluation

    async def report_path(self, principal: Principal | None, project: str, evaluation_id: int, fmt: str,
                          language: str, *, action: str) -> Path:
        """The evaluation's report in ``fmt`` ("html" or "pdf") and ``language``: written when it was judged
        (in English), in another language on first asking; 404 before it is judged."""
        principal = self._signed_in(principal)
        detail = await self._in_transaction(lambda s: evaluation_answer(
            self._load(s, principal, project, evaluation_id, action), detail=True))
        if not detail.has_report:
            raise NotFound("evaluation {evaluation_id} has no report yet (it is {state})",
                           evaluation_id=evaluation_id, state=detail.state.value)
        path = self.reports_dir / str(evaluation_id) / f"report.{language}.{fmt}"
        if not path.is_file():
            await asyncio.to_thread(self._write_report, detail, language)
        return path

    def render_stored(self, evaluation_id: int, language: str = "en") -> None:
        """Write a judged evaluation's report and mark it written; a report that cannot be drawn is logged and
        leaves the evaluation as it was judged."""
        with self.catalog.session() as session:
            record_ = session.get(EvaluationRecord, evaluation_id)
            if record_ is None or record_.state not in ("passed", "failed", "error"):
                return
            detail = evaluation_answer(record_, detail=True)
        try:
            directory = self._write_report(detail, language)
        except Exception:  # noqa: BLE001 - the verdict stands without its report
            log.exception("evaluation %s: its report could not be written", evaluation_id)
            return
        with self.catalog.session() as session:
            record_ = session.get(EvaluationRecord, evaluation_id)
            if record_ is not None:
                record_.report_path = str(directory)

    def _write_report(self, detail: Evaluation, language: str) -> Path:
        from .reports import write_reports

        directory = self.reports_dir / str(detail.id)
        write_reports(detail.model_dump(mode="json"), directory, language)
        return directory

    async def count_running(self) -> int:
        def read(session: Session) -> int:
            return session.scalar(select(func.count()).select_from(EvaluationRecord)
                                  .where(EvaluationRecord.state.in_(("queued", "running"))))

        return await self._in_transaction(read)

    # ----- waking who follows an evaluation -----

    def changed(self, evaluation_id: int) -> None:
        event = self._changed.pop(evaluation_id, None)
        if event is not None:
            event.set()

    async def wait_changed(self, evaluation_id: int, timeout: float) -> None:
        event = self._changed.setdefault(evaluation_id, asyncio.Event())
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            pass


def _known_parameters(notebook: dict[str, Any], parameters: dict[str, Any]) -> dict[str, Any]:
    """The parameters the notebook's parameters cell declares (a custom notebook may take fewer)."""
    from ..jobs.parameters import declared_parameters

    try:
        declared = declared_parameters(notebook)
    except (ValueError, ValidationError):
        return parameters
    return {name: value for name, value in parameters.items() if name in declared}
