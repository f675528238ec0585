"""Service rollouts: an approved model release moved onto an endpoint in steps — weights, pauses, analyses of
the canary's metrics — by a controller that checks the release's signature before every traffic shift, aborts
when an analysis fails, and takes up every active rollout again after a restart. People promote, abort, retry
and roll back; the rollout acts with its starter's rights (checked again at every shift)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..audit import record
from ..catalog.base import utcnow
from ..catalog.service import CatalogService
from ..errors import AitipError, Conflict, InvalidInput
from ..i18n import N_
from ..identity.principal import Principal
from ..operations.actions import performs
from ..projects.access import authorize, project_row, refuse_if_archived
from ..serving import reads as serving_reads
from . import progress as machine
from . import rollout_words as words
from .models import ReleaseKind, ReleaseState
from .rollout_models import AnalysisRun, PromoteBody, Rollout, RolloutList, RolloutListQuery, RolloutStart, Step
from .notices import ReleaseNotices
from .signing import ReleaseSigner, Signature
from .tables import ReleaseRecord, RolloutRecord

log = logging.getLogger("aitip.releases")

CONTROLLER_ACTOR = "aitip:rollout"
SERVING_READ, SERVING_DEPLOY = "serving.read", "serving.deploy"
def _steps(record: RolloutRecord) -> list[Step]:
    return [Step.model_validate(step, strict=False) for step in record.steps]


def _progress(record: RolloutRecord) -> machine.Progress:
    return machine.Progress(record.state, record.step, record.step_started_at, record.weight, tuple(record.runs),
                            record.message)


def rollout_answer(record: RolloutRecord) -> Rollout:
    return Rollout(id=record.id, project=record.project.name, release_id=record.release_id,
                   release=f"{record.release.name} {record.release.version}", endpoint=record.endpoint,
                   model=record.model, stable_version=record.stable_version, canary_version=record.canary_version,
                   steps=record.steps, step=record.step, weight=record.weight, state=record.state,
                   message=record.message, analysis_runs=[AnalysisRun.model_validate(run) for run in record.runs],
                   created_by=record.created_by, created_at=record.created_at, updated_at=record.updated_at)


class RolloutService(CatalogService):
    def __init__(self, catalog: Any, serving: Any, signer: ReleaseSigner, *, notices: ReleaseNotices | None = None,
                 tick_seconds: float = 1.0, clock: Any = lambda: datetime.now(timezone.utc)) -> None:
        super().__init__(catalog)
        self.serving = serving
        self.signer = signer
        self.notices = notices or ReleaseNotices()
        self.tick_seconds = tick_seconds
        self.clock = clock
        self._locks: defaultdict[int, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._task: asyncio.Task[None] | None = None
        self._watched_since: datetime | None = None  # when this controller started: no analysis judges before

    # ----- the controller -----

    async def start(self) -> None:
        self._watched_since = self.clock()
        self._task = asyncio.create_task(self._run(), name="aitip-rollouts")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                for rollout_id in await self._in_transaction(lambda session: list(session.scalars(
                        select(RolloutRecord.id).where(RolloutRecord.state == "progressing")))):
                    await self._advance(rollout_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("rollouts: a pass failed; trying again")
            await asyncio.sleep(self.tick_seconds)

    async def _advance(self, rollout_id: int, act: Any = None, actor: str = CONTROLLER_ACTOR,
                       action: str = "rollout.advance") -> Rollout:
        """One step of the state machine under the rollout's lock: ``act`` (a person's action) or the machine's
        own advance, the traffic it asks for shifted, and the new state persisted."""
        async with self._locks[rollout_id]:
            if act is None and await self._in_transaction(lambda session: self._analysis_due(session, rollout_id)):
                # The serving metrics are written every few seconds: write what the canary served up to now, so
                # that the analysis judges its whole window rather than the part a flush happened to reach.
                await self.serving.flush()
            now = self.clock()

            def decide(session: Session) -> tuple[machine.Outcome, dict[str, Any], Rollout | None]:
                found = session.get(RolloutRecord, rollout_id)
                assert found is not None
                steps, current = _steps(found), _progress(found)
                if act is not None:
                    outcome = act(steps, current, now)
                    if outcome.progress.state == "progressing":
                        further = machine.advance(steps, outcome.progress, now, self._measure(session, found),
                                               self._watched_since)
                        outcome = machine.Outcome(further.progress, outcome.weights + further.weights)
                elif current.state == "progressing":
                    outcome = machine.advance(steps, current, now, self._measure(session, found),
                                              self._watched_since)
                else:
                    outcome = machine.Outcome(current)
                if act is None and outcome.progress == current and not outcome.weights:
                    return outcome, {}, rollout_answer(found)  # an idle tick writes nothing
                facts = {"project": found.project.name, "endpoint": found.endpoint, "stable": found.stable_version,
                         "canary": found.canary_version, "acting_as": dict(found.acting_as),
                         "content": found.release.content, "signature": Signature(
                             found.release.key_id, found.release.content_sha256, found.release.signature)}
                return outcome, facts, None

            try:
                outcome, facts, idle = await self._in_transaction(decide)
            except machine.Refused as refused:
                raise Conflict(str(refused), code="rollout_state") from None
            if idle is not None:
                return idle
            progress_now = outcome.progress
            for weight in outcome.weights:
                problem = await self._shift(facts, weight)
                if problem:
                    progress_now = machine.Progress("degraded", progress_now.step, now, 0, progress_now.runs,
                                                    f"stopped: {problem}")
                    if weight:
                        await self._shift(facts, 0)
                    break
            answer = await self._in_transaction(lambda session: self._persist(session, rollout_id, progress_now,
                                                                              actor, action))
            self.notices.sent()
            return answer

    def _analysis_due(self, session: Session, rollout_id: int) -> bool:
        found = session.get(RolloutRecord, rollout_id)
        return found is not None and machine.analysis_due(_steps(found), _progress(found), self.clock(),
                                                          self._watched_since)

    def _measure(self, session: Session, found: RolloutRecord) -> machine.Measure:
        endpoint_id = serving_reads.endpoint_id(session, found.project_id, found.endpoint)

        def measure(since: datetime, until: datetime) -> machine.Measured:
            if endpoint_id is None:
                return machine.Measured(0, 0, None, None)
            window = serving_reads.version_window(session, endpoint_id, found.canary_version, since, until)
            return machine.Measured(window.requests, window.errors, window.error_rate, window.latency_p99_ms,
                                    window.labelled, window.accuracy)

        return measure

    async def _shift(self, facts: dict[str, Any], weight: int) -> str:
        """Give the canary ``weight`` percent (the stable version the rest), after checking the release's
        signature; what went wrong, or ""."""
        from ..serving.models import TrafficSet

        if weight:
            checked = self.signer.check(facts["content"], facts["signature"])
            if not checked.valid:
                return words.SIGNATURE_BROKEN.format(reason=checked.english)
        acting = Principal(facts["acting_as"]["name"], frozenset(facts["acting_as"].get("groups", [])),
                           bool(facts["acting_as"].get("is_admin")))
        weights = {str(facts["stable"]): 100 - weight, str(facts["canary"]): weight}
        try:
            await self.serving.set_traffic(acting, facts["project"], facts["endpoint"],
                                           TrafficSet(weights=weights), action=SERVING_DEPLOY)
        except AitipError as error:
            return words.TRAFFIC_NOT_SET.format(error=error.message)
        return ""

    def _persist(self, session: Session, rollout_id: int, progress_now: machine.Progress, actor: str,
                 action: str) -> Rollout:
        found = session.get(RolloutRecord, rollout_id)
        assert found is not None
        changed = (found.state, found.step, found.weight) != (progress_now.state, progress_now.step,
                                                               progress_now.weight)
        event = progress_now.state if progress_now.state != found.state else \
            "step" if progress_now.weight != found.weight else None
        found.state, found.step, found.weight = progress_now.state, progress_now.step, progress_now.weight
        found.step_started_at, found.runs, found.message = (progress_now.step_started_at, list(progress_now.runs),
                                                            progress_now.message)
        found.updated_at = utcnow()
        if changed or actor != CONTROLLER_ACTOR:
            record(session, actor, action, f"rollout:{found.project.name}/{found.id}",
                   {"state": found.state, "step": found.step, "weight": found.weight, "message": found.message})
        session.flush()
        if event is not None:
            self.notices.rollout(session, found, event, actor)
        return rollout_answer(found)

    # ----- the operations -----

    @performs
    async def start_rollout(self, principal: Principal | None, project: str, release: int, body: RolloutStart, *,
                            action: str) -> Rollout:
        """Roll an approved release of a model version (a model, a service, or firmware that embeds one) out onto an
        endpoint; answers after its first step is taken."""
        principal = self._signed_in(principal)

        def check(session: Session) -> tuple[str, int, str, dict[str, Any] | None]:
            project_record, _ = authorize(session, principal, action, project)
            refuse_if_archived(project_record)
            found = project_row(session, ReleaseRecord, release, project_record, N_("release"))
            title = f"{found.name} {found.version}"
            subject = found.content["subject"]
            if "model" not in subject:
                raise InvalidInput("{title} is a {kind} release without a model version: only a release of one (a "
                                   "model, a service, or firmware that embeds one) rolls out onto an endpoint",
                                   code="release_not_a_model", title=title, kind=found.kind)
            if found.kind == ReleaseKind.service.value and subject["endpoint"] != body.endpoint:
                raise InvalidInput("{title} is the service release of endpoint {endpoint!r}, not of {endpoint2!r}",
                                   code="rollout_wrong_endpoint",
                                   title=title, endpoint=subject['endpoint'], endpoint2=body.endpoint)
            if found.state not in (ReleaseState.approved.value, ReleaseState.released.value):
                raise Conflict("{title} is {state}: only an approved release rolls out",
                               code="release_not_approved", title=title, state=found.state)
            checked = self.signer.check(found.content, Signature(found.key_id, found.content_sha256,
                                                                  found.signature))
            if not checked.valid:
                raise Conflict("{title} does not roll out: its signature does not hold ({reason})",
                               code="release_signature_invalid", title=title, reason=checked.reason)
            busy = session.scalar(select(RolloutRecord.id).where(
                RolloutRecord.project_id == project_record.id, RolloutRecord.endpoint == body.endpoint,
                RolloutRecord.state.in_(machine.ACTIVE)))
            if busy is not None:
                raise Conflict("endpoint {endpoint!r} has an active rollout ({busy}): finish, abort or roll it "
                               "back first", code="rollout_active", endpoint=body.endpoint, busy=busy)
            return subject["model"], int(subject["model_version"]), title, subject.get("settings")

        model, canary, title, settings = await self._in_transaction(check)
        endpoint = await self.serving.get(principal, project, body.endpoint, action=SERVING_READ)
        if endpoint.model != model:
            raise InvalidInput("endpoint {endpoint!r} serves {model!r}, not {title}'s model {model2!r}",
                               code="rollout_wrong_model",
                               endpoint=body.endpoint, model=endpoint.model, title=title, model2=model)
        serving = [variant.version for variant in endpoint.variants if variant.weight > 0]
        if len(serving) != 1:
            raise Conflict("endpoint {endpoint!r} splits its traffic between versions {versions}: give one version all "
                           "of it first",
                           code="rollout_split_traffic", endpoint=body.endpoint, versions=', '.join(map(str, serving)))
        stable = serving[0]
        if stable == canary:
            raise Conflict("version {canary} already takes all of {endpoint!r}'s traffic",
                           code="rollout_nothing_to_do", canary=canary, endpoint=body.endpoint)
        if settings is not None:  # after every refusal: a refused start changes nothing
            await self._take_settings(principal, project, body.endpoint, title, settings, endpoint.settings)
        if all(variant.version != canary for variant in endpoint.variants):
            from ..serving.models import VariantAdd

            await self.serving.add_version(principal, project, body.endpoint, VariantAdd(version=canary, weight=0),
                                           action=SERVING_DEPLOY)

        def create(session: Session) -> int:
            project_record, _ = authorize(session, principal, action, project)
            found = RolloutRecord(
                project_id=project_record.id, release_id=release, endpoint=body.endpoint, model=model,
                stable_version=stable, canary_version=canary,
                steps=[step.model_dump(mode="json", exclude_none=True) for step in body.steps],
                state="progressing", step=0, step_started_at=self.clock(), weight=0, runs=[], message="",
                acting_as={"name": principal.name, "groups": sorted(principal.groups),
                           "is_admin": principal.is_admin}, created_by=principal.name)
            session.add(found)
            session.flush()
            record(session, principal.name, action, f"rollout:{project}/{found.id}",
                   {"release": release, "endpoint": body.endpoint, "stable": stable, "canary": canary})
            self.notices.rollout(session, found, "started", principal.name)
            return found.id

        rollout_id = await self._in_transaction(create)
        return await self._advance(rollout_id)

    async def _take_settings(self, principal: Principal, project: str, endpoint: str, title: str,
                             settings: dict[str, Any], deployed: dict[str, Any]) -> None:
        """A service release's settings onto its endpoint before its canary takes traffic: those a running endpoint
        takes (scaling) are set; any other that differs from the deployment's is refused (it needs one of its own)."""
        from ..serving.models import ScalingSet

        differ = sorted(key for key in settings
                        if key not in serving_reads.LIVE_SETTINGS and deployed.get(key) != settings[key])
        if differ:
            raise Conflict("{title} sets {differ} otherwise than endpoint {endpoint!r} was deployed with; those "
                           "take a deployment of their own (deploy an endpoint with the release's settings, or "
                           "request a release with the endpoint's)", code="rollout_settings_differ",
                           detail={key: {"release": settings[key], "endpoint": deployed.get(key)} for key in differ},
                           title=title, differ=', '.join(differ), endpoint=endpoint)
        if deployed.get("scaling") != settings["scaling"]:
            await self.serving.set_scaling(principal, project, endpoint,
                                           ScalingSet.model_validate(settings["scaling"], strict=False),
                                           action=SERVING_DEPLOY)

    def _rollout(self, session: Session, principal: Principal, action: str, project: str, rollout: int,
                 writing: bool = False) -> RolloutRecord:
        project_record, _ = authorize(session, principal, action, project)
        if writing:
            refuse_if_archived(project_record)
        return project_row(session, RolloutRecord, rollout, project_record, N_("rollout"))

    @performs
    async def list_rollouts(self, principal: Principal | None, project: str, query: RolloutListQuery, *,
                            action: str) -> RolloutList:
        principal = self._signed_in(principal)

        def read(session: Session) -> RolloutList:
            project_record, _ = authorize(session, principal, action, project)
            statement = select(RolloutRecord).where(RolloutRecord.project_id == project_record.id)
            if query.state is not None:
                statement = statement.where(RolloutRecord.state == query.state.value)
            found = session.scalars(statement.order_by(RolloutRecord.id.desc()).limit(query.limit)).all()
            return RolloutList(rollouts=[rollout_answer(item) for item in found])

        return await self._in_transaction(read)

    @performs
    async def get_rollout(self, principal: Principal | None, project: str, rollout: int, *,
                          action: str) -> Rollout:
        principal = self._signed_in(principal)
        return await self._in_transaction(
            lambda session: rollout_answer(self._rollout(session, principal, action, project, rollout)))

    async def _act(self, principal: Principal | None, project: str, rollout: int, action: str, verb: str,
                   act: Any) -> Rollout:
        principal = self._signed_in(principal)
        await self._in_transaction(lambda session: self._rollout(session, principal, action, project, rollout,
                                                                 writing=True))
        return await self._advance(rollout, act, actor=principal.name, action=f"rollout.{verb}")

    @performs
    async def promote_rollout(self, principal: Principal | None, project: str, rollout: int, body: PromoteBody, *,
                              action: str) -> Rollout:
        """Past the current pause or analysis, or (``full``) straight to 100 %."""
        return await self._act(principal, project, rollout, action, "promote",
                               lambda steps, now_progress, now: machine.promote(steps, now_progress, now,
                                                                                full=body.full))

    @performs
    async def abort_rollout(self, principal: Principal | None, project: str, rollout: int, *,
                            action: str) -> Rollout:
        """The canary's weight to 0 at once; the rollout is degraded until retried or rolled back."""
        return await self._act(principal, project, rollout, action, "abort",
                               lambda steps, now_progress, now: machine.abort(now_progress))

    @performs
    async def retry_rollout(self, principal: Principal | None, project: str, rollout: int, *,
                            action: str) -> Rollout:
        """A degraded rollout from its first step again."""
        return await self._act(principal, project, rollout, action, "retry",
                               lambda steps, now_progress, now: machine.retry(now_progress, now))

    @performs
    async def rollback_rollout(self, principal: Principal | None, project: str, rollout: int, *,
                               action: str) -> Rollout:
        """Back to the stable version (the last good one): it takes all the traffic again."""
        return await self._act(principal, project, rollout, action, "rollback",
                               lambda steps, now_progress, now: machine.rollback(now_progress))
