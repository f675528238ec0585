"""Each event family links to the page of what it is about, with the payload's own fields in the address; no
address is made up where the platform was not told where people reach it."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest

from aitip.evaluation.notices import evaluation_payload
from aitip.evaluation.tables import EvaluationRecord
from aitip.projects.tables import ProjectRecord
from aitip.webhooks.links import PAGES, dashboards_url_from_hub, page_url, with_link
from aitip.webhooks.payloads import EVENT_FAMILIES, slack

DASHBOARDS = "https://aitip.example.org/lab/services/dashboards/"


@pytest.mark.parametrize(("event", "data", "page", "arguments"), [
    ("job.failed", {"job_id": 12, "state": "failed"}, "jobs", {"job": "12"}),
    ("sweep.succeeded", {"sweep_id": 3, "best_job_id": 40}, "jobs", {"job": "40"}),
    ("sweep.failed", {"sweep_id": 3, "best_job_id": None}, "jobs", {}),
    ("dataset.registered", {"dataset": "digits & more", "version": 2}, "datasets",
     {"dataset": "digits & more", "version": "2"}),
    ("evaluation.failed", {"evaluation_id": 7, "model": "digits-mlp"}, "evaluations",
     {"model": "digits-mlp", "evaluation": "7"}),
    ("simulation.error", {"simulation_id": 5}, "simulations", {"simulation": "5"}),
    ("release.approved", {"id": 9, "name": "limits"}, "releases", {"release": "9"}),
    ("rollout.step", {"id": 4, "release_id": 9}, "releases", {"release": "9"}),
    ("device_rollout.paused", {"id": 2, "release": 11}, "releases", {"release": "11"}),
])
def test_each_family_links_to_its_page(event: str, data: dict, page: str, arguments: dict[str, str]) -> None:
    link = page_url(DASHBOARDS, event, "vision", data)
    parts = urlsplit(link)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{DASHBOARDS}{page}"
    assert {key: values[0] for key, values in parse_qs(parts.query).items()} == {"project": "vision", **arguments}


def test_every_family_but_the_ping_has_a_page() -> None:
    assert set(PAGES) == set(EVENT_FAMILIES) - {"webhook"}
    assert page_url(DASHBOARDS, "webhook.ping", "vision", {}) is None


def test_nothing_is_linked_without_the_platforms_public_address_or_over_a_given_link() -> None:
    assert with_link("", "job.failed", "vision", {"job_id": 1}) == {"job_id": 1}
    given = {"job_id": 1, "url": "https://ci.example.org/builds/8"}
    assert with_link(DASHBOARDS, "job.failed", "vision", given) is given
    assert page_url(DASHBOARDS, "job.failed", None, {"job_id": 1}) is None  # a callback of no project


@pytest.mark.parametrize(("hub", "dashboards"), [
    ("https://aitip.example.org/hub/", "https://aitip.example.org/services/dashboards/"),
    ("https://aitip.example.org/lab/hub/", "https://aitip.example.org/lab/services/dashboards/"),
    ("", ""), (None, ""),
])
def test_the_dashboards_address_follows_the_hubs_public_one(hub: str | None, dashboards: str) -> None:
    assert dashboards_url_from_hub(hub) == dashboards


def test_a_slack_message_opens_the_evaluation() -> None:
    evaluation = EvaluationRecord(
        id=7, project=ProjectRecord(name="vision"), model="digits-mlp", model_version=3, dataset="digits",
        dataset_version=2, baseline_version=None, state="failed", trigger="manual", job_id=None,
        settings={"thresholds": {"f1_score": {"threshold": 0.97}}}, metrics={"f1_score": 0.955},
        verdict={"passed": False, "reasons": [{"metric": "f1_score", "passed": False, "skipped": False,
                                               "message": "f1_score: 0.955 is below 0.97."}]},
        reason="", finished_at=None)
    data = with_link(DASHBOARDS, "evaluation.failed", "vision", evaluation_payload(evaluation))
    message = slack("d1", "evaluation.failed", "vision", data, datetime(2026, 12, 6, tzinfo=UTC))
    assert {"type": "section", "text": {"type": "mrkdwn", "text": f"<{DASHBOARDS}evaluations?project=vision&"
                                        "model=digits-mlp&evaluation=7|Open in AITIP>"}} in message["blocks"]
