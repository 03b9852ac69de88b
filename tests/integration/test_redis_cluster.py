"""Redis Cluster holds the same state, and the API gives the same answers, as a single Redis.

A real three-node Redis Cluster (`tests/harness/redis_cluster.py`) beside the
suite's single redis-server: the inventory and recommend flows run on the same
topics into each, and then every key is compared, and the inventory and
recommendations reads of the API (started on each) are compared answer by answer.
Redis Cluster refuses a script whose keys span slots, so any write or read that
is not Cluster-safe fails the run there.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator
from typing import Any

import orjson
import pytest
import redis
from fastapi.testclient import TestClient

from omnistream.settings import Settings
from serving.app import create_app
from sim.workload import Workload
from state import keys
from tests.harness.flows import publish, run_to_end
from tests.harness.redis_cluster import LocalRedisCluster, start_redis_cluster

pytestmark = pytest.mark.integration

_MARKER = re.compile(rb":seen:[^:]*:")


@pytest.fixture(scope="module")
def redis_cluster() -> Iterator[LocalRedisCluster]:
    cluster = start_redis_cluster()
    yield cluster
    cluster.stop()


def _snapshot(client: Any) -> dict[bytes, Any]:
    """Every key Omnistream owns and its value, with the run's lineage (`generation`) and clock taken out.

    Two independent runs differ only by their lineage: the `generation` field of
    fenced hashes, the `generation|` of flag versions, the generation in stream
    markers' names; and by the wall clock: stream entry ids and when a dead letter
    was written. The rest must be equal.
    """
    found: dict[bytes, Any] = {}
    for key in client.scan_iter(match=keys.namespace_pattern(), count=1000):
        kind = client.type(key)
        kind = kind.decode() if isinstance(kind, bytes) else kind
        name = _MARKER.sub(b":seen:*:", key)
        if kind == "hash":
            fields = client.hgetall(key)
            fields.pop(keys.GENERATION_FIELD.encode(), None)
            if key.endswith(b":v"):  # the version a flag was last set at depends on how batches fell
                fields = set(fields)
            found[name] = fields
        elif kind == "set":
            found[name] = client.smembers(key)
        elif kind == "stream":
            records = [orjson.loads(fields[b"json"]) for _, fields in client.xrange(key)]
            for record in records:
                if key == keys.dlq_stream().encode():
                    record.pop("ts")  # when it was dead-lettered (the wall clock)
            found[name] = sorted(orjson.dumps(record, option=orjson.OPT_SORT_KEYS) for record in records)
        else:
            found[name] = client.get(key)
    return found


def _raced_holds(single: dict[bytes, Any], clustered: dict[bytes, Any]) -> set[bytes]:
    """The holds two runs decided differently, the stock keys of their SKUs, and the SKUs."""
    raced: set[bytes] = set()
    for key, fields in single.items():
        if key.startswith(b"omni:reservation:") and key in clustered:
            ours, theirs = (orjson.loads(f[keys.DOC_FIELD.encode()]) for f in (fields, clustered[key]))
            if ours["status"] != theirs["status"]:
                raced |= {key, keys.stock(ours["sku"]).encode(), ours["sku"].encode()}
    return raced


def _same(key: bytes, single: dict[bytes, Any], clustered: dict[bytes, Any], raced: set[bytes]) -> bool:
    """Whether both runs hold the same value at `key`, but for the raced SKUs (a flag set's members)."""
    if key in raced:
        return True
    ours, theirs = single[key], clustered[key]
    if isinstance(ours, set) and isinstance(theirs, set):
        return ours - raced == theirs - raced
    return bool(ours == theirs)


def _copy_state(source: redis.Redis, target: redis.RedisCluster, names: Iterable[bytes]) -> None:
    """Make `target` hold `source`'s value of every key named (hashes and sets)."""
    for key in names:
        kind = source.type(key).decode()
        target.delete(key)
        if kind == "hash":
            target.hset(key, mapping=source.hgetall(key))
        elif kind == "set":
            target.sadd(key, *source.smembers(key))


def _answers(settings: Settings, skus: list[str], locations: list[str], users: list[str]) -> dict[str, Any]:
    """The API's inventory and recommendations answers for every SKU, location and user asked (minus request ids)."""
    answers: dict[str, Any] = {}
    # Equal answers are the point here, not latency: a deadline that a loaded machine can miss would turn
    # an answer into a 503 on one side only.
    settings = settings.model_copy(update={"api_redis_timeout_ms": 3_000})
    with TestClient(create_app(settings.model_copy(update={"auth_enabled": False}))) as api:
        # Served once ready, as behind a readiness probe: a Cluster client learns the slot map on its first call.
        deadline = time.monotonic() + 10
        while api.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, "the API never became ready"
            time.sleep(0.1)
        for sku in skus:
            for path in (f"/v1/inventory/{sku}", *(f"/v1/inventory/{sku}/locations/{loc}" for loc in locations[:3])):
                response = api.get(path)
                answers[path] = (response.status_code, response.json())
        for start in range(0, len(skus), 50):
            response = api.get("/v1/inventory", params={"skus": ",".join([*skus[start : start + 50], "SKU-NONE"])})
            answers[f"batch {start}"] = (response.status_code, response.json())
        for n, user in enumerate(users):
            params = {"user_id": user, "sku": skus[n % len(skus)], "k": "8"}
            if n % 2:
                params["location_id"] = locations[n % len(locations)]
            response = api.get("/v1/recommendations", params=params)
            body = response.json()
            body.pop("request_id", None)
            answers[f"recs {params}"] = (response.status_code, body)
    return answers


def test_flows_and_api_on_redis_cluster_match_a_single_redis(
    settings: Settings, redis_cluster: LocalRedisCluster
) -> None:
    workload = Workload(seed=21, n_skus=200, n_stores=5, n_warehouses=2, n_users=300)
    publish(settings, ((r.topic, r.key, r.value) for r in workload.records(15_000)))
    on_cluster = settings.model_copy(
        update={"redis_url": redis_cluster.url, "recovery_dir": settings.recovery.dir.with_name("rec-cluster")}
    )
    redis_cluster.flush()
    for flow in ("inventory", "recommend"):
        run_to_end(settings, flow=flow)
        run_to_end(on_cluster, flow=flow)

    single = _snapshot(redis.Redis.from_url(settings.redis.url))
    clustered = _snapshot(redis_cluster.client())
    assert len(single) > 500, "the workload should write stock, sellable sets and recommendation documents"
    wanted = {keys.sellable_anywhere(), keys.flag_versions(keys.rec_inactive()), keys.dlq_stream()}
    assert {key.encode() for key in wanted} <= set(single)
    # Not state: the flows' heartbeats (wall-clock times, `state.flow_health`).
    apart = (b"omni:rec:", b"omni:{alerts}", keys.flow_health().encode())
    state = {key for key in single if not key.startswith(apart)}
    assert state == {key for key in clustered if not key.startswith(apart)}
    recommend = [{key for key in found if key.startswith(b"omni:rec:")} for found in (single, clustered)]
    assert len(recommend[1]) > 0.9 * len(recommend[0]) > 500  # and most of the recommend flow's
    # The inventory flow's state is a function of the log, key by key, but for one documented race: a
    # checkout hold and a sale on another topic are decided in the order they are read (CONTRACT.md,
    # "Reservations"), so such a hold, and its SKU's stock, may differ between any two runs. The
    # recommend flow's documents depend on how its topics interleave on arrival (a click enriched by a
    # catalog event or not), and so do the stock alerts raised on the way (how many, and the ledger
    # version they were raised at): both differ between any two runs, on one Redis too.
    raced = _raced_holds(single, clustered)
    holds = [key for key in state if key.startswith(b"omni:reservation:")]
    assert len(holds) > 20, "the workload should place checkout holds"
    raced_holds = [key for key in raced if key.startswith(b"omni:reservation:")]
    assert len(raced_holds) < len(holds) / 2, f"{len(raced_holds)} of {len(holds)} holds decided differently"
    differing = [key for key in state if not _same(key, single, clustered, raced)]
    examples = [(k, single[k], clustered[k]) for k in differing[:2]]
    assert not differing, f"{len(differing)} keys differ, e.g. {examples}"[:3000]
    # The keys really are spread: every node of the cluster holds some.
    assert all(redis.Redis(port=port).dbsize() > 0 for port in redis_cluster.ports)

    # The API reads the same state from both: the single node's recommendation state, and the stock of
    # the SKUs whose holds raced, copied key by key.
    origin = redis.Redis.from_url(settings.redis.url)
    _copy_state(origin, redis_cluster.client(), [*origin.scan_iter(match="omni:rec:*", count=1000), *raced])
    stocks = [orjson.loads(v[keys.DOC_FIELD.encode()]) for k, v in single.items() if k.startswith(b"omni:stock:")]
    skus = sorted(doc["sku"] for doc in stocks)
    locations = sorted({loc["location_id"] for doc in stocks for loc in doc["locations"]})
    users = [shopper.user_id for shopper in workload.shoppers[:60]]
    expected = _answers(settings, skus, locations, users)
    actual = _answers(on_cluster, skus, locations, users)
    assert actual.keys() == expected.keys()
    assert all(expected[f"/v1/inventory/{sku}"][0] == 200 for sku in skus)
    assert sum(1 for path, (_, body) in expected.items() if path.startswith("recs") and body["items"]) > 30
    differing = [path for path in expected if actual[path] != expected[path]]
    examples = [(p, expected[p], actual[p]) for p in differing[:2]]
    assert not differing, f"{len(differing)} answers differ, e.g. {examples}"[:3000]
