"""The cases of a test notebook (what a release policy's ``test_runs`` gate reads): each case a function run at
once and timed, its outcome kept; then the report as a table, as JUnit XML (what CI servers read) and as the
job's MLflow metrics and artifacts, and the job failed, naming the failed cases, when one failed.

A notebook's cell is a case::

    suite = Suite("model_contract")

    @suite.case("every test row gets an answer")
    def _():
        assert len(model.predict(rows)) == len(rows)

    suite.finish()
"""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from xml.etree import ElementTree


@dataclass(frozen=True)
class Outcome:
    name: str
    passed: bool
    seconds: float
    message: str = ""  # why it failed: the assertion's text, or the error's type and text
    detail: str = ""  # the traceback of an error that was not an assertion


class CasesFailed(AssertionError):
    """Raised by :meth:`Suite.finish` so that the job fails, naming the failed cases."""


class Suite:
    def __init__(self, name: str) -> None:
        self.name = name
        self.outcomes: list[Outcome] = []

    def case(self, name: str) -> Callable[[Callable[[], Any]], Callable[[], Any]]:
        """Run the decorated function now as the case ``name``: it passes unless it raises."""
        def run(function: Callable[[], Any]) -> Callable[[], Any]:
            started = time.perf_counter()
            try:
                function()
            except AssertionError as failure:
                outcome = Outcome(name, False, time.perf_counter() - started, str(failure) or "assertion failed")
            except Exception as error:  # noqa: BLE001 - a case that errs fails; the next case still runs
                outcome = Outcome(name, False, time.perf_counter() - started,
                                  f"{type(error).__name__}: {error}", traceback.format_exc(limit=5))
            else:
                outcome = Outcome(name, True, time.perf_counter() - started)
            self.outcomes.append(outcome)
            print(("PASS " if outcome.passed else "FAIL ") + name
                  + (f" — {outcome.message}" if outcome.message else ""))
            return function
        return run

    @property
    def failed(self) -> list[Outcome]:
        return [outcome for outcome in self.outcomes if not outcome.passed]

    def table(self) -> str:
        """One line per case: its outcome, its time and why it failed."""
        width = max((len(outcome.name) for outcome in self.outcomes), default=0)
        lines = [f"{'PASS' if o.passed else 'FAIL'}  {o.name:{width}s}  {o.seconds * 1000:8.1f} ms"
                 + (f"  {o.message}" if o.message else "") for o in self.outcomes]
        passed = len(self.outcomes) - len(self.failed)
        return "\n".join([*lines, f"{passed} of {len(self.outcomes)} cases passed"])

    def junit(self) -> str:
        """The outcomes as JUnit XML: one testsuite, a testcase each, a failure element for each failed case."""
        suite = ElementTree.Element("testsuite", name=self.name, tests=str(len(self.outcomes)),
                                    failures=str(len(self.failed)), errors="0",
                                    time=f"{sum(o.seconds for o in self.outcomes):.6f}")
        for outcome in self.outcomes:
            case = ElementTree.SubElement(suite, "testcase", classname=self.name, name=outcome.name,
                                          time=f"{outcome.seconds:.6f}")
            if not outcome.passed:
                failure = ElementTree.SubElement(case, "failure", message=outcome.message)
                failure.text = outcome.detail or outcome.message
        return ElementTree.tostring(suite, encoding="unicode", xml_declaration=True)

    def finish(self) -> None:
        """Print how many passed; in a job, record the counts as MLflow metrics and the report (:meth:`table`,
        :meth:`junit`) as artifacts; raise :class:`CasesFailed` when a case failed, so that the job fails and a
        release gate does not pass."""
        print(self.table().rsplit("\n", 1)[-1])
        import mlflow

        if mlflow.active_run() is not None or os.environ.get("MLFLOW_RUN_ID"):  # a job's run is in the environment
            mlflow.log_metrics({"tests_total": len(self.outcomes),
                                "tests_passed": len(self.outcomes) - len(self.failed),
                                "tests_failed": len(self.failed)})
            mlflow.log_text(self.junit(), f"{self.name}.junit.xml")
            mlflow.log_text(self.table(), f"{self.name}.txt")
            mlflow.log_dict({"suite": self.name, "cases": [outcome.__dict__ for outcome in self.outcomes]},
                            f"{self.name}.json")
        if not self.outcomes:
            raise CasesFailed(f"{self.name} ran no case")
        if self.failed:
            raise CasesFailed(f"{len(self.failed)} of {len(self.outcomes)} cases failed: "
                              + "; ".join(f"{o.name} ({o.message})" for o in self.failed))
