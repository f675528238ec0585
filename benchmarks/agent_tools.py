"""Agent tools latency, side by side in one run: the same read as an MCP tool call and as a REST call, and
against MLflow's own MCP server on the same MLflow store.

The read is a project's first page of runs (100 runs of 5,000, each with 5 params and 10 metrics, MLflow's
default order) on the store ``runs_listing.py`` builds:

  (a) REST ``GET /services/aitip/api/aitip/v1/projects/bench/runs?max_results=100``;
  (b) MCP ``tools/call runs_list {"project": "bench", "max_results": 100}`` at ``/services/aitip/mcp``
      (streamable HTTP, stateless), with the MCP SDK's own client (``mcp.Client``: what an agent runs; it
      checks every structured answer against the tool's output schema) and, to tell the server's share from
      the client's, as a bare JSON-RPC POST with httpx (the same bytes the SDK client sends);
  (c) ``mlflow mcp run`` (MLflow 3.17.2's MCP server, stdio, in ``.bench-venvs/mlflow-mcp``, created on first
      use: it needs ``fastmcp``, whose ``mcp`` 1.x cannot share the platform's venv) answering its runs tool
      ``list_runs`` on the same store: it has no page size (it answers the store's default maximum, 1,000
      runs, as a text table of date, name and id), the nearest it has to the question.

AITIP runs behind the real hub and proxy (``aitip up``) with production settings (every request's token is
checked with the hub, no cache), measured straight at the platform service's own port and through the hub's
proxy, with 1 and 8 concurrent clients. ``platform_me`` (and REST ``GET me``) is a trivial round trip for
reference. Every client is a forked process with its own event loop and one keep-alive connection (or one
MCP session) reused for all its calls, so one client's JSON parsing and schema checks never hold up another's
clock; with 8 clients on 2 cores, the clients' CPU still competes with the server's. Reported: p50/p99
milliseconds per call and the ratios MCP/REST and MLflow MCP/AITIP MCP. All three must return the same
first-page run ids, or the benchmark stops.

    .venv/bin/python benchmarks/agent_tools.py            # full: 200 calls at 1 client, 8 x 25 at 8, MLflow 20
    .venv/bin/python benchmarks/agent_tools.py --quick    # 30, 8 x 5 and MLflow 5, for a smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.runs_listing import PAGE, PROJECT, build_store, percentile, start_aitip
from benchmarks.runs_listing import measure as runs_listing_measure

MLFLOW_MCP_VENV = ROOT / ".bench-venvs" / "mlflow-mcp"
MLFLOW_VERSION = "3.17.2"
RUNS_ARGUMENTS = {"project": PROJECT, "max_results": PAGE}

# A call: None when the answer is right, else why not (failed answers are timed and counted, not fatal).
Call = Callable[[], Awaitable[str | None]]
OpenCaller = Callable[[], contextlib.AbstractAsyncContextManager[Call]]


# ----- MLflow's MCP server, in a venv of its own -----

def mlflow_mcp_venv() -> tuple[Path | None, str | None]:
    """``mlflow[mcp]`` (its ``fastmcp`` brings ``mcp`` 1.x, which would replace the platform's 2.x) in a venv of
    its own, created once and reused. Returns (bin dir, None) or (None, why it could not be made)."""
    bin_dir = MLFLOW_MCP_VENV / "bin"
    ready = MLFLOW_MCP_VENV / ".bench-ready"
    if ready.exists() and ready.read_text().strip() == MLFLOW_VERSION and (bin_dir / "mlflow").exists():
        return bin_dir, None
    print(f"mlflow mcp: creating {MLFLOW_MCP_VENV} (once; reused afterwards) with mlflow[mcp]=={MLFLOW_VERSION} "
          "(about a minute) ...", flush=True)
    started = time.time()
    for command in (["python3.11", "-m", "venv", "--clear", str(MLFLOW_MCP_VENV)],
                    [str(bin_dir / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                     f"mlflow[mcp]=={MLFLOW_VERSION}"]):
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
        except (OSError, subprocess.TimeoutExpired) as error:
            return None, f"{' '.join(command[:5])}: {error}"
        if done.returncode != 0:
            tail = [line for line in (done.stderr or done.stdout).strip().splitlines()
                    if not line.startswith("WARNING: Location")][-3:]
            return None, f"{' '.join(command[:5])} exited {done.returncode}: " + " | ".join(tail)
    ready.write_text(MLFLOW_VERSION + "\n")
    print(f"mlflow mcp: venv ready in {time.time() - started:.0f} s", flush=True)
    return bin_dir, None


# ----- the callers: each opens one connection or session and returns a call to repeat on it -----

def rest_caller(url: str, token: str, params: dict[str, Any], check: Callable[[Any], str | None]) -> OpenCaller:
    @contextlib.asynccontextmanager
    async def open_caller() -> AsyncIterator[Call]:
        async with httpx.AsyncClient(timeout=120, headers={"Authorization": f"token {token}"}) as http:
            async def call() -> str | None:
                response = await http.get(url, params=params)
                if response.status_code != 200:
                    return f"{response.status_code} {response.text[:200]}"
                return check(response.json())
            yield call
    return open_caller


def mcp_caller(url: str, token: str, tool: str, arguments: dict[str, Any],
               check: Callable[[Any], str | None]) -> OpenCaller:
    """The MCP SDK's client, one session per simulated client (stateless server: the session is the client's)."""
    @contextlib.asynccontextmanager
    async def open_caller() -> AsyncIterator[Call]:
        from mcp import Client
        from mcp.client.streamable_http import streamable_http_client
        from mcp.shared._httpx_utils import create_mcp_http_client

        async with create_mcp_http_client(headers={"Authorization": f"Bearer {token}"}) as http, \
                Client(streamable_http_client(url, http_client=http)) as client:
            async def call() -> str | None:
                result = await client.call_tool(tool, arguments)
                if result.is_error:
                    return f"tool error: {result.content[0].text[:200] if result.content else ''}"
                return check(result.structured_content)
            yield call
    return open_caller


def raw_mcp_body(tool: str, arguments: dict[str, Any], request_id: int = 1) -> dict[str, Any]:
    """``tools/call`` as the SDK's client sends it (protocol 2026-07-28: no session, the client's identity in
    each request's ``_meta``)."""
    from mcp import types

    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": {
        "name": tool, "arguments": arguments, "_meta": {
            types.PROTOCOL_VERSION_META_KEY: types.LATEST_PROTOCOL_VERSION,
            "io.modelcontextprotocol/clientInfo": {"name": "bench", "version": "0.1.0"},
            "io.modelcontextprotocol/clientCapabilities": {}}}}


def raw_mcp_headers(token: str, tool: str) -> dict[str, str]:
    from mcp import types

    return {"Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream",
            "Content-Type": "application/json", "MCP-Protocol-Version": types.LATEST_PROTOCOL_VERSION,
            "Mcp-Method": "tools/call", "Mcp-Name": tool}


def parse_mcp_response(response: httpx.Response) -> dict[str, Any]:
    """The JSON-RPC message of a POST's answer, sent as JSON or as one Server-Sent Event."""
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        data = [line[5:].strip() for line in response.text.splitlines() if line.startswith("data:")]
        return json.loads(data[-1])  # type: ignore[no-any-return]
    return response.json()  # type: ignore[no-any-return]


def raw_mcp_caller(url: str, token: str, tool: str, arguments: dict[str, Any],
                   check: Callable[[Any], str | None]) -> OpenCaller:
    """``tools/call`` as a bare JSON-RPC POST (httpx, JSON parsed, no schema check): the server's share."""
    @contextlib.asynccontextmanager
    async def open_caller() -> AsyncIterator[Call]:
        body = json.dumps(raw_mcp_body(tool, arguments)).encode()
        async with httpx.AsyncClient(timeout=120, headers=raw_mcp_headers(token, tool)) as http:
            async def call() -> str | None:
                response = await http.post(url, content=body)
                if response.status_code != 200:
                    return f"{response.status_code} {response.text[:200]}"
                result = parse_mcp_response(response).get("result") or {}
                if result.get("isError", True):
                    return f"tool error: {json.dumps(result)[:200]}"
                return check(result.get("structuredContent"))
            yield call
    return open_caller


def mlflow_mcp_caller(bin_dir: Path, store: Path, experiment_id: str, log: Path,
                      check: Callable[[str], str | None]) -> OpenCaller:
    """``mlflow mcp run`` over stdio (its tools limited to the runs group, which holds ``list_runs``)."""
    @contextlib.asynccontextmanager
    async def open_caller() -> AsyncIterator[Call]:
        from mcp import Client
        from mcp.client.stdio import StdioServerParameters, stdio_client

        params = StdioServerParameters(command=str(bin_dir / "mlflow"), args=["mcp", "run"], env={
            "MLFLOW_TRACKING_URI": f"sqlite:///{store}", "MLFLOW_MCP_TOOLS": "runs"})
        with log.open("a") as errlog:
            async with Client(stdio_client(params, errlog=errlog)) as client:
                async def call() -> str | None:
                    result = await client.call_tool("list_runs", {"experiment_id": experiment_id})
                    if result.is_error:
                        return f"tool error: {result.content[0].text[:200] if result.content else ''}"
                    return check(result.content[0].text)
                yield call
    return open_caller


# ----- checks on the answers -----

def runs_check(expected: int = PAGE) -> Callable[[Any], str | None]:
    def check(answer: Any) -> str | None:
        runs = (answer or {}).get("runs")
        return None if isinstance(runs, list) and len(runs) == expected else f"not {expected} runs: {str(answer)[:200]}"
    return check


def me_check(answer: Any) -> str | None:
    return None if isinstance(answer, dict) and answer.get("name") == "admin" else f"not admin: {str(answer)[:200]}"


RUN_ID = re.compile(r"\b[0-9a-f]{32}\b")


def table_check(minimum: int) -> Callable[[str], str | None]:
    def check(text: str) -> str | None:
        found = len(RUN_ID.findall(text))
        return None if found >= minimum else f"{found} run ids in MLflow's answer, expected at least {minimum}"
    return check


# ----- measuring -----

def measure(open_caller: OpenCaller, clients: int, per_client: int, warmup: int = 3) -> tuple[list[float], list[str]]:
    """Milliseconds per call: ``clients`` forked processes, each running ``open_caller`` in its own event loop
    (one connection or MCP session), ``warmup`` untimed calls, then ``per_client`` timed calls back to back,
    all clients starting together (runs_listing's harness, with this benchmark's client)."""
    latencies, failures = runs_listing_measure(open_caller, clients, per_client, warmup, run_client=_client,
                                               timeout=900)
    if not latencies:
        raise RuntimeError(f"no call was measured: {failures[:3]}")
    return latencies, failures


def _client(open_caller: OpenCaller, per_client: int, warmup: int, start: Any, results: Any) -> None:
    mine: list[float] = []
    failed: list[str] = []

    async def run() -> None:
        async with open_caller() as call:
            for _ in range(warmup):
                await call()
            start.wait()
            for _ in range(per_client):
                began = time.perf_counter()
                problem = await call()
                mine.append((time.perf_counter() - began) * 1000)
                if problem is not None:
                    failed.append(problem)

    try:
        asyncio.run(run())
    except BaseException as error:  # noqa: BLE001 - reported by the parent, which would otherwise wait
        failed.append(f"client failed: {error!r}"[:500])
        start.abort()
    results.put((mine, failed))


def summary(latencies: list[float], failures: list[str]) -> dict[str, Any]:
    return {"calls": len(latencies), "errors": len(failures), "p50_ms": statistics.median(latencies),
            "p99_ms": percentile(latencies, 0.99), "max_ms": max(latencies)}


# ----- where an MCP call's time goes, outside the server (one answer, in this process) -----

def breakdown(result: dict[str, Any], output_schema: dict[str, Any] | None, rest_body: bytes,
              mcp_body: bytes) -> dict[str, float]:
    """Milliseconds (median of 50) for the steps an MCP answer adds over REST's, on the real first page:
    the server turning the page into JSON values (REST writes it in pydantic's core) and then writing it twice
    (text and structured content) in one ``CallToolResult``; the SDK client parsing it into its model and
    checking the structured content against the output schema."""
    import jsonschema
    from mcp import types

    def timed(step: Callable[[], Any]) -> float:
        step()
        samples = []
        for _ in range(50):
            began = time.perf_counter()
            step()
            samples.append((time.perf_counter() - began) * 1000)
        return statistics.median(samples)

    from aitip.experiments.models import RunList

    structured = result["structuredContent"]
    page = RunList.model_validate(structured)
    validator = jsonschema.validators.validator_for(output_schema)(output_schema) if output_schema else None
    message = json.loads(mcp_body)["result"]
    steps = {
        "server, REST: the page to JSON in pydantic's core (model_dump_json)": lambda: page.model_dump_json(),
        "server, MCP: the page to JSON values (model_dump(mode='json'))": lambda: page.model_dump(mode="json"),
        "server, MCP: the text content (model_dump_json again)": lambda: page.model_dump_json(),
        "server, MCP: CallToolResult built and written as JSON": lambda: types.CallToolResult(
            content=[types.TextContent(text=page.model_dump_json())], structured_content=structured,
        ).model_dump_json(by_alias=True, exclude_none=True),
        "client: JSON parse of the MCP answer": lambda: json.loads(mcp_body),
        "client: JSON parse of the REST answer": lambda: json.loads(rest_body),
        "client: CallToolResult.model_validate": lambda: types.CallToolResult.model_validate(message),
    }
    if validator is not None:
        steps["client: output-schema check (jsonschema)"] = lambda: validator.validate(structured)
    return {name: timed(step) for name, step in steps.items()}


# ----- the run -----

def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--runs", type=int, default=5000)
    parser.add_argument("--skip-mlflow-mcp", action="store_true", help="leave MLflow's MCP server out")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "agent_tools.json"))
    args = parser.parse_args()
    single, per_client, mlflow_calls = (30, 5, 5) if args.quick else (200, 25, 20)
    concurrent = 8

    mlflow_bin, mlflow_why = (None, "--skip-mlflow-mcp") if args.skip_mlflow_mcp else mlflow_mcp_venv()
    if mlflow_bin is None:
        print(f"mlflow mcp: left out ({mlflow_why})", flush=True)

    work = Path(tempfile.mkdtemp(prefix="aitip-agent-bench-"))
    home = work / "home"
    home.mkdir()
    store = home / "mlflow.sqlite"  # the platform's default tracking store, so `aitip up` reads it
    began = time.time()
    experiment_id = build_store(store, runs=args.runs)
    print(f"store: {args.runs} runs x (5 params, 10 metrics) in {time.time() - began:.1f} s ({store})", flush=True)

    load_before = os.getloadavg()
    platform, service_port = start_aitip(home)
    rows: list[dict[str, Any]] = []
    peer: dict[str, Any] | None = None
    sizes: dict[str, int] = {}
    costs: dict[str, float] = {}
    try:
        token = platform.token(platform.admin_user, platform.admin_password)
        with platform.api(token) as admin:
            assert admin.post("projects", json={"name": PROJECT}).status_code == 201
        paths = {"direct": f"http://127.0.0.1:{service_port}", "proxy": platform.url}
        api = "/services/aitip/api/aitip/v1"
        mcp_path = "/services/aitip/mcp"

        # The same first page from each face (and MLflow's tool), and the answers' sizes.
        with httpx.Client(timeout=120) as http:
            rest = http.get(f"{paths['direct']}{api}/projects/{PROJECT}/runs", params={"max_results": PAGE},
                            headers={"Authorization": f"token {token}"})
            raw = http.post(f"{paths['direct']}{mcp_path}", content=json.dumps(raw_mcp_body("runs_list",
                            RUNS_ARGUMENTS)), headers=raw_mcp_headers(token, "runs_list"))
            tools_list = http.post(f"{paths['direct']}{mcp_path}", headers={
                **raw_mcp_headers(token, "runs_list"), "Mcp-Method": "tools/list"}, content=json.dumps(
                {**raw_mcp_body("runs_list", {}), "method": "tools/list", "params": {
                    "_meta": raw_mcp_body("runs_list", {})["params"]["_meta"]}}))
        assert rest.status_code == 200 and raw.status_code == 200, (rest.text[:300], raw.text[:300])
        rest_ids = [run["run_id"] for run in rest.json()["runs"]]
        raw_result = parse_mcp_response(raw)["result"]
        assert [run["run_id"] for run in raw_result["structuredContent"]["runs"]] == rest_ids, "MCP and REST disagree"
        assert len(rest_ids) == PAGE
        output_schema = next((tool.get("outputSchema") for tool in parse_mcp_response(tools_list)["result"]["tools"]
                              if tool["name"] == "runs_list"), None)
        sizes = {"rest_bytes": len(rest.content), "mcp_bytes": len(raw.content),
                 "tools_list_bytes": len(tools_list.content)}
        costs = breakdown(raw_result, output_schema, rest.content, raw.content)

        async def sdk_page() -> list[str]:
            from mcp import Client
            from mcp.client.streamable_http import streamable_http_client
            from mcp.shared._httpx_utils import create_mcp_http_client

            async with create_mcp_http_client(headers={"Authorization": f"Bearer {token}"}) as client_http, \
                    Client(streamable_http_client(f"{paths['direct']}{mcp_path}", http_client=client_http)) as c:
                result = await c.call_tool("runs_list", RUNS_ARGUMENTS)
                return [run["run_id"] for run in result.structured_content["runs"]]

        assert asyncio.run(sdk_page()) == rest_ids, "the SDK client's page differs from REST's"

        mlflow_log = work / "mlflow-mcp.log"
        if mlflow_bin is not None:
            async def mlflow_page() -> str:
                from mcp import Client
                from mcp.client.stdio import StdioServerParameters, stdio_client

                params = StdioServerParameters(command=str(mlflow_bin / "mlflow"), args=["mcp", "run"], env={
                    "MLFLOW_TRACKING_URI": f"sqlite:///{store}", "MLFLOW_MCP_TOOLS": "runs"})
                with mlflow_log.open("a") as errlog:
                    async with Client(stdio_client(params, errlog=errlog)) as client:
                        result = await client.call_tool("list_runs", {"experiment_id": experiment_id})
                        return str(result.content[0].text)

            text = asyncio.run(mlflow_page())
            theirs = RUN_ID.findall(text)
            assert theirs[:PAGE] == rest_ids, "MLflow's list_runs and AITIP disagree on the first page"
            sizes["mlflow_mcp_runs"] = len(theirs)
            sizes["mlflow_mcp_bytes"] = len(text.encode())
        print(f"same first page from REST, MCP{' and MLflow MCP' if mlflow_bin else ''}; answers: REST "
              f"{sizes['rest_bytes']:,} B, MCP {sizes['mcp_bytes']:,} B"
              + (f", MLflow list_runs {sizes['mlflow_mcp_bytes']:,} B ({sizes['mlflow_mcp_runs']} runs)"
                 if mlflow_bin else ""), flush=True)

        questions = {
            "runs first page": ("runs_list", RUNS_ARGUMENTS, f"/projects/{PROJECT}/runs", {"max_results": PAGE},
                                runs_check()),
            "platform_me": ("platform_me", {}, "/me", {}, me_check),
        }
        plan = [("runs first page", "direct", 1), ("runs first page", "direct", concurrent),
                ("runs first page", "proxy", 1), ("runs first page", "proxy", concurrent),
                ("platform_me", "direct", 1), ("platform_me", "proxy", 1)]
        for question, path, clients in plan:
            tool, arguments, route, params, check = questions[question]
            base = paths[path]
            callers = {"rest": rest_caller(f"{base}{api}{route}", token, params, check),
                       "mcp": mcp_caller(f"{base}{mcp_path}", token, tool, arguments, check),
                       "mcp_raw": raw_mcp_caller(f"{base}{mcp_path}", token, tool, arguments, check)}
            row: dict[str, Any] = {"question": question, "path": path, "clients": clients}
            for face, caller in callers.items():
                latencies, failures = measure(caller, clients, single if clients == 1 else per_client)
                row[face] = summary(latencies, failures)
                if failures:
                    print(f"  {question} {path} {face}: {len(failures)} failed, first: {failures[0][:160]!r}")
            row["mcp_over_rest_p50"] = row["mcp"]["p50_ms"] / row["rest"]["p50_ms"]
            row["mcp_over_rest_p99"] = row["mcp"]["p99_ms"] / row["rest"]["p99_ms"]
            rows.append(row)
            print(_line(row), flush=True)

        if mlflow_bin is not None:
            latencies, failures = measure(mlflow_mcp_caller(mlflow_bin, store, experiment_id, mlflow_log,
                                                            table_check(PAGE)), 1, mlflow_calls, warmup=1)
            ours = rows[0]["mcp"]
            peer = {"server": f"mlflow mcp run {MLFLOW_VERSION} (stdio)", "tool": "list_runs",
                    "answer": f"{sizes.get('mlflow_mcp_runs')} runs as a text table (date, name, id)", "clients": 1,
                    **summary(latencies, failures),
                    "over_aitip_mcp_p50": statistics.median(latencies) / ours["p50_ms"],
                    "over_aitip_mcp_p99": percentile(latencies, 0.99) / ours["p99_ms"]}
            if failures:
                print(f"  mlflow mcp: {len(failures)} failed, first: {failures[0][:160]!r}")
    finally:
        platform.stop()

    report = markdown(rows, peer, costs, sizes)
    print("\n" + report)
    direct = rows[0]
    goals = {
        "mcp_p50_le_5ms_direct_1_client": direct["mcp"]["p50_ms"] <= 5,
        "mcp_p99_le_20ms_direct_1_client": direct["mcp"]["p99_ms"] <= 20,
        "mcp_within_1_5x_rest_direct_1_client": direct["mcp_over_rest_p50"] <= 1.5
        and direct["mcp_over_rest_p99"] <= 1.5,
        "ahead_of_mlflow_mcp": None if peer is None else peer["over_aitip_mcp_p50"] > 1
        and peer["over_aitip_mcp_p99"] > 1,
    }
    print("goals: " + ", ".join(f"{name} {'met' if met else 'NOT met' if met is False else 'not measured'}"
                                for name, met in goals.items()))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "rows": rows, "mlflow_mcp": peer, "goals": goals, "answer_bytes": sizes, "breakdown_ms": costs,
        "runs": args.runs, "page": PAGE, "quick": args.quick, "clients": [1, concurrent],
        "client_model": "forked processes, each its own event loop and one keep-alive connection or MCP session",
        "machine": f"{multiprocessing.cpu_count()} cores", "load_average_before": load_before,
        "load_average_after": os.getloadavg(), "mlflow_mcp_left_out": mlflow_why,
        "note": "latencies in ms; mcp = the MCP SDK's Client (output schema checked), mcp_raw = a bare JSON-RPC "
                "POST with httpx; direct = the platform service's own port, proxy = the hub's proxy; production "
                "settings (every token checked with the hub)",
        "markdown": report,
    }, indent=2))


def _pair(stats: dict[str, Any]) -> str:
    return f"{stats['p50_ms']:.1f} / {stats['p99_ms']:.1f}"


def _line(row: dict[str, Any]) -> str:
    return (f"{row['question']:16} {row['path']:6} {row['clients']:>2}  REST {_pair(row['rest']):>15}  "
            f"MCP {_pair(row['mcp']):>15}  raw {_pair(row['mcp_raw']):>15}  "
            f"MCP/REST {row['mcp_over_rest_p50']:.2f} / {row['mcp_over_rest_p99']:.2f}")


def markdown(rows: list[dict[str, Any]], peer: dict[str, Any] | None, costs: dict[str, float],
             sizes: dict[str, int]) -> str:
    lines = ["p50 / p99 ms per call; MCP = the MCP SDK's client, MCP raw = a bare JSON-RPC POST (httpx)",
             "",
             "| question | path | clients | REST | MCP | MCP raw | MCP ÷ REST p50 | p99 |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        lines.append(f"| {row['question']} | {row['path']} | {row['clients']} | {_pair(row['rest'])} | "
                     f"**{_pair(row['mcp'])}** | {_pair(row['mcp_raw'])} | {row['mcp_over_rest_p50']:.2f} | "
                     f"{row['mcp_over_rest_p99']:.2f} |")
    if peer is not None:
        lines += ["", "| MCP server | tool | answer | clients | p50 / p99 | × AITIP MCP p50 | p99 |",
                  "|---|---|---|---:|---:|---:|---:|",
                  (f"| AITIP (SDK client, direct) | runs_list | {PAGE} runs, structured | 1 | "
                   f"{_pair(rows[0]['mcp'])} | 1.00 | 1.00 |"),
                  (f"| {peer['server']} | {peer['tool']} | {peer['answer']} | 1 | {_pair(peer)} | "
                   f"{peer['over_aitip_mcp_p50']:.1f} | {peer['over_aitip_mcp_p99']:.1f} |")]
    if costs:
        lines += ["", (f"Answer sizes: REST {sizes['rest_bytes']:,} B, MCP {sizes['mcp_bytes']:,} B; steps an MCP "
                       "answer adds (this process, median ms):"), "",
                  "| step | ms |", "|---|---:|"]
        lines += [f"| {name} | {value:.2f} |" if value >= 0.1 else f"| {name} | {value:.3f} |"
                  for name, value in costs.items()]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
