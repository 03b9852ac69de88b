"""Publishing simulated records: JSONL files that round-trip any payload, keys, pacing, and the Kafka loop."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from events.topics import Topic
from sim import publish
from sim.publish import KafkaPublisher, PublishError, encode_line, jsonl_records, key_for, read_jsonl, write_jsonl
from sim.record import SimRecord
from sim.workload import Workload

AWKWARD = [
    b"",  # an empty payload
    b"not json at all",
    b'{"event_id":"e1",\n"type":"sale"}',  # a raw newline inside
    b'{"note":"ends with a carriage return"}\r',
    b"\xff\xfe\x00binary\n",  # not UTF-8
    b"base64:looks like our marker",
    b'{"name":"caf\xc3\xa9 cr\xc3\xa8me"}',  # UTF-8, kept as is
]


def test_jsonl_round_trips_a_workload_with_malformed_payloads(tmp_path: Path) -> None:
    workload = Workload(seed=3, n_skus=60, n_stores=2, n_warehouses=1, n_users=200, malformed_rate=0.2)
    records = list(workload.records(6000))
    counts = write_jsonl(records, tmp_path)
    assert sum(counts.values()) == len(records)
    for topic in {r.topic for r in records}:
        sent = [r for r in records if r.topic is topic]
        assert list(read_jsonl(tmp_path / f"{topic.value}.jsonl")) == [r.value for r in sent]
        # Keys are not stored: replaying derives the same ones from the payloads.
        replayed = list(jsonl_records(tmp_path / f"{topic.value}.jsonl", topic))
        assert [(r.key, r.value) for r in replayed] == [(r.key, r.value) for r in sent]


def test_jsonl_round_trips_awkward_payloads(tmp_path: Path) -> None:
    write_jsonl([SimRecord(Topic.POS, None, value) for value in AWKWARD], tmp_path)
    assert list(read_jsonl(tmp_path / "pos.jsonl")) == AWKWARD


def test_jsonl_keeps_single_line_utf8_payloads_verbatim() -> None:
    assert encode_line(b'{"type":"sale","qty":1}') == b'{"type":"sale","qty":1}'
    assert encode_line(b"not json at all") == b"not json at all"
    assert encode_line(b"\xff").startswith(b"base64:")
    assert encode_line(b"a\nb").startswith(b"base64:")


def test_read_jsonl_accepts_a_hand_written_file_with_windows_line_ends(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b'{"a":1}\r\n{"b":2}\r\n{"c":3}')
    assert list(read_jsonl(path)) == [b'{"a":1}', b'{"b":2}', b'{"c":3}']


def test_key_for_follows_the_contract_per_topic() -> None:
    assert key_for(Topic.CATALOG, b'{"sku":"SKU-00001"}') == b"SKU-00001"
    assert key_for(Topic.INVENTORY, b'{"sku":"SKU-00002","location_id":"WH-01"}') == b"SKU-00002"
    assert key_for(Topic.POS, b'{"store_id":"STORE-01","txn_id":"T-1"}') == b"STORE-01"
    assert key_for(Topic.CLICKSTREAM, b'{"user_id":"U-000001","session_id":"S-1"}') == b"U-000001"
    assert key_for(Topic.CLICKSTREAM, b'{"user_id":null,"session_id":"S-1"}') == b"S-1"
    assert key_for(Topic.LABELS, b'{"order_id":"O-1"}') == b"O-1"
    assert key_for(Topic.LABELS, b'{"txn_id":"T-9","order_id":"O-1"}') == b"T-9"


def test_key_for_gives_no_key_to_what_does_not_parse() -> None:
    assert key_for(Topic.POS, b"") is None
    assert key_for(Topic.POS, b"[1, 2]") is None
    assert key_for(Topic.POS, b'{"store_id": 12}') is None
    assert key_for(Topic.POS, b"\xff\xfe") is None


def test_token_bucket_paces_after_its_burst() -> None:
    bucket = publish._TokenBucket(rate=2000.0)  # 200 tokens of burst
    started = time.monotonic()
    for _ in range(600):
        bucket.take()
    elapsed = time.monotonic() - started
    assert elapsed >= 0.18  # (600 - 200) / 2000 s, less a 10 ms batch of slack
    assert elapsed < 2.0


def test_token_bucket_refuses_a_non_positive_rate() -> None:
    with pytest.raises(ValueError, match="rate must be positive"):
        publish._TokenBucket(rate=0.0)


class FakeProducer:
    """Stands in for confluent_kafka.Producer: a full queue once, then delivery reports on flush."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.produced: list[tuple[str, bytes, bytes | None]] = []
        self._callbacks: list[Any] = []
        self._full_once = True

    def produce(self, topic: str, value: bytes, key: bytes | None, on_delivery: Any) -> None:
        if self._full_once and len(self.produced) == 3:
            self._full_once = False
            raise BufferError("Local: Queue full")
        self.produced.append((topic, value, key))
        self._callbacks.append(on_delivery)

    def poll(self, timeout: float) -> int:
        return 0

    def flush(self, timeout: float) -> int:
        for callback in self._callbacks:
            callback("broker said no" if self.fail else None, None)
        return 0


def fake_publisher(producer: FakeProducer) -> KafkaPublisher:
    publisher = KafkaPublisher(["127.0.0.1:1"])
    publisher._producer = producer  # type: ignore[assignment]
    return publisher


def test_publish_sends_every_record_to_its_topic_name_and_counts_per_topic() -> None:
    records = list(Workload(seed=3, n_skus=20, n_stores=2, n_warehouses=1, n_users=50).records(2500))
    producer = FakeProducer()
    names = {topic: topic.named("test.") for topic in Topic}
    seen: list[int] = []
    counts = fake_publisher(producer).publish(records, names, progress=seen.append)
    assert producer.produced == [(names[r.topic], r.value, r.key) for r in records]  # retried after a full queue
    assert counts == {t: sum(r.topic is t for r in records) for t in {r.topic for r in records}}
    assert sum(seen) == len(records)


def test_publish_raises_when_the_brokers_reject_records() -> None:
    records = [SimRecord(Topic.POS, b"STORE-01", b"{}")] * 5
    with pytest.raises(PublishError, match="5 records failed"):
        fake_publisher(FakeProducer(fail=True)).publish(records, {Topic.POS: "omni.pos"})


def test_publish_at_a_rate_takes_the_time_it_should() -> None:
    records = [SimRecord(Topic.POS, b"STORE-01", b"{}")] * 300
    started = time.monotonic()
    fake_publisher(FakeProducer()).publish(records, {Topic.POS: "omni.pos"}, rate=1000.0)
    assert time.monotonic() - started >= 0.18  # 100 free in the burst, 200 more at 1,000/s
