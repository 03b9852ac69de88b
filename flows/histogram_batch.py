"""A batch of observations into a Prometheus histogram in one pass: the one place that uses prometheus_client internals.

`Histogram.observe` costs about a microsecond a value (a lock and two
increments); a sink batch of a thousand lags, or a fraud batch of a thousand
scores, would pay that per record. `observe_many` fills the same buckets and
sum with one increment per bucket. It reads the histogram's private fields
(`_upper_bounds`, `_buckets`, `_sum`) of prometheus_client 0.26, pinned in
pyproject.toml; `tests/unit/flows/test_histogram_batch.py` fails if an upgrade
changes them. docs/performance.md, "Flows", gives what it buys.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

from prometheus_client import Histogram


def observe_many(histogram: Histogram, values: Sequence[float]) -> None:
    """Record `values` as `histogram.observe` would, one by one (`histogram` is a child: labels applied)."""
    bounds = histogram._upper_bounds
    counts = [0] * len(bounds)
    for value in values:
        counts[bisect_left(bounds, value)] += 1  # buckets are "le": an upper bound is inclusive
    for bucket, n in zip(histogram._buckets, counts, strict=True):
        if n:
            bucket.inc(n)
    histogram._sum.inc(sum(values))
