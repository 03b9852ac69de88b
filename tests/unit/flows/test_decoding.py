"""`BatchDecoder`: the part of decoding every flow shares, with a flow's own batch recording what it is handed."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from prometheus_client import REGISTRY

from events.dead_letter import DeadLetter
from events.models import Event, event_type
from events.topics import Topic
from flows.decoding import BatchDecoder
from flows.kafka_source import KafkaRecord

TOPICS = {f"omni.{t.value}": t for t in (Topic.POS, Topic.CLICKSTREAM, Topic.LABELS, Topic.DLQ)}
VIEW = {"event_id": "v1", "type": "page_view", "ts": "2026-11-22T09:00:00Z", "schema_version": 1,
        "session_id": "s1", "channel": "web", "path": "/"}  # fmt: skip
LABEL = {"event_id": "l1", "type": "fraud_label", "ts": "2026-11-22T09:00:00Z", "schema_version": 1,
         "label": "fraud", "source": "chargeback", "txn_id": "T1"}  # fmt: skip


class Recorded:
    """A flow's batch that keeps what the decoder hands it, in order."""

    def __init__(self) -> None:
        self.items: list[Any] = []

    def add(self, topic: Topic, event: Event, record: KafkaRecord) -> None:
        self.items.append(("event", topic, event_type(event), record.offset))

    def add_dead_letter(self, letter: DeadLetter) -> None:
        self.items.append(("dead_letter", letter.dlq_id, letter.error))

    def add_raw(self, topic: Topic, record: KafkaRecord, latest_s: float) -> int:
        self.items.append(("raw", topic, record.offset))
        return 0

    def output(self) -> list[Any]:
        return self.items


def record(topic: Topic, offset: int, value: dict[str, Any] | bytes | None, error: str | None = None) -> KafkaRecord:
    raw = orjson.dumps(value) if isinstance(value, dict) else value
    return KafkaRecord(f"omni.{topic.value}", 0, offset, raw, error)


def skipped(flow: str, topic: Topic) -> float:
    return REGISTRY.get_sample_value("omnistream_flow_skipped_total", {"flow": flow, "topic": topic.value}) or 0.0


def test_a_flow_dead_letters_only_the_topics_it_owns_and_counts_the_others_as_skipped() -> None:
    decoder = BatchDecoder("fraud", TOPICS, Recorded)  # fraud owns `labels`, not `pos` or `clickstream`
    before = skipped("fraud", Topic.POS), skipped("fraud", Topic.CLICKSTREAM)

    out = decoder.decode_batch([
        record(Topic.LABELS, 0, b"not json"),
        record(Topic.POS, 0, b"not json"),
        record(Topic.CLICKSTREAM, 0, None, error="Broker: Message corrupt"),
        record(Topic.LABELS, 1, None, error="Broker: Message corrupt"),
        record(Topic.LABELS, 2, LABEL),
    ])  # fmt: skip

    assert [item[:2] for item in out] == [
        ("dead_letter", "omni.labels/0/0"),
        ("dead_letter", "omni.labels/0/1"),
        ("event", Topic.LABELS),
    ]
    assert out[1][2] == "Kafka error: Broker: Message corrupt"
    assert (skipped("fraud", Topic.POS), skipped("fraud", Topic.CLICKSTREAM)) == (before[0] + 1, before[1] + 1)


def test_the_pre_filter_passes_over_events_without_the_marker_undecoded() -> None:
    decoder = BatchDecoder("fraud", TOPICS, Recorded, wanted={Topic.CLICKSTREAM: b'"purchase"'})
    before = skipped("fraud", Topic.CLICKSTREAM)

    out = decoder.decode_batch([record(Topic.CLICKSTREAM, 0, VIEW), record(Topic.CLICKSTREAM, 1, b'{"purchase"')])

    # The page view never reaches the flow; the malformed one carries the marker, is decoded and skipped.
    assert out == []
    assert skipped("fraud", Topic.CLICKSTREAM) == before + 1


def test_a_flow_cannot_pre_filter_a_topic_whose_dead_letters_it_owns() -> None:
    with pytest.raises(ValueError, match="owns the dead letters of clickstream"):
        BatchDecoder("inventory", TOPICS, Recorded, wanted={Topic.CLICKSTREAM: b'"purchase"'})


def test_raw_topics_reach_the_flow_undecoded_in_order() -> None:
    decoder = BatchDecoder("fraud", TOPICS, Recorded, raw_topics={Topic.DLQ})

    out = decoder.decode_batch([record(Topic.DLQ, 4, b"anything"), record(Topic.LABELS, 0, LABEL)])

    assert out == [("raw", Topic.DLQ, 4), ("event", Topic.LABELS, "fraud_label", 0)]


def test_each_batch_gets_a_fresh_flow_batch() -> None:
    decoder = BatchDecoder("fraud", TOPICS, Recorded)

    first = decoder.decode_batch([record(Topic.LABELS, 0, LABEL)])
    second = decoder.decode_batch([record(Topic.LABELS, 1, LABEL)])

    assert (len(first), len(second)) == (1, 1)
