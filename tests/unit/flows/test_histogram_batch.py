"""`observe_many` records a batch exactly as one `observe` per value does (it reads prometheus_client internals)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Histogram

from flows.histogram_batch import observe_many

BUCKETS = (0.01, 0.1, 1.0)
VALUES = [0.0, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 2.0, 30.0, 0.01]


def samples(histogram: Histogram) -> dict[tuple[str, str], float]:
    return {(s.name, s.labels.get("le", "")): s.value for metric in histogram.collect() for s in metric.samples
            if not s.name.endswith("_created")}  # fmt: skip


def test_a_batch_fills_the_buckets_and_sum_one_observe_per_value_would() -> None:
    one_by_one = Histogram("lag_one", "Lag.", ["flow"], buckets=BUCKETS, registry=CollectorRegistry())
    batched = Histogram("lag_one", "Lag.", ["flow"], buckets=BUCKETS, registry=CollectorRegistry())
    for value in VALUES:
        one_by_one.labels("inventory").observe(value)
    observe_many(batched.labels("inventory"), VALUES)

    assert samples(batched) == samples(one_by_one)
    assert samples(batched)[("lag_one_bucket", "0.01")] == 4  # bounds are inclusive
    assert samples(batched)[("lag_one_count", "")] == len(VALUES)


def test_an_empty_batch_records_nothing() -> None:
    histogram = Histogram("lag_two", "Lag.", buckets=BUCKETS, registry=CollectorRegistry())
    observe_many(histogram, [])
    assert samples(histogram)[("lag_two_count", "")] == 0
    assert samples(histogram)[("lag_two_sum", "")] == 0
