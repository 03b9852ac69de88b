"""`events.decode`: every contract rule a payload can break becomes a `DeadLetter` with a precise reason."""

from __future__ import annotations

import base64
import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from events.dead_letter import RAW_KEPT_BYTES, DeadLetter
from events.decode import MAX_EVENT_BYTES, decode
from events.models import Adjustment, Count, FraudLabel, PriceChange, ProductUpsert, Receipt, Sale, event_type
from events.topics import Topic
from tests.unit.events.examples import EXAMPLES, INPUT_TOPICS, example

TOPIC_OF = {payload["type"]: topic for topic, payload, _ in EXAMPLES}


def run(topic: Topic, payload: dict[str, Any] | bytes | None, offset: int = 42) -> Any:
    raw = json.dumps(payload).encode() if isinstance(payload, dict) else payload
    return decode(topic, raw, source_topic=f"omni.{topic}", partition=3, offset=offset)


def error_of(type_: str, **changes: Any) -> str:
    """The dead-letter error of the example of `type_` with `changes` applied (None deletes a field)."""
    payload = example(type_)
    for name, value in changes.items():
        if value is None:
            del payload[name]
        else:
            payload[name] = value
    result = run(TOPIC_OF[type_], payload)
    assert isinstance(result, DeadLetter), result
    return result.error


# --- valid events ------------------------------------------------------------


@pytest.mark.parametrize(("topic", "payload", "cls"), EXAMPLES, ids=[p["type"] for _, p, _ in EXAMPLES])
def test_decode_accepts_every_event_type_of_its_topic(topic: Topic, payload: dict[str, Any], cls: type) -> None:
    event = run(topic, payload)

    assert type(event) is cls
    assert event_type(event) == payload["type"]
    assert event.event_id == payload["event_id"]
    assert event.ts == datetime(2026, 11, 22, 1, 23, 45, 123000, tzinfo=UTC)
    assert event.schema_version == 1


def test_decode_keeps_field_values() -> None:
    sale = run(Topic.POS, example("sale"))

    assert isinstance(sale, Sale)
    assert (sale.store_id, sale.txn_id, sale.currency, sale.customer_id) == ("S1", "T1", "EUR", "cust-1")
    assert [(i.sku, i.qty, i.unit_price) for i in sale.items] == [("SKU-1", 2, 4.5), ("SKU-2", 1, 0.0)]
    assert (sale.payment.method, sale.payment.card_token, sale.payment.entry_mode) == ("card", "tok_1", "chip")


def test_decode_fills_optional_fields_with_their_defaults() -> None:
    payload = example("product_upsert")
    for name in ("brand", "attributes", "active"):
        del payload[name]

    product = run(Topic.CATALOG, payload)

    assert isinstance(product, ProductUpsert)
    assert (product.brand, product.attributes, product.active) == (None, None, True)


def test_decode_accepts_ts_with_a_non_utc_offset() -> None:
    receipt = run(Topic.INVENTORY, {**example("receipt"), "ts": "2026-11-22T02:23:45+01:00"})

    assert isinstance(receipt, Receipt)
    assert receipt.ts.utcoffset() == timedelta(hours=1)
    assert receipt.ts == datetime(2026, 11, 22, 1, 23, 45, tzinfo=UTC)


def test_decode_accepts_unknown_extra_fields() -> None:
    payload = example("sale")
    payload["loyalty_tier"] = "gold"
    payload["nested_future"] = {"a": [1, 2, {"b": None}]}
    payload["items"][0]["discount"] = 0.5
    payload["payment"]["wallet_provider"] = "x"

    sale = run(Topic.POS, payload)

    assert isinstance(sale, Sale)
    assert sale.items[0].qty == 2


def test_decode_accepts_an_event_id_of_64_chars() -> None:
    receipt = run(Topic.INVENTORY, {**example("receipt"), "event_id": "e" * 64})

    assert isinstance(receipt, Receipt)


def test_decode_accepts_a_negative_adjustment() -> None:
    adjustment = run(Topic.INVENTORY, {**example("adjustment"), "qty": -7})

    assert isinstance(adjustment, Adjustment)
    assert adjustment.qty == -7


def test_decode_accepts_a_count_of_zero() -> None:
    count = run(Topic.INVENTORY, {**example("count"), "on_hand": 0})

    assert isinstance(count, Count)
    assert count.on_hand == 0


@pytest.mark.parametrize("ids", [{"txn_id": "T1"}, {"order_id": "O1"}, {"txn_id": "T1", "order_id": "O1"}])
def test_decode_accepts_fraud_label_with_txn_id_or_order_id(ids: dict[str, str]) -> None:
    payload = example("fraud_label")
    del payload["txn_id"]

    label = run(Topic.LABELS, {**payload, **ids})

    assert isinstance(label, FraudLabel)
    assert (label.txn_id, label.order_id) == (ids.get("txn_id"), ids.get("order_id"))


def test_decode_accepts_a_payload_of_exactly_64_kib() -> None:
    payload = example("receipt")
    payload["padding"] = ""
    size = len(json.dumps(payload).encode())
    payload["padding"] = "x" * (MAX_EVENT_BYTES - size)
    raw = json.dumps(payload).encode()
    assert len(raw) == MAX_EVENT_BYTES

    assert isinstance(run(Topic.INVENTORY, raw), Receipt)


# --- dead letters: the payload as a whole ------------------------------------


def test_decode_dead_letters_a_payload_that_is_not_json() -> None:
    result = run(Topic.INVENTORY, b"qty=3&sku=SKU-1")

    assert isinstance(result, DeadLetter)
    assert result.error.startswith("JSON is malformed")
    assert (result.raw, result.raw_encoding) == ("qty=3&sku=SKU-1", "utf-8")


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b"[1, 2]", "Expected `object`, got `array`"),
        (b"null", "Expected `object`, got `null`"),
        (b'"receipt"', "Expected `object`, got `str`"),
        (b'{"event_id": "e1"', "Input data was truncated"),
    ],
)
def test_decode_dead_letters_json_that_is_not_an_object(raw: bytes, error: str) -> None:
    result = run(Topic.INVENTORY, raw)

    assert isinstance(result, DeadLetter)
    assert result.error == error


def test_decode_dead_letters_trailing_bytes_after_the_object() -> None:
    result = run(Topic.INVENTORY, json.dumps(example("receipt")).encode() + b" {}")

    assert isinstance(result, DeadLetter)
    assert result.error.startswith("JSON is malformed: trailing characters")


def test_decode_dead_letters_non_utf8_bytes_with_raw_base64_encoded() -> None:
    raw = b"\xff\xfe\x00{binary"

    result = run(Topic.POS, raw)

    assert isinstance(result, DeadLetter)
    assert result.error.startswith("JSON is malformed")
    assert result.raw_encoding == "base64"
    assert base64.b64decode(result.raw) == raw


def test_decode_dead_letters_invalid_utf8_inside_a_json_string() -> None:
    # CONTRACT.md: a payload that is not JSON goes to the dead-letter stream; decode() never raises.
    raw = json.dumps(example("receipt")).encode().replace(b'"SKU-1"', b'"SKU-\xff"')

    result = run(Topic.INVENTORY, raw)

    assert isinstance(result, DeadLetter)
    assert result.raw_encoding == "base64"
    assert base64.b64decode(result.raw) == raw


@pytest.mark.parametrize("raw", [b"", None], ids=["empty", "tombstone"])
def test_decode_dead_letters_an_empty_payload(raw: bytes | None) -> None:
    result = run(Topic.INVENTORY, raw)

    assert isinstance(result, DeadLetter)
    assert result.error == "Empty payload"
    assert (result.raw, result.raw_encoding) == ("", "utf-8")


def test_decode_dead_letters_a_payload_over_64_kib() -> None:
    payload = example("receipt")
    payload["padding"] = "x" * MAX_EVENT_BYTES
    raw = json.dumps(payload).encode()

    result = run(Topic.INVENTORY, raw)

    assert isinstance(result, DeadLetter)
    assert result.error == f"Payload of {len(raw)} bytes exceeds the 65536-byte limit"
    assert result.raw == raw[:RAW_KEPT_BYTES].decode()
    assert len(result.raw) == 4096


def test_decode_dead_letters_a_payload_one_byte_over_64_kib() -> None:
    result = run(Topic.INVENTORY, b" " * (MAX_EVENT_BYTES + 1))

    assert isinstance(result, DeadLetter)
    assert result.error == "Payload of 65537 bytes exceeds the 65536-byte limit"


# --- dead letters: the envelope ----------------------------------------------


def test_decode_dead_letters_a_missing_event_id() -> None:
    assert error_of("receipt", event_id=None) == "Object missing required field `event_id`"


def test_decode_dead_letters_an_empty_event_id() -> None:
    assert error_of("receipt", event_id="") == "Expected `str` of length >= 1 - at `$.event_id`"


def test_decode_dead_letters_an_event_id_longer_than_64_chars() -> None:
    assert error_of("receipt", event_id="e" * 65) == "Expected `str` of length <= 64 - at `$.event_id`"


@pytest.mark.parametrize("topic", INPUT_TOPICS)
def test_decode_dead_letters_an_unknown_type(topic: Topic) -> None:
    payload = next(p for t, p, _ in EXAMPLES if t == topic)

    result = run(topic, {**payload, "type": "teleport"})

    assert isinstance(result, DeadLetter)
    assert result.error == "Invalid value 'teleport' - at `$.type`"


@pytest.mark.parametrize(
    ("topic", "type_"),
    [(topic, p["type"]) for topic in INPUT_TOPICS for t, p, _ in EXAMPLES if t != topic],
)
def test_decode_dead_letters_a_type_of_another_topic(topic: Topic, type_: str) -> None:
    result = run(topic, example(type_))

    assert isinstance(result, DeadLetter)
    assert result.error == f"Invalid value '{type_}' - at `$.type`"


def test_decode_dead_letters_a_receipt_on_pos() -> None:
    result = run(Topic.POS, example("receipt"))

    assert isinstance(result, DeadLetter)
    assert result.error == "Invalid value 'receipt' - at `$.type`"
    assert result.reason == "wrong_topic"


@pytest.mark.parametrize("topic", INPUT_TOPICS)
def test_decode_dead_letters_a_missing_type(topic: Topic) -> None:
    # CONTRACT.md "Common envelope": `type` is required on every topic, including the one-type ones.
    payload = next(p for t, p, _ in EXAMPLES if t == topic)
    payload = {k: v for k, v in payload.items() if k != "type"}

    result = run(topic, payload)

    assert isinstance(result, DeadLetter)
    assert result.error == "Object missing required field `type`"


@pytest.mark.parametrize("topic", INPUT_TOPICS)
def test_decode_dead_letters_a_type_that_is_not_a_string(topic: Topic) -> None:
    payload = next(p for t, p, _ in EXAMPLES if t == topic)

    result = run(topic, {**payload, "type": 5})

    assert isinstance(result, DeadLetter)
    assert result.error == "Expected `str` - at `$.type`"


@pytest.mark.parametrize(
    ("ts", "error"),
    [
        ("2026-11-22T01:23:45", "Expected `datetime` with a timezone component - at `$.ts`"),
        ("2026-11-22T01:23:45.123", "Expected `datetime` with a timezone component - at `$.ts`"),
        ("yesterday", "Invalid RFC3339 encoded datetime - at `$.ts`"),
        ("2026-02-30T01:00:00Z", "Invalid RFC3339 encoded datetime - at `$.ts`"),
        ("", "Invalid RFC3339 encoded datetime - at `$.ts`"),
        (1_795_000_000, "Expected `datetime`, got `int` - at `$.ts`"),
    ],
    ids=["no-offset", "no-offset-ms", "not-a-date", "no-such-day", "empty", "epoch-number"],
)
def test_decode_dead_letters_a_bad_ts(ts: Any, error: str) -> None:
    assert error_of("receipt", ts=ts) == error


def test_decode_dead_letters_a_missing_ts() -> None:
    assert error_of("sale", ts=None) == "Object missing required field `ts`"


@pytest.mark.parametrize(
    ("version", "error"),
    [
        (2, "Invalid enum value 2 - at `$.schema_version`"),
        (0, "Invalid enum value 0 - at `$.schema_version`"),
        ("1", "Expected `int`, got `str` - at `$.schema_version`"),
        (True, "Expected `int`, got `bool` - at `$.schema_version`"),
    ],
)
def test_decode_dead_letters_a_schema_version_other_than_1(version: Any, error: str) -> None:
    assert error_of("receipt", schema_version=version) == error


def test_decode_dead_letters_a_missing_schema_version() -> None:
    assert error_of("receipt", schema_version=None) == "Object missing required field `schema_version`"


# --- dead letters: quantities, prices, types ---------------------------------


@pytest.mark.parametrize(
    "type_", ["receipt", "transfer_out", "transfer_in", "fulfilment", "add_to_cart", "remove_from_cart"]
)
@pytest.mark.parametrize("qty", [0, -1])
def test_decode_dead_letters_a_non_positive_qty(type_: str, qty: int) -> None:
    assert error_of(type_, qty=qty) == "Expected `int` >= 1 - at `$.qty`"


@pytest.mark.parametrize("type_", ["sale", "return", "purchase"])
@pytest.mark.parametrize("qty", [0, -3])
def test_decode_dead_letters_a_non_positive_line_qty(type_: str, qty: int) -> None:
    payload = example(type_)
    payload["items"][1]["qty"] = qty

    assert error_of(type_, items=payload["items"]) == "Expected `int` >= 1 - at `$.items[1].qty`"


def test_decode_dead_letters_an_adjustment_of_zero() -> None:
    assert error_of("adjustment", qty=0) == "Expected `int` != 0 - at `$.qty`"


def test_decode_dead_letters_a_negative_count() -> None:
    assert error_of("count", on_hand=-1) == "Expected `int` >= 0 - at `$.on_hand`"


def test_decode_dead_letters_a_negative_price() -> None:
    assert error_of("product_upsert", price=-0.01) == "Expected `float` >= 0.0 - at `$.price`"


@pytest.mark.parametrize("type_", ["sale", "return", "purchase"])
def test_decode_dead_letters_a_negative_unit_price(type_: str) -> None:
    payload = example(type_)
    payload["items"][0]["unit_price"] = -1

    assert error_of(type_, items=payload["items"]) == "Expected `float` >= 0.0 - at `$.items[0].unit_price`"


@pytest.mark.parametrize(
    ("type_", "field"), [("sale", "total"), ("purchase", "total"), ("checkout_started", "cart_value")]
)
def test_decode_dead_letters_a_negative_amount(type_: str, field: str) -> None:
    assert error_of(type_, **{field: -5}) == f"Expected `float` >= 0.0 - at `$.{field}`"


@pytest.mark.parametrize(
    ("qty", "error"),
    [
        ("3", "Expected `int`, got `str` - at `$.qty`"),
        (True, "Expected `int`, got `bool` - at `$.qty`"),
        (3.5, "Expected `int`, got `float` - at `$.qty`"),
        (3.0, "Expected `int`, got `float` - at `$.qty`"),
        ([3], "Expected `int`, got `array` - at `$.qty`"),
    ],
)
def test_decode_dead_letters_a_wrongly_typed_qty(qty: Any, error: str) -> None:
    assert error_of("receipt", qty=qty) == error


@pytest.mark.parametrize(
    ("type_", "changes", "error"),
    [
        ("receipt", {"sku": 17}, "Expected `str`, got `int` - at `$.sku`"),
        ("receipt", {"location_id": None}, "Object missing required field `location_id`"),
        ("product_upsert", {"active": "yes"}, "Expected `bool`, got `str` - at `$.active`"),
        ("product_upsert", {"price": "9.99"}, "Expected `float`, got `str` - at `$.price`"),
        ("product_upsert", {"attributes": ["red"]}, "Expected `object | null`, got `array` - at `$.attributes`"),
        ("page_view", {"channel": "kiosk"}, "Invalid enum value 'kiosk' - at `$.channel`"),
        ("page_view", {"session_id": None}, "Object missing required field `session_id`"),
        ("page_view", {"ip_country": "Germany"}, "Expected `str` matching regex '^[A-Z]{2}$' - at `$.ip_country`"),
        ("sale", {"currency": "euro"}, "Expected `str` matching regex '^[A-Z]{3}$' - at `$.currency`"),
        ("sale", {"payment": {"method": "cheque"}}, "Invalid enum value 'cheque' - at `$.payment.method`"),
        ("purchase", {"payment": {"method": "cash"}}, "Invalid enum value 'cash' - at `$.payment.method`"),
        ("void", {"original_txn_id": None}, "Object missing required field `original_txn_id`"),
        ("adjustment", {"reason": "theft"}, "Invalid enum value 'theft' - at `$.reason`"),
        ("fraud_label", {"label": "maybe"}, "Invalid enum value 'maybe' - at `$.label`"),
    ],
)
def test_decode_dead_letters_a_wrong_or_missing_field(type_: str, changes: dict[str, Any], error: str) -> None:
    assert error_of(type_, **changes) == error


@pytest.mark.parametrize("type_", ["purchase", "sale", "return"])
def test_decode_dead_letters_a_basket_without_items(type_: str) -> None:
    assert error_of(type_, items=[]) == "Expected `array` of length >= 1 - at `$.items`"


@pytest.mark.parametrize("nulls", [False, True], ids=["absent", "null"])
def test_decode_dead_letters_fraud_label_without_txn_id_or_order_id(nulls: bool) -> None:
    payload = example("fraud_label")
    del payload["txn_id"]
    if nulls:
        payload.update(txn_id=None, order_id=None)

    result = run(Topic.LABELS, payload)

    assert isinstance(result, DeadLetter)
    assert result.error == "Object needs `txn_id` or `order_id`"


# --- the dead-letter record --------------------------------------------------


def test_decode_dead_letter_names_its_source_position() -> None:
    result = decode(Topic.POS, b"{}", source_topic="omni.pos", partition=7, offset=12345)

    assert isinstance(result, DeadLetter)
    assert result.dlq_id == "omni.pos/7/12345"
    assert (result.source_topic, result.partition, result.offset) == ("omni.pos", 7, 12345)
    assert (result.raw, result.raw_encoding) == ("{}", "utf-8")


def test_decode_dead_letter_ts_is_rfc3339_utc_with_milliseconds() -> None:
    before = datetime.now(UTC)
    result = run(Topic.POS, b"{}")
    after = datetime.now(UTC)

    assert isinstance(result, DeadLetter)
    assert result.ts.endswith("Z")
    assert len(result.ts) == len("2026-11-22T01:23:45.123Z")
    stamped = datetime.fromisoformat(result.ts)
    assert before - timedelta(milliseconds=1) <= stamped <= after


# --- never raises ------------------------------------------------------------


def test_decode_never_raises_on_mangled_payloads() -> None:
    for seed in range(30):
        rng = random.Random(seed)
        for offset in range(200):
            payload = rng.choice(EXAMPLES)[1]
            raw = bytearray(json.dumps(payload).encode())
            for _ in range(rng.randint(1, 4)):
                match rng.randrange(3):
                    case 0:
                        raw[rng.randrange(len(raw))] = rng.randrange(256)
                    case 1:
                        del raw[rng.randrange(len(raw))]
                    case _:
                        raw.insert(rng.randrange(len(raw)), rng.randrange(256))
            target = rng.choice(INPUT_TOPICS)

            try:
                result = decode(target, bytes(raw), source_topic="omni.fuzz", partition=0, offset=offset)
            except Exception as ex:  # the contract's "processing continues": decode() must not raise
                pytest.fail(f"seed {seed}, payload {bytes(raw)!r} on {target}: {ex!r}")

            assert isinstance(result, DeadLetter) or event_type(result) in TOPIC_OF


# --- price_change: the catalog's second type ----------------------------------


def test_decode_accepts_a_price_change_on_catalog() -> None:
    change = run(Topic.CATALOG, example("price_change"))

    assert isinstance(change, PriceChange)
    assert (change.sku, change.price, change.currency) == ("SKU-1", 24.99, "EUR")
    assert change.ts == datetime(2026, 11, 22, 1, 23, 45, 123000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"price": -0.01}, "Expected `float` >= 0.0 - at `$.price`"),
        ({"price": "9.99"}, "Expected `float`, got `str` - at `$.price`"),
        ({"currency": "euro"}, "Expected `str` matching regex '^[A-Z]{3}$' - at `$.currency`"),
        ({"currency": None}, "Object missing required field `currency`"),
        ({"sku": None}, "Object missing required field `sku`"),
        ({"price": None}, "Object missing required field `price`"),
    ],
)
def test_decode_dead_letters_a_price_change_that_breaks_a_rule(changes: dict[str, Any], error: str) -> None:
    assert error_of("price_change", **changes) == error


@pytest.mark.parametrize("type_", ["product_upsert", "price_change"])
def test_decode_dead_letters_a_catalog_event_without_type_now_that_the_topic_has_two(type_: str) -> None:
    payload = example(type_)
    del payload["type"]

    result = run(Topic.CATALOG, payload)

    assert isinstance(result, DeadLetter)
    assert result.error == "Object missing required field `type`"
