"""Simulations of a project's model versions and endpoints: the scenario templates (the shipped library and
the project's own versions), the policies that simulate a model's versions after their evaluation passes, and
each simulation — a sandboxed job (:class:`aitip.jobs.models.Sandbox`) judged when it ends by the controller
(:mod:`.controller`)."""

from __future__ import annotations

import asyncio
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..audit import record
from ..catalog.base import utcnow
from ..catalog.service import CatalogService
from ..datasets import reads as dataset_reads
from ..errors import Conflict, InvalidInput, NotFound
from ..identity.principal import Principal
from ..jobs.models import JobInput, JobSubmit, Sandbox, SandboxModel
from ..operations.actions import performs
from ..projects.access import authorize, refuse_if_archived
from ..shipped_notebooks import shipped_notebooks
from . import library, template_catalog
from .answers import condition_changes, public_endpoint, simulation_answer
from .models import (
    CompareQuery,
    Comparison,
    Policy,
    PolicyList,
    PolicySet,
    Simulation,
    SimulationCreate,
    SimulationDetail,
    SimulationList,
    SimulationListQuery,
    SimulationSettings,
    Template,
    TemplateList,
    TemplateQuery,
    TemplateSave,
)
from .tables import SimulationPolicyRecord, SimulationRecord

log = logging.getLogger("aitip.simulation")

JOB_SUBMIT = "job.submit"  # a simulation is a job: its starter must be allowed to run one
MODEL_KINDS = ("image", "tabular", "custom")


class SimulationService(CatalogService):
    def __init__(self, catalog: Any, jobs: Any, experiments: Any, reports_dir: Path) -> None:
        super().__init__(catalog)
        self.jobs = jobs
        self.experiments = experiments
        self.reports_dir = reports_dir
        self._changed: dict[int, asyncio.Event] = {}

    # ----- templates -----

    @performs
    async def list_templates(self, principal: Principal | None, project: str, *, action: str) -> TemplateList:
        principal = self._signed_in(principal)

        def read(session: Session) -> TemplateList:
            project_record, _ = authorize(session, principal, action, project)
            return template_catalog.listed(session, project_record.id)

        return await self._in_transaction(read)

    @performs
    async def get_template(self, principal: Principal | None, project: str, name: str, query: TemplateQuery, *,
                           action: str) -> Template:
        principal = self._signed_in(principal)

        def read(session: Session) -> Template:
            project_record, _ = authorize(session, principal, action, project)
            return self._template(session, project_record.id, name, query.version)

        return await self._in_transaction(read)

    @performs
    async def save_template(self, principal: Principal | None, project: str, name: str, body: TemplateSave, *,
                            action: str) -> Template:
        """A new version of the project's template ``name`` (its first, or the next); a name of the shipped
        library is refused (copy it under a name of your own, with ``extends``)."""
        principal = self._signed_in(principal)
        where = "document" if body.document is not None else "yaml"
        with library.refusals_about(where):
            written = dict(body.document) if body.document is not None else library.from_yaml(body.yaml or "")
        if written.get("name", name) != name:
            raise InvalidInput("the template is named {name!r} but saved as {name2!r}",
                               code="template_name_mismatch", name=written['name'], name2=name)
        if name in library.shipped():
            raise Conflict("{name!r} is a template of the shipped library; save your copy under another name (with "
                           "extends: {name})", code="library_template", name=name)

        def work(session: Session) -> Template:
            project_record, _ = authorize(session, principal, action, project)
            refuse_if_archived(project_record)
            with library.refusals_about(where):
                saved = template_catalog.save(session, project_record, name, written, principal.name)
            record(session, principal.name, action, f"simulation_template:{name}",
                   {"project": project, "version": saved.version, "extends": saved.extends})
            return saved

        return await self._in_transaction(work)

    @staticmethod
    def _template(session: Session, project_id: int, name: str, version: int | None) -> Template:
        return template_catalog.find(session, project_id, name, version)

    # ----- policies -----

    @performs
    async def set_policy(self, principal: Principal | None, project: str, model: str, body: PolicySet, *,
                         action: str) -> Policy:
        """Say how a model is simulated; with ``automatic``, each of its versions whose evaluation passes from
        now on is simulated at once."""
        principal = self._signed_in(principal)
        settings = body.model_dump(mode="json", exclude={"automatic"})

        def work(session: Session) -> Policy:
            project_record, _ = authorize(session, principal, action, project)
            refuse_if_archived(project_record)
            template = self._template(session, project_record.id, *library.split_ref(body.template))
            self._check_targets(session, project_record.id, template.template, body, model=model)
            policy = session.scalar(select(SimulationPolicyRecord).where(
                SimulationPolicyRecord.project_id == project_record.id, SimulationPolicyRecord.model == model))
            now = utcnow()
            if policy is None:
                policy = SimulationPolicyRecord(project_id=project_record.id, model=model, created_at=now)
                policy.project = project_record
                session.add(policy)
            policy.settings, policy.automatic = settings, body.automatic
            policy.updated_by, policy.updated_at = principal.name, now
            session.flush()
            record(session, principal.name, action, f"model:{model}",
                   {"project": project, "simulation_policy": _without_header_values(settings),
                    "automatic": body.automatic})
            return _policy_answer(policy)

        return await self._in_transaction(work)

    @performs
    async def get_policy(self, principal: Principal | None, project: str, model: str, *, action: str) -> Policy:
        principal = self._signed_in(principal)
        return await self._in_transaction(lambda s: _policy_answer(self._policy(s, principal, project, model,
                                                                                action)))

    @performs
    async def list_policies(self, principal: Principal | None, project: str, *, action: str) -> PolicyList:
        principal = self._signed_in(principal)

        def read(session: Session) -> PolicyList:
            project_record, _ = authorize(session, principal, action, project)
            rows = session.scalars(select(SimulationPolicyRecord).where(
                SimulationPolicyRecord.project_id == project_record.id).order_by(SimulationPolicyRecord.model))
            return PolicyList(policies=[_policy_answer(row) for row in rows])

        return await self._in_transaction(read)

    @performs
    async def delete_policy(self, principal: Principal | None, project: str, model: str, *, action: str) -> None:
        principal = self._signed_in(principal)

        def work(session: Session) -> None:
            policy = self._policy(session, principal, project, model, action)
            refuse_if_archived(policy.project)
            session.delete(policy)
            record(session, principal.name, action, f"model:{model}", {"project": project,
                                                                       "simulation_policy": None})

        await self._in_transaction(work)

    @staticmethod
    def _policy(session: Session, principal: Principal, project: str, model: str,
                action: str) -> SimulationPolicyRecord:
        project_record, _ = authorize(session, principal, action, project)
        policy = session.scalar(select(SimulationPolicyRecord).where(
            SimulationPolicyRecord.project_id == project_record.id, SimulationPolicyRecord.model == model))
        if policy is None:
            raise NotFound("model {model!r} has no simulation policy in project {project!r}",
                           model=model, project=project)
        return policy

    # ----- simulations -----

    @staticmethod
    def _check_targets(session: Session, project_id: int, template: dict[str, Any], settings: SimulationSettings,
                       *, model: str | None) -> dataset_reads.VersionBrief | None:
        """What the template's kind needs: a model and a dataset version, or an endpoint (422 naming what is
        missing); the dataset version that will be read."""
        kind = template["kind"]
        if kind == "llm":
            if settings.endpoint is None:
                raise InvalidInput("template {name!r} probes an LLM endpoint: describe it (endpoint: uri, "
                                   "req_template_json_object with $INPUT, response_json_field)",
                                   code="endpoint_required",
                                   detail=[{"field": "endpoint", "message": "required for an llm template",
                                            "type": "value_error"}], name=template['name'])
            library.check_endpoint(settings.endpoint.model_dump(mode="json"))
            return None
        if model is None:
            raise InvalidInput("template {name!r} attacks a model: name the model and its version",
                               code="model_required",
                               detail=[{"field": "model", "message": "required", "type": "value_error"}],
                               name=template['name'])
        if settings.dataset is None:
            raise InvalidInput("template {name!r} needs data: name the dataset (its test split is used)",
                               code="dataset_required",
                               detail=[{"field": "dataset", "message": "required", "type": "value_error"}],
                               name=template['name'])
        data = dataset_reads.version_brief(session, project_id, settings.dataset, settings.dataset_version)
        label = (template.get("input") or {}).get("label_column", "label")
        if data.columns is not None and label not in data.columns:
            shown = ", ".join(data.columns[:20]) + (f", … ({len(data.columns)})" if len(data.columns) > 20 else "")
            raise InvalidInput("dataset {dataset!r} v{version} has no column {label!r}, the label column of "
                               "template {name!r} (its input.label_column); it has: {columns}. Save a project "
                               "template that extends {name!r} with input.label_column set to yours",
                               code="unknown_label_column",
                               dataset=data.dataset, version=data.version, label=label, name=template["name"],
                               columns=shown)
        if library.uses(template, "drift"):
            reference = library.drift_reference(template, settings.reference_version)
            if reference is None:
                raise InvalidInput("the template's drift condition compares with another version of the dataset: "
                                   "give reference_version", code="reference_version_required")
            dataset_reads.version_brief(session, project_id, settings.dataset, reference)
        return data

    @performs
    async def create(self, principal: Principal | None, project: str, body: SimulationCreate, *,
                     action: str) -> Simulation:
        """Simulate now: the model's policy, with what the body gives instead. Answers at once (queued, with
        its job); the verdict comes when the job ends."""
        principal = self._signed_in(principal)
        def merged(session: Session) -> SimulationSettings:
            project_record, _ = authorize(session, principal, action, project)
            refuse_if_archived(project_record)
            policy = session.scalar(select(SimulationPolicyRecord).where(
                SimulationPolicyRecord.project_id == project_record.id,
                SimulationPolicyRecord.model == body.model)) if body.model is not None else None
            given = body.model_dump(mode="json", exclude={"model", "version"}, exclude_none=True)
            settings = {**(policy.settings if policy is not None else {}), **given}
            if "template" not in settings:
                raise InvalidInput("name the template (the model has no simulation policy to take it from)",
                                   code="template_required",
                                   detail=[{"field": "template", "message": "required without a policy",
                                            "type": "value_error"}])
            return SimulationSettings.model_validate_json(json.dumps(settings))

        settings = await self._in_transaction(merged)
        return await self.start(principal, project, body.model, body.version, settings, trigger="manual",
                                action=action)

    async def start(self, principal: Principal, project: str, model: str | None, version: int | None,
                    settings: SimulationSettings, *, trigger: str, action: str) -> Simulation:
        """Record the simulation and submit its sandboxed job: template, model and dataset versions are fixed
        here, so the evidence names exactly what was attacked."""
        versions: dict[int, Any] = {}
        if model is not None:
            found = await asyncio.to_thread(self.experiments.project_model, project, model)
            versions = {entry.version: entry for entry in found.versions}
            if version not in versions:
                raise NotFound("model {model!r} has no version {version} from project {project!r}",
                               code="unknown_model_version", model=model, version=version, project=project)

        def plan(session: Session) -> tuple[Template, dataset_reads.VersionBrief | None]:
            project_record, _ = authorize(session, principal, action, project)
            refuse_if_archived(project_record)
            authorize(session, principal, JOB_SUBMIT, project)
            template = self._template(session, project_record.id, *library.split_ref(settings.template))
            data = self._check_targets(session, project_record.id, template.template, settings, model=model)
            return template, data

        template, data = await self._in_transaction(plan)
        resolved = template.template
        if model is not None and library.needs_gradients(resolved):
            await asyncio.to_thread(self._check_gradients, project, model, version, resolved)
        notebook_path = shipped_notebooks("simulate") / f"{resolved['notebook']}.ipynb"
        if not notebook_path.is_file():
            raise InvalidInput("template {name!r} runs notebook {notebook!r}, which is not in notebooks/simulate/",
                               code="unknown_notebook",
                               name=template.name, notebook=resolved['notebook'])
        notebook = json.loads(await asyncio.to_thread(notebook_path.read_text, encoding="utf-8"))
        endpoint = settings.endpoint.model_dump(mode="json") if settings.endpoint is not None else None

        def create(session: Session) -> int:
            project_record, _ = authorize(session, principal, action, project)
            previous = None
            if model is not None:
                previous = session.scalar(select(SimulationRecord.id).where(
                    SimulationRecord.project_id == project_record.id, SimulationRecord.model == model,
                    SimulationRecord.model_version < version, SimulationRecord.template_name == template.name,
                    SimulationRecord.state.in_(("passed", "failed"))).order_by(
                    SimulationRecord.model_version.desc(), SimulationRecord.id.desc()).limit(1))
            simulation = SimulationRecord(
                project_id=project_record.id, template_name=template.name, template_version=template.version,
                template_source=template.source, template=resolved, kind=resolved["kind"], model=model,
                model_version=version, model_run_id=versions[version].run_id if model is not None else None,
                endpoint=endpoint, dataset=data.dataset if data else None,
                dataset_version=data.version if data else None, dataset_md5=data.content_md5 if data else "",
                state="queued", trigger=trigger, previous_id=previous, created_by=principal.name)
            simulation.project = project_record
            session.add(simulation)
            session.flush()
            record(session, principal.name, action, f"simulation:{simulation.id}",
                   {"project": project, "template": f"{template.name}@{template.version}",
                    "model": f"{model}/{version}" if model else None,
                    "endpoint": endpoint["uri"] if endpoint else None,
                    "dataset": f"{data.dataset}@v{data.version}" if data else None, "trigger": trigger})
            return simulation.id

        simulation_id = await self._in_transaction(create)
        limits = resolved.get("limits") or {}
        inputs = []
        reference = library.drift_reference(resolved, settings.reference_version)
        if data is not None:
            inputs.append(JobInput(dataset=data.dataset, version=data.version))
            if reference is not None and reference != data.version:
                inputs.append(JobInput(dataset=data.dataset, version=reference))
        parameters = {
            "template": resolved,
            "model_path": f"models:/{model}/{version}" if model is not None else "",
            "dataset": data.dataset if data else "",
            "reference_dataset": f"{data.dataset}@{reference}" if data is not None and reference is not None else "",
            "endpoint": endpoint or {},
            "gallery_size": settings.gallery_size}
        sandbox = Sandbox(egress=[library.origin(endpoint["uri"])] if endpoint else [],
                          memory_mb=limits.get("memory_mb", 4096), cpu_seconds=limits.get("cpu_seconds", 1800),
                          cpus=limits.get("cpus", 2),
                          models=[SandboxModel(name=model, version=version)] if model is not None else [])
        tags = {"simulation": str(simulation_id), "simulation_template": f"{template.name}@{template.version}"}
        if model is not None:
            tags["simulated_model"] = f"{model}/{version}"[:250]
            if versions[version].run_id:
                tags["simulated_run"] = versions[version].run_id
        request = JobSubmit(project=project, notebook=notebook, notebook_name=f"simulate-{resolved['notebook']}.ipynb",
                            parameters=_known_parameters(notebook, parameters),
                            timeout_seconds=int(limits.get("timeout_seconds", 900)), max_attempts=1, tags=tags,
                            inputs=inputs, sandbox=sandbox)
        try:
            job = await self.jobs.submit(principal, request, action=JOB_SUBMIT)
        except Exception as error:
            message = getattr(error, "message", str(error))
            await self._in_transaction(lambda s: self._fail_unsubmitted(s, simulation_id, message))
            raise

        def attach(session: Session) -> Simulation:
            simulation = session.get(SimulationRecord, simulation_id)
            assert simulation is not None
            simulation.job_id, simulation.notebook_sha256 = job.id, job.notebook_sha256
            return simulation_answer(simulation)

        answer = await self._in_transaction(attach)
        self.changed(simulation_id)
        return answer

    def _check_gradients(self, project: str, model: str, version: int, template: dict[str, Any]) -> None:
        """A gradient attack on a model without loss gradients is the caller's 422, before anything is written:
        the model's files are looked at (never loaded) in a directory of the platform's."""
        with tempfile.TemporaryDirectory(prefix="aitip-model-") as directory:
            path = self.experiments.model_version_files(project, model, version, Path(directory))
            library.check_gradients(template, path)

    @staticmethod
    def _fail_unsubmitted(session: Session, simulation_id: int, message: str) -> None:
        simulation = session.get(SimulationRecord, simulation_id)
        if simulation is not None:
            simulation.state, simulation.finished_at = "error", utcnow()
            simulation.error = {"code": "job_not_submitted", "message": message}
            simulation.reason = message[:500]

    @performs
    async def get(self, principal: Principal | None, project: str, simulation_id: int, *,
                  action: str) -> SimulationDetail:
        principal = self._signed_in(principal)
        return await self._in_transaction(lambda s: simulation_answer(
            self._load(s, principal, project, simulation_id, action), detail=True))  # type: ignore[return-value]

    @performs
    async def list(self, principal: Principal | None, project: str, query: SimulationListQuery, *,
                   action: str) -> SimulationList:
        principal = self._signed_in(principal)

        def read(session: Session) -> SimulationList:
            project_record, _ = authorize(session, principal, action, project)
            statement = select(SimulationRecord).where(SimulationRecord.project_id == project_record.id)
            if query.model is not None:
                statement = statement.where(SimulationRecord.model == query.model)
            if query.template is not None:
                statement = statement.where(SimulationRecord.template_name == query.template)
            if query.state is not None:
                statement = statement.where(SimulationRecord.state == query.state.value)
            total = session.scalar(select(func.count()).select_from(statement.subquery()))
            rows = session.scalars(statement.order_by(SimulationRecord.id.desc()).offset(query.offset)
                                   .limit(query.limit))
            return SimulationList(simulations=[simulation_answer(row) for row in rows], total=total or 0)

        return await self._in_transaction(read)

    @performs
    async def compare(self, principal: Principal | None, project: str, simulation_id: int, query: CompareQuery, *,
                      action: str) -> Comparison:
        principal = self._signed_in(principal)

        def read(session: Session) -> Comparison:
            after = self._load(session, principal, project, simulation_id, action)
            other_id = query.other if query.other is not None else after.previous_id
            if other_id is None:
                raise NotFound("simulation {simulation_id} has no earlier simulation to compare with; name one "
                               "(other)", code="nothing_to_compare", simulation_id=simulation_id)
            before = self._load(session, principal, project, other_id, action)
            if before.template_name != after.template_name:
                raise InvalidInput("simulations {other_id} and {simulation_id} ran different templates "
                                   "({template_name}, {template_name2})", code="different_templates",
                                   other_id=other_id, simulation_id=simulation_id, template_name=before.template_name,
                                   template_name2=after.template_name)
            changes = condition_changes(before.result, after.result)
            tolerance = ((after.template or {}).get("regression") or {}).get("tolerance")
            return Comparison(before=simulation_answer(before), after=simulation_answer(after),
                              metric=(after.template or {}).get("metric", ""), tolerance=tolerance, changes=changes)

        return await self._in_transaction(read)

    @staticmethod
    def _load(session: Session, principal: Principal, project: str, simulation_id: int,
              action: str) -> SimulationRecord:
        project_record, _ = authorize(session, principal, action, project)
        simulation = session.get(SimulationRecord, simulation_id)
        if simulation is None or simulation.project_id != project_record.id:
            raise NotFound("project {project!r} has no simulation {simulation_id}",
                           project=project, simulation_id=simulation_id)
        return simulation

    # ----- reports -----

    async def report_path(self, principal: Principal | None, project: str, simulation_id: int, fmt: str,
                          language: str, *, action: str) -> Path:
        """The security assessment in ``fmt`` ("html" or "pdf") and ``language``: written when the simulation
        was judged (in English), in another language on first asking; 404 before it is judged."""
        principal = self._signed_in(principal)
        found = await self._in_transaction(lambda s: self._report_inputs(
            s, self._load(s, principal, project, simulation_id, action)))
        if found is None:
            raise NotFound("simulation {simulation_id} has no report yet", code="no_report",
                           simulation_id=simulation_id)
        path = self.reports_dir / str(simulation_id) / f"report.{language}.{fmt}"
        if not path.is_file():
            await asyncio.to_thread(self._write_report, found, language)
        return path

    @staticmethod
    def _report_inputs(session: Session, simulation: SimulationRecord) -> dict[str, Any] | None:
        if simulation.state not in ("passed", "failed") or simulation.result is None:
            return None
        previous = session.get(SimulationRecord, simulation.previous_id) if simulation.previous_id else None
        return {"simulation": {**simulation_answer(simulation).model_dump(mode="json"),
                               "template": f"{simulation.template_name}@{simulation.template_version}",
                               "endpoint": (simulation.endpoint or {}).get("uri")},
                "template": simulation.template, "result": simulation.result, "verdict": simulation.verdict or {},
                "previous": {"model_version": previous.model_version, "result": previous.result}
                if previous is not None and previous.result else None}

    def render_stored(self, simulation_id: int, language: str = "en") -> None:
        """Write a judged simulation's report and mark it written; one that cannot be drawn is logged and
        leaves the simulation as it was judged."""
        with self.catalog.session() as session:
            simulation = session.get(SimulationRecord, simulation_id)
            found = self._report_inputs(session, simulation) if simulation is not None else None
        if found is None:
            return
        try:
            directory = self._write_report(found, language)
        except Exception:  # noqa: BLE001 - the verdict stands without its report
            log.exception("simulation %s: its report could not be written", simulation_id)
            return
        with self.catalog.session() as session:
            simulation = session.get(SimulationRecord, simulation_id)
            if simulation is not None:
                simulation.report_path = str(directory)

    def _write_report(self, found: dict[str, Any], language: str) -> Path:
        from .reports import write_reports

        directory = self.reports_dir / str(found["simulation"]["id"])
        write_reports(found["simulation"], found["template"], found["result"], found["verdict"], directory,
                      previous=found["previous"], locale=language)
        return directory

    # ----- waking who follows a simulation -----

    def changed(self, simulation_id: int) -> None:
        event = self._changed.pop(simulation_id, None)
        if event is not None:
            event.set()

    async def wait_changed(self, simulation_id: int, timeout: float) -> None:
        event = self._changed.setdefault(simulation_id, asyncio.Event())
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            pass


def _policy_answer(policy: SimulationPolicyRecord) -> Policy:
    return Policy(project=policy.project.name, model=policy.model, automatic=policy.automatic,
                  settings=_without_header_values(policy.settings), updated_by=policy.updated_by,
                  created_at=policy.created_at, updated_at=policy.updated_at)


def _without_header_values(settings: dict[str, Any]) -> dict[str, Any]:
    endpoint = settings.get("endpoint")
    return {**settings, "endpoint": public_endpoint(endpoint)} if endpoint else settings


def _known_parameters(notebook: dict[str, Any], parameters: dict[str, Any]) -> dict[str, Any]:
    """The parameters the notebook's parameters cell declares."""
    from ..jobs.parameters import declared_parameters

    declared = declared_parameters(notebook)
    return {name: value for name, value in parameters.items() if name in declared}
