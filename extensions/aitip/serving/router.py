"""The traffic split in front of an endpoint's versions: each request goes to a version by weight (sticky by a
request key: the same key, the same version while the weights stay), then to that version's least busy
replica; a shadow version gets a copy whose answer is dropped. The routing table is replaced whole when
weights change, so requests in flight finish where they started and none is dropped. A replica that breaks
off is skipped and the request retried on another (inference is idempotent). An answer to a request that names
itself (``X-Request-Id``) is remembered a while, so that its true label, when it arrives, scores the version that
answered it (the accuracy a rollout's analysis may judge)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import time
from bisect import bisect_right
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from ..errors import Phrase
from ..i18n import N_
from .metrics import EndpointMetrics
from .runtime import VariantProcess
from .upstream import Answer, UpstreamError

RETRIES = 2  # other replicas tried after the first breaks off
WAIT_FOR_REPLICA = 3.0  # a version with no ready replica (one restarting) is waited for this long
MAX_SHADOW_IN_FLIGHT = 32  # copies beyond this are not sent: the shadow never slows the endpoint down
BASIS = 10_000
LABEL_MEMORY = 100_000  # answers per endpoint remembered for their labels to arrive
LABEL_MEMORY_SECONDS = 24 * 3600


@dataclass(frozen=True)
class RoutingTable:
    """Versions with their weights (percent), as cumulative bounds out of 10,000."""

    weights: tuple[tuple[int, int], ...]  # (version, percent), percent > 0
    shadow: int | None = None
    bounds: tuple[int, ...] = ()

    @classmethod
    def of(cls, weights: dict[int, int], shadow: int | None = None) -> RoutingTable:
        live = tuple(sorted((version, weight) for version, weight in weights.items() if weight > 0))
        bounds, total = [], 0
        for _, weight in live:
            total += weight * BASIS // 100
            bounds.append(total)
        return cls(live, shadow, tuple(bounds))

    def choose(self, key: str | None) -> int | None:
        if not self.weights:
            return None
        if key is None:
            point = random.randrange(BASIS)
        else:
            point = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big") % BASIS
        index = bisect_right(self.bounds, point)
        return self.weights[min(index, len(self.weights) - 1)][0]


@dataclass
class Sampler:
    """Keeps ``rate`` of the requests (masked) until the service flushes them into the catalog."""

    rate: float
    mask: frozenset[str]
    kept: list[dict[str, Any]] = field(default_factory=list)
    limit: int = 1000

    def offer(self, version: int, protocol: str, body: bytes, answer: Answer, seconds: float) -> None:
        if self.rate <= 0 or random.random() >= self.rate or len(self.kept) >= self.limit:
            return
        try:
            request = json.loads(body) if body else None
        except ValueError:
            request = {"unparsed_bytes": len(body)}
        try:
            answered = json.loads(answer.body) if answer.body else None
        except ValueError:
            answered = None
        self.kept.append({"version": version, "protocol": protocol, "status": answer.status,
                          "latency_ms": round(seconds * 1000, 3), "request": mask(request, self.mask),
                          "answer": answered, "at": time.time()})

    def take(self) -> list[dict[str, Any]]:
        taken, self.kept = self.kept, []
        return taken


MASK = "***"


def mask(document: Any, fields: frozenset[str]) -> Any:
    """The request with the values of ``fields`` (columns or named inputs) replaced, in every format."""
    if not fields or not isinstance(document, dict):
        return document

    def record(row: Any) -> Any:
        return {name: MASK if name in fields else cell for name, cell in row.items()} if isinstance(row, dict) \
            else row

    masked = dict(document)
    inputs = masked.get("inputs")
    if isinstance(inputs, dict):  # MLflow's named inputs
        masked["inputs"] = record(inputs)
    elif isinstance(inputs, list):  # OIP's named tensors, or MLflow's records
        masked["inputs"] = [dict(entry, data=MASK) if isinstance(entry, dict) and "datatype" in entry
                            and entry.get("name") in fields else record(entry) for entry in inputs]
    for key in ("dataframe_records", "instances"):
        if isinstance(masked.get(key), list):
            masked[key] = [record(row) for row in masked[key]]
    split = masked.get("dataframe_split")
    if isinstance(split, dict) and isinstance(split.get("columns"), list) and isinstance(split.get("data"), list):
        hidden = {index for index, name in enumerate(split["columns"]) if name in fields}
        masked["dataframe_split"] = dict(split, data=[
            [MASK if index in hidden else value for index, value in enumerate(row)] if isinstance(row, list)
            else row for row in split["data"]])
    return masked


class NoReplica(RuntimeError):
    """No replica of the chosen version answered (503)."""

    def __init__(self, phrase: Phrase) -> None:
        super().__init__(phrase.english)
        self.phrase = phrase


class UnknownVersion(LookupError):
    """A request pinned a version the endpoint does not serve (404)."""

    def __init__(self, phrase: Phrase) -> None:
        super().__init__(phrase.english)
        self.phrase = phrase


class EndpointRouter:
    def __init__(self, project: str, endpoint: str, endpoint_id: int, *, sticky_header: str,
                 sampler: Sampler) -> None:
        self.project = project
        self.endpoint = endpoint
        self.endpoint_id = endpoint_id
        self.sticky_header = sticky_header
        self.sampler = sampler
        self.table = RoutingTable.of({})
        self.variants: dict[int, VariantProcess] = {}
        self.metrics = EndpointMetrics(project, endpoint)
        self._shadow_in_flight = 0
        self._shadow_tasks: set[asyncio.Task[Any]] = set()
        # id -> (when, epoch seconds; version; predicted rows), oldest first; and what the catalog has not heard yet:
        # answers remembered since its last write, and ids scored since (their kept answers go).
        self.answered: OrderedDict[str, tuple[float, int, list[Any]]] = OrderedDict()
        self.unsaved: dict[str, tuple[float, int, list[Any]]] = {}
        self.scored: set[str] = set()

    def route(self, weights: dict[int, int], shadow: int | None) -> None:
        """The new split, effective for the next request (one assignment: none in flight is affected)."""
        self.table = RoutingTable.of({v: w for v, w in weights.items() if v in self.variants}, shadow)

    async def forward(self, method: str, path: str, body: bytes, headers: dict[str, str], *, key: str | None,
                      version: int | None, protocol: str, request_id: str | None = None) -> tuple[int, Answer]:
        """The answer of the version the request goes to (``version`` pins one), and that version."""
        table = self.table
        chosen = version if version is not None else table.choose(key)
        if chosen is None:
            raise NoReplica(Phrase(N_("this endpoint has no version taking traffic")))
        if chosen not in self.variants:
            raise UnknownVersion(Phrase(N_("version {version} is not deployed on this endpoint (deployed: "
                                           "{deployed})"), version=chosen,
                                        deployed=", ".join(map(str, sorted(self.variants))) or "-"))
        started = time.perf_counter()
        metrics = self.metrics.of(chosen)
        try:
            answer = await self._send(self.variants[chosen], method, path, body, headers, metrics)
        except NoReplica:
            metrics.observe(time.perf_counter() - started, 503)
            raise
        seconds = time.perf_counter() - started
        metrics.observe(seconds, answer.status, _rows(answer) if answer.status == 200 else 0)
        if table.shadow is not None and table.shadow != chosen and table.shadow in self.variants:
            self._copy(table.shadow, method, path, body, headers)
        if self.sampler.rate:
            self.sampler.offer(chosen, protocol, body, answer, seconds)
        if request_id is not None and answer.status == 200:
            self._remember(request_id, chosen, answer)
        return chosen, answer

    def _remember(self, request_id: str, version: int, answer: Answer) -> None:
        predicted = predictions(answer.body)
        if predicted is None:
            return
        now = time.time()
        self.answered[request_id] = self.unsaved[request_id] = (now, version, predicted)
        self.answered.move_to_end(request_id)
        self.scored.discard(request_id)
        self._forget_old(now)

    def _forget_old(self, now: float) -> None:
        while self.answered and (len(self.answered) > LABEL_MEMORY or
                                 next(iter(self.answered.values()))[0] < now - LABEL_MEMORY_SECONDS):
            request_id, _ = self.answered.popitem(last=False)
            self.unsaved.pop(request_id, None)

    def recall(self, kept: list[tuple[str, float, int, list[Any]]]) -> None:
        """Answers the catalog kept (``(id, when, version, predicted)``, oldest first), behind any remembered
        since this router started."""
        newer = list(self.answered.items())
        self.answered.clear()
        for request_id, at, version, predicted in kept:
            self.answered[request_id] = (at, version, predicted)
        for request_id, entry in newer:
            self.answered[request_id] = entry
            self.answered.move_to_end(request_id)
        self._forget_old(time.time())

    def answer_changes(self) -> tuple[dict[str, tuple[float, int, list[Any]]], set[str]]:
        """What to write to the catalog: answers remembered and ids scored since the last call."""
        unsaved, scored = self.unsaved, self.scored
        self.unsaved, self.scored = {}, set()
        return unsaved, scored

    def label(self, labels: dict[str, Any]) -> dict[str, Any]:
        """Score the remembered answers by their true labels (one label, or one per row); each answer once."""
        unknown, mismatched, rows = [], [], 0
        for request_id, label in labels.items():
            found = self.answered.pop(request_id, None)
            if found is None:
                unknown.append(request_id)
                continue
            self.unsaved.pop(request_id, None)
            self.scored.add(request_id)
            _, version, predicted = found
            truth = label if isinstance(label, list) else [label]
            if len(truth) != len(predicted):
                mismatched.append(request_id)
                continue
            metrics = self.metrics.of(version)
            metrics.labelled += len(truth)
            metrics.correct += sum(1 for said, true in zip(predicted, truth) if _same(said, true))
            rows += len(truth)
        return {"labelled": len(labels) - len(unknown) - len(mismatched), "rows": rows,
                "unknown": unknown[:100], "unknown_count": len(unknown), "mismatched": mismatched[:100]}

    async def _send(self, variant: VariantProcess, method: str, path: str, body: bytes, headers: dict[str, str],
                    metrics: Any) -> Answer:
        tried: set[int] = set()
        for attempt in range(RETRIES + 1):
            replica = variant.pick(tried)
            if replica is None:
                if not await variant.wait_ready(WAIT_FOR_REPLICA):
                    break
                replica = variant.pick(tried) or variant.pick(set())
                if replica is None:
                    break
            replica.in_flight += 1
            try:
                return await replica.pool.request(method, path, body, headers)
            except UpstreamError:
                replica.healthy = False  # until its next health check or its restart
                tried.add(replica.slot)
                metrics.retries += 1
            finally:
                replica.in_flight -= 1
        raise NoReplica(Phrase(N_("no replica of this version answered; it is restarting, try again")))

    def _copy(self, version: int, method: str, path: str, body: bytes, headers: dict[str, str]) -> None:
        if self._shadow_in_flight >= MAX_SHADOW_IN_FLIGHT:
            return
        self._shadow_in_flight += 1
        metrics = self.metrics.of(version)

        async def send() -> None:
            started = time.perf_counter()
            try:
                answer = await self._send(self.variants[version], method, path, body, headers, metrics)
                metrics.observe(time.perf_counter() - started, answer.status)
            except (NoReplica, KeyError, OSError):
                metrics.observe(time.perf_counter() - started, 503)
            finally:
                metrics.shadow_requests += 1
                self._shadow_in_flight -= 1

        task = asyncio.create_task(send())
        self._shadow_tasks.add(task)
        task.add_done_callback(self._shadow_tasks.discard)

    def in_flight(self) -> dict[tuple[str, str, int], int]:
        return {(self.project, self.endpoint, version): variant.in_flight for version, variant in self.variants.items()}


def predictions(body: bytes) -> list[Any] | None:
    """An answer's predictions, one per row: OIP's first output (its rows when one value each) or MLflow's
    ``predictions``; None when there is nothing a label could be compared with."""
    try:
        document = json.loads(body)
    except ValueError:
        return None
    if not isinstance(document, dict):
        return None
    if isinstance(document.get("predictions"), list):
        return document["predictions"]  # type: ignore[no-any-return]
    outputs = document.get("outputs")
    if isinstance(outputs, list) and outputs and isinstance(outputs[0], dict):
        data, shape = outputs[0].get("data"), outputs[0].get("shape") or []
        if isinstance(data, list) and (len(shape) <= 1 or all(size == 1 for size in shape[1:])):
            return data
    return None


def _same(predicted: Any, label: Any) -> bool:
    if isinstance(predicted, (int, float)) and isinstance(label, (int, float)) and not isinstance(label, bool):
        return float(predicted) == float(label)
    return bool(predicted == label) or str(predicted) == str(label)


def _rows(answer: Answer) -> int:
    """Rows in an answer, read from its head (OIP's shape, or MLflow's predictions) without parsing it whole."""
    body = answer.body
    if body.startswith(b'{"model_name"'):
        at = body.find(b'"shape":[')
        if at >= 0:
            end = body.find(b"]", at)
            first = body[at + 9:end].split(b",")[0]
            return int(first) if first.strip().isdigit() else 1
    if body.startswith(b'{"predictions":['):
        try:
            return len(json.loads(body)["predictions"])
        except (ValueError, KeyError, TypeError):
            return 0
    return 0
