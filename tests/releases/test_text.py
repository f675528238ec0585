"""A release as the CLI writes it for a product owner: what it ships, its evidence, its approvals, its
promotions and signature, from the API's own answer (the model dumped as JSON)."""

from __future__ import annotations

import re

from aitip.releases.models import Release, ReleasePolicy
from aitip.releases.text import policy_text, release_text


def release(**changes: object) -> dict:
    answer = {
        "id": 4, "project": "vision", "kind": "model", "name": "digits", "version": "1.2.0", "state": "requested",
        "environment": "test", "next_environment": "staging", "model": "digits-mlp", "model_version": 3,
        "dataset": "digits", "dataset_version": 2, "configuration": None, "firmware": None, "endpoint": None,
        "settings": None, "changelog": "retrained on v2", "metadata": {}, "ordered": True,
        "evidence": [{"kind": "evaluation", "id": 7, "state": "passed", "model": "digits-mlp", "model_version": 3,
                      "dataset": "digits", "dataset_version": 2, "dataset_md5": "0" * 32, "template": None,
                      "notebook": None, "notebook_sha256": "1" * 64, "job_id": 12,
                      "finished_at": "2026-12-06T10:00:00Z"},
                     {"kind": "simulation", "id": 3, "state": "passed", "model": "digits-mlp", "model_version": 3,
                      "dataset": "digits", "dataset_version": 2, "dataset_md5": "0" * 32, "template": "noise",
                      "notebook": None, "notebook_sha256": "2" * 64, "job_id": 13,
                      "finished_at": "2026-12-06T10:05:00Z"}],
        "approvals_needed": [{"role": "maintainer", "count": 1}, {"role": "admin", "count": 1}],
        "decisions": [{"user": "dave", "decision": "approve", "stage": 0, "role": "maintainer", "comment": "ok",
                       "at": "2026-12-06T10:10:00Z"}],
        "promotions": [{"environment": "test", "by": "dave", "at": "2026-12-06T10:11:00Z"}],
        "signature": {"algorithm": "ed25519", "key_id": "eaa192553a4df8fb", "content_sha256": "73a832c0" * 8,
                      "signature": "sig"},
        "content": {}, "created_by": "carol", "created_at": "2026-12-06T09:59:00Z"}
    answer.update(changes)
    return Release.model_validate(answer).model_dump(mode="json")


def test_a_release_reads_with_its_evidence_approvals_promotions_and_signature() -> None:
    lines = release_text(release()).splitlines()
    assert lines[0] == "release 4: digits 1.2.0 (model) — requested, at test"
    assert lines[1] == "model digits-mlp version 3, judged on digits v2"
    assert lines[2].startswith("requested:  by carol at 2026-12-0") and lines[3] == "next:       staging"
    assert lines[4] == "signed:     ed25519 key eaa192553a4df8fb, content SHA-256 73a832c073a832c0…"
    assert lines[5].startswith("promoted:   test by dave at 2026-12-0")
    header, evaluation, simulation = lines[7:10]
    assert header.split() == ["EVIDENCE", "ID", "STATE", "WHAT", "JOB", "FINISHED"]
    assert evaluation.split()[:5] == ["evaluation", "7", "passed", "-", "12"]
    assert simulation.split()[:5] == ["simulation", "3", "passed", "noise", "13"]
    assert re.fullmatch(r"approval stage 1: 1 of role maintainer or above — approved by dave at "
                        r"2026-12-0\d \d\d:\d\d:\d\d \(ok\)", lines[11])
    assert lines[12] == "approval stage 2: 1 of role admin or above — none yet"
    assert lines[-1] == "retrained on v2"


def test_firmware_and_a_rejection_read_as_such() -> None:
    shown = release_text(release(
        kind="firmware", model=None, model_version=None, dataset=None, dataset_version=None, evidence=[],
        firmware={"sha256": "f" * 64, "length": 262144, "hardware": "board-x1"}, approvals_needed=[],
        decisions=[{"user": "ann", "decision": "reject", "stage": None, "role": "admin", "comment": "wrong board",
                    "at": "2026-12-06T10:10:00Z"}], state="rejected", promotions=[], changelog=""))
    assert "firmware for board-x1 (262,144 bytes)" in shown
    assert "evidence: none (the policy asks for none)" in shown
    assert "rejected by ann (admin) at 2026-12-0" in shown and shown.endswith(": wrong board")


def rollout(**changes: object) -> dict:
    from aitip.releases.rollout_models import Rollout

    answer = {
        "id": 2, "project": "vision", "release_id": 4, "release": "digits 1.2.0", "endpoint": "digits",
        "model": "digits-mlp", "stable_version": 1, "canary_version": 3, "step": 2, "weight": 20,
        "state": "progressing", "message": "analysing the canary",
        "steps": [{"set_weight": 20}, {"pause": {"seconds": 30}},
                  {"analysis": {"interval_seconds": 10, "count": 3, "failure_limit": 0, "min_requests": 5,
                                "conditions": [{"metric": "error_rate", "max": 0.01, "min_labelled": 1}]}},
                  {"pause": {}}, {"set_weight": 100}],
        "analysis_runs": [{"step": 2, "at": "2026-12-06T10:20:00Z", "requests": 240, "errors": 1,
                           "error_rate": 0.004167, "latency_p99_ms": 12.5, "labelled": 0, "accuracy": None,
                           "outcome": "passed", "failures": []},
                          {"step": 2, "at": "2026-12-06T10:20:10Z", "requests": 236, "errors": 9,
                           "error_rate": 0.038136, "latency_p99_ms": 14.0, "labelled": 0, "accuracy": None,
                           "outcome": "failed", "failures": ["error_rate 0.038 > 0.01"]}],
        "created_by": "dave", "created_at": "2026-12-06T10:00:00Z", "updated_at": "2026-12-06T10:20:10Z"}
    answer.update(changes)
    return Rollout.model_validate(answer).model_dump(mode="json")


def test_a_rollout_reads_with_its_steps_where_it_stands_and_its_analysis_runs() -> None:
    from aitip.releases.text import rollout_text

    lines = rollout_text(rollout()).splitlines()
    assert lines[:3] == ["rollout 2: release digits 1.2.0 onto endpoint digits — progressing",
                         "canary version 3 at 20 %, stable version 1", "analysing the canary"]
    assert lines[4:9] == ["✓ 1. canary at 20 %", "✓ 2. pause 30 s", "▶ 3. analysis: 3 × every 10 s",
                          "  4. pause until promoted", "  5. canary at 100 %"]
    header, passed, failed = lines[10:13]
    assert header.split()[:5] == ["STEP", "AT", "REQUESTS", "ERRORS", "ERROR"]
    assert passed.split()[0] == "3" and "0.42 %" in passed and "12.50" in passed and passed.endswith("passed")
    assert failed.endswith("failed: error_rate 0.038 > 0.01") and "3.81 %" in failed


def test_the_dashboard_and_the_terminal_say_a_step_alike_each_in_its_language(monkeypatch) -> None:
    from aitip import i18n
    from aitip.releases.text import rollout_text, step_text

    chinese = i18n.translator("zh_CN").gettext
    assert step_text({"pause": {"seconds": None}}, chinese) == chinese("pause until promoted") != "pause until promoted"
    monkeypatch.setenv("AITIP_LANG", "zh_CN")
    shown = rollout_text(rollout())
    assert "灰度发布 2" in shown and chinese("canary at {weight} %").format(weight=20) in shown
    assert "canary at" not in shown and "rollout 2" not in shown


def test_the_release_policy_reads_as_what_a_release_needs_who_approves_and_when() -> None:
    default = ReleasePolicy.model_validate({"project": "vision", "settings": {}, "default": True})
    assert policy_text(default.model_dump(mode="json")).splitlines() == [
        "release policy of vision: the default (no maintainer has set one)",
        "a model release needs:",
        "  - a passed evaluation of its exact model version on its dataset version",
        "approvals: 1 of role maintainer or above",
        "prod: at any time"]
    strict = ReleasePolicy.model_validate({"project": "vision", "default": False, "updated_by": "dave",
                                           "updated_at": "2026-12-06T10:00:00Z", "settings": {
        "evaluation": False, "simulations": ["noise"], "auto_approve": True,
        "test_runs": [{"notebook": "smoke.ipynb", "notebook_sha256": "ab" * 32}],
        "approvals": [{"role": "maintainer", "count": 2}, {"role": "admin"}],
        "windows": [{"days": ["fri", "mon", "tue", "wed", "thu"], "start": "09:00", "end": "17:00",
                     "timezone": "Asia/Shanghai"}, {"days": ["sat", "mon"], "start": "22:00", "end": "02:00"}]}})
    lines = policy_text(strict.model_dump(mode="json")).splitlines()
    assert lines[0].startswith("release policy of vision: set by dave at 2026-12-0")
    assert lines[1:4] == ["a model release needs:", "  - passed simulations under noise",
                          "  - a succeeded run of smoke.ipynb on it (content abababababab… only)"]
    assert lines[4] == "approvals: 2 of role maintainer or above; and 1 of role admin or above"
    assert lines[5] == "a model release whose every evidence gate passed is approved at once"
    assert lines[6] == "prod: only within mon–fri 09:00–17:00 Asia/Shanghai; mon, sat 22:00–02:00 UTC"


def test_the_roles_in_a_release_and_its_policy_read_in_the_shells_language(monkeypatch) -> None:
    """The approvals' roles are words of the reader's language, as the pages say them; ``--json`` keeps the API's."""
    monkeypatch.setenv("AITIP_LANG", "zh_CN")
    shown = release_text(release(decisions=[{"user": "erin", "decision": "reject", "stage": 0, "role": "developer",
                                             "comment": "no", "at": "2026-12-06T10:10:00Z"}]))
    assert "需 1 名维护者或以上角色" in shown and "需 1 名管理员或以上角色" in shown, shown
    assert "erin（开发者）" in shown and not re.search(r"maintainer|admin|developer", shown), shown
    policy = ReleasePolicy.model_validate({"project": "vision", "settings": {}, "default": True})
    assert "1 名维护者或以上角色" in policy_text(policy.model_dump(mode="json"))
