"""The fleet controller: what devices hear at their check-ins, decided in memory (a fleet of ten thousand polls
often) and written to the catalog in batches, every ``flush_seconds``, in one transaction each. It is the one
writer of device state, update states and a running rollout's progress; a restarted platform loads them back and
goes on (a report lost with the last batch is recovered: the device reports the version it runs each time)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from traitlets import Float
from traitlets.config import LoggingConfigurable

from ..catalog.base import utcnow
from .models import CheckIn, CheckInAnswer, Update
from .tables import DeviceRecord, DeviceRolloutRecord, DeviceUpdateRecord
from .waves import ASSIGNED, FAILED, INSTALLED, STOPPED, RolloutProgress, WaveProgress

log = logging.getLogger(__name__)
KEPT_FINISHED = timedelta(days=7)  # stopped and finished rollouts still answer their devices this long


@dataclass
class DeviceEntry:
    id: int
    project_id: int
    project: str
    name: str
    hardware: str
    group: str
    version: str | None
    slot: str | None
    state: str
    message: str = ""
    last_seen: datetime | None = None


@dataclass
class ActiveRollout:
    progress: RolloutProgress
    project_id: int
    project: str
    hardware: str
    poll_seconds: float
    update: dict[str, Any]  # the Update answer: the same for every device of the rollout
    updated_at: datetime = field(default_factory=utcnow)


class FleetController(LoggingConfigurable):
    idle_poll_seconds = Float(
        300.0, min=1.0, help="When a device that has nothing to install (no rollout of its hardware runs) is told "
        "to check in again, in seconds; a running rollout's poll_seconds applies to its devices.").tag(config=True)
    flush_seconds = Float(
        0.5, min=0.05, help="How often the devices' reports are written to the catalog (one transaction each "
        "time), in seconds; a report since the last write is recovered from the device's next check-in after a "
        "crash.").tag(config=True)

    def __init__(self, catalog: Any, *, webhooks: Any = None, **traits: Any) -> None:
        super().__init__(**traits)
        self.catalog = catalog
        self.webhooks = webhooks
        self.devices: dict[int, DeviceEntry] = {}
        self.by_token: dict[str, int] = {}
        self.rollouts: dict[int, ActiveRollout] = {}
        self._dirty_devices: set[int] = set()
        self._new_updates: list[dict[str, Any]] = []
        self._changed_updates: dict[tuple[int, int], dict[str, Any]] = {}
        self._dirty_rollouts: set[int] = set()
        self._events: list[tuple[str, str, dict[str, Any]]] = []
        self._task: asyncio.Task[None] | None = None
        self._flushing = asyncio.Lock()
        # Devices holding a check-in open (a long poll), woken (True) when there is something for them.
        self._waiting: dict[int, asyncio.Future[bool]] = {}

    # ----- start and stop -----

    async def start(self) -> None:
        await asyncio.to_thread(self._load)
        self._task = asyncio.create_task(self._flush_loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.flush()

    def _load(self) -> None:
        with self.catalog.session() as session:
            for record in session.scalars(select(DeviceRecord)):
                self.add_device(self.entry(record), record.token_sha256)
            since = utcnow() - KEPT_FINISHED
            found = session.scalars(select(DeviceRolloutRecord).where(
                DeviceRolloutRecord.state.in_(("running", "paused")) | (DeviceRolloutRecord.updated_at >= since)))
            for rollout in found:
                rows = session.execute(select(DeviceUpdateRecord.device_id, DeviceUpdateRecord.group_index,
                                              DeviceUpdateRecord.state)
                                       .where(DeviceUpdateRecord.rollout_id == rollout.id)).all()
                self.rollouts[rollout.id] = self._active(rollout, rows)

    @staticmethod
    def entry(record: DeviceRecord) -> DeviceEntry:
        return DeviceEntry(id=record.id, project_id=record.project_id, project=record.project.name, name=record.name,
                           hardware=record.hardware, group=record.group, version=record.version, slot=record.slot,
                           state=record.state, message=record.message, last_seen=record.last_seen)

    def _active(self, rollout: DeviceRolloutRecord, rows: Any) -> ActiveRollout:
        waves = [WaveProgress(group=g["group"], success_threshold=g["success_threshold"],
                              error_threshold=g["error_threshold"], started=index <= rollout.group_index)
                 for index, g in enumerate(rollout.groups)]
        progress = RolloutProgress(id=rollout.id, version=rollout.version,
                                   state=rollout.state, group_index=rollout.group_index, waves=waves,
                                   message=rollout.message)
        for device, index, state in rows:
            progress.place(device, index, state)
        return ActiveRollout(progress=progress, project_id=rollout.project_id, project=rollout.project.name,
                             hardware=rollout.hardware, poll_seconds=rollout.poll_seconds,
                             update=rollout.update_payload, updated_at=rollout.updated_at)

    # ----- the registry -----

    def add_device(self, entry: DeviceEntry, token_sha256: str | None = None) -> None:
        self.devices[entry.id] = entry
        if token_sha256 is not None:
            self.by_token[token_sha256] = entry.id

    def remove_device(self, device: int) -> None:
        self.devices.pop(device, None)
        self._wake([device])
        for token in [token for token, owner in self.by_token.items() if owner == device]:
            del self.by_token[token]

    def device_by_token(self, token_sha256: str) -> DeviceEntry | None:
        device = self.by_token.get(token_sha256)
        return self.devices.get(device) if device is not None else None

    def _members(self, project_id: int, hardware: str) -> Any:
        def members_of(group: str) -> set[int]:
            return {entry.id for entry in self.devices.values()
                    if entry.project_id == project_id and entry.group == group and entry.hardware == hardware}
        return members_of

    def _running(self, device: int) -> str | None:
        entry = self.devices.get(device)
        return entry.version if entry is not None else None

    # ----- rollouts -----

    def add_rollout(self, active: ActiveRollout, by: str) -> None:
        """Take a new rollout on and start its first group (or as many as are already done)."""
        self.rollouts[active.progress.id] = active
        self._event(active, "started", by)
        self._evaluate(active, by)

    def busy(self, project_id: int, hardware: str) -> int | None:
        """A running or paused rollout to the same devices (one at a time per hardware)."""
        for rollout_id, active in self.rollouts.items():
            if active.project_id == project_id and active.hardware == hardware and \
                    active.progress.state in ("running", "paused"):
                return rollout_id
        return None

    def _evaluate(self, active: ActiveRollout, by: str) -> None:
        progress = active.progress
        before = progress.state, progress.group_index
        outcome = progress.evaluate(self._members(active.project_id, active.hardware), self._running)
        for index, assigned in outcome.started:
            wave = progress.waves[index]
            for device in wave.members:
                self._new_updates.append({"rollout_id": progress.id, "device_id": device, "group_index": index,
                                          "state": progress.updates[device], "message": "",
                                          "assigned_at": utcnow()})
            for device in assigned:
                entry = self.devices.get(device)
                if entry is not None:
                    entry.state = "updating"
                    self._dirty_devices.add(device)
            self._wake(assigned)
            self._event(active, "group_started", by, group=wave.group, devices=len(wave.members))
        if outcome.state == "stopped":
            self._stopped(progress, progress.message)
        if (progress.state, progress.group_index) != before:
            self._dirty_rollouts.add(progress.id)
            active.updated_at = utcnow()
        if outcome.state is not None:
            self._event(active, outcome.state, by)

    def set_state(self, rollout_id: int, state: str, by: str, message: str) -> ActiveRollout:
        """Pause, resume or stop a rollout (the service checked who may)."""
        active = self.rollouts[rollout_id]
        progress = active.progress
        progress.state, progress.message = state, message
        active.updated_at = utcnow()
        self._dirty_rollouts.add(rollout_id)
        if state == "stopped":
            progress.stop()
            self._stopped(progress, message)
            self._event(active, "stopped", by)
        else:
            self._event(active, "paused" if state == "paused" else "resumed", by)
            if state == "running":
                self._wake([device for device, update_state in progress.updates.items() if update_state == ASSIGNED])
                self._evaluate(active, by)
        return active

    def _stopped(self, progress: RolloutProgress, message: str) -> None:
        withdrawn = [device for device, state in progress.updates.items() if state == STOPPED]
        for device in withdrawn:
            self._changed_updates[(progress.id, device)] = {"state": STOPPED, "message": message, "reported_at": None}
            entry = self.devices.get(device)
            if entry is not None and entry.state == "updating":  # it keeps running what it ran
                entry.state = "idle" if entry.last_seen is not None else "registered"
                self._dirty_devices.add(device)
        self._wake(withdrawn)

    # ----- long polls -----

    def _wake(self, devices: Any) -> None:
        for device in devices:
            waiting = self._waiting.pop(device, None)
            if waiting is not None and not waiting.done():
                waiting.set_result(True)

    async def wait(self, entry: DeviceEntry, seconds: float) -> bool:
        """Hold a device's check-in open until there is something for it (True), or ``seconds`` passed or the
        device polled again meanwhile (False: its older poll has nothing to say; the device has moved on)."""
        waiting: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        earlier = self._waiting.get(entry.id)
        if earlier is not None and not earlier.done():
            earlier.set_result(False)
        self._waiting[entry.id] = waiting
        try:
            return await asyncio.wait_for(asyncio.shield(waiting), seconds)
        except TimeoutError:
            return False
        finally:
            if self._waiting.get(entry.id) is waiting:
                del self._waiting[entry.id]

    def _event(self, active: ActiveRollout, event: str, by: str, **extra: Any) -> None:
        progress = active.progress
        self._events.append((active.project, f"device_rollout.{event}", {
            "id": progress.id, "project": active.project, "release": active.update["release"],
            "name": active.update["name"], "version": progress.version, "state": progress.state,
            "group_index": progress.group_index, "message": progress.message, "by": by, **extra}))

    # ----- check-ins -----

    def check_in(self, entry: DeviceEntry, body: CheckIn) -> CheckInAnswer:
        """What the device should do now; its report, if any, is counted first."""
        entry.last_seen = utcnow()
        entry.version, entry.slot = body.version, body.slot
        if entry.state == "registered":
            entry.state = "idle"
        self._dirty_devices.add(entry.id)
        if body.report is not None:
            self._report(entry, body)
        mine = [active for active in self.rollouts.values() if active.project_id == entry.project_id]
        poll = min((active.poll_seconds for active in mine if not active.progress.finished),
                   default=self.idle_poll_seconds)
        for active in mine:
            progress = active.progress
            state = progress.updates.get(entry.id)
            if state == ASSIGNED and body.version == progress.version:  # installed; its report was lost
                self._record(active, entry, INSTALLED, "reported running the version at a check-in")
                state = INSTALLED
            if state == STOPPED and entry.id not in progress.told_to_stop:
                progress.told_to_stop.add(entry.id)
                return CheckInAnswer(device=entry.name, action="stop", poll_seconds=poll, reason=progress.message)
            if state != ASSIGNED:
                continue
            if progress.state in ("running", "succeeded"):
                return CheckInAnswer(device=entry.name, action="update", poll_seconds=poll,
                                     update=Update.model_validate(active.update))
            return CheckInAnswer(device=entry.name, action="none", poll_seconds=poll,
                                 reason=f"the rollout of {active.update['name']} {progress.version} is paused")
        return CheckInAnswer(device=entry.name, action="none", poll_seconds=poll)

    def _report(self, entry: DeviceEntry, body: CheckIn) -> None:
        assert body.report is not None
        active = self.rollouts.get(body.report.rollout)
        if active is None or active.project_id != entry.project_id or entry.id not in active.progress.updates:
            return  # a report of an update this device was never given: nothing to count
        state = INSTALLED if body.report.state == "installed" else FAILED
        entry.state = "idle" if state == INSTALLED else "failed"
        entry.message = body.report.message
        self._record(active, entry, state, body.report.message)

    def _record(self, active: ActiveRollout, entry: DeviceEntry, state: str, message: str) -> None:
        progress = active.progress
        if progress.updates.get(entry.id) == state:
            return
        progress.report(entry.id, state)
        self._changed_updates[(progress.id, entry.id)] = {"state": state, "message": message[:2000],
                                                         "reported_at": utcnow()}
        if progress.state == "running":
            self._evaluate(active, f"device:{entry.name}")

    # ----- persistence -----

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self.flush_seconds)
            try:
                await self.flush()
            except Exception:  # noqa: BLE001 - the next batch retries; devices are answered from memory meanwhile
                log.exception("could not write the fleet's state; retrying")

    async def flush(self) -> None:
        """Write what changed since the last flush, in one transaction."""
        async with self._flushing:
            devices = [{"d_id": entry.id, "d_version": entry.version, "d_slot": entry.slot, "d_state": entry.state,
                        "d_message": entry.message[:2000], "d_seen": entry.last_seen}
                       for entry in (self.devices.get(device) for device in self._dirty_devices) if entry is not None]
            new_updates, changed = self._new_updates, self._changed_updates
            rollouts = [(rollout_id, replace(self.rollouts[rollout_id].progress, updates={}, wave_of={},
                                             told_to_stop=set()),
                         self.rollouts[rollout_id].updated_at) for rollout_id in self._dirty_rollouts]
            events = self._events
            self._dirty_devices, self._new_updates, self._changed_updates = set(), [], {}
            self._dirty_rollouts, self._events = set(), []
            if not (devices or new_updates or changed or rollouts or events):
                return
            try:
                await asyncio.to_thread(self._write, devices, new_updates, changed, rollouts, events)
            except BaseException:
                self._dirty_devices.update(device["d_id"] for device in devices)
                self._new_updates[:0] = new_updates
                self._changed_updates = {**changed, **self._changed_updates}
                self._dirty_rollouts.update(rollout_id for rollout_id, _, _ in rollouts)
                self._events[:0] = events
                raise
            if events and self.webhooks is not None:
                self.webhooks.notify()

    def _write(self, devices: list[dict[str, Any]], new_updates: list[dict[str, Any]],
               changed: dict[tuple[int, int], dict[str, Any]], rollouts: list[tuple[int, RolloutProgress, datetime]],
               events: list[tuple[str, str, dict[str, Any]]]) -> None:
        with self.catalog.session() as session:
            connection = session.connection()
            if devices:
                connection.execute(update(DeviceRecord).where(DeviceRecord.id == bindparam("d_id"))
                                   .values(version=bindparam("d_version"), slot=bindparam("d_slot"),
                                           state=bindparam("d_state"), message=bindparam("d_message"),
                                           last_seen=bindparam("d_seen")), devices)
            if new_updates:
                connection.execute(insert(DeviceUpdateRecord), new_updates)
            if changed:
                connection.execute(
                    update(DeviceUpdateRecord).where(DeviceUpdateRecord.rollout_id == bindparam("r"),
                                                     DeviceUpdateRecord.device_id == bindparam("d"))
                    .values(state=bindparam("s"), message=bindparam("m"), reported_at=bindparam("at")),
                    [{"r": rollout, "d": device, "s": values["state"], "m": values["message"],
                      "at": values["reported_at"]} for (rollout, device), values in changed.items()])
            for rollout_id, progress, updated_at in rollouts:
                connection.execute(update(DeviceRolloutRecord).where(DeviceRolloutRecord.id == rollout_id).values(
                    state=progress.state, group_index=progress.group_index, message=progress.message,
                    updated_at=updated_at))
            if self.webhooks is not None:
                for project, event, payload in events:
                    self.webhooks.publish_in(session, project, event, payload)
