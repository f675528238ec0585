"""A numeric column's order statistics (quantiles), outliers, histogram, mean and standard deviation:
from its values in a numpy array, counted into fine bins instead of sorted (``_OrderStatistics``), or
from its (value, count) pairs. The definitions these follow are in ``tabular``'s docstring."""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Iterator
from typing import Any

from .columns import _Column
from .models import _finite_or_none

QUANTILES = {"p1": 0.01, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p99": 0.99}
HISTOGRAM_BINS = 20
ZSCORE_THRESHOLD = 3.0
IQR_FACTOR = 1.5
# Rows per Arrow batch when DuckDB streams a column or the row hashes into numpy.
STREAM_BATCH_ROWS = 1 << 20
# Order statistics of a column in numpy: its values are counted into this many fine bins, and the few bins
# that hold the quantiles and histogram edges are collected and sorted (sorting all of them instead when
# those bins hold more than MAX_COLLECTED values and a sixteenth of the column).
FINE_BINS = 1 << 16
MAX_COLLECTED = 1 << 20


def _histogram_plan(column: _Column, low: float, high: float) -> tuple[list[float], str, Any]:
    """Bin edges, and each finite value's bin as SQL and as a Python function (the same comparisons).

    Equal-width bins like np.histogram's: bin ``i`` holds ``edges[i] <= x < edges[i + 1]``, the
    maximum in the last bin, so a value's bin is the number of inner edges at or below it (np.histogram
    computes an estimate and corrects it against the same edges). Integer columns spanning at most
    HISTOGRAM_BINS values get one bin per value.
    """
    if low == high:
        return [low, high], "0", lambda value: 0
    if column.kind == "int" and high - low + 1 <= HISTOGRAM_BINS:
        bins, start = int(high - low) + 1, int(low)
        return ([low - 0.5 + i for i in range(bins + 1)], f"CAST({column.value} - {start} AS BIGINT)",
                lambda value: int(value) - start)
    width = (high - low) / HISTOGRAM_BINS
    edges = [low + i * width for i in range(HISTOGRAM_BINS)] + [high]
    inner = edges[1:-1]
    value = f"CAST({column.value} AS DOUBLE)"
    return (edges, " + ".join(f"CAST({value} >= {edge!r} AS BIGINT)" for edge in inner),
            lambda number: bisect.bisect_right(inner, float(number)))


def _z_limit(std: float | None) -> float | None:
    return ZSCORE_THRESHOLD * std if std is not None and math.isfinite(std) and std > 0 else None


def _details_from_values(values: Any, minimum: Any, maximum: Any, edges: list[float], per_integer: bool,
                         exact_distinct: bool) -> dict[str, Any]:
    """The SQL path's statistics from the column's non-missing values (any order; ``minimum``/``maximum``
    the smallest and largest finite ones).

    Order statistics without sorting: every value gets a fine bin, ``floor((x - low) * scale)`` clipped to
    the FINE_BINS bins (the infinities land in the end bins). That is a monotone function of ``x``, so each
    bin holds one run of the sorted order, and the bins' counts say which bin holds a given rank and how
    many values come before it; one more pass collects the values of just those bins, sorted, and the
    order statistic is read there. A count of ``x < bound`` is the same: every value in a bin before
    ``bound``'s is below it, every one after is not, and those in its bin are compared. When the bins
    wanted hold too many values (a very skewed column), ``np.partition`` selects instead.

    Every count compares values exactly as the definitions state (as a float, or as an integer for
    one-bin-per-integer histograms): IQR outliers are ``x < lower`` plus ``x > upper``; z-score outliers
    ``x - mean < -limit`` plus ``x - mean > limit``; bin ``i`` holds ``edges[i] <= x < edges[i + 1]``,
    the last bin its right edge too (np.histogram's rule). Mean and standard deviation are exactly rounded
    sums (``math.fsum``) of numpy's pairwise block sums. ``exact_distinct`` also sorts, and counts the
    changes between neighbours.
    """
    import numpy as np

    size = len(values)
    floating = values.dtype.kind == "f"
    if floating:
        negative, positive = int(np.count_nonzero(values == -math.inf)), int(np.count_nonzero(values == math.inf))
    else:
        negative = positive = 0
    total = size - negative - positive
    detail: dict[str, Any] = {}
    if exact_distinct:
        values.sort()
        detail["distinct"] = int(np.count_nonzero(values[1:] != values[:-1])) + 1 if size else 0
    if not total:
        return {**detail, "quantiles": dict.fromkeys(QUANTILES)}

    def finite_blocks() -> Iterator[Any]:
        for begin in range(0, size, STREAM_BATCH_ROWS):
            block = values[begin:begin + STREAM_BATCH_ROWS]
            yield block[np.isfinite(block)] if negative or positive else block

    mean = math.fsum(float(block.sum(dtype=np.float64)) for block in finite_blocks()) / total
    squares = []
    for block in finite_blocks():
        deviations = block - mean  # float64 for int64 values too
        np.square(deviations, out=deviations)
        squares.append(float(deviations.sum()))
    std = math.sqrt(math.fsum(squares) / (total - 1)) if total > 1 else None
    z_limit = _z_limit(std)

    ranks = {key: (total - 1) * probability for key, probability in QUANTILES.items()}
    positions = {negative, negative + total - 1}  # in the order of all values, -inf first
    for position in ranks.values():
        below = math.floor(position)
        positions.update(negative + rank for rank in (below, below + 1) if rank < total)
    bins = len(edges) - 1
    if per_integer:  # one bin per integer: bin i holds the i-th integer from the minimum, compared as integers
        bounds: list[Any] = [int(minimum) + i for i in range(1, bins)]
    else:
        bounds = list(edges[1:-1])
    order = _OrderStatistics(values, float(minimum), float(maximum), sorted(positions), bounds, exact_distinct)
    at = order.value_at
    quantiles: dict[str, float | None] = {}
    for key, position in ranks.items():
        below = math.floor(position)
        low_value = float(at(negative + below))
        high_value = float(at(negative + below + 1)) if below + 1 < total else low_value
        quantiles[key] = _finite_or_none(low_value + (high_value - low_value) * (position - below))
    detail.update(quantiles=quantiles, edges=edges, mean=mean, std=std)
    q1, q3 = quantiles["p25"], quantiles["p75"]
    if q1 is not None and q3 is not None:
        lower, upper = q1 - IQR_FACTOR * (q3 - q1), q3 + IQR_FACTOR * (q3 - q1)
        detail["fences"] = (lower, upper)
        detail["iqr_outliers"] = sum(int(np.count_nonzero(block < lower)) + int(np.count_nonzero(block > upper))
                                     for block in finite_blocks())
    if z_limit is not None:
        outliers = 0
        for block in finite_blocks():
            deviations = block - mean
            outliers += int(np.count_nonzero(deviations < -z_limit)) + int(np.count_nonzero(deviations > z_limit))
        detail["z_outliers"] = outliers
    cuts = [0, *(order.count_below(bound) - negative for bound in bounds), total]
    detail["histogram"] = [cuts[i + 1] - cuts[i] for i in range(bins)]
    return detail


class _OrderStatistics:
    """Values at given positions of the sorted order, and counts of values below given bounds, without
    sorting ``values`` (see ``_details_from_values``): one pass counts the fine bins, a second collects the
    bins that hold the positions and bounds given here, each then sorted on its own. ``presorted`` values
    are read directly."""

    def __init__(self, values: Any, low: float, high: float, positions: list[int], bounds: list[Any],
                 presorted: bool) -> None:
        self.values = values
        self.presorted = presorted
        if presorted:
            return
        import numpy as np

        self.bins = FINE_BINS if high > low else 1
        self.low, self.scale = low, (self.bins / (high - low) if high > low else 0.0)
        if not math.isfinite(self.scale):
            self.bins, self.scale = 1, 0.0
        counts = np.zeros(self.bins, dtype=np.int64)
        for begin in range(0, len(values), STREAM_BATCH_ROWS):
            counts += np.bincount(self._bin(values[begin:begin + STREAM_BATCH_ROWS]), minlength=self.bins)
        self.ends = np.cumsum(counts)  # values in bins 0..b
        self.starts = self.ends - counts
        self.collected: dict[int, Any] = {}
        self._collect(sorted({int(np.searchsorted(self.ends, position, side="right")) for position in positions}
                             | {self._bin_of(bound) for bound in bounds}))

    def _bin(self, block: Any) -> Any:
        import numpy as np

        scaled = (block - self.low) * self.scale if self.scale else np.zeros(len(block))
        np.clip(scaled, 0, self.bins - 1, out=scaled)
        return scaled.astype(np.intp)

    def _bin_of(self, bound: Any) -> int:
        import numpy as np

        return int(self._bin(np.array([bound], dtype=self.values.dtype))[0])

    def _collect(self, wanted: list[int]) -> None:
        """The values of the ``wanted`` bins, each sorted; past MAX_COLLECTED values, all of them sorted."""
        import numpy as np

        if int(sum(self.ends[b] - self.starts[b] for b in wanted)) > max(MAX_COLLECTED, len(self.values) // 16):
            self.values.sort()
            self.presorted = True
            return
        chosen = np.zeros(self.bins, dtype=bool)
        chosen[wanted] = True
        parts, part_bins = [], []
        for begin in range(0, len(self.values), STREAM_BATCH_ROWS):
            block = self.values[begin:begin + STREAM_BATCH_ROWS]
            indices = self._bin(block)
            keep = chosen[indices]
            parts.append(block[keep])
            part_bins.append(indices[keep])
        found, found_bins = np.concatenate(parts), np.concatenate(part_bins)
        for b in wanted:
            self.collected[b] = np.sort(found[found_bins == b])

    def value_at(self, position: int) -> Any:
        """The value at ``position`` of the sorted order (one of the positions given at construction)."""
        if self.presorted:
            return self.values[position]
        import numpy as np

        b = int(np.searchsorted(self.ends, position, side="right"))
        return self.collected[b][position - int(self.starts[b])]

    def count_below(self, bound: Any) -> int:
        """How many values are ``< bound`` (one of the bounds given at construction)."""
        import numpy as np

        if self.presorted:
            return int(np.searchsorted(self.values, bound, side="left"))
        b = self._bin_of(bound)
        return int(self.starts[b]) + int(np.searchsorted(self.collected[b], bound, side="left"))


def _details_from_counts(counts: list[tuple[Any, int]], edges: list[float], bin_of: Any) -> dict[str, Any]:
    """The same statistics as the SQL path, from (value, count) pairs sorted by value (inf included).

    Mean and standard deviation are sums over the counts: exact for integers, ``math.fsum`` of
    ``value * count`` (each product rounded once) for floats."""
    finite = [(value, int(count)) for value, count in counts if math.isfinite(value)]
    total = sum(count for _, count in finite)
    mean, std = _moments_from_counts(finite, total)
    z_limit = _z_limit(std)
    cumulative = list(itertools.accumulate(count for _, count in finite))

    def at_rank(rank: int) -> Any:
        return finite[bisect.bisect_right(cumulative, rank)][0]

    quantiles: dict[str, float | None] = {}
    for key, probability in QUANTILES.items():
        position = (total - 1) * probability
        below = math.floor(position)
        low_value = at_rank(below)
        high_value = at_rank(below + 1) if below + 1 < total else low_value
        quantiles[key] = _finite_or_none(float(low_value + (high_value - low_value) * (position - below)))
    detail: dict[str, Any] = {"quantiles": quantiles, "edges": edges, "distinct": len(counts), "mean": mean,
                              "std": std}
    q1, q3 = quantiles["p25"], quantiles["p75"]
    if q1 is not None and q3 is not None:
        lower, upper = q1 - IQR_FACTOR * (q3 - q1), q3 + IQR_FACTOR * (q3 - q1)
        detail["fences"] = (lower, upper)
        detail["iqr_outliers"] = sum(count for value, count in finite if value < lower or value > upper)
    if z_limit is not None:
        detail["z_outliers"] = sum(count for value, count in finite if abs(value - mean) > z_limit)
    histogram = [0] * (len(edges) - 1)
    for value, count in finite:
        histogram[bin_of(value)] += count
    detail["histogram"] = histogram
    return detail


def _moments_from_counts(finite: list[tuple[Any, int]], total: int) -> tuple[float | None, float | None]:
    if not total:
        return None, None
    if all(isinstance(value, int) for value, _ in finite):
        mean = sum(value * count for value, count in finite) / total  # exact integer sum, rounded once
    else:
        mean = math.fsum(float(value) * count for value, count in finite) / total
    if total < 2:
        return mean, None
    squares = math.fsum((float(value) - mean) ** 2 * count for value, count in finite)
    return mean, math.sqrt(squares / (total - 1))
