"""`events.registry`: every event type declared once, and what derives from it agrees with it."""

from __future__ import annotations

import typing
from typing import Any

import msgspec
import pytest

import events.models
import events.topics
import operators.merch.sku_merch
import operators.txn_journal
from events.decode import EVENT_TYPES, decode
from events.models import Envelope, PriceChange, ProductUpsert, Receipt, Sale, event_type
from events.registry import INPUT_TOPICS, KEY_FIELDS, REGISTRY, TOPIC_KEYS, EventType, Registry, key_fields
from events.schema import json_schema
from events.topics import Topic
from tests.unit.events.examples import EXAMPLES

# Unions spelled outside the registry for type checkers, each of one topic's types: they must not drift from it.
STATIC_UNIONS = {
    Topic.POS: operators.txn_journal.PosEvent,
    Topic.CATALOG: operators.merch.sku_merch.CatalogEvent,
}


def event_models() -> list[type]:
    """Every class in `events.models` that is a contract event: an envelope no other model extends."""
    found = {
        cls
        for cls in vars(events.models).values()  # a set: `LabelEvent` is `FraudLabel` under another name
        if isinstance(cls, type) and issubclass(cls, Envelope) and not cls.__subclasses__()
    }
    return list(found)


def members(union: Any) -> set[type]:
    return set(typing.get_args(union)) or {union}


def test_every_event_model_is_in_exactly_one_entry() -> None:
    registered = [entry.model for entry in REGISTRY.types]

    assert sorted(cls.__name__ for cls in event_models()) == sorted(cls.__name__ for cls in registered)
    assert len(registered) == len(set(registered))


@pytest.mark.parametrize("topic", list(INPUT_TOPICS))
def test_each_topics_decoded_union_is_exactly_its_registered_models(topic: Topic) -> None:
    assert members(EVENT_TYPES[topic]) == {entry.model for entry in REGISTRY.of_topic(topic)}


@pytest.mark.parametrize("topic", list(STATIC_UNIONS))
def test_each_union_spelled_for_type_checkers_is_exactly_its_topics_registered_models(topic: Topic) -> None:
    assert members(STATIC_UNIONS[topic]) == {entry.model for entry in REGISTRY.of_topic(topic)}


def test_models_spell_no_union_of_event_classes_a_new_type_would_have_to_join() -> None:
    # Adding an event type touches its model and its registry entry; `Event` is the envelope, not a list.
    assert events.models.Event is Envelope
    models = event_models()
    unions = [
        name
        for name, value in vars(events.models).items()
        if len(typing.get_args(value)) > 1 and all(cls in models for cls in typing.get_args(value))
    ]
    assert unions == []


def test_input_topics_are_the_registered_topics_wherever_they_are_imported_from() -> None:
    assert set(INPUT_TOPICS) == {entry.topic for entry in REGISTRY.types}
    assert events.topics.INPUT_TOPICS is INPUT_TOPICS
    assert set(EVENT_TYPES) == set(INPUT_TOPICS)


def test_topics_module_has_no_other_lazy_names() -> None:
    with pytest.raises(AttributeError):
        getattr(events.topics, "OUTPUT")  # noqa: B009


def test_message_keys_are_the_contracts() -> None:
    # CONTRACT.md, "Input topics": the key of each topic.
    assert KEY_FIELDS == {
        Topic.CATALOG: ("sku",),
        Topic.CLICKSTREAM: ("user_id", "session_id"),
        Topic.POS: ("store_id",),
        Topic.INVENTORY: ("sku",),
        Topic.LABELS: ("txn_id", "order_id"),
        Topic.CUSTOMERS: ("customer_id",),
        Topic.MEMBERS: ("customer_id",),
        Topic.WEATHER: ("location_id",),
    }
    assert REGISTRY.by_name["price_change"].key_fields == ("sku",)
    # The contract keys two types apart from their topic: an identity link by its account, an order's
    # cancels by the order they name.
    assert {entry.name: entry.key for entry in REGISTRY.types if entry.key} == {
        "identity_link": ("user_id",),
        "order_cancel": ("order_id",),
    }
    assert key_fields(Topic.INVENTORY, "order_cancel") == ("order_id",)


def test_key_fields_of_a_type_foreign_to_the_topic_or_not_a_string_are_the_topics() -> None:
    assert key_fields(Topic.POS, "receipt") == ("store_id",)
    assert key_fields(Topic.CLICKSTREAM, 17) == ("user_id", "session_id")
    assert key_fields(Topic.ALERTS, "sale") == ()


@pytest.mark.parametrize(("topic", "payload", "cls"), EXAMPLES, ids=[p["type"] for _, p, _ in EXAMPLES])
def test_each_example_decodes_to_the_model_its_type_is_registered_with(
    topic: Topic, payload: dict[str, Any], cls: type
) -> None:
    entry = REGISTRY.by_name[payload["type"]]
    event = decode(topic, msgspec.json.encode(payload), source_topic="t", partition=0, offset=0)

    assert (entry.topic, entry.model) == (topic, cls)
    assert event_type(event) == entry.name  # type: ignore[arg-type]


def test_every_registered_type_has_an_example() -> None:
    assert {p["type"] for _, p, _ in EXAMPLES} == set(REGISTRY.by_name)


def test_every_entry_has_a_one_line_summary_and_a_sim_hook() -> None:
    for entry in REGISTRY.types:
        assert entry.summary.endswith(".") and "\n" not in entry.summary and len(entry.summary) <= 100, entry.name
        module, _, qualname = entry.sim_hook.partition(":")
        assert module.startswith("sim.") and qualname, entry.name


def test_registry_refuses_a_type_registered_twice() -> None:
    receipt = EventType(Receipt, Topic.INVENTORY, "Goods received.", "sim.stockroom:Stockroom.activity")

    with pytest.raises(ValueError, match="'receipt' is registered twice"):
        Registry(receipt, receipt)


def test_registry_refuses_a_key_field_the_model_lacks() -> None:
    with pytest.raises(ValueError, match="'sale' has no field 'sku'"):
        Registry(EventType(Sale, Topic.POS, "A sale.", "sim.tills:Tills.sale", key=("sku",)))


def test_registry_refuses_a_type_on_an_output_topic() -> None:
    with pytest.raises(ValueError, match="on 'alerts', which has no message key"):
        Registry(EventType(Sale, Topic.ALERTS, "A sale.", "sim.tills:Tills.sale"))


def test_union_of_a_topic_without_types_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        REGISTRY.union(Topic.DLQ)


def test_every_topic_with_a_key_carries_a_registered_type() -> None:
    assert set(TOPIC_KEYS) == set(INPUT_TOPICS)


def test_json_schema_has_every_input_topic_and_the_catalog_schema_both_catalog_types() -> None:
    schemas = json_schema()

    assert list(schemas) == [t.value for t in INPUT_TOPICS]
    catalog = json_schema(Topic.CATALOG)
    assert {ProductUpsert.__name__, PriceChange.__name__} <= set(catalog["$defs"])
    price_change = catalog["$defs"]["PriceChange"]
    assert set(price_change["required"]) >= {"sku", "price", "currency", "type", "ts", "event_id"}
    assert price_change["properties"]["price"]["minimum"] == 0
    assert price_change["properties"]["currency"]["pattern"] == "^[A-Z]{3}$"
