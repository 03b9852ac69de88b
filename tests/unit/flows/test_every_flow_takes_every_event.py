"""Every flow takes every event type of the contract on the topics it reads, and keeps running.

A flow that reads a topic gets every type published there, including types it has
no use for: it must skip them or act on them, never stop. The merchandising flow
once stopped at the first `order_cancel` it read. Each flow runs here wired to a
test source and sink (no broker, no Redis), fed the docs' example of every
registered type on its topics (docs/events.md), the whole-order form of
`order_cancel`, and garbage.
"""

from __future__ import annotations

import importlib
from typing import Any

import orjson
import pytest
from bytewax.testing import TestingSink, TestingSource, run_main

from events.registry import REGISTRY
from events.topics import Topic
from flows.kafka_source import KafkaRecord
from flows.registry import FLOWS
from omnistream.settings import Settings
from tests.unit.sim.test_docs_events import examples

# No broker and no Redis listen here: a flow that tried to connect would fail.
SETTINGS = Settings(kafka_brokers="127.0.0.1:9", redis_url="redis://127.0.0.1:9/0")


def contract_records(topics: tuple[Topic, ...]) -> list[KafkaRecord]:
    """The docs' example of every registered type published on `topics`, a whole-order cancel, and garbage."""
    payloads: list[tuple[Topic, bytes]] = [(topic, example) for topic, _, example in examples() if topic in topics]
    if Topic.INVENTORY in topics:
        whole = {"event_id": "cancel-whole", "type": "order_cancel", "ts": "2026-03-01T10:00:00Z",
                 "schema_version": 1, "order_id": "O-1001"}  # fmt: skip
        payloads.append((Topic.INVENTORY, orjson.dumps(whole)))
    payloads += [(topic, b'{"type": "sale", "ts": "not a time"') for topic in topics if REGISTRY.of_topic(topic)]
    offsets: dict[Topic, int] = {}
    records = []
    for topic, value in payloads:
        offsets[topic] = offsets.get(topic, -1) + 1
        records.append(KafkaRecord(SETTINGS.topic(topic), 0, offsets[topic], value, None))
    return records


@pytest.mark.parametrize("flow", list(FLOWS))
def test_the_flow_runs_to_the_end_of_every_event_type_it_reads(flow: str) -> None:
    module = importlib.import_module(FLOWS[flow])
    topics: tuple[Topic, ...] = module.INPUT_TOPICS
    records = contract_records(topics)
    read = {REGISTRY.by_name[t].topic for t in REGISTRY.by_name} & set(topics)
    assert read, f"{flow} reads no topic of the contract"
    out: list[Any] = []

    run_main(module.build_flow(SETTINGS, "test", source=TestingSource(records, 3), sink=TestingSink(out)))
