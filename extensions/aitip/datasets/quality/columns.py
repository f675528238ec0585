"""How the profiling SQL sees a table's columns: each column's kind and expressions (``_Column``), the
aggregates answered by one scan (``_Aggregates``), the first scan over every column, the second over the
columns holding NaN or infinity, and the SQL that counts type violations."""

from __future__ import annotations

from typing import Any

from ..tabular import quote
from .models import QualityRules

BOOL_WORDS = ("true", "false", "t", "f", "yes", "no", "y", "n", "1", "0")

_INT_TYPES = frozenset({"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT",
                        "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT"})


class _Column:
    """What the SQL builders need to know about one column."""

    def __init__(self, name: str, sql_type: str) -> None:
        self.name = name
        self.type = sql_type
        self.kind = _kind(sql_type)
        self.ident = quote(name)
        self.nan_able = sql_type in ("FLOAT", "DOUBLE")
        self.numeric = self.kind in ("int", "float")
        # Numbers as DOUBLE where the engine type would round (FLOAT) or cannot hold NaN (DECIMAL).
        self.value = f"CAST({self.ident} AS DOUBLE)" if self.kind == "float" and sql_type != "DOUBLE" else self.ident
        self.present = f"NOT isnan({self.ident})" if self.nan_able else f"{self.ident} IS NOT NULL"
        # Set after the first pass. Filtering costs more than the aggregates it guards, so only columns
        # that hold NaN or infinity (DuckDB sorts NaN above +inf, so max or min shows them) pay for it.
        self.non_finite = False

    @property
    def finite_filter(self) -> str:
        return f" FILTER (WHERE isfinite({self.ident}))" if self.non_finite else ""


def _kind(sql_type: str) -> str:
    upper = sql_type.upper()
    if upper in _INT_TYPES:
        return "int"
    if upper in ("FLOAT", "DOUBLE") or upper.startswith("DECIMAL"):
        return "float"
    if upper == "BOOLEAN":
        return "bool"
    if upper == "VARCHAR":
        return "string"
    if upper == "DATE":
        return "date"
    if upper.startswith("TIMESTAMP"):
        return "timestamp"
    return "other"


class _Aggregates:
    """Aggregate expressions answered by one scan, read back by key."""

    def __init__(self, source: str = "source") -> None:
        self.source = source
        self.keys: list[Any] = []
        self.expressions: list[str] = []

    def add(self, key: Any, expression: str) -> None:
        self.keys.append(key)
        self.expressions.append(expression)

    def run(self, connection: Any) -> dict[Any, Any]:
        if not self.expressions:
            return {}
        row = connection.execute(f"SELECT {', '.join(self.expressions)} FROM {self.source}").fetchone()
        return dict(zip(self.keys, row, strict=True))


def _violation_sql(column: _Column, declared: str) -> str | None:
    """Counts non-missing values that do not convert losslessly to ``declared``; None when none can fail.

    Strings: int is an optional sign and digits (surrounding blanks allowed) within BIGINT; float is
    what DuckDB's DOUBLE cast reads; bool is one of BOOL_WORDS (any case, blanks around allowed); date
    and timestamp are what DuckDB's casts read (ISO 8601), a date with no time of day other than
    midnight. Numbers: int needs a finite, whole value; bool needs 0 or 1; numbers are never dates.
    Timestamps are dates only at midnight. Anything converts to string.
    """
    ident, kind = column.ident, column.kind
    if declared == "string" or declared == kind:
        return None
    if kind == "string":
        tests = {
            "int": f"NOT coalesce(regexp_full_match({ident}, '\\s*[+-]?[0-9]+\\s*') "
                   f"AND TRY_CAST({ident} AS BIGINT) IS NOT NULL, false)",
            "float": f"TRY_CAST({ident} AS DOUBLE) IS NULL",
            "bool": f"lower(trim({ident})) NOT IN ({', '.join(repr(word) for word in BOOL_WORDS)})",
            "date": f"TRY_CAST({ident} AS DATE) IS NULL OR coalesce(TRY_CAST({ident} AS TIMESTAMP) "
                    f"<> CAST(TRY_CAST({ident} AS DATE) AS TIMESTAMP), false)",
            "timestamp": f"TRY_CAST({ident} AS TIMESTAMP) IS NULL",
        }
        return f"count_if({ident} IS NOT NULL AND {tests[declared]})"
    value = column.value
    if kind == "float":
        tests = {
            "int": f"NOT (isfinite({value}) AND {value} = trunc({value}) AND abs({value}) < 9.2e18)",
            "bool": f"{value} NOT IN (0, 1)",
        }
        return f"count_if({column.present} AND {tests.get(declared, 'true')})"
    if kind in ("int", "bool") and declared in ("int", "float", "bool"):
        return f"count_if({ident} NOT IN (0, 1))" if declared == "bool" else None
    if kind == "date" and declared == "timestamp":
        return None
    if kind == "timestamp" and declared == "date":
        return f"count_if({ident} <> CAST(CAST({ident} AS DATE) AS TIMESTAMP))"
    return f"count({ident})"


def _first_pass(columns: list[_Column], rules: QualityRules, known_nulls: dict[str, int]) -> _Aggregates:
    """Counts, min/max, sketches and type violations for every column in one scan, unfiltered.

    Mean and standard deviation come later, from the values each numeric path reads anyway (value
    counts, the streamed values, or the quantile query): in this scan they cost as much as all the rest."""
    scan = _Aggregates()
    for column in columns:
        name, ident = column.name, column.ident
        if name not in known_nulls:
            scan.add((name, "non_null"), f"count({ident})")
        if column.kind in ("int", "float", "date", "timestamp"):
            scan.add((name, "distinct"), f"approx_count_distinct({ident})")
        if column.numeric:
            scan.add((name, "min"), f"min({column.value})")
            scan.add((name, "max"), f"max({column.value})")
        elif column.kind == "bool":
            scan.add((name, "true"), f"count_if({ident})")
        elif column.kind in ("date", "timestamp"):
            scan.add((name, "min"), f"min({ident})")
            scan.add((name, "max"), f"max({ident})")
        declared = rules.declared_schema.get(name)
        if declared is not None:
            violation = _violation_sql(column, declared)
            if violation is not None:
                scan.add((name, "violations"), violation)
    return scan


def _non_finite_pass(columns: list[_Column]) -> _Aggregates:
    """Counts NaN and infinity, and recomputes the first pass's distinct count (without NaN) and min/max
    (finite values only), for the columns that hold NaN or infinity."""
    flagged = [column for column in columns if column.non_finite]
    projections = ", ".join(f"{column.ident}, CASE WHEN isfinite({column.ident}) THEN {column.value} END "
                            f"AS {quote('finite ' + column.name)}" for column in flagged)
    scan = _Aggregates(f"(SELECT {projections} FROM source)" if flagged else "source")
    for column in flagged:
        name, ident, finite = column.name, column.ident, quote("finite " + column.name)
        scan.add((name, "nan"), f"count_if(isnan({ident}))")
        scan.add((name, "inf"), f"count_if(isinf({ident}))")
        scan.add((name, "distinct"), f"approx_count_distinct({ident}) FILTER (WHERE NOT isnan({ident}))")
        scan.add((name, "min"), f"min({finite})")
        scan.add((name, "max"), f"max({finite})")
    return scan
