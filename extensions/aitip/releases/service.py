"""Releases of a project: the policy that gates them, a request refused unless its evidence is there, signed at
once; decisions by the policy's approvers; promotion through dev, test, staging and prod, each step checking
the signature first. The service checks the caller and keeps the catalog."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..audit import record
from ..catalog.base import utcnow
from ..catalog.service import CatalogService
from ..errors import (CLAUSE_SEPARATOR, Conflict, InvalidInput, Listed, NotFound, PermissionDenied, Phrase,
                      ServiceUnavailable)
from ..i18n import N_
from ..identity.principal import Principal
from ..identity.roles import Role
from ..operations.actions import performs
from ..projects.access import authorize, project_row, refuse_if_archived
from . import approvals, evidence, firmware, semver, windows
from .answers import next_environment, policy_answer, release_answer
from .models import (
    DecisionSet,
    PromotionSet,
    Release,
    ReleaseKind,
    ReleaseList,
    ReleaseListQuery,
    ReleasePolicy,
    ReleasePolicySet,
    ReleaseRequest,
    ReleaseState,
    SigningKey,
    Verification,
)
from .firmware import FirmwareStore
from .notices import ReleaseNotices
from .signing import ALGORITHM, Check, ReleaseSigner, Signature
from .tables import ReleaseDecisionRecord, ReleasePolicyRecord, ReleasePromotionRecord, ReleaseRecord

POLICY_ACTOR = "aitip:policy"
APPROVED_TO_GO = ("staging", "prod")  # environments a release reaches only once approved


def _target(project: str, name: str, version: str) -> str:
    return f"release:{project}/{name}@{version}"


class ReleasesService(CatalogService):
    def __init__(self, catalog: Any, experiments: Any, signer: ReleaseSigner, *, notices: ReleaseNotices | None = None,
                 firmware: FirmwareStore | None = None, clock: Any = lambda: datetime.now(timezone.utc)) -> None:
        super().__init__(catalog)
        self.experiments = experiments
        self.signer = signer
        self.firmware = firmware
        self.notices = notices or ReleaseNotices()
        self.clock = clock

    # ----- the policy -----

    @staticmethod
    def _policy_record(session: Session, project_id: int) -> ReleasePolicyRecord | None:
        return session.scalar(select(ReleasePolicyRecord).where(ReleasePolicyRecord.project_id == project_id))

    def _policy(self, session: Session, project_id: int) -> ReleasePolicySet:
        return policy_answer("", self._policy_record(session, project_id)).settings

    @performs
    async def get_policy(self, principal: Principal | None, project: str, *, action: str) -> ReleasePolicy:
        principal = self._signed_in(principal)

        def read(session: Session) -> ReleasePolicy:
            project_record, _ = authorize(session, principal, action, project)
            return policy_answer(project_record.name, self._policy_record(session, project_record.id))

        return await self._in_transaction(read)

    @performs
    async def set_policy(self, principal: Principal | None, project: str, body: ReleasePolicySet, *,
                         action: str) -> ReleasePolicy:
        """Replace the project's release policy; requests made before keep the approval stages they were made
        under."""
        principal = self._signed_in(principal)
        settings = body.model_dump(mode="json")

        def write(session: Session) -> ReleasePolicy:
            project_record, _ = authorize(session, principal, action, project)
            refuse_if_archived(project_record)
            found = self._policy_record(session, project_record.id)
            if found is None:
                found = ReleasePolicyRecord(project_id=project_record.id, settings=settings,
                                            updated_by=principal.name)
                session.add(found)
            else:
                found.settings, found.updated_by, found.updated_at = settings, principal.name, utcnow()
            record(session, principal.name, action, f"project:{project}", settings)
            session.flush()
            return policy_answer(project_record.name, found)

        return await self._in_transaction(write)

    # ----- reads -----

    def _release(self, session: Session, principal: Principal, action: str, project: str, release_id: int,
                 *, writing: bool = False) -> tuple[Any, Role, ReleaseRecord]:
        project_record, role = authorize(session, principal, action, project)
        if writing:
            refuse_if_archived(project_record)
        return project_record, role, project_row(session, ReleaseRecord, release_id, project_record, N_("release"))

    @performs
    async def list(self, principal: Principal | None, project: str, query: ReleaseListQuery, *,
                   action: str) -> ReleaseList:
        principal = self._signed_in(principal)

        def read(session: Session) -> ReleaseList:
            project_record, _ = authorize(session, principal, action, project)
            statement = select(ReleaseRecord).where(ReleaseRecord.project_id == project_record.id)
            if query.name is not None:
                statement = statement.where(ReleaseRecord.name == query.name)
            if query.state is not None:
                statement = statement.where(ReleaseRecord.state == query.state.value)
            found = session.scalars(statement.order_by(ReleaseRecord.id.desc()).limit(query.limit)).all()
            return ReleaseList(releases=[release_answer(release) for release in found])

        return await self._in_transaction(read)

    @performs
    async def get(self, principal: Principal | None, project: str, release: int, *, action: str) -> Release:
        principal = self._signed_in(principal)
        return await self._in_transaction(
            lambda session: release_answer(self._release(session, principal, action, project, release)[2]))

    # ----- the request -----

    async def _model_run(self, project: str, model: str, version: int) -> str | None:
        registered = await asyncio.to_thread(self.experiments.project_model, project, model)
        for entry in registered.versions:
            if entry.version == version:
                return entry.run_id
        have = ", ".join(str(entry.version) for entry in registered.versions) or "none"
        raise NotFound("model {model!r} has no version {version} in project {project!r} (it has: {have})",
                       model=model, version=version, project=project, have=have)

    @performs
    async def request(self, principal: Principal | None, project: str, body: ReleaseRequest, *,
                      action: str) -> Release:
        """Request a release: refused (422) listing what evidence is missing; otherwise signed and stored, at dev,
        approved at once where the policy approves on evidence."""
        principal = self._signed_in(principal)
        await self._in_transaction(lambda session: authorize(session, principal, action, project))
        run_id = None
        if body.embeds_model:
            assert body.model is not None and body.model_version is not None
            run_id = await self._model_run(project, body.model, body.model_version)
        image = None
        if body.kind is ReleaseKind.firmware:
            assert body.firmware_base64 is not None
            if self.firmware is None:
                raise ServiceUnavailable("this platform keeps no firmware images")
            image = await asyncio.to_thread(self.firmware.put, firmware.decode(body.firmware_base64))

        def write(session: Session) -> Release:
            project_record, _ = authorize(session, principal, action, project)
            refuse_if_archived(project_record)
            policy = self._policy(session, project_record.id)
            earlier = session.scalars(select(ReleaseRecord.version).where(
                ReleaseRecord.project_id == project_record.id, ReleaseRecord.name == body.name)).all()
            if body.version in earlier:
                raise Conflict("{name} {version} is released already in project {project!r}",
                               code="release_exists", name=body.name, version=body.version, project=project)
            newest = semver.newest(list(earlier))
            if newest is not None and semver.order_key(body.version) <= semver.order_key(newest):
                raise Conflict("{name} {version} is not above its newest release, {newest}",
                               code="release_version_not_newer", detail={"newest": newest},
                               name=body.name, version=body.version, newest=newest)
            subject: dict[str, Any] = {}
            found_evidence: list[dict[str, Any]] = []
            if body.embeds_model:
                assert body.model is not None and body.model_version is not None and body.dataset is not None
                found = evidence.gather(session, project_record.id, policy, body.model, body.model_version,
                                        body.dataset, body.dataset_version)
                if found.missing:
                    raise InvalidInput(
                        "{name} {version} lacks the evidence the project's release policy asks for: {missing}",
                        code="evidence_missing", detail=[m.model_dump(mode="json") for m in found.missing],
                        name=body.name, version=body.version,
                        missing=Listed(found.said, CLAUSE_SEPARATOR))
                subject = {"model": body.model, "model_version": body.model_version, "model_run_id": run_id,
                           "dataset": body.dataset, "dataset_version": found.dataset_version}
                found_evidence = [item.model_dump(mode="json") for item in found.evidence]
            if image is not None:
                subject["firmware"] = {"sha256": image.sha256, "length": image.length, "hardware": body.hardware}
            elif body.kind is ReleaseKind.service:
                subject.update(endpoint=body.endpoint, settings=body.settings)
            elif body.kind is ReleaseKind.configuration:
                subject = {"configuration": body.configuration}
            created_at = utcnow()
            content = {"project": project_record.name, "kind": body.kind.value, "name": body.name,
                       "version": body.version, "subject": subject, "evidence": found_evidence,
                       "changelog": body.changelog, "metadata": dict(body.metadata), "requested_by": principal.name,
                       "requested_at": created_at.isoformat()}
            signature = self.signer.sign(content)
            automatic = body.embeds_model and policy.auto_approve
            stages = {"stages": [stage.model_dump(mode="json") for stage in policy.approvals],
                      "ordered": policy.ordered}
            release = ReleaseRecord(
                project_id=project_record.id, kind=body.kind.value, name=body.name, version=body.version,
                state=(ReleaseState.approved if automatic else ReleaseState.requested).value, environment="dev",
                content=content, content_sha256=signature.content_sha256, signature=signature.value,
                key_id=signature.key_id, approvals=stages, created_by=principal.name, created_at=created_at,
                updated_at=created_at)
            session.add(release)
            target = _target(project_record.name, body.name, body.version)
            record(session, principal.name, action, target,
                   {"content_sha256": signature.content_sha256, "evidence": [(e["kind"], e["id"])
                                                                             for e in found_evidence]})
            if automatic:
                release.decisions.append(ReleaseDecisionRecord(
                    user=POLICY_ACTOR, decision="approve", stage=None, role="policy",
                    comment="every evidence gate passed; the policy approves on evidence"))
                record(session, POLICY_ACTOR, "release.approve", target, {"automatic": True})
            try:
                session.flush()
            except IntegrityError as error:
                raise Conflict("{name} {version} is released already in project {project!r}",
                               code="release_exists", name=body.name, version=body.version, project=project) from error
            self.notices.release(session, release, "requested", principal.name)
            if automatic:
                self.notices.release(session, release, "approved", POLICY_ACTOR)
            return release_answer(release)

        answer = await self._in_transaction(write)
        self.notices.sent()
        return answer

    # ----- decisions -----

    @performs
    async def decide(self, principal: Principal | None, project: str, release: int, body: DecisionSet, *,
                     action: str) -> Release:
        """Approve or reject a request, as the policy's stages allow; never one's own."""
        principal = self._signed_in(principal)

        def write(session: Session) -> Release:
            project_record, role, found = self._release(session, principal, action, project, release, writing=True)
            if found.state != ReleaseState.requested.value:
                raise Conflict("release {name} {version} is {state}: there is nothing to decide",
                               code="release_decided", name=found.name, version=found.version, state=found.state)
            stages = [approvals.Stage(Role(stage["role"]), int(stage["count"]))
                      for stage in found.approvals.get("stages", [])]
            taken = [d.stage for d in found.decisions if d.decision == "approve" and d.stage is not None]
            placed = approvals.place(stages, bool(found.approvals.get("ordered")), taken, decider=principal.name,
                                     requester=found.created_by, role=role,
                                     deciders=[d.user for d in found.decisions])
            if placed.stage is None:
                refusal = N_("you may not decide on {name} {version}: {reason}")
                values = {"name": found.name, "version": found.version, "reason": placed.refusal}
                if placed.forbidden:
                    raise PermissionDenied(refusal, **values)
                raise Conflict(refusal, code="release_decision_refused", **values)
            found.decisions.append(ReleaseDecisionRecord(
                user=principal.name, decision=body.decision, stage=placed.stage if body.decision == "approve"
                else None, role=role.value, comment=body.comment))
            if body.decision == "reject":
                found.state = ReleaseState.rejected.value
            elif approvals.complete(stages, [*taken, placed.stage]):
                found.state = ReleaseState.approved.value
            found.updated_at = utcnow()
            record(session, principal.name, f"release.{body.decision}",
                   _target(project_record.name, found.name, found.version),
                   {"stage": placed.stage, "comment": body.comment, "state": found.state})
            session.flush()
            event = "approval_recorded" if found.state == ReleaseState.requested.value else found.state
            self.notices.release(session, found, event, principal.name)
            return release_answer(found)

        answer = await self._in_transaction(write)
        self.notices.sent()
        return answer

    # ----- promotion and signatures -----

    def _signature(self, found: ReleaseRecord) -> Check:
        return self.signer.check(found.content, Signature(found.key_id, found.content_sha256, found.signature))

    def _check(self, found: ReleaseRecord, checked: Check | None = None) -> Verification:
        checked = checked or self._signature(found)
        return Verification(release=found.id, valid=checked.valid, reason=checked.english, algorithm=ALGORITHM,
                            key_id=found.key_id, content_sha256=found.content_sha256)

    @performs
    async def promote(self, principal: Principal | None, project: str, release: int, body: PromotionSet, *,
                      action: str) -> Release:
        """Move a release to the next environment: its signature checked first; staging and prod only once
        approved; prod only inside the policy's release windows."""
        principal = self._signed_in(principal)

        def write(session: Session) -> Release:
            project_record, _, found = self._release(session, principal, action, project, release, writing=True)
            title = f"{found.name} {found.version}"
            checked = self._signature(found)
            if not checked.valid:
                raise Conflict("{title} is not promoted: its signature does not hold ({reason})",
                               code="release_signature_invalid", detail=self._check(found, checked).model_dump(
                                   mode="json"), title=title, reason=checked.reason)
            if found.state == ReleaseState.rejected.value:
                raise Conflict("{title} was rejected: it goes nowhere", code="release_rejected", title=title)
            wanted, allowed = body.environment, next_environment(found.environment)
            if wanted != allowed:
                where = Phrase(N_("the next is {environment}"), environment=allowed) if allowed else \
                    Phrase(N_("it is in prod already"))
                raise Conflict("{title} is in {environment}: {where}, not {wanted}",
                               code="release_promotion_order", detail={"next": allowed},
                               title=title, environment=found.environment, where=where, wanted=wanted)
            if wanted in APPROVED_TO_GO and found.state != ReleaseState.approved.value and \
                    found.state != ReleaseState.released.value:
                raise Conflict("{title} reaches {wanted} only once approved; it is {state}",
                               code="release_not_approved", title=title, wanted=wanted, state=found.state)
            if wanted == "prod":
                policy = self._policy(session, project_record.id)
                openings = [window.opening() for window in policy.windows]
                now = self.clock()
                if not windows.open_now(openings, now):
                    opens = windows.next_opening(openings, now)
                    raise Conflict(N_("{title} reaches prod only inside the project's release windows; the next "
                                      "opens at {opens:%Y-%m-%d %H:%M} UTC") if opens else
                                   N_("{title} reaches prod only inside the project's release windows"),
                                   code="release_window_closed",
                                   detail={"next_opening": opens.isoformat() if opens else None},
                                   title=title, opens=opens)
            found.environment = wanted
            if wanted == "prod":
                found.state = ReleaseState.released.value
            found.updated_at = utcnow()
            found.promotions.append(ReleasePromotionRecord(environment=wanted, by=principal.name))
            record(session, principal.name, action, _target(project_record.name, found.name, found.version),
                   {"environment": wanted, "content_sha256": found.content_sha256})
            session.flush()
            self.notices.release(session, found, "released" if wanted == "prod" else "promoted", principal.name)
            return release_answer(found)

        answer = await self._in_transaction(write)
        self.notices.sent()
        return answer

    @performs
    async def verify(self, principal: Principal | None, project: str, release: int, *,
                     action: str) -> Verification:
        principal = self._signed_in(principal)
        return await self._in_transaction(
            lambda session: self._check(self._release(session, principal, action, project, release)[2]))

    @performs
    async def signing_key(self, principal: Principal | None, *, action: str) -> SigningKey:
        self._signed_in(principal)
        return SigningKey(algorithm=ALGORITHM, key_id=self.signer.key_id, public_key_pem=self.signer.public_pem())
