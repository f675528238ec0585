"""The Serving page's logic without a browser: endpoints as table rows, their versions and weights, the weights
form's request and who may send it (in both languages), the try-it example built from a real model's signature
and accepted by the platform's own decoder, the answer shown escaped, the metric series bucketed at any window
(gaps break the lines, p99 never averaged away), the live charts' data replaced in place, and the empty states.
Endpoints and metrics are shaped as the API answers them (``Endpoint``, ``EndpointMetrics``)."""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

import numpy as np
import pytest

from aitip.serving import protocols
from aitip.serving.models import Endpoint, EndpointMetrics, EndpointSettings
from aitip.serving.signature import Signature, parse
from panel_apps import serving_charts as charts, serving_views as views
from panel_apps.language import use_language

NOW = dt.datetime(2026, 12, 7, 10, 0, 0, tzinfo=dt.timezone.utc)
DEVELOPER = {"name": "ann", "admin": False, "projects": [{"project": "vision", "role": "developer"}]}
VIEWER = {"name": "bob", "admin": False, "projects": [{"project": "vision", "role": "viewer"}]}


def variant(version: int, weight: int, state: str = "serving", **fields: Any) -> dict[str, Any]:
    return {"version": version, "weight": weight, "shadow": False, "state": state, "reason": None, "replicas": 1,
            "replicas_wanted": 1, "run_id": f"run{version}", "created_by": "ann", "created_at": NOW, **fields}


def endpoint(name: str = "digits", variants: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """An endpoint as ``endpoints.get`` answers it."""
    return Endpoint(id=1, project="vision", name=name, model="digits-model", mode="local",
                    settings=EndpointSettings().model_dump(mode="json"), variants=variants or [variant(1, 80), variant(2, 20)],
                    url=f"/services/aitip/serve/vision/{name}/", created_by="ann", created_at=NOW,
                    updated_at=NOW).model_dump(mode="json")


def point(seconds_before: float, version: int, requests: int, errors: int = 0, client_errors: int = 0,
          p50: float | None = 10.0, p99: float | None = 30.0) -> dict[str, Any]:
    return {"at": NOW - dt.timedelta(seconds=seconds_before), "version": version, "seconds": 5.0,
            "requests": requests, "errors": errors, "client_errors": client_errors, "rows": requests,
            "error_rate": errors / requests if requests else None, "latency_p50_ms": p50, "latency_p90_ms": p50,
            "latency_p99_ms": p99}


def metrics(points: list[dict[str, Any]], totals: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Metrics as ``endpoints.metrics`` answers them."""
    if totals is None:
        totals = [{"version": 1, "requests": 40, "errors": 1, "client_errors": 2, "rows": 40, "shadow_requests": 0,
                   "retries": 0, "latency_p50_ms": 9.5, "latency_p90_ms": 20.0, "latency_p99_ms": 41.25,
                   "in_flight": 0}]
    return EndpointMetrics(endpoint="digits", since=NOW - dt.timedelta(hours=1), series=points,
                           totals=totals).model_dump(mode="json")


# ----- the table and the versions -----

def test_endpoints_are_rows_with_each_versions_weight_state_and_replicas() -> None:
    failed = variant(3, 0, "failed", reason="model.skops cannot be loaded", replicas=0, replicas_wanted=0)
    listed = [endpoint(), endpoint("tabular", [variant(1, 100, replicas=2, replicas_wanted=2), failed])]
    with use_language("en"):
        frame = views.endpoints_frame(listed, "https://aitip.example.org")
        assert list(frame.columns) == views.TABLE_COLUMNS
        assert frame["url"].tolist() == ["https://aitip.example.org/services/aitip/serve/vision/digits/",
                                         "https://aitip.example.org/services/aitip/serve/vision/tabular/"]
        cell = frame["versions"][0]
        assert "v1</b> 80 %" in cell and "v2</b> 20 %" in cell and cell.count("1 of 1 replicas") == 2
        assert "data-state='serving'" in cell
        assert "data-state='failed'" in frame["versions"][1] and "did not load" in frame["versions"][1]
        versions = views.versions_html(listed[1])
        assert "model.skops cannot be loaded" in versions and "all the traffic" in versions
        assert "canary" in views.versions_html(listed[0]) and "main" in views.versions_html(listed[0])
        assert views.summary_html("vision", listed) == \
            "<span id='endpoints-count'>2 endpoints in vision, 3 versions serving</span>"
    with use_language("zh_CN"):
        assert views.table_titles()["versions"] == "版本：权重、状态、副本"
        assert "加载失败" in views.endpoints_frame(listed)["versions"][1]
        assert "金丝雀" in views.versions_html(listed[0])


def test_version_colours_are_the_same_on_the_bar_and_the_charts() -> None:
    shown = endpoint()
    colours = views.version_colours(shown, [4])
    assert list(colours) == [1, 2, 4] and len(set(colours.values())) == 3
    figure = charts.weights_figure(shown)
    source = figure.renderers[0].data_source.data
    assert source["colour"] == [colours[1], colours[2]]
    assert source["label"] == ["v1 · 80 %", "v2 · 20 %"] and source["right"] == [80, 100]
    assert figure.css_classes == ["serving-weights", "versions-2"]
    tiny = charts.weights_figure(endpoint(variants=[variant(1, 97), variant(2, 3)]))
    assert tiny.renderers[0].data_source.data["label"] == ["v1 · 97 %", ""], "too narrow to name inside"


def test_the_empty_state_says_how_to_deploy() -> None:
    models = [{"name": "digits_model", "versions": [{"version": 1}, {"version": 3}]}]
    with use_language("en"):
        text = views.empty_state("vision", models, may_deploy=True)
        assert "No endpoints in vision yet." in text
        assert ("aitip endpoints deploy --project vision --name digits-model --model digits_model --version 3"
                in text)
        assert "Register a model version first" in views.empty_state("vision", [], may_deploy=True)
        assert "A developer of the project" in views.empty_state("vision", models, may_deploy=False)
    with use_language("zh_CN"):
        assert "vision 中还没有端点" in views.empty_state("vision", models, may_deploy=True)


# ----- the weights form -----

def test_only_developers_change_the_traffic_and_are_told_so_in_their_language() -> None:
    assert views.deploy_refusal(DEVELOPER, "vision") is None
    assert views.deploy_refusal({**VIEWER, "admin": True}, "vision") is None
    with use_language("en"):
        refusal = views.deploy_refusal(VIEWER, "vision")
        assert refusal is not None and "needs the developer role; you are viewer" in refusal
        assert "not a member" in str(views.deploy_refusal(VIEWER, "other"))
    with use_language("zh_CN"):
        assert "需要开发者角色；你是查看者" in str(views.deploy_refusal(VIEWER, "vision"))


def test_the_traffic_request_keeps_the_shadow_and_says_the_total() -> None:
    shadowed = endpoint(variants=[variant(1, 70), variant(2, 30), variant(3, 0, shadow=True)])
    assert views.weighted_versions(shadowed) == [1, 2]
    assert views.traffic_request(shadowed, {1: 60, 2: None}) == {"weights": {"1": 60, "2": 0}, "shadow": 3}
    assert views.traffic_request(endpoint(), {2: 50, 1: 50}) == {"weights": {"1": 50, "2": 50}}
    with use_language("en"):
        assert "data-total='100'" in views.total_html({1: 50, 2: 50})
        wrong = views.total_html({1: 70, 2: 20})
        assert "data-total='90'" in wrong and "must sum to 100" in wrong
    with use_language("zh_CN"):
        assert "必须合计为 100" in views.total_html({1: 70, 2: 20})


def test_a_canary_is_chosen_among_the_registered_versions_not_deployed() -> None:
    models = [{"name": "digits-model", "versions": [{"version": v} for v in (1, 2, 3, 4)]},
              {"name": "other", "versions": [{"version": 9}]}]
    assert views.canary_options(endpoint(), models) == {"v4": 4, "v3": 3}
    assert views.canary_options(endpoint(), []) == {}


def test_the_platforms_refusal_names_its_fields() -> None:
    detail = [{"field": "body.weights", "message": "Value error, the weights sum to 90; they must sum to 100"}]
    shown = views.problems_html(detail)
    assert "<code>body.weights</code>" in shown and "sum to 90" in shown
    assert views.problems_html(None) == "" and views.problems_html("text") == ""


# ----- try it -----

def digits_signature() -> Signature:
    from mlflow.models import infer_signature

    return parse({"signature": infer_signature(np.zeros((3, 64)), np.zeros(3, dtype=int)).to_dict()})


def table_signature() -> Signature:
    import pandas as pd
    from mlflow.models import infer_signature

    frame = pd.DataFrame({"age": [41.5], "visits": [3], "city": ["Lyon"], "member": [True]})
    return parse({"signature": infer_signature(frame, np.zeros(1)).to_dict()})


def metadata_of(signature: Signature) -> dict[str, Any]:
    """What an endpoint's replica answers to ``GET v2/models/<name>`` (aitip.serving.replica.ModelMetadata)."""
    inputs = []
    if signature.tensor is not None:
        inputs.append({"name": signature.tensor.name or "input",
                       "datatype": protocols.NUMPY_TO_OIP.get(signature.tensor.dtype, "BYTES"),
                       "shape": list(signature.tensor.shape)})
    inputs += [{"name": column.name, "datatype": column.type, "shape": [-1]} for column in signature.columns]
    return {"name": "digits", "versions": ["1"], "platform": "aitip-python", "inputs": inputs, "outputs": []}


@pytest.mark.parametrize("signature", [digits_signature, table_signature], ids=["tensor", "columns"])
def test_the_example_request_is_one_row_the_platform_decodes(signature: Any) -> None:
    expected = signature()
    example = views.example_request(metadata_of(expected))
    text = views.request_text(example)
    assert json.loads(text) == example
    decoded = protocols.oip_input(text.encode(), expected)
    assert len(decoded) == 1
    if expected.tensor is not None:
        assert example == {"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP64", "data": [0.0] * 64}]}
        assert decoded.shape == (1, 64)
    else:
        assert [(i["name"], i["datatype"], i["data"]) for i in example["inputs"]] == [
            ("age", "FP64", [0.0]), ("visits", "INT64", [0]), ("city", "BYTES", [""]), ("member", "BOOL", [False])]
        assert list(decoded.columns) == ["age", "visits", "city", "member"]


def test_without_metadata_the_example_is_a_guess_and_bad_json_is_said_in_the_readers_language() -> None:
    assert views.example_request(None) == {"inputs": [{"name": "input", "shape": [1, 1], "datatype": "FP64",
                                                       "data": [0.0]}]}
    with use_language("en"):
        with pytest.raises(ValueError, match="The request is not JSON"):
            views.parse_request("{inputs: [")
        with pytest.raises(ValueError, match="must be a JSON object"):
            views.parse_request("[1, 2]")
    with use_language("zh_CN"):
        with pytest.raises(ValueError, match="请求不是 JSON"):
            views.parse_request("{")


def test_the_answer_shows_its_version_and_time_and_is_escaped() -> None:
    with use_language("en"):
        shown = views.answer_html(200, "2", 23.4, b'{"outputs": [{"name": "<b>x</b>", "data": [3]}]}')
        assert "data-version='2'" in shown and "answered by version 2" in shown and "23 ms through the platform" \
            in shown
        assert "&lt;b&gt;x&lt;/b&gt;" in shown and "<b>x</b>" not in shown
        refused = views.answer_html(400, "1", 5, b'{"error": "expected a float64 tensor of shape (N, 64)"}')
        assert "HTTP 400" in refused and "#cc0000" in refused and "shape (N, 64)" in refused
        assert "no version answered" in views.answer_html(503, None, 1, b"not json")
        long = views.answer_html(200, "1", 1, json.dumps({"data": list(range(5000))}).encode())
        assert "characters in all" in long
    with use_language("zh_CN"):
        assert "由版本 2 应答" in views.answer_html(200, "2", 1, b"{}")


def test_the_origin_comes_from_the_forwarded_headers_and_odd_hosts_are_ignored() -> None:
    assert views.public_origin({"Host": "127.0.0.1:8000"}) == "http://127.0.0.1:8000"
    assert views.public_origin({"x-forwarded-host": "aitip.example.org", "X-Forwarded-Proto": "https",
                                "Host": "127.0.0.1:9"}) == "https://aitip.example.org"
    assert views.public_origin({"Host": "evil.example/<script>"}) == ""
    assert views.public_origin(None) == ""


# ----- the series and the charts -----

def test_buckets_keep_any_window_within_bounds() -> None:
    assert views.bucket_seconds(15) == 5.0
    assert views.bucket_seconds(60) == 15.0
    assert views.bucket_seconds(360) == 90.0
    assert views.bucket_seconds(1440) == 360.0
    assert all(minutes * 60 / views.bucket_seconds(minutes) <= views.MAX_BUCKETS for minutes in (15, 60, 360, 1440))


def test_series_rate_errors_and_latency_per_version_with_gaps_breaking_the_lines() -> None:
    points = [point(62, 1, 10, errors=1, client_errors=1, p50=10, p99=30),
              point(61, 1, 30, p50=20, p99=25),  # the same 15 s bucket as the one before
              point(61, 2, 5, p50=40, p99=90),
              point(13, 1, 15, p50=12, p99=50)]
    series = views.series_by_version(metrics(points), 60, now=NOW)
    assert sorted(series) == [1, 2]
    first = series[1]
    assert first["requests"] == [40, 0, 0, 0, 15], "from its first bucket with traffic to the newest written"
    assert first["rate"][0] == pytest.approx(40 / 15)
    assert first["errors"][0] == pytest.approx(2.5) and first["rejected"][0] == pytest.approx(2.5)
    assert first["p50"][0] == pytest.approx((10 * 10 + 20 * 30) / 40), "weighted by requests"
    assert first["p99"][0] == 30, "the highest p99, never an average"
    assert first["rate"][1] == 0 and math.isnan(first["p50"][1]) and math.isnan(first["errors"][1])
    assert first["time"][-1] == dt.datetime(2026, 12, 7, 10, 0, 0), "bucket ends, naive UTC"
    assert series[2]["requests"] == [5, 0, 0, 0, 0] and series[2]["p99"][0] == 90, "to the same bucket"
    later = views.series_by_version(metrics(points), 60, now=NOW + dt.timedelta(seconds=25))
    assert later[1]["requests"] == [40, 0, 0, 0, 15, 0], "idle since: a bucket the platform has written"
    assert views.series_by_version(metrics(points), 60, now=NOW + dt.timedelta(seconds=19))[1]["requests"] == \
        [40, 0, 0, 0, 15], "the bucket still filling is not drawn as a drop to nothing"
    assert views.series_by_version(metrics([]), 60, now=NOW) == {}
    day = views.series_by_version(metrics([point(3600 * 20, 1, 3), point(5, 1, 4)]), 1440, now=NOW)
    assert len(day[1]["time"]) <= views.MAX_BUCKETS + 1


def test_the_charts_are_drawn_once_and_their_data_replaced_on_refresh() -> None:
    shown = endpoint()
    live = charts.LiveCharts()
    with use_language("en"):
        first = views.series_by_version(metrics([point(30, 1, 10), point(20, 2, 4, errors=1)]), 15, now=NOW)
        assert live.draw(shown, first, 5) is True
        requests, errors, latency = (pane.object for pane in live.panes)
        assert requests.css_classes == ["serving-chart", "serving-requests", "versions-2"]
        assert errors.css_classes[1] == "serving-errors" and latency.css_classes[1] == "serving-latency"
        assert requests.title.text == "Requests per second" and latency.yaxis[0].axis_label == "ms"
        assert errors.y_range.end == pytest.approx(25 * 1.15)
        assert [item.label["value"] for item in latency.legend[0].items] == ["v1 p50", "v1 p99", "v2 p50", "v2 p99"]
        again = views.series_by_version(metrics([point(30, 1, 10), point(20, 2, 4), point(5, 1, 8)]), 15, now=NOW)
        span = live.x_range.start, live.x_range.end
        assert span[1] - span[0] == (charts.MIN_BUCKETS + 1) * 5 * 1000, "8 buckets at least, and room"
        assert requests.x_range is errors.x_range is latency.x_range
        assert live.draw(shown, again, 5) is False, "the same versions: the data is replaced in place"
        assert live.x_range.end > span[1], "the time axis follows the data"
        assert live.panes[0].object is requests
        assert list(live.sources[1].data["requests"]) == [10, 0, 0, 0, 0, 8]
        live.x_range.update(start=span[0], end=span[1] + 1)  # the viewer zooms: the axis stays as they left it
        live.draw(shown, again, 5)
        assert (live.x_range.start, live.x_range.end) == (span[0], span[1] + 1)
        assert errors.y_range.end == 5.0, "no error left: 0 to 5 %"
        grown = views.series_by_version(metrics([point(30, 1, 10), point(20, 3, 2)]), 15, now=NOW)
        assert live.draw(shown, grown, 5) is True and live.panes[0].object is not requests
    with use_language("zh_CN"):
        chinese = charts.LiveCharts()
        chinese.draw(shown, first, 5)
        assert chinese.panes[0].object.title.text == "每秒请求数"


def test_the_empty_charts_say_what_to_do_next() -> None:
    shown = endpoint()
    assert views.traffic_state(metrics([], totals=[])) == "none"
    assert views.traffic_state(metrics([])) == "waiting"
    assert views.traffic_state(metrics([point(5, 1, 1)])) == "drawn"
    with use_language("en"):
        none = views.no_traffic_html(shown, "none", "http://127.0.0.1:8000")
        assert "No traffic yet: call the endpoint at http://127.0.0.1:8000/services/aitip/serve/vision/digits/" \
            in none
        assert "v2/models/digits/infer" in none and "Authorization: token" in none
        assert "every 5 s" in views.no_traffic_html(shown, "waiting")
        totals = views.totals_html(metrics([]), shown)
        assert "data-requests='40'" in totals and "41.2" in totals
    with use_language("zh_CN"):
        assert "还没有流量" in views.no_traffic_html(shown, "none")


def test_paths_and_windows() -> None:
    shown = endpoint()
    assert views.infer_path(shown) == "v2/models/digits/infer"
    assert views.infer_path(shown, 2) == "v2/models/digits/versions/2/infer"
    assert views.default_endpoint([shown, endpoint("b")], "b") == "b"
    assert views.default_endpoint([shown], "gone") == "digits" and views.default_endpoint([], None) is None
    with use_language("zh_CN"):
        assert list(views.window_options().values()) == [15, 60, 360, 1440]
        assert "最近 1 小时" in views.window_options()
