"""Largest-Triangle-Three-Buckets downsampling, so a 100k-point metric curve reaches a chart as ~1k
points that keep its shape (peaks, dips, the first and last point).

Steinarsson's LTTB picks, in each bucket, the point forming the largest triangle with the point picked
in the previous bucket and the mean of the next one. The pick depends on the previous pick, so the
buckets are walked in order, but each bucket is one small matrix product over a padded block of
candidates prepared for all buckets at once: ~1k cheap steps for any curve length.
"""

from __future__ import annotations

import numpy as np


def lttb_indices(x: np.ndarray, y: np.ndarray, max_points: int) -> np.ndarray:
    """Indices (ascending) of at most ``max_points`` points of the curve ``(x, y)``; x must be sorted."""
    count = len(x)
    if max_points < 3:
        raise ValueError("max_points must be at least 3 (the endpoints and one bucket)")
    if count <= max_points:
        return np.arange(count)
    x = np.asarray(x, dtype=np.float64)
    x = x - x[0]  # areas of far-from-zero x (epoch milliseconds) would lose their precision
    y = np.asarray(y, dtype=np.float64)
    buckets = max_points - 2
    # Bucket i holds the points [bounds[i], bounds[i + 1]) of the interior 1 .. count - 2.
    bounds = (1 + np.floor(np.arange(buckets + 1) * ((count - 2) / buckets))).astype(np.int64)
    bounds[-1] = count - 1
    starts, sizes = bounds[:-1], np.diff(bounds)
    width = int(sizes.max())
    # Pad every bucket to ``width`` by repeating its first point; a pick is mapped back through
    # ``columns``, so a padded slot always names a real point of its bucket.
    offsets = np.arange(width)
    columns = starts[:, None] + np.where(offsets[None, :] < sizes[:, None], offsets[None, :], 0)
    blocks = np.stack([x[columns], y[columns], np.ones_like(columns, dtype=np.float64)], axis=1)
    # The mean of each next bucket (the last bucket's "next" is the final point).
    sums_x = np.add.reduceat(x[1:count - 1], starts - 1)
    sums_y = np.add.reduceat(y[1:count - 1], starts - 1)
    next_x = np.append((sums_x / sizes)[1:], x[-1])
    next_y = np.append((sums_y / sizes)[1:], y[-1])

    chosen = np.empty(max_points, dtype=np.int64)
    chosen[0], chosen[-1] = 0, count - 1
    ax, ay = float(x[0]), float(y[0])
    next_xs, next_ys = next_x.tolist(), next_y.tolist()
    for bucket in range(buckets):
        cx, cy = next_xs[bucket], next_ys[bucket]
        # Twice the triangle's area for candidate j: |(cy - ay) x_j + (ax - cx) y_j + (cx ay - ax cy)|.
        areas = np.abs(np.array((cy - ay, ax - cx, cx * ay - ax * cy)) @ blocks[bucket])
        pick = int(columns[bucket, areas.argmax()])
        chosen[bucket + 1] = pick
        ax, ay = float(x[pick]), float(y[pick])
    return chosen


def lttb(x: np.ndarray, y: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """The downsampled curve itself: ``(x[kept], y[kept])``."""
    kept = lttb_indices(x, y, max_points)
    return np.asarray(x)[kept], np.asarray(y)[kept]
