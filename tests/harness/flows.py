"""Run real Bytewax flows against the real broker and Redis, and read their results back."""

from __future__ import annotations

from collections.abc import Iterable

import orjson
import redis

from events.topics import Topic
from flows.launcher import FlowRun, start_flow
from omnistream.settings import Settings
from sim.publish import KafkaPublisher
from sim.record import SimRecord
from state import keys
from state.stream_writer import RECORD_FIELD


def publish(settings: Settings, records: Iterable[tuple[Topic, bytes | None, bytes]]) -> int:
    """Publish `(topic, key, value)` records in order and wait until the broker has them all."""
    counts = KafkaPublisher(settings.kafka.brokers).publish(
        (SimRecord(topic, key, value) for topic, key, value in records), {t: settings.topic(t) for t in Topic}
    )
    return sum(counts.values())


def run_to_end(settings: Settings, *, flow: str = "inventory", timeout_s: float = 300.0) -> None:
    """Run `flow` until it has consumed everything published so far; fail on a non-zero exit."""
    run = start(settings, flow=flow)
    code = run.wait(timeout_s)
    assert code == 0, f"flow {flow} exited with {code}"


def with_poll_size(settings: Settings, messages: int) -> Settings:
    """`settings` with the flows' Kafka polls cut to `messages`: a backlog is then read over many batches.

    For tests that must act while a flow is mid-backlog (see its lag, kill it): at the default poll
    size a fast machine reads a test's whole stream in a few batches, before the test can look.
    """
    return settings.model_copy(update={"kafka": settings.kafka.model_copy(update={"batch_size": messages})})


def start(settings: Settings, *, flow: str = "inventory") -> FlowRun:
    """Start `flow` in the stop-at-end mode tests use."""
    return start_flow(flow, settings.model_copy(update={"flow_stop_at_end": True}))


def stock_hashes(redis_url: str) -> dict[str, dict[bytes, bytes]]:
    """Every stock hash in Redis, by key: the stored state of the inventory flow.

    The `generation` field is left out: it names the run's lineage of flow
    state (its recovery partitions), which differs between independent runs.
    """
    client = redis.Redis.from_url(redis_url)
    pattern = keys.stock("*")
    lineage = keys.STOCK_GENERATION_FIELD.encode()
    hashes = {key.decode(): client.hgetall(key) for key in client.scan_iter(match=pattern, count=1000)}
    for fields in hashes.values():
        fields.pop(lineage, None)
    return hashes


def stock_levels(redis_url: str) -> dict[tuple[str, str], tuple[int, int, int]]:
    """(sku, location_id) -> (on_hand, reserved, available) from the stored SKU documents."""
    levels = {}
    for fields in stock_hashes(redis_url).values():
        doc = orjson.loads(fields[keys.STOCK_DOC_FIELD.encode()])
        for loc in doc["locations"]:
            levels[doc["sku"], loc["location_id"]] = (loc["on_hand"], loc["reserved"], loc["available"])
    return levels


def stream_records(redis_url: str, stream_key: str) -> list[dict[str, object]]:
    """Every record of a Redis stream (`keys.dlq_stream()`, `keys.alerts_stream()`), decoded."""
    client = redis.Redis.from_url(redis_url)
    return [orjson.loads(fields[RECORD_FIELD.encode()]) for _, fields in client.xrange(stream_key)]
