"""A test notebook's cases: run at once and timed, failures and errors kept with why, the report as a table and
as JUnit XML, the counts and reports in the job's MLflow run, and the job failed naming the failed cases."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree

import pytest

from aitip.notebook_tests import CasesFailed, Suite


def suite_of_three() -> Suite:
    suite = Suite("contract")

    @suite.case("adds up")
    def _() -> None:
        assert 1 + 1 == 2

    @suite.case("rounds")
    def _() -> None:
        if round(2.5) != 3:  # a notebook's assert, without pytest's rewriting of this module's asserts
            raise AssertionError(f"round(2.5) is {round(2.5)}")

    @suite.case("parses")
    def _() -> None:
        int("seven")

    return suite


def test_each_case_runs_at_once_and_keeps_why_it_failed(capsys: pytest.CaptureFixture[str]) -> None:
    suite = suite_of_three()
    assert [(o.name, o.passed) for o in suite.outcomes] == [("adds up", True), ("rounds", False), ("parses", False)]
    assert suite.outcomes[1].message == "round(2.5) is 2" and suite.outcomes[1].detail == ""
    assert suite.outcomes[2].message == "ValueError: invalid literal for int() with base 10: 'seven'"
    assert "Traceback" in suite.outcomes[2].detail
    assert capsys.readouterr().out.splitlines() == [
        "PASS adds up", "FAIL rounds — round(2.5) is 2",
        "FAIL parses — ValueError: invalid literal for int() with base 10: 'seven'"]
    lines = suite.table().splitlines()
    assert lines[0].startswith("PASS  adds up ") and lines[-1] == "1 of 3 cases passed"


def test_the_junit_report_is_what_a_ci_server_reads() -> None:
    root = ElementTree.fromstring(suite_of_three().junit())
    assert (root.tag, root.get("name"), root.get("tests"), root.get("failures")) == ("testsuite", "contract", "3", "2")
    cases = root.findall("testcase")
    assert [case.get("name") for case in cases] == ["adds up", "rounds", "parses"]
    assert cases[0].find("failure") is None
    assert cases[1].find("failure").get("message") == "round(2.5) is 2"  # type: ignore[union-attr]
    assert "Traceback" in (cases[2].find("failure").text or "")  # type: ignore[union-attr]


def test_finish_records_the_run_and_fails_naming_the_cases(tmp_path: Path) -> None:
    import mlflow
    from mlflow.tracking._tracking_service import utils

    previous = utils._tracking_uri  # put back after: later tests in this process must not log to this store
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.sqlite'}")
    try:
        experiment = mlflow.create_experiment("notebook-tests", artifact_location=(tmp_path / "store").as_uri())
        with mlflow.start_run(experiment_id=experiment) as run:
            with pytest.raises(CasesFailed, match=r"2 of 3 cases failed: rounds \(round\(2.5\) is 2\); parses"):
                suite_of_three().finish()
        client = mlflow.MlflowClient()
        stored = Path(client.download_artifacts(run.info.run_id, "", str(tmp_path / "artifacts")))
        metrics = client.get_run(run.info.run_id).data.metrics
    finally:
        mlflow.set_tracking_uri(previous)
    assert metrics == {"tests_total": 3, "tests_passed": 1, "tests_failed": 2}
    assert {path.name for path in stored.iterdir()} == {"contract.junit.xml", "contract.json", "contract.txt"}
    assert [case["passed"] for case in json.loads((stored / "contract.json").read_text())["cases"]] == [
        True, False, False]
    passing = Suite("fine")
    passing.case("true")(lambda: None)
    passing.finish()  # outside a run: nothing recorded, nothing raised
    with pytest.raises(CasesFailed, match="ran no case"):
        Suite("empty").finish()
