"""`events.reasons`: every dead letter gets a stable code of its failure class, whatever its message says."""

from __future__ import annotations

import json
from typing import Any

import pytest

from events.dead_letter import DeadLetter
from events.decode import decode
from events.reasons import Reason, reason_of
from events.topics import Topic
from tests.unit.events.examples import example


def dead_letter(topic: Topic, payload: dict[str, Any] | bytes | None) -> DeadLetter:
    raw = json.dumps(payload).encode() if isinstance(payload, dict) else payload
    result = decode(topic, raw, source_topic=f"omni.{topic}", partition=0, offset=1)
    assert isinstance(result, DeadLetter), result
    return result


def without(payload: dict[str, Any], name: str) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if k != name}


CASES: list[tuple[str, Topic, dict[str, Any] | bytes | None, Reason]] = [
    ("empty", Topic.POS, b"", Reason.EMPTY),
    ("tombstone", Topic.POS, None, Reason.EMPTY),
    ("too_large", Topic.INVENTORY, {**example("receipt"), "pad": "x" * 70_000}, Reason.TOO_LARGE),
    ("card_number", Topic.POS, {**example("sale"), "note": "4111 1111 1111 1111"}, Reason.CARD_NUMBER),
    ("utf8_in_string", Topic.INVENTORY, json.dumps(example("receipt")).encode().replace(b"SKU-1", b"SKU-\xff"),
     Reason.NOT_UTF8),
    ("binary", Topic.POS, b"\x89PNG\r\n\x1a\n", Reason.NOT_JSON),
    ("cut_off", Topic.POS, b'{"event_id": "e1"', Reason.NOT_JSON),
    ("trailing", Topic.POS, json.dumps(example("sale")).encode() + b" {}", Reason.NOT_JSON),
    ("array", Topic.POS, b"[1, 2]", Reason.WRONG_TYPE),
    ("unknown_type", Topic.POS, {**example("sale"), "type": "teleport"}, Reason.UNKNOWN_TYPE),
    ("empty_type", Topic.POS, {**example("sale"), "type": ""}, Reason.UNKNOWN_TYPE),
    ("receipt_on_pos", Topic.POS, example("receipt"), Reason.WRONG_TOPIC),
    ("price_change_on_inventory", Topic.INVENTORY, example("price_change"), Reason.WRONG_TOPIC),
    ("sale_on_labels", Topic.LABELS, example("sale"), Reason.WRONG_TOPIC),
    ("type_not_a_string", Topic.POS, {**example("sale"), "type": 7}, Reason.WRONG_TYPE),
    ("missing_type_catalog", Topic.CATALOG, without(example("price_change"), "type"), Reason.MISSING_FIELD),
    ("missing_type_labels", Topic.LABELS, without(example("fraud_label"), "type"), Reason.MISSING_FIELD),
    ("missing_event_id", Topic.INVENTORY, without(example("receipt"), "event_id"), Reason.MISSING_FIELD),
    ("label_names_nothing", Topic.LABELS, without(example("fraud_label"), "txn_id"), Reason.MISSING_FIELD),
    ("qty_a_string", Topic.INVENTORY, {**example("receipt"), "qty": "3"}, Reason.WRONG_TYPE),
    ("ts_an_object", Topic.INVENTORY, {**example("receipt"), "ts": {"epoch_ms": 1}}, Reason.WRONG_TYPE),
    ("qty_zero", Topic.INVENTORY, {**example("receipt"), "qty": 0}, Reason.INVALID_FIELD),
    ("adjustment_zero", Topic.INVENTORY, {**example("adjustment"), "qty": 0}, Reason.INVALID_FIELD),
    ("negative_price", Topic.CATALOG, {**example("price_change"), "price": -1.0}, Reason.INVALID_FIELD),
    ("currency_lower_case", Topic.CATALOG, {**example("price_change"), "currency": "usd"}, Reason.INVALID_FIELD),
    ("ts_without_offset", Topic.INVENTORY, {**example("receipt"), "ts": "2026-11-22T01:00:00"}, Reason.INVALID_FIELD),
    ("ts_garbage", Topic.INVENTORY, {**example("receipt"), "ts": "yesterday"}, Reason.INVALID_FIELD),
    ("schema_version_2", Topic.INVENTORY, {**example("receipt"), "schema_version": 2}, Reason.INVALID_FIELD),
    ("enum", Topic.INVENTORY, {**example("adjustment"), "reason": "theft"}, Reason.INVALID_FIELD),
    ("event_id_too_long", Topic.INVENTORY, {**example("receipt"), "event_id": "e" * 65}, Reason.INVALID_FIELD),
    ("no_items", Topic.POS, {**example("sale"), "items": []}, Reason.INVALID_FIELD),
]  # fmt: skip


@pytest.mark.parametrize(("topic", "payload", "reason"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_decode_dead_letter_reason_is_the_code_of_its_failure_class(
    topic: Topic, payload: dict[str, Any] | bytes | None, reason: Reason
) -> None:
    assert dead_letter(topic, payload).reason is reason


def test_every_reason_code_but_the_flows_own_is_produced_by_decode() -> None:
    produced = {reason for *_, reason in CASES}

    assert set(Reason) - produced == {Reason.KAFKA_ERROR, Reason.REFUSED}


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        ("Kafka error: KafkaError{code=_MSG_TIMED_OUT}", Reason.KAFKA_ERROR),
        ("Cycle count older than the kept movement history (before 2026-11-22T00:00:00+00:00); cannot be applied",
         Reason.REFUSED),
        ("Not a served-recommendation record", Reason.REFUSED),
    ],
)  # fmt: skip
def test_dead_letters_made_by_flows_get_a_code_too(error: str, reason: Reason) -> None:
    assert DeadLetter.of("omni.inventory", 0, 1, error, b"{}").reason is reason


def test_reason_codes_are_few_and_stable_across_different_messages_of_one_class() -> None:
    errors = [f"Expected `int` >= 1 - at `$.items[{i}].qty`" for i in range(50)]
    errors += [f"Payload of {65_537 + i} bytes exceeds the 65536-byte limit" for i in range(50)]

    assert {reason_of(error) for error in errors} == {Reason.INVALID_FIELD, Reason.TOO_LARGE}
