"""Answers awaiting their labels survive a restart of the platform: kept in the catalog at each interval, read
back when serving starts again, so a label that arrives afterwards still scores the version that answered; a
scored answer is gone from the catalog too, and an endpoint keeps at most its newest ``LABEL_MEMORY``."""

from __future__ import annotations

import time
from typing import Any

import pytest
from sqlalchemy import func, select

from aitip.serving import remembered
from aitip.serving.tables import RememberedAnswerRecord
from tests.server.conftest import TOKENS
from tests.serving.test_endpoints_api import ENDPOINTS, jp_server_config, make_alpha, oip, serve  # noqa: F401


async def test_a_label_arriving_after_a_restart_scores_the_version_that_answered(
        api: Any, jp_fetch: Any, jp_serverapp: Any, served_models: Any) -> None:
    _, fitted, x_test = served_models
    await make_alpha(api)
    status, endpoint = await api("POST", ENDPOINTS, user="carol", body={"name": "digits", "model": "digits",
                                                                       "version": 1})
    assert status == 201, endpoint
    truth = {}
    for index in range(6):
        rows = x_test[index:index + 1]
        status, answer, _ = await serve(jp_fetch, "v2/models/digits/infer", oip(rows), token=TOKENS["bob"],
                                        headers={"X-Request-Id": f"before-{index}"})
        assert status == 200, answer
        truth[f"before-{index}"] = int(fitted[1].predict(rows)[0])
    status, scored, _ = await serve(jp_fetch, "feedback", {"labels": {"before-0": truth.pop("before-0")}},
                                    token=TOKENS["carol"])
    assert status == 200 and scored["labelled"] == 1, scored

    service = jp_serverapp.web_app.settings["aitip"].serving
    await service.stop()  # the platform stops: its routers, and what they remembered, are gone
    await service.start()
    with service.catalog.session() as session:
        kept = set(session.scalars(select(RememberedAnswerRecord.request_id)))
    assert kept == set(truth), kept  # the scored one is not kept

    status, scored, _ = await serve(jp_fetch, "feedback", {"labels": {**truth, "before-0": 3}},
                                    token=TOKENS["carol"])
    assert status == 200, scored
    assert (scored["labelled"], scored["unknown"]) == (5, ["before-0"]), scored  # each answer scored once
    status, metrics = await api("GET", f"{ENDPOINTS}/digits/metrics", user="bob")
    (total,) = metrics["totals"]
    assert (total["version"], total["labelled"], total["accuracy"]) == (1, 5, 1.0), total
    await service.flush()
    with service.catalog.session() as session:
        assert session.scalar(select(func.count()).select_from(RememberedAnswerRecord)) == 0


def test_an_endpoint_keeps_its_newest_answers_within_a_day(catalog: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from aitip.projects.tables import ProjectRecord
    from aitip.serving.tables import EndpointRecord

    monkeypatch.setattr(remembered, "LABEL_MEMORY", 3)
    with catalog.session() as session:
        project = ProjectRecord(name="alpha", display_name="alpha", created_by="ann")
        session.add(project)
        session.flush()
        endpoint = EndpointRecord(project_id=project.id, name="digits", model="digits", mode="local", settings={},
                                  created_by="ann")
        session.add(endpoint)
        session.flush()
        endpoint_id = endpoint.id
    now = time.time()
    with catalog.session() as session:
        remembered.save(session, endpoint_id, {"stale": (now - 2 * 24 * 3600, 1, [1])}, set())
        remembered.save(session, endpoint_id, {f"r{i}": (now - 10 + i, 1 + i % 2, [i]) for i in range(5)}, set())
    with catalog.session() as session:
        assert remembered.load(session, endpoint_id) == [("r2", pytest.approx(now - 8), 1, [2]),
                                                         ("r3", pytest.approx(now - 7), 2, [3]),
                                                         ("r4", pytest.approx(now - 6), 1, [4])]
        remembered.save(session, endpoint_id, {"r3": (now, 2, [9])}, {"r4"})  # answered again; scored
    with catalog.session() as session:
        assert [(entry[0], entry[3]) for entry in remembered.load(session, endpoint_id)] == [("r2", [2]), ("r3", [9])]
