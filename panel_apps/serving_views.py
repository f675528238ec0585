"""The Serving page's pure parts: endpoints and their versions as table rows and HTML, the weights form's
request and who may send it, an example request built from the model's signature (the endpoint's own
``GET v2/models/<name>`` metadata), the try-it answer, the metric series bucketed for the charts, and the empty
states saying what to do next. They take the API's JSON and the page's language and call no API, so tests check
them without a browser. The figures are in :mod:`panel_apps.serving_charts`."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from html import escape
from typing import Any

import pandas as pd

from aitip.i18n import N_
from panel_apps.charts import PALETTE
from panel_apps.components import format_time, role_at_least, role_words, viewer_role
from panel_apps.evaluation_views import least_role
from panel_apps.language import _, ngettext

DEPLOY_ACTION = "serving.deploy"
TABLE_COLUMNS = ["endpoint", "model", "versions", "url", "updated"]
STATE_COLOURS = {"serving": "#228822", "starting": "#aa6600", "failed": "#cc0000", "draining": "#777777",
                 "stopped": "#555555"}
STATE_WORDS = {"serving": N_("serving"), "starting": N_("starting"), "failed": N_("did not load"),
               "draining": N_("draining"), "stopped": N_("not run here (Kubernetes)")}
CELL = "padding:.15rem .6rem;text-align:left"
# MLflow's column types as the Open Inference Protocol names them (a column signature's metadata gives the former).
COLUMN_DATATYPES = {"double": "FP64", "float": "FP32", "long": "INT64", "integer": "INT32", "boolean": "BOOL",
                    "string": "BYTES", "binary": "BYTES", "datetime": "BYTES"}
OIP_DATATYPES = ("BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32",
                 "FP64", "BYTES")
FLUSH_SECONDS = 5.0  # the platform writes each version's point every 5 s while it has traffic
MAX_BUCKETS = 240  # points per version a chart draws, whatever the window
ANSWER_SHOWN = 4000  # characters of an answer shown


def state_label(state: str) -> str:
    return _(STATE_WORDS[state]) if state in STATE_WORDS else state


def version_colours(endpoint: dict[str, Any] | None, extra: list[int] | tuple[int, ...] = ()) -> dict[int, str]:
    """A colour per version, the same on the weights bar and every chart: the deployed versions in order, then any
    version the series still holds (undeployed since)."""
    versions = sorted({int(v["version"]) for v in (endpoint or {}).get("variants") or []})
    versions += sorted({int(v) for v in extra} - set(versions))
    return {version: PALETTE[position % len(PALETTE)] for position, version in enumerate(versions)}


def variants(endpoint: dict[str, Any]) -> list[dict[str, Any]]:
    return sorted(endpoint.get("variants") or [], key=lambda variant: int(variant["version"]))


def role_of(variant: dict[str, Any], endpoint: dict[str, Any]) -> str:
    """What a version does: takes all the traffic, a share of it (the newest such is the canary), or a copy."""
    if variant.get("shadow"):
        return _("shadow (gets a copy)")
    weighted = [v for v in variants(endpoint) if int(v.get("weight") or 0) > 0]
    weight = int(variant.get("weight") or 0)
    if weight == 100:
        return _("all the traffic")
    if not weight:
        return _("no traffic")
    if len(weighted) > 1 and int(variant["version"]) == max(int(v["version"]) for v in weighted):
        return _("canary")
    return _("main")


def state_badge(state: str) -> str:
    colour = STATE_COLOURS.get(state, "#333333")
    return (f"<span class='variant-state' data-state='{escape(state)}' style='background:{colour};color:#fff;"
            f"padding:.05rem .45rem;border-radius:.7rem;white-space:nowrap'>{escape(state_label(state))}</span>")


def replicas_text(variant: dict[str, Any]) -> str:
    ready, wanted = int(variant.get("replicas") or 0), int(variant.get("replicas_wanted") or 0)
    return _("{ready} of {wanted} replicas").format(ready=ready, wanted=max(wanted, ready))


def versions_cell(endpoint: dict[str, Any]) -> str:
    """Each version in one cell of the endpoints table: its colour, weight, state and replicas (HTML)."""
    colours = version_colours(endpoint)
    parts = []
    for variant in variants(endpoint):
        version = int(variant["version"])
        weight = _("shadow") if variant.get("shadow") else f"{int(variant.get('weight') or 0)} %"
        parts.append(f"<span class='endpoint-version' data-version='{version}' style='white-space:nowrap'>"
                     f"<b style='color:{colours[version]}'>■ v{version}</b> {escape(weight)} "
                     f"{state_badge(str(variant.get('state') or ''))} "
                     f"<span style='color:#555'>{escape(replicas_text(variant))}</span></span>")
    return " &nbsp; ".join(parts)


def endpoints_frame(endpoints: list[dict[str, Any]], origin: str = "") -> pd.DataFrame:
    """One row per endpoint, by name as the platform lists them; ``versions`` is HTML."""
    rows = [{"endpoint": endpoint["name"], "model": endpoint["model"], "versions": versions_cell(endpoint),
             "url": public_url(endpoint, origin), "updated": format_time(endpoint.get("updated_at"))}
            for endpoint in endpoints]
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def table_titles() -> dict[str, str]:
    return {"endpoint": _("endpoint"), "model": _("model"), "versions": _("versions: weight, state, replicas"),
            "url": _("address"), "updated": _("changed")}


def public_origin(headers: dict[str, Any] | None) -> str:
    """scheme://host of the address the browser used (the proxies' forwarded headers, else Host); empty when
    unknown."""
    def header(name: str) -> str:
        for key, value in (headers or {}).items():
            if key.lower() == name.lower():
                value = ", ".join(value) if isinstance(value, list) else str(value)
                return value.split(",")[0].strip()
        return ""

    host = header("X-Forwarded-Host") or header("Host")
    if not host or any(character in host for character in "/\\ <>\"'"):
        return ""
    scheme = header("X-Forwarded-Proto") or "http"
    return f"{scheme if scheme in ('http', 'https') else 'http'}://{host}"


def public_url(endpoint: dict[str, Any], origin: str = "") -> str:
    """The endpoint's address as a caller writes it (the platform gives it relative to the hub)."""
    return f"{origin}{endpoint.get('url') or ''}"


def infer_path(endpoint: dict[str, Any], version: int | None = None) -> str:
    """The Open Inference Protocol's infer path of the endpoint, relative to its address; pinned to ``version``
    when given (whatever the split says)."""
    name = endpoint["name"] if version is None else f"{endpoint['name']}/versions/{int(version)}"
    return f"v2/models/{name}/infer"


def summary_html(project: str, endpoints: list[dict[str, Any]]) -> str:
    serving = sum(1 for e in endpoints for v in e.get("variants") or [] if v.get("state") == "serving")
    text = ngettext("{count} endpoint in {project}, {serving} versions serving",
                    "{count} endpoints in {project}, {serving} versions serving", len(endpoints)).format(
        count=len(endpoints), project=project, serving=serving)
    return f"<span id='endpoints-count'>{escape(text)}</span>"


def empty_state(project: str, models: list[dict[str, Any]], may_deploy: bool) -> str:
    """What to do to get a first endpoint, with the command that deploys one (HTML)."""
    model = models[0]["name"] if models else "MODEL"
    versions = [int(v["version"]) for v in (models[0].get("versions") or [])] if models else []
    command = (f"aitip endpoints deploy --project {project} --name {model.lower().replace('_', '-')[:63]} "
               f"--model {model} --version {max(versions) if versions else 'N'}")
    nothing = _("No endpoints in {project} yet.").format(project=project)
    if not models:
        how = _("Register a model version first (a training job that logs a model with a name does), then deploy "
                "it:")
    elif may_deploy:
        how = _("Deploy a registered model version as an endpoint:")
    else:
        how = _("A developer of the project deploys a registered model version as an endpoint:")
    return (f"<div class='endpoints-empty' style='font-family:system-ui,sans-serif'><p><b>{escape(nothing)}</b></p>"
            f"<p>{escape(how)}<br><code>{escape(command)}</code></p></div>")


def html_table(css_class: str, titles: list[str], rows: list[str]) -> str:
    head = "".join(f"<th style='{CELL}'>{escape(title)}</th>" for title in titles)
    return (f"<table class='{css_class}' style='border-collapse:collapse;font-size:.9rem;margin:.3rem 0'>"
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")


def title_html(endpoint: dict[str, Any], origin: str = "") -> str:
    title = _("Endpoint {endpoint}: model {model}").format(endpoint=endpoint["name"], model=endpoint["model"])
    address = _("Address")
    return (f"<h3 id='endpoint-title' style='margin:.4rem 0;font-family:system-ui,sans-serif'>{escape(title)}</h3>"
            f"<p style='margin:.1rem 0'>{escape(address)}: <code class='endpoint-url'>"
            f"{escape(public_url(endpoint, origin))}</code></p>")


def versions_html(endpoint: dict[str, Any]) -> str:
    """The endpoint's versions: weight and what it does, state (with why a version did not load), replicas, who
    deployed it and when."""
    colours = version_colours(endpoint)
    rows = []
    for variant in variants(endpoint):
        version, state = int(variant["version"]), str(variant.get("state") or "")
        reason = f"<br><span class='variant-reason' style='color:#842029'>{escape(variant['reason'])}</span>" \
            if variant.get("reason") else ""
        rows.append(f"<tr data-version='{version}' data-weight='{int(variant.get('weight') or 0)}'>"
                    f"<td style='{CELL}'><b style='color:{colours[version]}'>■</b> v{version}</td>"
                    f"<td style='{CELL}' class='variant-weight'>{int(variant.get('weight') or 0)} %</td>"
                    f"<td style='{CELL}'>{escape(role_of(variant, endpoint))}</td>"
                    f"<td style='{CELL}'>{state_badge(state)}{reason}</td>"
                    f"<td style='{CELL}'>{escape(replicas_text(variant))}</td>"
                    f"<td style='{CELL}'>{escape(str(variant.get('created_by') or ''))}, "
                    f"{escape(format_time(variant.get('created_at')))}</td></tr>")
    return html_table("endpoint-versions", [_("version"), _("weight"), _("role"), _("state"), _("replicas"),
                                            _("deployed by")], rows)


# ----- the weights form -----

def deploy_refusal(me: dict[str, Any], project: str | None) -> str | None:
    """Why the viewer may not change an endpoint's traffic in ``project`` (None: they may; the platform checks
    again)."""
    if not project:
        return _("Choose a project.")
    role = viewer_role(me, project)
    least = least_role(DEPLOY_ACTION)
    if role_at_least(role, least):
        return None
    return _("Changing the traffic or the versions of an endpoint in {project} needs the {least} role; you are "
             "{role}. You can read everything and call the endpoints.").format(
        project=project, least=role_words(least), role=role_words(role))


def weighted_versions(endpoint: dict[str, Any]) -> list[int]:
    """The versions the weights form sets: every deployed one but the shadow."""
    return [int(v["version"]) for v in variants(endpoint) if not v.get("shadow")]


def traffic_request(endpoint: dict[str, Any], weights: dict[int, Any]) -> dict[str, Any]:
    """``endpoints.traffic``'s body from the form: each version's percent as given (the platform checks that they
    sum to 100, and says so when they do not), the shadow kept as it is."""
    body: dict[str, Any] = {"weights": {str(version): int(weight or 0) for version, weight in sorted(weights.items())}}
    shadow = next((int(v["version"]) for v in variants(endpoint) if v.get("shadow")), None)
    if shadow is not None:
        body["shadow"] = shadow
    return body


def total_html(weights: dict[int, Any]) -> str:
    total = sum(int(weight or 0) for weight in weights.values())
    if total == 100:
        text = _("Total: {total} %").format(total=total)
        return f"<span class='weights-total' data-total='{total}' style='color:#228822'>{escape(text)}</span>"
    text = _("Total: {total} % — the weights must sum to 100").format(total=total)
    return f"<span class='weights-total' data-total='{total}' style='color:#cc0000'><b>{escape(text)}</b></span>"


def canary_options(endpoint: dict[str, Any], models: list[dict[str, Any]]) -> dict[str, int]:
    """The registered versions of the endpoint's model that it does not serve yet, newest first."""
    deployed = {int(v["version"]) for v in endpoint.get("variants") or []}
    model = next((m for m in models if m.get("name") == endpoint.get("model")), None)
    numbers = sorted({int(v["version"]) for v in (model or {}).get("versions") or []} - deployed, reverse=True)
    return {f"v{number}": number for number in numbers}


def problems_html(detail: Any) -> str:
    """The fields the platform refused and why (its 422's detail)."""
    items = [item for item in detail if isinstance(item, dict)] if isinstance(detail, list) else []
    if not items:
        return ""
    return ("<ul class='serving-problems' style='color:#842029;margin:.2rem 0'>" + "".join(
        f"<li><code>{escape(str(item.get('field', '')))}</code>: {escape(str(item.get('message', '')))}</li>"
        for item in items) + "</ul>")


# ----- try it -----

def _example_value(datatype: str) -> Any:
    if datatype == "BYTES":
        return ""
    if datatype == "BOOL":
        return False
    return 0.0 if datatype.startswith("FP") else 0


def oip_datatype(datatype: Any) -> str:
    text = str(datatype or "")
    return text if text in OIP_DATATYPES else COLUMN_DATATYPES.get(text.lower(), "FP64")


def example_request(metadata: dict[str, Any] | None) -> dict[str, Any]:
    """An Open Inference Protocol request of one row the model accepts, from its metadata (``GET
    v2/models/<name>``): each input with its datatype and shape (any size: 1), filled with zeros (empty strings
    for text). Without a declared input, one FP64 value."""
    inputs = [entry for entry in (metadata or {}).get("inputs") or [] if isinstance(entry, dict)]
    if not inputs:
        inputs = [{"name": "input", "datatype": "FP64", "shape": [-1, 1]}]
    request = []
    for entry in inputs:
        shape = [1 if not isinstance(size, int) or size < 0 else size for size in entry.get("shape") or [-1]]
        datatype = oip_datatype(entry.get("datatype"))
        request.append({"name": str(entry.get("name") or "input"), "shape": shape, "datatype": datatype,
                        "data": [_example_value(datatype)] * math.prod(shape)})
    return {"inputs": request}


def request_text(request: dict[str, Any]) -> str:
    """The request as the box shows it: one line per input, its data on the same line."""
    lines = ",\n".join("    " + json.dumps(entry, separators=(", ", ": ")) for entry in request["inputs"])
    return '{"inputs": [\n' + lines + "\n]}"


def parse_request(text: str) -> dict[str, Any]:
    """The box's JSON object; ValueError saying what is wrong otherwise."""
    try:
        body = json.loads(text)
    except ValueError as error:
        raise ValueError(_("The request is not JSON: {error}").format(error=error)) from None
    if not isinstance(body, dict):
        raise ValueError(_("The request must be a JSON object, such as the example."))
    return body


def compact_json(value: Any) -> str:
    """JSON indented by object, each list of plain values on one line (an answer's data reads as a row)."""
    text = json.dumps(value, indent=1, ensure_ascii=False)
    return re.sub(r"\[\s*\n\s*([^\[\]{}]*?)\s*\n\s*\]",
                  lambda found: "[" + re.sub(r",\s*\n\s*", ", ", found.group(1)) + "]", text)


def answer_html(status: int, version: str | None, milliseconds: float, body: bytes | str) -> str:
    """The endpoint's answer: its status, the version that answered (``X-Model-Version``), the round trip, and the
    body (pretty JSON, cut after a few thousand characters)."""
    text = body.decode(errors="replace") if isinstance(body, bytes) else str(body)
    try:
        text = compact_json(json.loads(text))
    except ValueError:
        pass
    if len(text) > ANSWER_SHOWN:
        text = text[:ANSWER_SHOWN] + "\n… " + _("({count} characters in all)").format(count=len(text))
    good = 200 <= status < 300
    colour = "#228822" if good else "#cc0000"
    answered = _("answered by version {version}").format(version=version) if version else \
        _("no version answered")
    took = _("{milliseconds} ms through the platform").format(milliseconds=f"{milliseconds:.0f}")
    return (f"<div class='try-answer' data-status='{status}' data-version='{escape(version or '')}'>"
            f"<p style='margin:.2rem 0'><b style='color:{colour}'>HTTP {status}</b> · "
            f"<span class='try-version'>{escape(answered)}</span> · <span class='try-latency'>{escape(took)}</span>"
            f"</p><pre style='max-height:320px;overflow:auto;background:#f6f8fa;padding:.5rem;margin:0;"
            f"font-size:.85rem'>{escape(text)}</pre></div>")


def curl_command(endpoint: dict[str, Any], origin: str = "") -> str:
    return (f'curl -H "Authorization: token $JUPYTERHUB_TOKEN" -H "Content-Type: application/json" '
            f"-d @request.json {public_url(endpoint, origin)}{infer_path(endpoint)}")


# ----- the metric series -----

def _moment(value: Any) -> dt.datetime:
    moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def bucket_seconds(window_minutes: float) -> float:
    """The width of a chart's bucket: the platform's own interval (5 s) for short windows, a multiple of it that
    keeps every chart within :data:`MAX_BUCKETS` points for long ones."""
    needed = window_minutes * 60 / MAX_BUCKETS
    return max(FLUSH_SECONDS, FLUSH_SECONDS * math.ceil(needed / FLUSH_SECONDS))


def series_by_version(metrics: dict[str, Any] | None, window_minutes: float,
                      now: dt.datetime | None = None) -> dict[int, dict[str, list[Any]]]:
    """Each version's points in buckets of :func:`bucket_seconds`, from its first bucket with traffic to the newest
    one written (by the platform, every 5 s):
    ``time`` (bucket end, naive UTC), ``rate`` (requests per second; 0 where there was none), ``errors`` and
    ``rejected`` (percent of requests that failed on the server, and that were refused as bad input), ``p50``
    and ``p99`` (ms; the requests-weighted mean of the points' p50 and their highest p99); NaN where a bucket had
    no request, so lines break there."""
    width = bucket_seconds(window_minutes)
    now = now or dt.datetime.now(dt.timezone.utc)
    buckets: dict[int, dict[int, dict[str, float]]] = {}
    for point in (metrics or {}).get("series") or []:
        requests = int(point.get("requests") or 0)
        if requests <= 0:
            continue
        index = math.floor(_moment(point["at"]).timestamp() / width)
        slot = buckets.setdefault(int(point["version"]), {}).setdefault(index, {
            "requests": 0, "errors": 0, "rejected": 0, "p50_weighted": 0.0, "p50_requests": 0, "p99": math.nan})
        slot["requests"] += requests
        slot["errors"] += int(point.get("errors") or 0)
        slot["rejected"] += int(point.get("client_errors") or 0)
        if point.get("latency_p50_ms") is not None:
            slot["p50_weighted"] += float(point["latency_p50_ms"]) * requests
            slot["p50_requests"] += requests
        if point.get("latency_p99_ms") is not None:
            slot["p99"] = float(point["latency_p99_ms"]) if math.isnan(slot["p99"]) else \
                max(slot["p99"], float(point["latency_p99_ms"]))
    if not buckets:
        return {}
    # Up to the newest bucket the platform has surely written (its points come every 5 s), or the newest with data:
    # the bucket still filling is not drawn as a drop to nothing.
    settled = math.floor((now.timestamp() - FLUSH_SECONDS) / width) - 1
    last = max(settled, *(max(slots) for slots in buckets.values()))
    found = {}
    for version, slots in sorted(buckets.items()):
        columns: dict[str, list[Any]] = {"time": [], "rate": [], "requests": [], "errors": [], "rejected": [],
                                         "p50": [], "p99": []}
        for index in range(min(slots), last + 1):
            slot = slots.get(index)
            columns["time"].append(dt.datetime.fromtimestamp((index + 1) * width, dt.timezone.utc)
                                   .replace(tzinfo=None))
            requests = slot["requests"] if slot else 0
            columns["requests"].append(requests)
            columns["rate"].append(requests / width)
            columns["errors"].append(100 * slot["errors"] / requests if slot else math.nan)
            columns["rejected"].append(100 * slot["rejected"] / requests if slot else math.nan)
            columns["p50"].append(slot["p50_weighted"] / slot["p50_requests"] if slot and slot["p50_requests"]
                                  else math.nan)
            columns["p99"].append(slot["p99"] if slot else math.nan)
        found[version] = columns
    return found


def totals_html(metrics: dict[str, Any] | None, endpoint: dict[str, Any]) -> str:
    """Each version's requests, errors and latency since the platform started serving it."""
    totals = (metrics or {}).get("totals") or []
    if not totals:
        return ""
    colours = version_colours(endpoint, [int(t["version"]) for t in totals])

    def ms(value: Any) -> str:
        return "–" if value is None else f"{float(value):.1f}"

    rows = [f"<tr data-version='{int(t['version'])}' data-requests='{int(t['requests'])}'>"
            f"<td style='{CELL}'><b style='color:{colours[int(t['version'])]}'>■</b> v{int(t['version'])}</td>"
            f"<td style='{CELL}'>{int(t['requests']):,}</td><td style='{CELL}'>{int(t['errors']):,}</td>"
            f"<td style='{CELL}'>{int(t['client_errors']):,}</td><td style='{CELL}'>{ms(t.get('latency_p50_ms'))}"
            f"</td><td style='{CELL}'>{ms(t.get('latency_p99_ms'))}</td><td style='{CELL}'>{int(t['in_flight'])}</td>"
            "</tr>" for t in sorted(totals, key=lambda t: int(t["version"]))]
    since = _("Since {moment} UTC").format(moment=format_time(metrics.get("since"))) if metrics else ""
    return (f"<p style='margin:.2rem 0;color:#555'>{escape(since)}</p>" + html_table(
        "endpoint-totals", [_("version"), _("requests"), _("server errors"), _("bad requests (4xx)"),
                            _("p50 latency (ms)"), _("p99 latency (ms)"), _("in flight")], rows))


def traffic_state(metrics: dict[str, Any] | None) -> str:
    """``none`` (nothing called it yet), ``waiting`` (calls counted, not yet written as points) or ``drawn``."""
    if (metrics or {}).get("series"):
        return "drawn"
    if any(int(t.get("requests") or 0) for t in (metrics or {}).get("totals") or []):
        return "waiting"
    return "none"


def no_traffic_html(endpoint: dict[str, Any], state: str, origin: str = "") -> str:
    """Why there are no charts, and what to do: call the endpoint (with the command), or wait a few seconds."""
    if state == "waiting":
        text = _("Calls were counted; their points are written every {seconds} s and appear here then.").format(
            seconds=f"{FLUSH_SECONDS:.0f}")
        return f"<div class='serving-charts-empty' data-state='waiting'><p>{escape(text)}</p></div>"
    text = _("No traffic yet: call the endpoint at {url} — with Try it below, or from a program:").format(
        url=public_url(endpoint, origin))
    return (f"<div class='serving-charts-empty' data-state='none' style='font-family:system-ui,sans-serif'>"
            f"<p><b>{escape(text)}</b></p><p><code>{escape(curl_command(endpoint, origin))}</code></p></div>")


def default_endpoint(endpoints: list[dict[str, Any]], wanted: str | None) -> str | None:
    names = [endpoint["name"] for endpoint in endpoints]
    if wanted in names:
        return wanted
    return names[0] if names else None


WINDOWS = {N_("last 15 minutes"): 15, N_("last hour"): 60, N_("last 6 hours"): 360, N_("last 24 hours"): 1440}


def window_options() -> dict[str, int]:
    return {_(label): minutes for label, minutes in WINDOWS.items()}
