"""A device rollout's groups as a state machine, driven by random reports, pauses and stops (hypothesis): the
counts always match the devices' states, a group starts only once the one before reached its success threshold,
and a group past its error threshold stops everything, withdrawing every update not yet installed."""

from __future__ import annotations

from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from aitip.devices.waves import ASSIGNED, FAILED, INSTALLED, STOPPED, RolloutProgress, WaveProgress

GROUPS = {"canary": {1, 2}, "early": {3, 4, 5, 6}, "late": {7, 8, 9, 10, 11, 12}}


def progress(thresholds: list[tuple[int, int]], running: dict[int, str | None] | None = None) -> RolloutProgress:
    made = RolloutProgress(id=1, version="2.0.0", state="running", group_index=0,
                           waves=[WaveProgress(group, success, error)
                                  for group, (success, error) in zip(GROUPS, thresholds)])
    made.evaluate(GROUPS.__getitem__, (running or {}).get)
    return made


def test_groups_start_in_order_as_each_reaches_its_success_threshold() -> None:
    rollout = progress([(100, 0), (75, 25), (100, 10)])
    assert [wave.started for wave in rollout.waves] == [True, False, False]
    assert rollout.updates == {1: ASSIGNED, 2: ASSIGNED}
    for device in (1, 2):
        rollout.report(device, INSTALLED)
    rollout.evaluate(GROUPS.__getitem__, {}.get)
    assert rollout.group_index == 1 and rollout.waves[1].started
    for device in (3, 4):
        rollout.report(device, INSTALLED)
    rollout.evaluate(GROUPS.__getitem__, {}.get)
    assert rollout.group_index == 1, "2 of 4 is below 75 %"
    rollout.report(5, INSTALLED)
    rollout.evaluate(GROUPS.__getitem__, {}.get)
    assert rollout.group_index == 2 and rollout.state == "running"
    for device in GROUPS["late"]:
        rollout.report(device, INSTALLED)
    rollout.evaluate(GROUPS.__getitem__, {}.get)
    assert rollout.state == "succeeded" and rollout.updates[6] == ASSIGNED  # 6 may still install it


def test_a_group_above_its_error_threshold_stops_the_rollout() -> None:
    rollout = progress([(100, 0), (100, 25)], running={1: "2.0.0"})
    assert rollout.updates[1] == INSTALLED, "a device already on the version counts as installed"
    rollout.report(2, INSTALLED)
    rollout.evaluate(GROUPS.__getitem__, {}.get)
    rollout.report(3, FAILED)
    rollout.evaluate(GROUPS.__getitem__, {}.get)
    assert rollout.state == "running", "1 of 4 is not above 25 %"
    rollout.report(4, FAILED)
    rollout.evaluate(GROUPS.__getitem__, {}.get)
    assert rollout.state == "stopped" and "2 of 4 devices of group 'early'" in rollout.message
    assert {device: rollout.updates[device] for device in (5, 6)} == {5: STOPPED, 6: STOPPED}
    assert not rollout.waves[2:] or not rollout.waves[2].started


def test_an_empty_group_is_passed_over() -> None:
    rollout = RolloutProgress(id=1, version="2.0.0", state="running", group_index=0,
                              waves=[WaveProgress("nobody", 100, 0), WaveProgress("canary", 100, 0)])
    rollout.evaluate(lambda group: GROUPS.get(group, set()), {}.get)
    assert rollout.group_index == 1 and rollout.updates == {1: ASSIGNED, 2: ASSIGNED}


class RolloutMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.rollout = progress([(100, 0), (50, 25), (100, 10)])

    def evaluate(self) -> None:
        if self.rollout.state == "running":
            self.rollout.evaluate(GROUPS.__getitem__, {}.get)

    @rule(device=st.sampled_from(sorted(set().union(*GROUPS.values()))), state=st.sampled_from([INSTALLED, FAILED]))
    def report(self, device: int, state: str) -> None:
        if self.rollout.updates.get(device) in (ASSIGNED, STOPPED):  # a device reports only what it was given
            self.rollout.report(device, state)
            self.evaluate()

    @precondition(lambda self: self.rollout.state == "running")
    @rule()
    def pause(self) -> None:
        self.rollout.state = "paused"

    @precondition(lambda self: self.rollout.state == "paused")
    @rule()
    def resume(self) -> None:
        self.rollout.state = "running"
        self.evaluate()

    @precondition(lambda self: self.rollout.state in ("running", "paused"))
    @rule()
    def stop(self) -> None:
        self.rollout.state = "stopped"
        self.rollout.stop()

    @invariant()
    def counts_match_the_devices(self) -> None:
        for index, wave in enumerate(self.rollout.waves):
            states = [self.rollout.updates[device] for device in wave.members]
            assert {state: count for state, count in wave.counts.items() if count} == \
                {state: states.count(state) for state in set(states)}
            assert all(self.rollout.wave_of[device] == index for device in wave.members)

    @invariant()
    def a_group_starts_only_after_the_one_before_succeeded(self) -> None:
        for before, wave in zip(self.rollout.waves, self.rollout.waves[1:]):
            if wave.started:
                assert before.counts[INSTALLED] * 100 >= before.success_threshold * len(before.members)

    @invariant()
    def a_stop_leaves_nothing_assigned(self) -> None:
        if self.rollout.state == "stopped":
            assert ASSIGNED not in self.rollout.updates.values()

    @invariant()
    def failures_past_the_threshold_stopped_it(self) -> None:
        wave = self.rollout.waves[self.rollout.group_index]
        if wave.counts[FAILED] * 100 > wave.error_threshold * len(wave.members) and \
                self.rollout.state != "paused":
            assert self.rollout.state == "stopped"


TestRolloutMachine = RolloutMachine.TestCase
TestRolloutMachine.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
