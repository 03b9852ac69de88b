"""Each kind of contract break the simulator injects is dead-lettered under the reason code it stands for."""

from __future__ import annotations

import random

import orjson
import pytest

from events.dead_letter import DeadLetter
from events.decode import decode
from events.topics import Topic
from sim.malformed import KINDS, REASONS, corrupt
from tests.unit.events.examples import EXAMPLES, example


def test_every_kind_has_its_reason() -> None:
    assert set(REASONS) == set(KINDS)


@pytest.mark.parametrize("kind", KINDS)
def test_every_applicable_break_of_every_event_type_is_dead_lettered_with_its_kinds_reason(kind: str) -> None:
    rng = random.Random(5)
    got: dict[str, set[str]] = {}
    for topic, payload, _ in EXAMPLES:
        for _ in range(4):  # some kinds draw which field to break
            bad = corrupt(kind, topic, orjson.dumps(payload), rng)
            if bad is None:
                continue
            result = decode(topic, bad, source_topic=f"omni.{topic}", partition=0, offset=0)
            assert isinstance(result, DeadLetter), (payload["type"], bad)
            got.setdefault(payload["type"], set()).add(result.reason)
    assert got, f"{kind} applies to no event type"
    assert {reason for reasons in got.values() for reason in reasons} == {REASONS[kind]}, got


def test_a_foreign_type_on_the_catalog_is_a_wrong_topic_not_an_unknown_type() -> None:
    raw = corrupt("foreign_type", Topic.CATALOG, orjson.dumps(example("price_change")), random.Random(1))
    assert raw is not None

    result = decode(Topic.CATALOG, raw, source_topic="omni.catalog", partition=0, offset=0)

    assert isinstance(result, DeadLetter) and result.reason == "wrong_topic"
