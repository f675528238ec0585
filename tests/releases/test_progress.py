"""A rollout's state machine: steps taken as time passes, analyses judged on what the canary served, and people's
actions — and, under random sequences of those with restarts, the invariants a rollout keeps."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from pydantic import ValidationError

from aitip.releases import progress as machine
from aitip.releases.rollout_models import Analysis, Condition, Pause, RolloutStart, Step, default_steps

T0 = datetime(2026, 12, 5, 12, 0, tzinfo=timezone.utc)
HEALTHY = machine.Measured(requests=200, errors=0, error_rate=0.0, latency_p99_ms=12.0)
FAILING = machine.Measured(requests=200, errors=30, error_rate=0.15, latency_p99_ms=12.0)
QUIET = machine.Measured(requests=0, errors=0, error_rate=None, latency_p99_ms=None)


def start() -> machine.Progress:
    return machine.Progress("progressing", 0, T0, 0)


def seconds(n: float) -> datetime:
    return T0 + timedelta(seconds=n)


def test_the_default_steps_go_5_20_50_100_with_analyses_and_finish_when_each_passes() -> None:
    steps = default_steps()
    outcome = machine.advance(steps, start(), T0, lambda since, until: HEALTHY)
    assert outcome.weights == [5] and outcome.progress.step == 1 and outcome.progress.state == "progressing"
    now, weights, current = T0, [5], outcome.progress
    while current.state == "progressing":
        now += timedelta(seconds=10)
        step = machine.advance(steps, current, now, lambda since, until: HEALTHY)
        weights += step.weights
        current = step.progress
    assert weights == [5, 20, 50, 100] and current.state == "completed" and current.weight == 100
    assert len(current.runs) == 9 and {run["outcome"] for run in current.runs} == {"passed"}
    assert now == T0 + timedelta(seconds=90)  # three runs of 10 s after each of the three weights


def test_a_failed_run_beyond_the_limit_aborts_and_the_canary_loses_its_traffic() -> None:
    steps = [Step(set_weight=10), Step(analysis=Analysis(interval_seconds=5, count=3,
                                                                             failure_limit=1)),
             Step(set_weight=100)]
    measured = iter([FAILING, HEALTHY, FAILING])
    current = machine.advance(steps, start(), T0, lambda *_: HEALTHY).progress
    windows = []

    def measure(since: datetime, until: datetime) -> machine.Measured:
        windows.append((since, until))
        return next(measured)

    for at in (5, 10):
        current = machine.advance(steps, current, seconds(at), measure).progress
        assert current.state == "progressing"  # one failure is within the limit
    aborted = machine.advance(steps, current, seconds(15), measure)
    assert aborted.weights == [0] and aborted.progress.state == "degraded" and aborted.progress.weight == 0
    assert "error_rate 0.15 is above 0.01" in aborted.progress.message
    assert windows == [(T0, seconds(5)), (seconds(5), seconds(10)), (seconds(10), seconds(15))]


def test_an_analysis_waits_for_its_interval_and_pauses_when_the_canary_had_no_traffic() -> None:
    steps = [Step(set_weight=10), Step(analysis=Analysis(interval_seconds=30, min_requests=50)),
             Step(set_weight=100)]
    current = machine.advance(steps, start(), T0, lambda *_: QUIET).progress
    assert machine.advance(steps, current, seconds(29), lambda *_: QUIET).progress == current
    paused = machine.advance(steps, current, seconds(30), lambda *_: QUIET).progress
    assert paused.state == "paused" and "0 canary requests, fewer than the 50 needed" in paused.message
    resumed = machine.promote(steps, paused, seconds(40))
    assert resumed.progress.state == "progressing" and resumed.progress.step == 2
    assert machine.advance(steps, resumed.progress, seconds(40), lambda *_: QUIET).weights == [100]


def test_an_analysis_is_due_exactly_when_advance_would_measure() -> None:
    """The controller writes the serving metrics first when a run is due: due exactly when advance measures."""
    steps = [Step(set_weight=10), Step(analysis=Analysis(interval_seconds=30, count=2)), Step(set_weight=100)]
    current = machine.advance(steps, start(), T0, lambda *_: HEALTHY).progress
    measured: list[tuple[datetime, datetime]] = []

    def measure(since: datetime, until: datetime) -> machine.Measured:
        measured.append((since, until))
        return HEALTHY

    for at in (seconds(29), seconds(30), seconds(45), seconds(60)):
        due = machine.analysis_due(steps, current, at)
        before = len(measured)
        current = machine.advance(steps, current, at, measure).progress
        assert due == (len(measured) > before), at
    assert measured == [(T0, seconds(30)), (seconds(30), seconds(60))]
    assert not machine.analysis_due(steps, current, seconds(600)), "past the analysis: nothing to measure"


def test_after_a_restart_a_run_judges_only_what_the_restarted_platform_saw() -> None:
    """The platform was down from 40 s to 100 s, past the run due at 60 s: its metrics of that time are lost,
    so the run waits a whole interval from the restart and measures from there, at the same step."""
    steps = [Step(set_weight=10), Step(analysis=Analysis(interval_seconds=30, count=2)), Step(set_weight=100)]
    current = machine.advance(steps, start(), T0, lambda *_: HEALTHY).progress
    current = machine.advance(steps, current, seconds(30), lambda *_: HEALTHY).progress
    measured: list[tuple[datetime, datetime]] = []

    def measure(since: datetime, until: datetime) -> machine.Measured:
        measured.append((since, until))
        return HEALTHY

    restarted = seconds(100)
    assert not machine.analysis_due(steps, current, seconds(110), restarted)
    waiting = machine.advance(steps, current, seconds(110), measure, restarted)
    assert waiting.progress == current and measured == []
    assert machine.analysis_due(steps, current, seconds(130), restarted)
    done = machine.advance(steps, current, seconds(130), measure, restarted)
    assert measured == [(restarted, seconds(130))] and done.progress.state == "completed"
    assert [run["step"] for run in done.progress.runs] == [1, 1]


def test_a_retried_rollout_analyses_afresh_not_on_the_runs_before_it() -> None:
    """Retried after its analysis failed, a rollout's next run waits a whole interval from the retry and judges
    only what came after; the failed run stays in its history."""
    steps = [Step(set_weight=20), Step(analysis=Analysis(interval_seconds=5, count=3)), Step(set_weight=100)]
    current = machine.advance(steps, start(), T0, lambda *_: HEALTHY).progress
    aborted = machine.advance(steps, current, seconds(5), lambda *_: FAILING).progress
    assert aborted.state == "degraded"
    retried = machine.retry(aborted, seconds(20)).progress
    retried = machine.advance(steps, retried, seconds(20), lambda *_: HEALTHY).progress
    assert (retried.state, retried.step, retried.weight) == ("progressing", 1, 20)
    assert not machine.analysis_due(steps, retried, seconds(24))
    measured: list[tuple[datetime, datetime]] = []

    def measure(since: datetime, until: datetime) -> machine.Measured:
        measured.append((since, until))
        return HEALTHY

    later = machine.advance(steps, retried, seconds(25), measure).progress
    assert measured == [(seconds(20), seconds(25))] and later.state == "progressing"
    assert [run["outcome"] for run in later.runs] == ["failed", "passed"]


def test_a_latency_condition_and_a_pause_of_some_seconds() -> None:
    steps = [Step(set_weight=50), Step(pause=Pause(seconds=60)),
             Step(analysis=Analysis(interval_seconds=5, count=1,
                                            conditions=[Condition(metric="latency_p99_ms", max=10)])),
             Step(set_weight=100)]
    current = machine.advance(steps, start(), T0, lambda *_: HEALTHY).progress
    assert machine.advance(steps, current, seconds(59), lambda *_: HEALTHY).progress.step == 1
    current = machine.advance(steps, current, seconds(60), lambda *_: HEALTHY).progress
    assert current.step == 2
    slow = machine.advance(steps, current, seconds(65), lambda *_: HEALTHY)
    assert slow.progress.state == "degraded" and "latency_p99_ms 12 is above 10" in slow.progress.message


def test_peoples_actions_are_refused_where_the_state_does_not_allow_them() -> None:
    steps = default_steps()
    degraded = machine.abort(machine.advance(steps, start(), T0, lambda *_: HEALTHY).progress).progress
    with pytest.raises(machine.Refused, match="a degraded rollout cannot be promoted"):
        machine.promote(steps, degraded, T0)
    with pytest.raises(machine.Refused, match="cannot be aborted"):
        machine.abort(degraded)
    retried = machine.retry(degraded, seconds(1)).progress
    assert (retried.state, retried.step, retried.weight) == ("progressing", 0, 0)
    with pytest.raises(machine.Refused, match="only a degraded rollout is retried"):
        machine.retry(retried, seconds(2))
    full = machine.promote(steps, retried, seconds(3), full=True)
    assert full.weights == [100] and full.progress.state == "completed"
    back = machine.rollback(full.progress)
    assert back.weights == [0] and back.progress.state == "rolled_back"
    with pytest.raises(machine.Refused, match="rolled back already"):
        machine.rollback(back.progress)


@pytest.mark.parametrize("steps, message", [
    ([{"set_weight": 20}, {"set_weight": 10}, {"set_weight": 100}], "the weights go back from 20 to 10"),
    ([{"set_weight": 20}, {"pause": {}}], "the weights stop at 20 %"),
    ([{"pause": {"seconds": 5}}], "no set_weight step"),
    ([{"set_weight": 100, "pause": {}}], "not set_weight and pause together"),
    ([{}], "a step is one of set_weight, pause or analysis"),
    ([{"set_weight": 101}], "less than or equal to 100"),
    ([{"analysis": {"conditions": [{"metric": "cpu", "max": 1}]}}, {"set_weight": 100}], "steps.0"),
])
def test_step_lists_that_never_reach_100_or_go_back_are_refused(steps: list, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        RolloutStart.model_validate({"endpoint": "digits", "steps": steps})


STEPS = [Step(set_weight=5), Step(analysis=Analysis(interval_seconds=5, count=2, failure_limit=1)),
         Step(set_weight=20), Step(pause=Pause()), Step(set_weight=50),
         Step(pause=Pause(seconds=7)), Step(set_weight=100)]
WEIGHTS = [step.set_weight for step in STEPS if step.set_weight is not None]


class Rollouts(RuleBasedStateMachine):
    """Random time passing, canary health, people's actions and restarts (the persisted progress read back, as a
    restarted platform does): the traffic the machine asks for always matches its state."""

    @initialize()
    def begin(self) -> None:
        self.now = T0
        self.health = HEALTHY
        self.progress = start()
        self.traffic = 0  # what the endpoint was told last
        self.watched_since: datetime | None = None  # when the platform last started
        self.apply(self.advance())

    def advance(self) -> machine.Outcome:
        return machine.advance(STEPS, self.progress, self.now, self.measure, self.watched_since)

    def measure(self, since: datetime, until: datetime) -> machine.Measured:
        assert since < until
        assert self.watched_since is None or since >= self.watched_since, "a run judged time the platform was down"
        return self.health

    def apply(self, outcome: machine.Outcome) -> None:
        for weight in outcome.weights:
            self.traffic = weight
        self.progress = outcome.progress

    @rule(seconds=st.floats(min_value=0.5, max_value=30), failing=st.booleans())
    def time_passes(self, seconds: float, failing: bool) -> None:
        self.now += timedelta(seconds=seconds)
        self.health = FAILING if failing else HEALTHY
        self.apply(self.advance())

    @rule(full=st.booleans())
    def promote(self, full: bool) -> None:
        try:
            self.apply(machine.promote(STEPS, self.progress, self.now, full=full))
        except machine.Refused:
            assert self.progress.state not in machine.ACTIVE
            return
        self.apply(self.advance())

    @rule()
    def abort(self) -> None:
        try:
            self.apply(machine.abort(self.progress))
        except machine.Refused:
            assert self.progress.state not in machine.ACTIVE

    @rule()
    def retry(self) -> None:
        try:
            self.apply(machine.retry(self.progress, self.now))
        except machine.Refused:
            assert self.progress.state != "degraded"
            return
        self.apply(self.advance())

    @rule()
    def rollback(self) -> None:
        try:
            self.apply(machine.rollback(self.progress))
        except machine.Refused:
            assert self.progress.state == "rolled_back"

    @rule()
    def restart(self) -> None:
        persisted = replace(self.progress, runs=tuple(dict(run) for run in self.progress.runs))
        self.watched_since = self.now
        again = machine.advance(STEPS, persisted, self.now, self.measure, self.watched_since)
        assert again.weights == [] and again.progress == self.progress  # taken up where it was, nothing redone
        self.apply(again)

    @invariant()
    def traffic_follows_the_state(self) -> None:
        state, weight = self.progress.state, self.progress.weight
        assert self.traffic == weight
        assert 0 <= self.progress.step <= len(STEPS)
        if state in ("degraded", "rolled_back"):
            assert weight == 0
        if state == "completed":
            assert weight == 100 and self.progress.step == len(STEPS)
        if state in machine.ACTIVE:
            reached = [s.set_weight for index, s in enumerate(STEPS)
                       if s.set_weight is not None and index < self.progress.step]
            assert weight == (reached[-1] if reached else 0)
        assert weight in (0, *WEIGHTS)


Rollouts.TestCase.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)
test_rollouts_keep_their_invariants = Rollouts.TestCase
