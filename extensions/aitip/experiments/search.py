"""MLflow's run search syntax, parsed and checked by MLflow's own parser, into a plan the SQL reader
translates. Bad syntax is refused here with MLflow's message, before any store is asked."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from ..errors import BadRequest

ATTRIBUTE, METRIC, PARAM, TAG, DATASET = "attribute", "metric", "parameter", "tag", "dataset"


@dataclass(frozen=True)
class Condition:
    kind: str  # ATTRIBUTE, METRIC, PARAM, TAG or DATASET
    key: str  # attribute aliases ("created", "run name") already resolved
    comparator: str  # upper case: =, !=, >, >=, <, <=, LIKE, ILIKE, IN, NOT IN, IS NULL, IS NOT NULL
    value: object


@dataclass(frozen=True)
class Ordering:
    kind: str
    key: str
    ascending: bool


@dataclass(frozen=True)
class RunSearch:
    """A validated search: the filter's conditions (AND-ed) and the requested order."""

    filter: str
    order_by: tuple[str, ...]
    conditions: tuple[Condition, ...]
    orderings: tuple[Ordering, ...]

    @property
    def sql_translatable(self) -> bool:
        """Dataset conditions live in MLflow's inputs tables; those searches go to MLflow itself."""
        return all(condition.kind != DATASET for condition in self.conditions)

    def fingerprint(self, scope: list[str], reader: str) -> str:
        """Identifies the query a page token belongs to: where it searches (``scope``), with which
        reader, the filter and the order; not the page size, which may change from page to page."""
        text = json.dumps([reader, scope, self.filter, list(self.order_by)])
        return hashlib.sha256(text.encode()).hexdigest()[:24]


class InvalidSearch(BadRequest):
    code = "invalid_search"


def parse_run_search(filter_string: str, order_by: list[str]) -> RunSearch:
    """Parse and check the filter and order with MLflow's own rules; raises :class:`InvalidSearch`."""
    from mlflow.exceptions import MlflowException
    from mlflow.utils.search_utils import SearchUtils

    try:
        conditions = tuple(_condition(SearchUtils, item) for item in SearchUtils.parse_search_filter(filter_string))
    except MlflowException as exc:
        raise InvalidSearch("invalid filter: {exc_message}",
                            detail={"filter": filter_string}, exc_message=exc.message) from exc
    orderings: list[Ordering] = []
    seen: set[tuple[str, str]] = set()
    for clause in order_by:
        try:
            kind, key, ascending = SearchUtils.parse_order_by_for_search_runs(clause)
        except MlflowException as exc:
            raise InvalidSearch("invalid order_by: {exc_message}", detail={"order_by": clause},
                                exc_message=exc.message) from exc
        key = SearchUtils.translate_key_alias(key) if kind == ATTRIBUTE else key
        if kind not in (ATTRIBUTE, METRIC, PARAM, TAG):
            raise InvalidSearch("invalid order_by: runs cannot be ordered by a {kind} ({clause!r})",
                                detail={"order_by": clause}, kind=kind, clause=clause)
        if (kind, key) in seen:
            raise InvalidSearch("invalid order_by: {clause!r} orders by the same field twice",
                                detail={"order_by": clause}, clause=clause)
        seen.add((kind, key))
        orderings.append(Ordering(kind, key, ascending))
    return RunSearch(filter_string, tuple(order_by), conditions, tuple(orderings))


def _condition(utils: type, parsed: dict[str, object]) -> Condition:
    """Check the comparator against the key's kind as MLflow's stores do (their messages, too)."""
    kind, key = str(parsed["type"]), str(parsed["key"])
    comparator = str(parsed["comparator"]).upper()
    value = parsed["value"]
    if kind == ATTRIBUTE:
        key = utils.translate_key_alias(key)
        utils.is_attribute(kind, key, comparator)
    elif kind == METRIC:
        utils.is_metric(kind, comparator)
        value = float(value)  # type: ignore[arg-type]
    elif kind == PARAM:
        utils.is_param(kind, comparator)
    elif kind == TAG:
        utils.is_tag(kind, comparator)
    elif kind == DATASET:
        utils.is_dataset(kind, comparator)
    return Condition(kind, key, comparator, value)
