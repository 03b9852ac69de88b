"""The sink worker's heartbeat without a broker: its document, and that a Redis it cannot reach never fails it."""

from __future__ import annotations

import logging

import pytest
from prometheus_client import REGISTRY

from flows.heartbeat import Heartbeat
from flows.kafka_source import source_progress, unread_partitions
from state.connection import connect


def test_without_kafka_partitions_the_lag_is_unknown_and_nothing_is_unread() -> None:
    # This thread reads no `KafkaPartitions` source (the flows' testing sources are not Kafka).
    assert source_progress() is None and unread_partitions() is None


def test_the_document_carries_the_writes_and_the_beat_survives_a_redis_it_cannot_reach(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = connect("redis://127.0.0.1:9/0", timeout_s=0.2)  # nothing listens on port 9
    beats = Heartbeat(client, "unit-flow", 3, interval_s=60.0)
    beats.update(last_write_at=100.0, event_lag_s=0.5, records=7, dead_letters={"not_json": 1})
    doc = beats.doc()
    assert {k: doc[k] for k in ("last_write_at", "event_lag_s", "records", "dead_letters")} == {
        "last_write_at": 100.0, "event_lag_s": 0.5, "records": 7, "dead_letters": {"not_json": 1}}  # fmt: skip
    progress = (doc["consumer_lag"], doc["consumer_lag_by_topic"], doc["last_epoch_at"], doc["epochs"])
    assert progress == (None, {}, None, 0)
    assert doc["beat_at"] > 0
    with caplog.at_level(logging.WARNING, logger="flows.heartbeat"):
        beats.close()  # the last beat: Redis refuses, the heartbeat logs and returns
    assert "heartbeat not written" in caplog.text
    assert REGISTRY.get_sample_value("omnistream_flow_epochs", {"flow": "unit-flow", "worker": "3"}) == 0.0
    client.close()
