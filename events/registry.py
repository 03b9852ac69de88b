"""The event registry: every input event type of the contract, declared once.

An `EventType` names a model of `events.models` (whose msgspec tag is the
contract's `type`), the topic it travels on, its message key, how the simulator
publishes it and its one-line description. Everything that used to repeat that
list derives from `REGISTRY`:

- the topics that carry input events (`INPUT_TOPICS`, also `events.topics.INPUT_TOPICS`),
  which `omnistream/kafka_admin.py` creates;
- each topic's tagged union and decoder (`events.decode`), and the JSON Schema (`events.schema`);
- the message key of each topic and type (`key_fields`, `sim.keys.KEY_FIELDS`);
- the `wrong_topic` dead-letter reason (`events.reasons`): a `type` registered on another topic;
- the docs: tests/unit/sim/test_docs_events.py checks that docs/events.md has a row in its
  table and a section with an example for every entry, and tests/unit/sim checks that
  every entry's simulator hook exists and that simulated traffic carries every type.

Dead-letter reasons are per failure class (`events.reasons.Reason`), not per type:
every type has required, typed and constrained fields, so every type can fail in
every class, and a per-type list would repeat the same set twenty times.

docs/events.md, "Adding an event type", is the checklist this makes short.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce
from operator import or_
from typing import Any

import msgspec

from events.models import (
    AddToCart,
    Adjustment,
    CheckoutStarted,
    Consent,
    Count,
    Envelope,
    FraudLabel,
    Fulfilment,
    IdentityLink,
    OrderCancel,
    PageView,
    PaymentResult,
    PriceChange,
    ProductUpsert,
    ProductView,
    Purchase,
    Receipt,
    Redemption,
    RemoveFromCart,
    Reservation,
    Return,
    Sale,
    Search,
    TransferIn,
    TransferOut,
    Void,
    Weather,
)
from events.topics import Topic

TOPIC_KEYS: dict[Topic, tuple[str, ...]] = {
    Topic.CATALOG: ("sku",),
    Topic.CLICKSTREAM: ("user_id", "session_id"),
    Topic.POS: ("store_id",),
    Topic.INVENTORY: ("sku",),
    Topic.LABELS: ("txn_id", "order_id"),
    Topic.CUSTOMERS: ("customer_id",),
    Topic.MEMBERS: ("customer_id",),
    Topic.WEATHER: ("location_id",),
}
"""The contract's message key of each input topic: payload fields, the first one present wins.

The key decides the partition, and so which worker sees an entity's events in order.
"""


@dataclass(frozen=True, slots=True)
class EventType:
    """One event type of the contract: its model, topic, key, simulator hook and docs line.

    Parameters
    ----------
    model
        The validating struct; its msgspec tag is the contract's `type`.
    topic
        The topic it is published on (one topic per type).
    summary
        What it means, in one line: the docs table of docs/events.md repeats it.
    sim_hook
        Where the simulator makes it, as `module:qualname` (`sim.web:WebShop.session`).
        `events` imports nothing of `sim`, so it is a name; the sim tests resolve it.
    key
        Key fields in order of preference, only when the contract keys this type
        differently from its topic; empty means the topic's key (`TOPIC_KEYS`).
    """

    model: type[Envelope]
    topic: Topic
    summary: str
    sim_hook: str
    key: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """The contract's `type` (the model's tag), e.g. `price_change`."""
        return str(self.model.__struct_config__.tag)

    @property
    def key_fields(self) -> tuple[str, ...]:
        """The payload fields that key this type's messages, first present one wins."""
        return self.key or TOPIC_KEYS[self.topic]


class Registry:
    """The event types, indexed by name, model and topic; refuses an inconsistent declaration.

    >>> registry = Registry(EventType(Receipt, Topic.INVENTORY, "Goods received.", "sim.stockroom:Stockroom.activity"))
    >>> registry.by_name["receipt"].key_fields, registry.topics
    (('sku',), (<Topic.INVENTORY: 'inventory'>,))
    """

    def __init__(self, *types: EventType) -> None:
        self.types = types
        self.by_name: dict[str, EventType] = {}
        self.by_model: dict[type, EventType] = {}
        by_topic: dict[Topic, list[EventType]] = {}
        for entry in types:
            if entry.name in self.by_name or entry.model in self.by_model:
                raise ValueError(f"event type {entry.name!r} is registered twice")
            if entry.topic not in TOPIC_KEYS:
                raise ValueError(f"{entry.name!r} is on {entry.topic.value!r}, which has no message key")
            fields = {field.name for field in msgspec.structs.fields(entry.model)}
            if missing := [name for name in entry.key_fields if name not in fields]:
                raise ValueError(f"{entry.name!r} has no field {missing[0]!r} to key its messages by")
            self.by_name[entry.name] = self.by_model[entry.model] = entry
            by_topic.setdefault(entry.topic, []).append(entry)
        self.topics: tuple[Topic, ...] = tuple(by_topic)
        self._by_topic = {topic: tuple(entries) for topic, entries in by_topic.items()}

    def of_topic(self, topic: Topic) -> tuple[EventType, ...]:
        """The types published on `topic`, in declaration order (none for an output topic)."""
        return self._by_topic.get(topic, ())

    def union(self, topic: Topic) -> Any:
        """The models of `topic` as one type to decode against: a tagged union, or one struct.

        Raises `KeyError` for a topic that carries no input events.
        """
        if topic not in self._by_topic:
            raise KeyError(topic)
        return reduce(or_, [entry.model for entry in self._by_topic[topic]])

    def key_fields(self, topic: Topic, type_name: object) -> tuple[str, ...]:
        """The key fields of a `type_name` message on `topic`; the topic's key for a type it does not carry."""
        entry = self.by_name.get(type_name) if isinstance(type_name, str) else None
        return entry.key_fields if entry is not None and entry.topic is topic else TOPIC_KEYS.get(topic, ())


_CATALOG, _CLICKS, _POS, _STOCK, _LABELS = Topic.CATALOG, Topic.CLICKSTREAM, Topic.POS, Topic.INVENTORY, Topic.LABELS
_SESSION, _TILL, _STOCKROOM = "sim.web:WebShop.session", "sim.tills:Tills", "sim.stockroom:Stockroom"

REGISTRY = Registry(
    EventType(ProductUpsert, _CATALOG, "A product was created or changed; `active: false` withdraws it from sale.",
              "sim.merchandising:Merchandising.publish_catalog"),
    EventType(PriceChange, _CATALOG, "A SKU's selling price changed from `ts` on (a markdown, a rise).",
              "sim.merchandising:Merchandising.price_change"),
    EventType(PageView, _CLICKS, "A page that is not a product page was shown.", _SESSION),
    EventType(Search, _CLICKS, "The shopper searched the catalogue.", _SESSION),
    EventType(ProductView, _CLICKS, "A product page was shown, maybe from a recommendation.", _SESSION),
    EventType(AddToCart, _CLICKS, "Units went into the cart (no stock effect).", _SESSION),
    EventType(RemoveFromCart, _CLICKS, "Units left the cart.", _SESSION),
    EventType(CheckoutStarted, _CLICKS, "The shopper opened checkout.", _SESSION),
    EventType(Purchase, _CLICKS, "An online order was placed: it reserves stock where it is fulfilled.", _SESSION),
    EventType(Sale, _POS, "A basket was rung up at a till: on-hand drops.", f"{_TILL}.sale"),
    EventType(Return, _POS, "Goods were brought back to a till: on-hand rises.", f"{_TILL}.return_goods"),
    EventType(Void, _POS, "A till transaction was cancelled: its stock effect is undone.", f"{_TILL}.sale"),
    EventType(Receipt, _STOCK, "Goods were received: on-hand rises.", f"{_STOCKROOM}.activity"),
    EventType(Adjustment, _STOCK, "A signed correction of on-hand.", f"{_STOCKROOM}.activity"),
    EventType(TransferOut, _STOCK, "Goods left for another location: on-hand drops.", f"{_STOCKROOM}.activity"),
    EventType(TransferIn, _STOCK, "Goods arrived from another location: on-hand rises.", f"{_STOCKROOM}.activity"),
    EventType(Count, _STOCK, "A cycle count: the absolute on-hand as of `ts`.", f"{_STOCKROOM}.activity"),
    EventType(Fulfilment, _STOCK, "An online order line shipped: on-hand and reserved drop.",
              f"{_STOCKROOM}.settle_order"),
    EventType(OrderCancel, _STOCK, "An online order, or part of a line, was cancelled: what it holds is released.",
              f"{_STOCKROOM}.settle_order", key=("order_id",)),
    EventType(Reservation, _STOCK, "A checkout hold was asked for: held if available, else rejected.",
              f"{_STOCKROOM}.hold"),
    EventType(FraudLabel, _LABELS, "A verdict (fraud or legit) on a past payment, days later.",
              "sim.fraud:FraudDesk.paid"),
    EventType(PaymentResult, _CLICKS, "The payment service answered an online checkout (approved, declined, error).",
              "sim.journeys:CustomerJourneys.journey"),
    EventType(Consent, Topic.CUSTOMERS, "A customer's marketing consent changed (no triggered messages when false).",
              "sim.journeys:CustomerJourneys.consent"),
    EventType(IdentityLink, Topic.MEMBERS, "A web/app account was joined to a loyalty member.",
              "sim.loyalty:Members.link", key=("user_id",)),
    EventType(Redemption, Topic.MEMBERS, "A member asked to spend loyalty points (the flow decides).",
              "sim.loyalty:Members.redeem"),
    EventType(Weather, Topic.WEATHER, "The weather of a local day at a location, observed or forecast.",
              "sim.weather:WeatherDesk.report"),
)  # fmt: skip
"""Every input event type of contract v1, grouped by topic in the order topics are created."""

INPUT_TOPICS: tuple[Topic, ...] = REGISTRY.topics
"""The topics that carry input events: those with a registered type."""
KEY_FIELDS: dict[Topic, tuple[str, ...]] = {topic: TOPIC_KEYS[topic] for topic in INPUT_TOPICS}
"""The key fields of each input topic (a type may differ only where the contract says: `key_fields`)."""


def key_fields(topic: Topic, type_name: object) -> tuple[str, ...]:
    """The key fields of a message of `type_name` (its payload's `type`, whatever it holds) on `topic`."""
    return REGISTRY.key_fields(topic, type_name)
