"""The customers flow against an independent oracle, uninterrupted and killed with SIGKILL during replay.

A simulated log of a few hundred customers over ten days (duplicates, cross-topic reordering,
late events within the flow's lateness; `tests/integration/customer_log.py`) is published to a
real broker; the real Bytewax flow runs over it into a real Redis. The oracle
(`tests/integration/customer_oracle.py`, plain Python sharing no code with the flow) says what
every customer's RFM inputs and lifecycle stage must be at the end and which triggers must have
gone out. Key by key and trigger by trigger, the flow must agree: 0 missing, 0 extra, and each
trigger once in the Redis stream (the Kafka topic may repeat one after a crash, with the same id).
"""

from __future__ import annotations

import random
import time
import uuid
from collections import Counter
from typing import Any

import orjson
import pytest
import redis
from confluent_kafka import Consumer, Producer, TopicPartition

from events.timestamps import rfc3339_ms
from events.topics import Topic
from flows.launcher import FlowRun
from omnistream.kafka_admin import create_topics
from omnistream.settings import Settings
from operators.customers.lifecycle import SEGMENTS
from state import keys
from tests.harness.flows import run_to_end, start, stream_records
from tests.integration.customer_log import DAY, END, CustomerLog, build
from tests.integration.customer_oracle import Oracle, Rules

pytestmark = pytest.mark.integration

LATENESS_S = 120.0
RULES = Rules(new_s=1 * DAY, at_risk_s=2 * DAY, lapsed_s=4 * DAY, won_back_s=1 * DAY, windows_s=(1 * DAY, 3 * DAY),
              vip_spend=300.0, cart_s=1800.0, payment_s=1800.0, watch_s=1 * DAY, cooldown_s=6 * 3600.0)  # fmt: skip
HORIZON = END - LATENESS_S  # the watermark once every partition has reached the closing events


def _flow_settings(settings: Settings, prefix: str, db: int, lateness_s: float = LATENESS_S) -> Settings:
    url = settings.redis.url.rsplit("/", 1)[0] + f"/{db}"
    redis.Redis.from_url(url).flushdb()
    create_topics(settings.kafka.brokers, prefix, settings.topic.partitions)
    return settings.model_copy(update={
        "topic_prefix": prefix, "redis_url": url, "recovery_dir": settings.recovery.dir.with_name(f"rec-{prefix}"),
        "customers": {"shards": 4, "new_days": 1.0, "at_risk_days": 2.0, "lapsed_days": 4.0, "won_back_days": 1.0,
                      "windows_days": "1,3", "vip_spend": 300.0, "cart_window_s": 1800.0, "payment_window_s": 1800.0,
                      "watch_window_s": DAY, "cooldown_s": 6 * 3600.0, "lateness_s": lateness_s,
                      "idle_partition_s": 100 * DAY},
    })  # fmt: skip


def _publish(settings: Settings, log: CustomerLog) -> None:
    producer = Producer({"bootstrap.servers": settings.kafka.brokers, "enable.idempotence": True, "linger.ms": 20})
    for record in log.records:
        topic = settings.topic(record.topic)
        if record.partition is None:
            producer.produce(topic, record.value, key=record.key)
        else:
            producer.produce(topic, record.value, key=record.key, partition=record.partition)
        producer.poll(0)
    assert producer.flush(60) == 0


def _docs(redis_url: str) -> dict[str, dict[str, Any]]:
    client = redis.Redis.from_url(redis_url)
    found = {}
    for key in client.scan_iter(match=keys.customer("*"), count=1000):
        doc = orjson.loads(client.hget(key, keys.DOC_FIELD) or b"null")
        if not doc["customer_id"].startswith("zz-"):
            found[doc["customer_id"]] = doc
    return found


def _topic_ids(settings: Settings) -> Counter[str]:
    consumer = Consumer({"bootstrap.servers": settings.kafka.brokers, "group.id": "t", "enable.partition.eof": True})
    name = settings.topic(Topic.TRIGGERS)
    parts = consumer.list_topics(name, timeout=10).topics[name].partitions
    consumer.assign([TopicPartition(name, p, 0) for p in parts])
    ids: Counter[str] = Counter()
    ended: set[int] = set()
    while len(ended) < len(parts):
        msg = consumer.poll(5.0)
        assert msg is not None
        if msg.error():
            ended.add(msg.partition())
        else:
            ids[orjson.loads(msg.value())["trigger_id"]] += 1
    consumer.close()
    return ids


def _check(settings: Settings, oracle: Oracle, expected: set[str], horizon: float = HORIZON) -> Counter[str]:
    """Compare the flow's Redis state and triggers with the oracle; returns the topic's ids with their counts."""
    docs = _docs(settings.redis.url)
    assert set(docs) == set(oracle.customers) - {c for c in oracle.customers if c.startswith("zz-")}
    wrong = []
    for customer, doc in docs.items():
        want = oracle.rfm(customer)
        rfm = doc["rfm"]
        got = (rfm["orders"], rfm["spend"], rfm["first_purchase_at"], rfm["last_purchase_at"], doc["lifecycle"])
        wanted = (want["orders"], want["spend"], rfc3339_ms(want["first"]) if want["orders"] else None,
                  rfc3339_ms(want["last"]) if want["orders"] else None, oracle.stage(customer, horizon))  # fmt: skip
        sums = [(f, m) for f, m in zip(rfm["frequency"].values(), rfm["monetary"].values(), strict=True)]
        close = all(abs(f - wf) < 1e-3 and abs(m - wm) < 0.02 for (f, m), (wf, wm) in zip(sums, want["decayed"],
                                                                                          strict=True))  # fmt: skip
        if got != wanted or not close:
            wrong.append((customer, got, wanted, sums, want["decayed"]))
    assert not wrong, f"{len(wrong)} customers differ from the oracle, e.g. {wrong[:3]}"
    client = redis.Redis.from_url(settings.redis.url)
    for segment in SEGMENTS:  # each segment set holds exactly the customers whose document names it
        members = {m.decode() for m in client.zrange(keys.segment(segment), 0, -1)}
        members = {m for m in members if not m.startswith("zz-")}
        assert members == {c for c, doc in docs.items() if segment in doc["segments"]}, segment
    mirrored = Counter(t["trigger_id"] for t in stream_records(settings.redis.url, keys.triggers_stream()))
    missing, extra = expected - set(mirrored), set(mirrored) - expected
    assert not missing and not extra, (
        f"missing {sorted(missing)[:5]} ({len(missing)} of {len(expected)}; by kind "
        f"{Counter(t.split(':', 1)[0] for t in missing)}), extra {sorted(extra)[:5]} ({len(extra)})"
    )
    assert max(mirrored.values()) == 1  # the stream holds each trigger once
    on_topic = _topic_ids(settings)
    assert set(on_topic) == expected  # a repeat after a crash carries the same id: consumers drop it
    return on_topic


def _wait_for_keys(run: FlowRun, redis_url: str, target: int, kill: int) -> bool:
    """Whether the run brought Redis to `target` keys while still running (False: it finished first).

    Keys only accumulate in this flow's database, so a key count is a progress mark that does not
    depend on how fast the machine is: a run killed at a fraction of the final count dies mid-log.
    """
    client = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + 120
    while client.dbsize() < target:
        if not run.alive():
            return False
        if time.monotonic() > deadline:
            pytest.fail(f"no progress to {target} keys in 120 s before kill {kill}")
        time.sleep(0.005)
    return run.alive()


@pytest.mark.parametrize(
    ("lateness_s", "max_delay_s"),
    [
        (LATENESS_S, 100.0),  # late events up to 100 s behind their partition's newest, within the lateness
        # Each partition in event-time order (retries still later): the reordering left is the consumer's, across
        # topics and partitions, which the watermark's oldest-partition rule covers without any allowance.
        (0.25, 0.0),
    ],
    ids=["lateness-120s-late-events", "lateness-0.25s-partitions-in-order"],
)
def test_the_flow_agrees_with_the_oracle_uninterrupted_and_through_sigkills(
    settings: Settings, lateness_s: float, max_delay_s: float
) -> None:
    log = build(seed=3, n_customers=1500, partitions=settings.topic.partitions, max_delay_s=max_delay_s)
    horizon = END - lateness_s
    oracle = Oracle(RULES, log.events, END)
    expected = oracle.triggers(horizon)
    kinds = Counter(t.split(":", 1)[0] for t in expected)
    assert set(kinds) == {"cart_abandoned", "payment_failed_recovery", "back_in_stock", "at_risk", "win_back",
                          "vip_reached"}, kinds  # fmt: skip
    assert log.duplicates > 50

    clean = _flow_settings(settings, f"o{uuid.uuid4().hex[:8]}.", 3, lateness_s)
    _publish(clean, log)
    run_to_end(clean, flow="customers")
    assert _check(clean, oracle, expected, horizon).most_common(1)[0][1] == 1  # no crash, no repeat even on the topic
    final_keys = redis.Redis.from_url(clean.redis.url).dbsize()

    crashed = _flow_settings(settings, f"k{uuid.uuid4().hex[:8]}.", 4, lateness_s)
    _publish(crashed, log)
    rng = random.Random(9)
    kills = 0
    for kill in range(1, 5):
        run = start(crashed, flow="customers")
        # Killed once Redis holds a growing share of the uninterrupted run's keys (start-up and the
        # replay from the last snapshot are behind it, the rest of the log ahead), give or take a
        # batch: mid-run, and after the first kill mid-replay of the lost batches.
        target = int(final_keys * (kill / 5 + rng.uniform(-0.05, 0.05)))
        if not _wait_for_keys(run, crashed.redis.url, target, kill):
            break  # it finished: the remaining kills would land after the end
        run.kill()  # SIGKILL: no flush, no snapshot; the next run replays from the last one
        kills += 1
    assert kills >= 2, "the flow ran to the end before two kills: make the log longer"
    run_to_end(crashed, flow="customers")
    on_topic = _check(crashed, oracle, expected, horizon)
    print(f"{len(log.records)} records, {len(expected)} triggers by kind {dict(kinds)}; {kills} kills; "
          f"repeats on the topic after the kills: {sum(on_topic.values()) - len(on_topic)}")  # fmt: skip
