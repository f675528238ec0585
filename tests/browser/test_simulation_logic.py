"""The Simulation page's logic without a browser: simulations and templates as table rows, filters, the verdict
with its checks and regressions in both languages, the curves per family of conditions, the comparison, the
gallery and the probes (escaped), the Simulate form's endpoint and who may simulate. The simulations are
measured here by the platform's own code — the shipped image template run by :func:`simulate_images` against
two versions of a digits logistic regression, the LLM suites sent to the shipped weak test endpoint — judged by
:func:`aitip.simulation.verdicts.judge`, and shaped as the API answers them (``SimulationDetail``)."""

from __future__ import annotations

import base64
import datetime as dt
import json
from functools import lru_cache
from html import escape
from typing import Any

import pytest

from aitip.simulation import library, verdicts
from aitip.simulation.answers import condition_changes
from aitip.simulation.models import Comparison, SimulationDetail
from panel_apps import simulation_charts as charts, simulation_views as views
from panel_apps.language import use_language

MD5 = "0" * 32


@lru_cache(maxsize=None)
def digits_models() -> tuple[Any, Any, Any, Any]:
    """Two logistic regressions on raw pixels as the training notebook fits them (regularized as on pixels scaled
    to [0, 1]): a strong one on the whole training split and a weak one on ten images of each digit; and the
    test split."""
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(digits.data, digits.target, test_size=0.25, random_state=0,
                                                        stratify=digits.target)
    few = np.concatenate([np.flatnonzero(y_train == digit)[:10] for digit in range(10)])
    models = [LogisticRegression(C=1 / 16**2, max_iter=1000, random_state=0).fit(x, y)
              for x, y in ((x_train, y_train), (x_train[few], y_train[few]))]
    return models[0], models[1], x_test, y_test


def detail(identity: int, template: dict[str, Any], result: dict[str, Any] | None, verdict: dict[str, Any] | None,
           **fields: Any) -> dict[str, Any]:
    """A simulation as ``simulations.get`` answers it."""
    moment = dt.datetime(2026, 12, 6, 3, identity, tzinfo=dt.timezone.utc)
    state = fields.pop("state", None) or ("passed" if verdict and verdict["passed"] else "failed")
    record = dict(id=identity, project="vision", template_name=template["name"], template_version=template["version"],
                  template_source="library", kind=template["kind"], model=None, model_version=None, model_run_id=None,
                  endpoint=None, dataset=None, dataset_version=None, dataset_md5="", job_id=20 + identity,
                  notebook_sha256="f" * 64, state=state, trigger="manual", previous_id=None,
                  clean=(result or {}).get("clean"), metrics={}, verdict=verdict, error=None, reason="",
                  has_report=state in ("passed", "failed"), created_by="ann", created_at=moment,
                  finished_at=moment if state in views.FINISHED else None, template=template, result=result)
    record.update(fields)
    return SimulationDetail(**record).model_dump(mode="json")


@lru_cache(maxsize=None)
def image_simulations() -> tuple[dict[str, Any], dict[str, Any]]:
    """The shipped image template against version 1 (strong) and version 2 (weak, judged against version 1)."""
    from aitip.simulation.image import simulate_images
    from aitip.simulation.templates import validate

    template = library.shipped()["image_robustness"]
    strong, weak, x, y = digits_models()
    results = [simulate_images(validate(template), model, x, y, gallery_size=6) for model in (strong, weak)]
    first_verdict = verdicts.judge(template, results[0])
    second_verdict = verdicts.judge(template, results[1], results[0])
    model = dict(model="digits", dataset="digits", dataset_version=1, dataset_md5=MD5)
    first = detail(1, template, results[0], first_verdict, model_version=1, **model)
    second = detail(2, template, results[1], second_verdict, model_version=2, previous_id=1, **model)
    return first, second


@lru_cache(maxsize=None)
def llm_simulation() -> dict[str, Any]:
    """The shipped LLM template's suites against the shipped weak endpoint."""
    from aitip.simulation.llm_probes import run_suites
    from aitip.simulation.test_endpoints import running_endpoint

    template = library.shipped()["llm_safety"]
    with running_endpoint("weak") as url:
        endpoint = {"uri": url, "method": "POST", "headers": {}, "response_json_field": "$.choices[0].message.content",
                    "req_template_json_object": views.DEFAULT_REQUEST, "timeout_seconds": 10}
        result = run_suites(endpoint, template["conditions"])
    return detail(3, template, result, verdicts.judge(template, result), endpoint={**endpoint, "uri": url})


def test_each_simulation_is_a_row_with_its_template_target_verdict_and_clean_metric() -> None:
    first, second = image_simulations()
    probed = llm_simulation()
    frame = views.simulations_frame([probed, second, first])
    assert list(frame.columns) == views.TABLE_COLUMNS and frame["id"].tolist() == [3, 2, 1]
    assert frame["template"].tolist() == ["llm_safety@1", "image_robustness@1", "image_robustness@1"]
    assert frame["target"][1] == "digits v2" and frame["dataset"][1] == "digits v1"
    assert frame["target"][0].startswith("http://127.0.0.1:") and frame["dataset"][0] == ""
    assert f"data-state='{second['state']}'" in frame["state"][1]
    checks = second["verdict"]["checks"]
    met = sum(1 for check in checks if check["passed"])
    assert frame["verdict"][1].startswith(f"{met} of {len(checks)} thresholds met")
    dropped = sum(1 for row in second["verdict"]["regressions"] if not row["passed"])
    assert ("regression" in frame["verdict"][1]) == (dropped > 0)
    assert frame["clean"][2] == f"{first['clean']:.3f}" and frame["clean"][0] == "", "an LLM has no clean data"
    assert frame["trigger"][0] == "started by hand"
    assert views.trigger_text("evaluation:7") == "started after evaluation 7 passed"
    queued = detail(4, library.shipped()["custom"], None, None, state="queued", model="digits", model_version=3)
    assert views.simulations_frame([queued])["verdict"][0] == "" and not views.settled(queued)
    assert views.settled(first) and not views.settled({**first, "has_report": False})


def test_the_filters_and_the_simulation_shown_by_default() -> None:
    first, second = image_simulations()
    probed = llm_simulation()
    listed = [probed, second, first]
    assert views.filter_simulations(listed, "digits") == [second, first]
    assert views.filter_simulations(listed, views.ENDPOINTS) == [probed]
    assert views.filter_simulations(listed, None, "llm_safety") == [probed]
    assert views.filter_simulations(listed, None, None, first["state"]) == [s for s in listed
                                                                            if s["state"] == first["state"]]
    running = detail(5, library.shipped()["custom"], None, None, state="running", model="digits", model_version=3)
    assert views.default_simulation([running, *listed], None) == 3, "the newest judged one"
    assert views.default_simulation(listed, "1") == 1 and views.default_simulation(listed, "99") == 3
    assert views.default_simulation([], None) is None


def test_the_verdict_its_checks_and_regressions_read_in_english_and_chinese() -> None:
    first, second = image_simulations()
    found = views.context(second, views.previous_of(second, [second, first]), "en")
    english = views.verdict_html(found, second)
    heading = "Passed: every threshold is met." if second["verdict"]["passed"] else "Failed:"
    assert heading in english and f"data-state='{second['state']}'" in english
    for reason in second["verdict"]["reasons"]:
        assert escape(reason) in english, "the judge's own reasons, in English"
    checks = views.checks_html(found)
    assert checks.count("<tr data-passed=") == len(second["verdict"]["checks"])
    assert checks.count("data-passed='false'") == sum(1 for c in second["verdict"]["checks"] if not c["passed"])
    assert "accuracy under pgd eps=0.1 &gt;= 0.60" in checks
    regressions = views.regressions_html(found)
    assert "Against model version 1" in regressions
    assert regressions.count("<tr data-passed=") == len(second["verdict"]["regressions"]) > 0
    first_found = views.context(first, None, "en")
    assert "nothing to regress against" in views.regressions_html(first_found)
    assert "no versions to regress against" in views.regressions_html(first_found, of_a_model=False)
    facts = views.facts_html(found)
    assert MD5 in facts and "f" * 64 in facts and "image_robustness@1" in facts
    with use_language("zh_CN"):
        chinese = views.verdict_html(views.context(second, {"model_version": 1}, "zh_CN"), second)
        table = views.checks_html(views.context(second, {"model_version": 1}, "zh_CN"))
        regressions = views.regressions_html(views.context(second, {"model_version": 1}, "zh_CN"))
    assert "<td style='padding:.15rem .6rem;text-align:left'>干净数据</td>" in regressions, "clean, in Chinese"
    assert ("未通过" if not second["verdict"]["passed"] else "通过") in chinese and "Failed" not in chinese
    assert "阈值" in table and "threshold" not in table.split("<tbody>")[0]


def test_a_running_or_failed_simulation_says_how_far_it_got() -> None:
    custom = library.shipped()["custom"]
    running = detail(6, custom, None, None, state="running", model="digits", model_version=3)
    shown = views.verdict_html(views.context(running, None, "en"), running)
    assert "Running in its sandbox" in shown and "href='./jobs?job=26'" in shown
    broken = detail(7, custom, None, None, state="error", reason="endpoint cannot be reached: connection refused",
                    error={"code": "job_failed", "message": "endpoint cannot be reached: connection refused"})
    shown = views.verdict_html(views.context(broken, None, "en"), broken)
    assert "No verdict" in shown and "connection refused" in shown
    assert views.simulations_frame([broken])["verdict"][0].startswith("endpoint cannot be reached")


def test_the_curves_group_the_epsilon_attacks_and_start_from_the_clean_value() -> None:
    _first, second = image_simulations()
    ordered = charts.curve_families(second["result"], second["verdict"]["checks"])
    families = {family["family"]: family for family in ordered}
    assert [family["family"] for family in ordered] == ["epsilon", "gaussian_noise", "blur", "brightness", "contrast",
                                                        "jpeg", "occlusion"], "the attacks first, then as run"

    attacks = families["epsilon"]
    assert attacks["title"] == "Adversarial attacks" and [s["condition"] for s in attacks["series"]] == ["fgsm", "pgd"]
    for series in attacks["series"]:
        assert series["x"] == [0.0, 0.05, 0.1, 0.2] and series["y"][0] == second["clean"], "from the clean value"
    assert attacks["clean"] is None, "the curves start from it: no separate line"
    named = {(t["text"], t["at"]) for t in attacks["thresholds"]}
    assert named == {("accuracy under fgsm eps=0.05 >= 0.75", 0.05), ("accuracy under pgd eps=0.1 >= 0.60", 0.1)}
    assert families["brightness"]["series"][0]["x"] == [-0.2, 0.0, 0.2], "brightness 0 is the clean data"
    assert families["jpeg"]["clean"] == second["clean"] and families["jpeg"]["series"][0]["x"] == [20.0, 50.0]
    assert families["occlusion"]["thresholds"][0]["at"] is None, "the worst position over the grid: a full line"
    figure = charts.family_figure(attacks)
    assert {"simulation-curves", "family-epsilon", "series-2", "thresholds-2"} <= set(figure.css_classes)
    with use_language("zh_CN"):
        chinese = charts.curve_families(second["result"], second["verdict"]["checks"])
    assert chinese[0]["metric"] == "准确率" and any(family["title"] == "对抗攻击" for family in chinese)
    custom = {"metric": "accuracy", "clean": 0.9, "conditions": [
        {"condition": "feature_dropout", "parameter": "share", "value": 0.5, "metric": 0.5},
        {"condition": "feature_dropout", "parameter": "share", "value": 0.1, "metric": 0.8}]}
    [dropout] = charts.curve_families(custom, [])
    assert dropout["axis"] == "share" and dropout["series"][0]["x"] == [0.1, 0.5] and dropout["clean"] == 0.9
    assert charts.curve_families(llm_simulation()["result"], []) == [], "suites have no parameter to draw"
    assert "empty" in charts.empty("nothing", "simulation-curves").css_classes


def comparison(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """``simulations.compare`` of two simulations: the platform's own changes, ``after`` beside ``before``."""
    changes = condition_changes(before["result"], after["result"])
    fields = set(SimulationDetail.model_fields) - {"template", "result"}
    return Comparison(before={k: v for k, v in before.items() if k in fields},
                      after={k: v for k, v in after.items() if k in fields}, metric="accuracy",
                      tolerance=after["template"]["regression"]["tolerance"], changes=changes).model_dump(mode="json")


def test_the_comparison_marks_each_drop_beyond_the_tolerance_and_overlays_the_curves() -> None:
    first, second = image_simulations()
    compared = comparison(first, second)
    rows = charts.comparison_rows(compared)
    assert rows[0]["condition"] == "clean" and rows[0]["change"] == pytest.approx(second["clean"] - first["clean"])
    beyond = {(row["condition"], row["value"]) for row in rows if row["beyond"]}
    judged = {(row["condition"], row["value"]) for row in second["verdict"]["regressions"] if not row["passed"]}
    assert beyond == judged and judged, "the page marks the drops the judge failed"
    assert all(row["tone"] == "worse" for row in rows if row["beyond"])
    html = charts.comparison_html(compared)
    assert html.count("<tr data-condition=") == len(rows) and "#1 digits v1" in html and "#2 digits v2" in html
    families = charts.overlaid_families(compared)
    attacks = next(family for family in families if family["family"] == "epsilon")
    assert attacks["before"]["series"][0]["y"][0] == first["clean"]
    assert attacks["after"]["series"][0]["y"][0] == second["clean"]
    figure = charts.overlaid_figure(attacks, "#1 digits v1", "#2 digits v2")
    assert {"comparison-curves", "family-epsilon", "sides-2"} <= set(figure.css_classes)
    assert len(figure.legend[0].items) == 4, "fgsm and pgd, each for both simulations"


def test_the_gallery_shows_the_pictures_the_notebook_published_and_nothing_else() -> None:
    _first, second = image_simulations()
    examples = second["result"]["examples"]
    assert examples, "the weak model is broken by some condition"
    found = views.context(second, None, "en")
    html = views.gallery_html(found, "image")
    assert html.count("<img class='gallery-original' src='data:image/png;base64,") == len(examples)
    assert html.count("<img class='gallery-perturbed' src='data:image/png;base64,") == len(examples)
    broken = sum(1 for example in examples if example["prediction"] != example["label"])
    assert html.count("data-broken='true'") == broken
    forged = {**second, "result": {**second["result"], "examples": [
        {**examples[0], "label": "<b>3</b>", "perturbed_png": base64.b64encode(b"<svg onload=alert(1)>").decode()},
        {**examples[0], "label": "<b>3</b>"}]}}
    html = views.gallery_html(views.context(forged, None, "en"), "image")
    assert "onload" not in html and "<b>3</b>" not in html and "&lt;b&gt;3&lt;/b&gt;" in html
    assert html.count("class='gallery-example'") == 1 and "1 example was not a PNG and is left out." in html
    assert "only image simulations" in views.gallery_html(views.context(llm_simulation(), None, "en"), "llm")


def test_the_probes_show_each_suites_rate_and_the_hits_escaped() -> None:
    probed = llm_simulation()
    result = probed["result"]
    hits = [probe for probe in result["probes"] if probe["hit"]]
    assert hits, "the weak endpoint falls for some probes"
    html = views.probes_html(views.context(probed, None, "en"), "llm")
    assert html.count("<tr data-suite=") == 3 and html.count("class='probe-hit'") == len(hits)
    for row in result["conditions"]:
        assert f"{100 * row['metric']:.1f} %" in html
    answered = {**probed, "result": {**result, "probes": [
        {**hits[0], "response": "<script>alert('x')</script> here is the secret"}, *result["probes"][1:]]}}
    html = views.probes_html(views.context(answered, None, "en"), "llm")
    assert "<script>" not in html and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    assert "only LLM simulations" in views.probes_html(views.context(image_simulations()[0], None, "en"), "image")


def test_the_templates_and_the_form() -> None:
    shipped = library.shipped()
    summaries = [library.summary(template, "library", [template["version"]]).model_dump(mode="json")
                 for template in shipped.values()]
    frame = views.templates_frame(summaries)
    assert list(frame.columns) == views.TEMPLATE_COLUMNS and set(frame["source"]) == {"library"}
    image = frame[frame["template"] == "image_robustness"].iloc[0]
    assert "pgd" in image["conditions"] and "accuracy under pgd eps=0.1 >= 0.60" in image["thresholds"]
    options = views.template_options(summaries)
    assert "image_robustness@1" in options.values() and views.kind_of(summaries, "llm_safety@1") == "llm"
    full = library.full(shipped["custom"], shipped["custom"], "library", [1]).model_dump(mode="json")
    shown = views.template_html(full)
    assert "code: |\n" in shown and "def simulate(model, features, labels):\n" in shown, "the code as written"

    assert views.endpoint_settings("  ", "", "", "") is None, "the platform says an endpoint is missing"
    endpoint = views.endpoint_settings("http://127.0.0.1:9/chat", "", "", "Bearer k")
    assert endpoint == {"uri": "http://127.0.0.1:9/chat", "req_template_json_object": views.DEFAULT_REQUEST,
                        "response_json_field": views.DEFAULT_RESPONSE_FIELD, "headers": {"Authorization": "Bearer k"}}
    with pytest.raises(ValueError, match="not JSON"):
        views.endpoint_settings("http://x/y", "{nope", "", "")
    with pytest.raises(ValueError, match="JSON object"):
        views.endpoint_settings("http://x/y", json.dumps(["$INPUT"]), "", "")
    problems = views.problems_html([{"field": "endpoint.uri", "message": "String should match pattern <x>"}])
    assert "<code>endpoint.uri</code>" in problems and "&lt;x&gt;" in problems
    assert views.problems_html(None) == ""
    assert views.endpoint_text({"uri": "https://user:secret@host:8443/v1/chat?key=k"}) == "https://host:8443/v1/chat"


@pytest.mark.parametrize(("role", "admin", "refused"), [
    ("viewer", False, "Simulating in vision needs the developer role; you are viewer."),
    ("developer", False, None), ("maintainer", False, None), (None, True, None),
    (None, False, "you are not a member"),
])
def test_only_developers_and_above_may_simulate(role: str | None, admin: bool, refused: str | None) -> None:
    me = {"name": "x", "admin": admin, "projects": [{"project": "vision", "role": role}] if role else []}
    refusal = views.simulate_refusal(me, "vision")
    assert refusal is None if refused is None else refused in refusal


def test_the_form_asks_for_a_model_version_or_an_endpoint_and_the_filters_list_what_was_simulated() -> None:
    first, second = image_simulations()
    probed = llm_simulation()
    templates = [library.summary(template, "library", [template["version"]]).model_dump(mode="json")
                 for template in library.shipped().values()]
    arguments, doing = views.simulation_request(templates, "image_robustness@1", model="digits", version=2,
                                                dataset="digits", dataset_version=0, endpoint=("", "", "", ""))
    assert arguments == {"template": "image_robustness@1", "model": "digits", "version": 2, "dataset": "digits",
                         "dataset_version": None} and doing == "simulate image_robustness@1 against digits version 2"
    arguments, doing = views.simulation_request(templates, "llm_safety@1", model="digits", version=2, dataset="d",
                                                dataset_version=3, endpoint=("", "", "", ""))
    assert arguments == {"template": "llm_safety@1", "endpoint": None}, "the platform says the endpoint is missing"
    assert doing == "simulate llm_safety@1 against an endpoint"
    developer = {"name": "x", "admin": False, "projects": [{"project": "vision", "role": "developer"}]}
    assert "No registered model version" in views.form_refusal(developer, "vision", False, False)
    assert views.form_refusal(developer, "vision", True, False) is None, "an LLM template needs no model"
    models, names = views.filter_options([probed, second, first], [{"name": "other"}], templates)
    assert list(models.values()) == ["", "digits", "other", views.ENDPOINTS]
    assert "llm_safety" in names.values() and "image_robustness" in names.values()
    assert "2 simulations: " in views.summary_html("vision", [second, first], 3)
    assert "No simulation matches these filters." in views.summary_html("vision", [], 3)
    assert "aitip simulations create --project vision" in views.summary_html("vision", [], 0)
    options = charts.comparison_options(second, [probed, second, first])
    assert list(options.values()) == ["", "1"], "the version it was judged against, then the other judged one"
    assert charts.comparison_options(probed, [probed, second, first]) == {}
    assert "No other judged simulation of llm_safety" in charts.no_comparison_html(probed)
