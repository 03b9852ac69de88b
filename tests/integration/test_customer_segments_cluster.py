"""Customer documents and segment sets on a real Redis Cluster and on a single Redis: same keys, same answers.

The writer names one slot per call (the document alone; each segment set with its version hash),
so Redis Cluster accepts every call; each membership is fenced by the version that set it, so a
replayed older version moves nobody back, in whatever order the calls land.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis

from operators.customers.lifecycle import SEGMENTS
from state import keys
from state.customer_writer import CustomerDoc, CustomerWriter
from state.pipeline_scripts import run_counting
from tests.harness.redis_cluster import LocalRedisCluster, start_redis_cluster

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def redis_cluster() -> Iterator[LocalRedisCluster]:
    cluster = start_redis_cluster()
    yield cluster
    cluster.stop()


def _doc(customer: str, version: int, segments: set[str], left: frozenset[str] | set[str] = frozenset()) -> CustomerDoc:
    return CustomerDoc(customer, version, f'{{"v": {version}}}'.encode(), frozenset(segments), None, frozenset(left))


# Customers moving through the stages, each batch as a sink would send it.
BATCHES = [
    [_doc(f"C{i}", 1, {"prospect"}) for i in range(40)],
    [_doc(f"C{i}", 2, {"new"}, {"prospect"}) for i in range(0, 40, 2)],
    [_doc(f"C{i}", 3, {"active"}, {"new"}) for i in range(0, 40, 4)]
    + [_doc(f"C{i}", 4, {"active", "vip"}, set()) for i in range(0, 40, 8)],  # two versions of C0, C8, ...
    [_doc(f"C{i}", 5, {"at_risk", "vip"}, {"active"}) for i in range(0, 40, 8)],
]
REPLAY = [BATCHES[1], BATCHES[2]]  # a recovery re-sends older versions after the newer ones are in


def _write(client: Any, batches: list[list[CustomerDoc]]) -> None:
    writer = CustomerWriter(client, SEGMENTS, "gen-1")
    for docs in batches:
        run_counting(client, lambda pipe, docs=docs: writer.queue(pipe, docs), writer.scripts)  # type: ignore[misc]


def _segments(client: Any) -> dict[str, list[bytes]]:
    return {name: client.zrange(keys.segment(name), "-", "+", bylex=True) for name in SEGMENTS}


def test_segments_on_a_redis_cluster_match_a_single_redis_and_survive_a_replay(
    redis_cluster: LocalRedisCluster, redis_client: redis.Redis
) -> None:
    cluster = redis_cluster.client()
    _write(cluster, BATCHES)
    _write(redis_client, BATCHES)
    expected = {
        "prospect": sorted(f"C{i}".encode() for i in range(1, 40, 2)),
        "new": sorted(f"C{i}".encode() for i in range(2, 40, 4)),
        "active": sorted(f"C{i}".encode() for i in range(4, 40, 8)),
        "at_risk": sorted(f"C{i}".encode() for i in range(0, 40, 8)),
        "lapsed": [],
        "won_back": [],
        "vip": sorted(f"C{i}".encode() for i in range(0, 40, 8)),
    }
    assert _segments(cluster) == _segments(redis_client) == expected

    _write(cluster, REPLAY)
    _write(redis_client, REPLAY)
    assert _segments(cluster) == _segments(redis_client) == expected  # the older versions moved nobody
    assert cluster.hget(keys.customer("C0"), keys.DOC_FIELD) == b'{"v": 5}'
    assert redis_client.hget(keys.customer("C0"), keys.DOC_FIELD) == b'{"v": 5}'
