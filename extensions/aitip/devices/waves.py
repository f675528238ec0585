"""A device rollout's progress through its groups, as pure state: who is assigned, what each device reported,
and when the next group starts or everything stops. The controller persists what changes; this decides it.
Counts are kept as reports arrive, so a report costs the same in a group of ten devices or of ten thousand."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from ..releases import rollout_words as words

# A device's update in a rollout: handed out, then installed or failed; stopped when an emergency stop withdrew it.
ASSIGNED, INSTALLED, FAILED, STOPPED = "assigned", "installed", "failed", "stopped"


@dataclass
class WaveProgress:
    group: str
    success_threshold: int
    error_threshold: int
    members: set[int] = field(default_factory=set)
    started: bool = False
    counts: Counter[str] = field(default_factory=Counter)


@dataclass
class Outcome:
    """What one evaluation changed: groups started (device ids to assign), and a new state."""

    started: list[tuple[int, set[int]]] = field(default_factory=list)
    state: str | None = None


@dataclass
class RolloutProgress:
    id: int
    version: str
    state: str  # running, paused, stopped, succeeded
    group_index: int
    waves: list[WaveProgress]
    updates: dict[int, str] = field(default_factory=dict)  # device id -> its update's state
    wave_of: dict[int, int] = field(default_factory=dict)
    message: str = ""
    told_to_stop: set[int] = field(default_factory=set)  # devices that heard of the stop (told once each)

    @property
    def finished(self) -> bool:
        return self.state in ("stopped", "succeeded")

    def place(self, device: int, index: int, state: str) -> None:
        """A device of group ``index`` whose update is in ``state`` (as started, or as loaded back)."""
        wave = self.waves[index]
        wave.members.add(device)
        wave.counts[state] += 1
        self.wave_of[device] = index
        self.updates[device] = state

    def start_wave(self, index: int, members: set[int], running: Callable[[int], str | None]) -> set[int]:
        """Start group ``index`` with ``members``; a device already running the version counts as installed.
        Returns the devices assigned the update."""
        self.waves[index].started = True
        assigned = set()
        for device in members:
            installed = running(device) == self.version
            self.place(device, index, INSTALLED if installed else ASSIGNED)
            if not installed:
                assigned.add(device)
        self.group_index = index
        return assigned

    def report(self, device: int, state: str) -> bool:
        """Record a device's report; False when the device has no update in this rollout."""
        before = self.updates.get(device)
        if before is None:
            return False
        counts = self.waves[self.wave_of[device]].counts
        counts[before] -= 1
        counts[state] += 1
        self.updates[device] = state
        return True

    def evaluate(self, members_of: Callable[[str], set[int]], running: Callable[[int], str | None]) -> Outcome:
        """Advance through the groups as far as the reports allow (``members_of(group)`` gives a group's
        devices of the release's hardware, read when the group starts)."""
        outcome = Outcome()
        while self.state == "running":
            wave = self.waves[self.group_index]
            if not wave.started:
                assigned = self.start_wave(self.group_index, members_of(wave.group), running)
                outcome.started.append((self.group_index, assigned))
            size, counts = len(wave.members), wave.counts
            if size and counts[FAILED] * 100 > wave.error_threshold * size:
                self.state = outcome.state = "stopped"
                self.message = words.EMERGENCY_STOP.format(failed=counts[FAILED], size=size, group=repr(wave.group),
                                                           threshold=wave.error_threshold)
                self.stop()
                break
            if size and counts[INSTALLED] * 100 < wave.success_threshold * size:
                break
            if self.group_index + 1 == len(self.waves):
                self.state = outcome.state = "succeeded"
                self.message = words.EVERY_GROUP_DONE.format(groups=len(self.waves))
                break
            self.group_index += 1
        return outcome

    def stop(self) -> None:
        """Withdraw every update not installed or failed yet."""
        for device, state in list(self.updates.items()):
            if state == ASSIGNED:
                self.report(device, STOPPED)
