"""Payments and till actions, normalised from the contract's events for the fraud engine.

A POS `sale` and an online `purchase` carry the same facts under different
names and shapes (`txn_id` vs `order_id`, `customer_id` vs `user_id`, an entry
mode only at the till, countries only online). The feature extractors read one
flat, immutable record instead, so each of them is written once for both
channels. Returns and voids are not payments, but they are what register
behaviour (refund abuse, sweethearting) is made of, so they get a record too.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

from events.models import Event, Purchase, Return, Sale, Void

Channel = Literal["store", "web", "app"]
IdField = Literal["txn_id", "order_id"]
TillKind = Literal["sale", "return", "void"]


class Payment(NamedTuple):
    """One payment, from the till or from the web/app shop, as the fraud engine sees it.

    `ts` is the event's time in epoch seconds. Fields a channel does not have are `None`
    (no countries at the till, no store online unless picked up in a store).
    `card_token` and `card_bin` identify a card: they key state and never appear in
    reasons or logs.
    """

    payment_id: str
    id_field: IdField
    ts: float
    amount: float
    currency: str
    method: str
    card_token: str | None
    card_bin: str | None
    entry_mode: str | None
    channel: Channel
    user_id: str | None
    device_id: str | None
    ip_country: str | None
    billing_country: str | None
    shipping_country: str | None
    store_id: str | None
    register_id: str | None
    cashier_id: str | None
    event_id: str


class TillAction(NamedTuple):
    """A sale, return or void at a register, for register behaviour.

    `with_receipt` is False for a return without `original_txn_id` (CONTRACT.md:
    allowed, and a fraud signal); sales and voids always carry True.
    """

    kind: TillKind
    txn_id: str
    ts: float
    amount: float
    store_id: str
    register_id: str
    cashier_id: str
    with_receipt: bool
    event_id: str


def payment_of(event: Event) -> Payment | None:
    """The payment an event makes, or None when it is not a payment (returns, clicks, stock...).

    >>> from events.decode import decode
    >>> from events.topics import Topic
    >>> raw = (b'{"event_id":"e1","type":"sale","ts":"2026-11-22T00:00:00Z","schema_version":1,'
    ...        b'"store_id":"S1","register_id":"R1","cashier_id":"C1","txn_id":"T1","currency":"USD",'
    ...        b'"items":[{"sku":"A","qty":1,"unit_price":9.5}],"total":9.5,'
    ...        b'"payment":{"method":"card","card_token":"tok_1","entry_mode":"manual"}}')
    >>> p = payment_of(decode(Topic.POS, raw, source_topic="pos", partition=0, offset=0))
    >>> p.payment_id, p.id_field, p.channel, p.amount, p.entry_mode
    ('T1', 'txn_id', 'store', 9.5, 'manual')
    """
    if type(event) is Sale:
        pay = event.payment
        return Payment(
            event.txn_id,
            "txn_id",
            event.ts.timestamp(),
            event.total,
            event.currency,
            pay.method,
            pay.card_token,
            pay.card_bin,
            pay.entry_mode,
            "store",
            event.customer_id,
            None,
            None,
            None,
            None,
            event.store_id,
            event.register_id,
            event.cashier_id,
            event.event_id,
        )
    if type(event) is Purchase:
        online = event.payment
        return Payment(
            event.order_id,
            "order_id",
            event.ts.timestamp(),
            event.total,
            event.currency,
            online.method,
            online.card_token,
            online.card_bin,
            None,
            event.channel,
            event.user_id,
            event.device_id,
            event.ip_country,
            online.billing_country,
            event.shipping_country,
            None,
            None,
            None,
            event.event_id,
        )
    return None


def till_action_of(event: Event) -> TillAction | None:
    """The register action of a POS event (sale, return, void), or None for anything else.

    A void carries no amount in the contract; it counts as one void of amount 0.
    """
    if type(event) is Sale:
        return TillAction(
            "sale", event.txn_id, event.ts.timestamp(), event.total, event.store_id, event.register_id,
            event.cashier_id, True, event.event_id,
        )  # fmt: skip
    if type(event) is Return:
        return TillAction(
            "return", event.txn_id, event.ts.timestamp(), event.total, event.store_id, event.register_id,
            event.cashier_id, event.original_txn_id is not None, event.event_id,
        )  # fmt: skip
    if type(event) is Void:
        return TillAction(
            "void", event.txn_id, event.ts.timestamp(), 0.0, event.store_id, event.register_id,
            event.cashier_id, True, event.event_id,
        )  # fmt: skip
    return None
