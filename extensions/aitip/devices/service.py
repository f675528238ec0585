"""Devices of a project: the registry with its device tokens, the project's TUF repository, and firmware
rollouts to device groups. People act through this service (checked as every operation is); devices talk to the
fleet controller through their own route, by their token."""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import threading
from collections import Counter, OrderedDict, defaultdict
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..audit import record
from ..catalog.base import utcnow
from ..catalog.service import CatalogService
from ..errors import Conflict, NotFound, Phrase
from ..i18n import N_
from ..identity.principal import Principal
from ..operations.actions import performs
from ..projects.access import authorize, project_row, refuse_if_archived
from ..releases import reads as releases
from ..releases import rollout_words as words
from ..releases.firmware import FirmwareStore
from ..releases.signing import ReleaseSigner
from .fleet_control import ActiveRollout, FleetController
from .models import (
    Device,
    DeviceList,
    DeviceQuery,
    DeviceRegister,
    DeviceRollout,
    DeviceRolloutList,
    DeviceRolloutStart,
    DeviceState,
    Fleet,
    FleetVersion,
    Provisioning,
    StopBody,
    Wave,
)
from .tables import DeviceRecord, DeviceRolloutRecord, DeviceUpdateRecord
from .tuf_repository import TufRepository, target_path
from .waves import ASSIGNED, FAILED, INSTALLED, STOPPED, RolloutProgress, WaveProgress

TOKEN_PREFIX = "aitipdev_"
DEVICE_PATH = "ota/{project}/"
TARGET_CACHE_BYTES = 256 * 1024 * 1024


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def device_answer(record: DeviceRecord) -> Device:
    return Device(id=record.id, project=record.project.name, name=record.name, hardware=record.hardware,
                  group=record.group, tags=list(record.tags or []), token_hint=record.token_hint,
                  version=record.version, slot=record.slot, state=DeviceState(record.state), message=record.message,
                  last_seen=record.last_seen, created_by=record.created_by, created_at=record.created_at)


# What a paused, resumed or stopped rollout's refusal says it cannot do, in the reader's language.
CHANGE_VERBS = {"pause": N_("pause"), "resume": N_("resume"), "stop": N_("stop")}


class DevicesService(CatalogService):
    def __init__(self, catalog: Any, fleet: FleetController, signer: ReleaseSigner, firmware: FirmwareStore,
                 repositories: Path) -> None:
        super().__init__(catalog)
        self.fleet = fleet
        self.signer = signer
        self.firmware = firmware
        self.repositories_dir = repositories
        self._repositories: dict[int, TufRepository] = {}
        self._making = threading.Lock()
        self._targets: OrderedDict[tuple[int, str], bytes] = OrderedDict()
        self._targets_bytes = 0
        self._targets_lock = threading.Lock()
        self._starting: defaultdict[tuple[int, str], asyncio.Lock] = defaultdict(asyncio.Lock)

    def repository(self, project_id: int) -> TufRepository:
        """The project's TUF repository (made, with its keys, on first use; one object per project)."""
        found = self._repositories.get(project_id)
        if found is None:
            with self._making:
                found = self._repositories.get(project_id)
                if found is None:
                    found = self._repositories[project_id] = TufRepository(self.repositories_dir / str(project_id))
        return found

    def target_bytes(self, project_id: int, name: str) -> bytes | None:
        """A published target's bytes, kept in memory once read: targets are named by their hash, never change,
        and a fleet fetches the same one thousands of times."""
        key = (project_id, name)
        with self._targets_lock:
            found = self._targets.get(key)
            if found is not None:
                self._targets.move_to_end(key)
                return found
        path = self.repository(project_id).target_file(name)
        if path is None:
            return None
        data = path.read_bytes()
        with self._targets_lock:
            if key not in self._targets:
                self._targets[key] = data
                self._targets_bytes += len(data)
            while self._targets_bytes > TARGET_CACHE_BYTES and len(self._targets) > 1:
                _, dropped = self._targets.popitem(last=False)
                self._targets_bytes -= len(dropped)
        return data

    def keep_fresh(self) -> None:
        """Re-sign expiring metadata of every repository made so far (the controller calls it now and then)."""
        if self.repositories_dir.is_dir():
            for directory in self.repositories_dir.iterdir():
                if directory.name.isdigit():
                    self.repository(int(directory.name)).keep_fresh()

    # ----- the registry -----

    @performs
    async def register(self, principal: Principal | None, project: str, body: DeviceRegister, *,
                       action: str) -> Provisioning:
        """Register a device and make its token, shown once with what it is provisioned with."""
        principal = self._signed_in(principal)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)

        def write(session: Session) -> tuple[Device, int, Any]:
            project_record, _ = authorize(session, principal, action, project)
            refuse_if_archived(project_record)
            found = DeviceRecord(project_id=project_record.id, name=body.name, hardware=body.hardware,
                                 group=body.group, tags=list(body.tags), token_sha256=token_digest(token),
                                 token_hint=token[:14], state=DeviceState.registered.value, created_by=principal.name)
            session.add(found)
            try:
                session.flush()
            except IntegrityError as error:
                raise Conflict("project {project!r} has a device named {name!r} already",
                               code="device_exists", project=project, name=body.name) from error
            record(session, principal.name, action, f"device:{project}/{body.name}",
                   {"hardware": body.hardware, "group": body.group})
            return device_answer(found), project_record.id, self.fleet.entry(found)

        device, project_id, entry = await self._in_transaction(write)
        self.fleet.add_device(entry, token_digest(token))  # once committed: a device that exists may check in
        root = await asyncio.to_thread(lambda: self.repository(project_id).trusted_root())
        return Provisioning(device=device, token=token, base_url=DEVICE_PATH.format(project=project),
                            trusted_root=json.loads(root), release_key_pem=self.signer.public_pem())

    @performs
    async def list(self, principal: Principal | None, project: str, query: DeviceQuery, *,
                   action: str) -> DeviceList:
        principal = self._signed_in(principal)
        await self.fleet.flush()

        def read(session: Session) -> DeviceList:
            project_record, _ = authorize(session, principal, action, project)
            statement = select(DeviceRecord).where(DeviceRecord.project_id == project_record.id)
            if query.group is not None:
                statement = statement.where(DeviceRecord.group == query.group)
            if query.state is not None:
                statement = statement.where(DeviceRecord.state == query.state.value)
            if query.version is not None:
                statement = statement.where(DeviceRecord.version == query.version)
            found = session.scalars(statement.order_by(DeviceRecord.name).limit(query.limit)).all()
            return DeviceList(devices=[device_answer(device) for device in found])

        return await self._in_transaction(read)

    @performs
    async def get(self, principal: Principal | None, project: str, device: int, *, action: str) -> Device:
        principal = self._signed_in(principal)
        await self.fleet.flush()

        def read(session: Session) -> Device:
            project_record, _ = authorize(session, principal, action, project)
            return device_answer(project_row(session, DeviceRecord, device, project_record, N_("device")))

        return await self._in_transaction(read)

    @performs
    async def delete(self, principal: Principal | None, project: str, device: int, *, action: str) -> None:
        """Remove a device: its token stops working at once."""
        principal = self._signed_in(principal)

        def write(session: Session) -> None:
            project_record, _ = authorize(session, principal, action, project)
            found = project_row(session, DeviceRecord, device, project_record, N_("device"))
            record(session, principal.name, action, f"device:{project}/{found.name}", {})
            session.delete(found)

        await self.fleet.flush()
        await self._in_transaction(write)
        self.fleet.remove_device(device)

    @performs
    async def fleet_summary(self, principal: Principal | None, project: str, *, action: str) -> Fleet:
        principal = self._signed_in(principal)
        await self.fleet.flush()

        def read(session: Session) -> Fleet:
            project_record, _ = authorize(session, principal, action, project)
            rows = session.execute(select(DeviceRecord.version, DeviceRecord.state, DeviceRecord.group,
                                          func.count()).where(DeviceRecord.project_id == project_record.id)
                                   .group_by(DeviceRecord.version, DeviceRecord.state, DeviceRecord.group)).all()
            versions: Counter[tuple[str | None, str]] = Counter()
            groups: Counter[str] = Counter()
            for version, state, group, count in rows:
                versions[(version, state)] += count
                groups[group] += count
            return Fleet(project=project_record.name, devices=sum(groups.values()),
                         by_version=[FleetVersion(version=version, state=DeviceState(state), devices=count)
                                     for (version, state), count in sorted(versions.items(),
                                                                           key=lambda item: (str(item[0][0]),
                                                                                             item[0][1]))],
                         groups=dict(sorted(groups.items())))

        return await self._in_transaction(read)

    # ----- rollouts to device groups -----

    @performs
    async def start_rollout(self, principal: Principal | None, project: str, release: int,
                            body: DeviceRolloutStart, *, action: str) -> DeviceRollout:
        """Publish an approved firmware release in the project's TUF repository (its signature checked first)
        and send it to the groups in order."""
        principal = self._signed_in(principal)

        def check(session: Session) -> tuple[int, releases.FirmwareRelease]:
            project_record, _ = authorize(session, principal, action, project)
            refuse_if_archived(project_record)
            found = releases.firmware_release(session, project_record, release)
            if found.state not in releases.SHIPPABLE:
                raise Conflict("{title} is {state}: only an approved release goes to devices",
                               code="release_not_approved", title=found.title, state=found.state)
            checked = self.signer.check(found.content, found.signature)
            if not checked.valid:
                raise Conflict("{title} is not sent: its signature does not hold ({reason})",
                               code="release_signature_invalid", title=found.title, reason=checked.reason)
            return project_record.id, found

        project_id, found = await self._in_transaction(check)
        # One rollout at a time per hardware: two starts at once must not both pass the check.
        async with self._starting[(project_id, found.hardware)]:
            busy = self.fleet.busy(project_id, found.hardware)
            if busy is not None:
                raise Conflict("rollout {busy} is still sending firmware to {hardware} devices: stop it or let it "
                               "finish first", code="device_rollout_busy", detail={"rollout": busy},
                               busy=busy, hardware=found.hardware)
            rollout_id = await self._open_rollout(principal, project, project_id, found, body, action=action)
        await self.fleet.flush()
        return await self._answer(rollout_id)

    async def _open_rollout(self, principal: Principal, project: str, project_id: int,
                            found: releases.FirmwareRelease, body: DeviceRolloutStart, *, action: str) -> int:
        """Publish the image as the release's TUF target, record the rollout, and hand it to the controller."""
        image = await asyncio.to_thread(self.firmware.read, found.sha256)
        path = target_path(found.name, found.version)
        custom = {"release": found.id, "content_sha256": found.signature.content_sha256}
        await asyncio.to_thread(lambda: self.repository(project_id).publish(path, image, custom))
        groups = [wave.model_dump(mode="json") for wave in body.groups]

        def write(session: Session) -> tuple[int, str, dict[str, Any]]:
            project_record, _ = authorize(session, principal, action, project)
            made = DeviceRolloutRecord(
                project_id=project_record.id, release_id=found.id, version=found.version, hardware=found.hardware,
                target=path, poll_seconds=body.poll_seconds, update_payload={}, groups=groups, state="running",
                group_index=0, created_by=principal.name)
            session.add(made)
            session.flush()
            made.update_payload = {"rollout": made.id, "release": found.id, "name": found.name,
                                   "version": found.version, "target": path, "content": found.content,
                                   "signature": found.signature.value, "key_id": found.signature.key_id}
            record(session, principal.name, action, f"release:{project}/{found.name}@{found.version}",
                   {"device_rollout": made.id, "groups": [wave["group"] for wave in groups]})
            return made.id, project_record.name, made.update_payload

        rollout_id, project_name, payload = await self._in_transaction(write)
        progress = RolloutProgress(id=rollout_id, version=found.version, state="running", group_index=0,
                                   waves=[WaveProgress(wave["group"], wave["success_threshold"],
                                                       wave["error_threshold"]) for wave in groups])
        self.fleet.add_rollout(ActiveRollout(progress=progress, project_id=project_id, project=project_name,
                                             hardware=found.hardware, poll_seconds=body.poll_seconds,
                                             update=payload), principal.name)
        return rollout_id

    def _rollout(self, session: Session, principal: Principal, action: str, project: str,
                 rollout: int) -> DeviceRolloutRecord:
        project_record, _ = authorize(session, principal, action, project)
        return project_row(session, DeviceRolloutRecord, rollout, project_record, N_("device rollout"))

    async def _answer(self, rollout_id: int) -> DeviceRollout:
        return await self._in_transaction(lambda session: self._rollout_answer(session, session.get(
            DeviceRolloutRecord, rollout_id)))

    def _rollout_answer(self, session: Session, found: DeviceRolloutRecord | None) -> DeviceRollout:
        assert found is not None
        counts: dict[tuple[int, str], int] = {
            (index, state): count for index, state, count in session.execute(
                select(DeviceUpdateRecord.group_index, DeviceUpdateRecord.state, func.count())
                .where(DeviceUpdateRecord.rollout_id == found.id)
                .group_by(DeviceUpdateRecord.group_index, DeviceUpdateRecord.state)).all()}
        waves = []
        for index, wave in enumerate(found.groups):
            started = index <= found.group_index
            if started:
                size = sum(count for (at, _), count in counts.items() if at == index)
            else:
                size = session.scalar(select(func.count()).select_from(DeviceRecord).where(
                    DeviceRecord.project_id == found.project_id, DeviceRecord.group == wave["group"],
                    DeviceRecord.hardware == found.hardware)) or 0
            waves.append(Wave(group=wave["group"], success_threshold=wave["success_threshold"],
                              error_threshold=wave["error_threshold"], devices=size,
                              assigned=counts.get((index, ASSIGNED), 0), installed=counts.get((index, INSTALLED), 0),
                              failed=counts.get((index, FAILED), 0), withdrawn=counts.get((index, STOPPED), 0),
                              started=started))
        return DeviceRollout(id=found.id, project=found.project.name, release=found.release_id,
                             release_name=found.update_payload.get("name", ""), version=found.version,
                             target=found.target, state=found.state, group_index=found.group_index,
                             poll_seconds=found.poll_seconds, waves=waves, message=found.message,
                             created_by=found.created_by, created_at=found.created_at, updated_at=found.updated_at)

    @performs
    async def list_rollouts(self, principal: Principal | None, project: str, *, action: str) -> DeviceRolloutList:
        principal = self._signed_in(principal)
        await self.fleet.flush()

        def read(session: Session) -> DeviceRolloutList:
            project_record, _ = authorize(session, principal, action, project)
            found = session.scalars(select(DeviceRolloutRecord).where(
                DeviceRolloutRecord.project_id == project_record.id).order_by(DeviceRolloutRecord.id.desc())
                .limit(100)).all()
            return DeviceRolloutList(rollouts=[self._rollout_answer(session, rollout) for rollout in found])

        return await self._in_transaction(read)

    @performs
    async def get_rollout(self, principal: Principal | None, project: str, rollout: int, *,
                          action: str) -> DeviceRollout:
        principal = self._signed_in(principal)
        await self.fleet.flush()
        return await self._in_transaction(
            lambda session: self._rollout_answer(session, self._rollout(session, principal, action, project,
                                                                        rollout)))

    async def _change(self, principal: Principal | None, project: str, rollout: int, action: str, verb: str,
                      wanted: str, allowed: tuple[str, ...], message: str) -> DeviceRollout:
        principal = self._signed_in(principal)

        def check(session: Session) -> None:
            refuse_if_archived(self._rollout(session, principal, action, project, rollout).project)

        def audit(session: Session) -> None:
            record(session, principal.name, f"device_rollout.{verb}", f"device_rollout:{project}/{rollout}",
                   {"message": message})

        await self._in_transaction(check)
        active = self.fleet.rollouts.get(rollout)
        if active is None:
            raise NotFound("device rollout {rollout} is long finished", code="device_rollout_finished",
                           rollout=rollout)
        if active.progress.state not in allowed:
            raise Conflict("device rollout {rollout} is {state}: it cannot {verb}",
                           code="device_rollout_state", detail={"state": active.progress.state},
                           rollout=rollout, state=active.progress.state, verb=Phrase(CHANGE_VERBS[verb]))
        self.fleet.set_state(rollout, wanted, principal.name, message)
        await self.fleet.flush()
        await self._in_transaction(audit)
        return await self._answer(rollout)

    @performs
    async def pause_rollout(self, principal: Principal | None, project: str, rollout: int, *,
                            action: str) -> DeviceRollout:
        """No device starts installing until it is resumed (installs under way finish and report)."""
        return await self._change(principal, project, rollout, action, "pause", "paused", ("running",),
                                  words.PAUSED_AT.format(at=f"{utcnow():%Y-%m-%d %H:%M:%S}"))

    @performs
    async def resume_rollout(self, principal: Principal | None, project: str, rollout: int, *,
                             action: str) -> DeviceRollout:
        return await self._change(principal, project, rollout, action, "resume", "running", ("paused",), "")

    @performs
    async def stop_rollout(self, principal: Principal | None, project: str, rollout: int, body: StopBody, *,
                           action: str) -> DeviceRollout:
        """The emergency stop: every device that has not installed it yet hears so at its next check-in."""
        return await self._change(principal, project, rollout, action, "stop", "stopped", ("running", "paused"),
                                  body.reason)
