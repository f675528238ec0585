"""A rollout's state machine, without I/O: given its steps, where it is and the time, what it does next. The
controller persists what this returns and shifts the traffic it asks for; a restarted platform calls it again
from the persisted state, so a rollout resumes at the step it was at."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from . import rollout_words as words
from .rollout_models import Step

ACTIVE = ("progressing", "paused")


@dataclass(frozen=True)
class Progress:
    state: str
    step: int
    step_started_at: datetime
    weight: int
    runs: tuple[dict[str, Any], ...] = ()  # every analysis run so far, each with its "step"
    message: str = ""

    def step_runs(self) -> list[dict[str, Any]]:
        """The analysis runs of this step since it was entered (a retried rollout's earlier runs stay in the
        history but count no more)."""
        return [run for run in self.runs
                if run["step"] == self.step and datetime.fromisoformat(run["at"]) >= self.step_started_at]


@dataclass(frozen=True)
class Measured:
    requests: int
    errors: int
    error_rate: float | None
    latency_p99_ms: float | None
    labelled: int = 0
    accuracy: float | None = None


# What a run measures: the canary between two times.
Measure = Callable[[datetime, datetime], Measured]


@dataclass
class Outcome:
    progress: Progress
    weights: list[int] = field(default_factory=list)  # the canary's weights to set, in order


def _next(progress: Progress, now: datetime) -> Progress:
    return replace(progress, step=progress.step + 1, step_started_at=now)


def _judge(step: Step, measured: Measured) -> tuple[str, list[str]]:
    rules = step.analysis
    assert rules is not None
    if measured.requests < rules.min_requests:
        return "inconclusive", [words.TOO_FEW_REQUESTS.format(requests=measured.requests, needed=rules.min_requests)]
    failures, unlabelled = [], []
    for condition in rules.conditions:
        if condition.metric == "accuracy":
            assert condition.min is not None
            if measured.labelled < condition.min_labelled:
                unlabelled.append(words.TOO_FEW_LABELS.format(labelled=measured.labelled,
                                                              needed=condition.min_labelled))
            elif measured.accuracy is not None and measured.accuracy < condition.min:
                failures.append(words.ACCURACY_BELOW.format(value=f"{measured.accuracy:.4g}",
                                                            bound=f"{condition.min:.4g}"))
            continue
        assert condition.max is not None
        value = measured.error_rate if condition.metric == "error_rate" else measured.latency_p99_ms
        if value is not None and value > condition.max:
            failures.append(words.METRIC_ABOVE.format(metric=condition.metric, value=f"{value:.4g}",
                                                      bound=f"{condition.max:.4g}"))
    if failures:
        return "failed", failures
    return ("inconclusive", unlabelled) if unlabelled else ("passed", [])


def _run_since(progress: Progress, done: list[dict[str, Any]], watched_since: datetime | None) -> datetime:
    """Where the next analysis run's window starts: after the step's last run ``done`` (or its start), and never
    before the platform was watching — a run after a restart judges only what the restarted platform saw."""
    since = datetime.fromisoformat(done[-1]["at"]) if done else progress.step_started_at
    return max(since, watched_since) if watched_since is not None else since


def analysis_due(steps: list[Step], progress: Progress, now: datetime,
                 watched_since: datetime | None = None) -> bool:
    """Whether ``advance`` at ``now`` would measure the canary (its metrics should be written first)."""
    if progress.state != "progressing" or progress.step >= len(steps):
        return False
    rules = steps[progress.step].analysis
    if rules is None:
        return False
    since = _run_since(progress, progress.step_runs(), watched_since)
    return now >= since + timedelta(seconds=rules.interval_seconds)


def advance(steps: list[Step], progress: Progress, now: datetime, measure: Measure,
            watched_since: datetime | None = None) -> Outcome:
    """Run the rollout forward as far as ``now`` allows (``watched_since``: when the controller started)."""
    outcome = Outcome(progress)
    while outcome.progress.state == "progressing" and outcome.progress.step < len(steps):
        current, step = outcome.progress, steps[outcome.progress.step]
        if step.set_weight is not None:
            outcome.weights.append(step.set_weight)
            outcome.progress = replace(_next(current, now), weight=step.set_weight)
        elif step.pause is not None:
            if step.pause.seconds is None:
                outcome.progress = replace(current, state="paused", message=words.PAUSED_UNTIL_PROMOTED)
            elif now >= current.step_started_at + timedelta(seconds=step.pause.seconds):
                outcome.progress = _next(current, now)
            else:
                break
        else:
            rules, done = step.analysis, current.step_runs()
            assert rules is not None
            since = _run_since(current, done, watched_since)
            if now < since + timedelta(seconds=rules.interval_seconds):
                break
            measured = measure(since, now)
            verdict, failures = _judge(step, measured)
            run = {"step": current.step, "at": now.isoformat(), "requests": measured.requests,
                   "errors": measured.errors, "error_rate": measured.error_rate,
                   "latency_p99_ms": measured.latency_p99_ms, "labelled": measured.labelled,
                   "accuracy": measured.accuracy, "outcome": verdict, "failures": failures}
            current = replace(current, runs=(*current.runs, run))
            failed = sum(1 for r in (*done, run) if r["outcome"] == "failed")
            if failed > rules.failure_limit:
                outcome.weights.append(0)
                outcome.progress = replace(current, state="degraded", weight=0,
                                           message=words.ABORTED_BY_ANALYSIS.format(
                                               failures=words.FAILURES_JOINED.join(failures)))
            elif verdict == "inconclusive":
                outcome.progress = replace(current, state="paused", message=words.INCONCLUSIVE.format(
                    failures=words.FAILURES_JOINED.join(failures)))
            elif len(done) + 1 >= rules.count:
                outcome.progress = _next(current, now)
            else:
                outcome.progress = current
                break
    if outcome.progress.state == "progressing" and outcome.progress.step >= len(steps):
        outcome.progress = replace(outcome.progress, state="completed", message=words.COMPLETED)
    return outcome


class Refused(Exception):
    """An action that the rollout's state does not allow (a 409)."""


def promote(steps: list[Step], progress: Progress, now: datetime, *, full: bool = False) -> Outcome:
    """Past the current pause or analysis (or, ``full``, past every step)."""
    if progress.state not in ACTIVE:
        raise Refused(f"a {progress.state} rollout cannot be promoted")
    if full:
        return Outcome(replace(progress, state="completed", step=len(steps), step_started_at=now, weight=100,
                               message=words.PROMOTED_FULLY), [100])
    resumed = replace(progress, state="progressing", message="")
    if progress.step < len(steps) and steps[progress.step].set_weight is None:
        resumed = _next(resumed, now)
    return Outcome(resumed)


def abort(progress: Progress) -> Outcome:
    if progress.state not in ACTIVE:
        raise Refused(f"a {progress.state} rollout cannot be aborted")
    return Outcome(replace(progress, state="degraded", weight=0, message=words.ABORTED_BY_HAND), [0])


def retry(progress: Progress, now: datetime) -> Outcome:
    if progress.state != "degraded":
        raise Refused(f"only a degraded rollout is retried; this one is {progress.state}")
    return Outcome(replace(progress, state="progressing", step=0, step_started_at=now, weight=0, message=""))


def rollback(progress: Progress) -> Outcome:
    if progress.state == "rolled_back":
        raise Refused("the rollout is rolled back already")
    return Outcome(replace(progress, state="rolled_back", weight=0, message=words.ROLLED_BACK), [0])
