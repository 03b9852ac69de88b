"""Shopper interactions: the one shape every recommendation model learns from.

Views, carts and orders on the web and app, and loyalty-card baskets at the
tills, all become `Interaction`s, so an in-store purchase teaches the models
the same way an online one does (one omnichannel shopper).
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any, NamedTuple

from events.models import AddToCart, ProductView, Purchase, Sale
from operators.movements import qty_by_sku
from operators.seen_events import SeenEvents


class InteractionKind(IntEnum):
    """How strongly an interaction says "I want this": a view < a cart < a purchase."""

    VIEW = 1
    CART = 2
    PURCHASE = 3


# Enum attribute lookups cost ~0.5 us each on Python 3.11 (see operators.stock_ledger); hoisted.
_VIEW, _CART, _PURCHASE = InteractionKind.VIEW, InteractionKind.CART, InteractionKind.PURCHASE


class Interaction(NamedTuple):
    """One shopper touching one SKU.

    `actor` is the shopper the models personalise for: `u:<user_id>` when known,
    else `s:<session_id>` (see `actor_key`). `session` groups what was seen
    together: `s:<session_id>` online, `t:<txn_id>` for a till basket.
    `location_id` is the fulfilment location of an order or the store of a till
    sale, None for views and carts. `category` is None until the catalog step
    enriches it (`CatalogItem.enrich`). `rec_request_id` and `variant` are set
    when a product view came from a recommendation (attribution, CONTRACT.md).
    A NamedTuple: the flow builds one per clickstream event, and it pickles small.
    """

    event_id: str
    ts: float
    actor: str
    session: str
    sku: str
    kind: InteractionKind
    channel: str
    location_id: str | None = None
    category: str | None = None
    rec_request_id: str | None = None
    variant: str | None = None


def first_delivery(seen: SeenEvents | None, event_id: str, sku: str, ts: float) -> bool:
    """False when (`event_id`, `sku`) is in `seen` already (a redelivery); records it otherwise.

    One event makes an interaction per SKU with the same `event_id`
    (`interactions_of`), so the pair is what identifies a delivery. Without a
    window (`seen` None: the caller de-duplicates upstream) every delivery is a first.

    >>> seen = SeenEvents(3_600.0)
    >>> first_delivery(seen, "e1", "SKU-1", 0.0), first_delivery(seen, "e1", "SKU-2", 0.0)
    (True, True)
    >>> first_delivery(seen, "e1", "SKU-1", 0.0), first_delivery(None, "e1", "SKU-1", 0.0)
    (False, True)
    """
    return seen is None or seen.add(event_id + "\x1f" + sku, ts)


def keep_newest(recent: list[Any], entry: tuple[Any, ...], previous: int | None, limit: int) -> None:
    """Append `entry` (sku, kind, ...) to `recent` (oldest first), at most `limit` kept.

    A SKU already held (at index `previous`) moves to the newest place, keeping the
    stronger of its two kinds: re-viewing a SKU put in the cart leaves it a cart.

    >>> recent = [("SKU-1", 2, 0.0), ("SKU-2", 1, 5.0)]
    >>> keep_newest(recent, ("SKU-1", 1, 9.0), 0, limit=2)
    >>> recent
    [('SKU-2', 1, 5.0), ('SKU-1', 2, 9.0)]
    >>> keep_newest(recent, ("SKU-3", 1, 10.0), None, limit=2)
    >>> [item[0] for item in recent]
    ['SKU-1', 'SKU-3']
    """
    if previous is not None:
        held_kind = recent.pop(previous)[1]
        if held_kind > entry[1]:
            entry = (entry[0], held_kind, *entry[2:])
    recent.append(entry)
    if len(recent) > limit:
        del recent[0]


def actor_key(user_id: str | None, session_id: str | None) -> str | None:
    """The actor a request or an event belongs to: the user when known, else the session.

    >>> actor_key("U-1", "S-9"), actor_key(None, "S-9"), actor_key(None, None)
    ('u:U-1', 's:S-9', None)
    """
    if user_id:
        return "u:" + user_id
    if session_id:
        return "s:" + session_id
    return None


def interactions_of(event: object) -> list[Interaction]:
    """The interactions one decoded input event carries; anything else gives [].

    An order or a basket gives one interaction per SKU (lines of the same SKU
    summed), all with the event's `event_id`: consumers that deduplicate key on
    (`event_id`, `sku`). A till sale counts only with a loyalty `customer_id`:
    an anonymous basket names no shopper to personalise for.

    >>> from datetime import datetime, UTC
    >>> view = ProductView(event_id="e1", ts=datetime(2026, 1, 1, tzinfo=UTC), schema_version=1,
    ...                    session_id="S-1", user_id="U-1", channel="web", sku="SKU-1")
    >>> [(i.actor, i.session, i.sku, i.kind.name, i.channel) for i in interactions_of(view)]
    [('u:U-1', 's:S-1', 'SKU-1', 'VIEW', 'web')]
    >>> interactions_of("not an event")
    []
    """
    kind = type(event)
    if kind is ProductView:
        view: ProductView = event  # type: ignore[assignment]
        return [
            Interaction(
                view.event_id, view.ts.timestamp(), _actor(view.user_id, view.session_id), "s:" + view.session_id,
                view.sku, _VIEW, view.channel, None, None, view.rec_request_id, view.variant,
            )
        ]  # fmt: skip
    if kind is AddToCart:
        cart: AddToCart = event  # type: ignore[assignment]
        return [
            Interaction(
                cart.event_id, cart.ts.timestamp(), _actor(cart.user_id, cart.session_id), "s:" + cart.session_id,
                cart.sku, _CART, cart.channel,
            )
        ]  # fmt: skip
    if kind is Purchase:
        order: Purchase = event  # type: ignore[assignment]
        ts, actor, session = order.ts.timestamp(), _actor(order.user_id, order.session_id), "s:" + order.session_id
        return [
            Interaction(order.event_id, ts, actor, session, sku, _PURCHASE, order.channel, order.fulfilment_location_id)
            for sku in qty_by_sku(order.items)
        ]
    if kind is Sale:
        sale: Sale = event  # type: ignore[assignment]
        if not sale.customer_id:
            return []
        ts, actor, session = sale.ts.timestamp(), "u:" + sale.customer_id, "t:" + sale.txn_id
        return [
            Interaction(sale.event_id, ts, actor, session, sku, _PURCHASE, "store", sale.store_id)
            for sku in qty_by_sku(sale.items)
        ]
    return []


def _actor(user_id: str | None, session_id: str) -> str:
    return "u:" + user_id if user_id else "s:" + session_id
