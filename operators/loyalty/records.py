"""What the loyalty flow's stages hand each other: plain, picklable records (no Bytewax, no Redis).

The decoder turns events into these; the identity stage resolves an online purchase's
account to its member (`Opened`); the transaction book turns a transaction's life (sale,
returns, voids, cancels, fulfilments) into its absolute points (`TxnPoints`); the member
ledger turns those and redemption requests into balances and ledger entries.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Line:
    """A basket line as the loyalty book needs it: SKU, units, unit price in integer cents."""

    sku: str
    qty: int
    unit_cents: int


@dataclass(frozen=True, slots=True)
class Opened:
    """A member's earning transaction: a till sale with a `customer_id`, or a linked account's online order."""

    txn_id: str
    customer_id: str
    channel: str
    ts: float
    lines: tuple[Line, ...]
    event_id: str


@dataclass(frozen=True, slots=True)
class Returned:
    """Goods of `txn_id` came back (a till return naming its original transaction)."""

    txn_id: str
    event_id: str
    ts: float
    lines: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class Voided:
    """The till transaction `txn_id` was voided: it earns nothing."""

    txn_id: str
    event_id: str
    ts: float


@dataclass(frozen=True, slots=True)
class Cancelled:
    """Order `txn_id` was cancelled: whole (`sku` None), one line, or `qty` units of a line."""

    txn_id: str
    event_id: str
    ts: float
    sku: str | None
    qty: int | None


@dataclass(frozen=True, slots=True)
class Fulfilled:
    """Units of an order line shipped: a later whole-order cancel leaves them (and their points) alone."""

    txn_id: str
    event_id: str
    ts: float
    sku: str
    qty: int


@dataclass(frozen=True, slots=True)
class CategoryKnown:
    """The catalog's category of a SKU (for category multipliers); every book shard gets it."""

    sku: str
    category: str


@dataclass(frozen=True, slots=True)
class PurchaseSeen:
    """An online order of account `user_id`, before the identity stage knows its member."""

    user_id: str
    order_id: str
    channel: str
    ts: float
    lines: tuple[Line, ...]
    event_id: str


@dataclass(frozen=True, slots=True)
class LinkSeen:
    """Account `user_id` belongs to member `customer_id` from `ts` on (and `lookback` before)."""

    user_id: str
    customer_id: str
    ts: float
    event_id: str


@dataclass(frozen=True, slots=True)
class Tick:
    """The event-time clock: the newest event time the decoder has seen; every shard gets it."""

    ts: float


@dataclass(frozen=True, slots=True)
class TxnPoints:
    """The absolute points and spend of one transaction now, for its member's ledger.

    `rev` counts the events the transaction has absorbed (its sale, each return, void, cancel,
    fulfilment and re-pricing), whether its figures moved or not: the ledger ignores an older
    revision that arrives after a newer one, and its member document's version counts the
    events, the same however a run batched them. `as_of` is the event time of the change.
    """

    customer_id: str
    txn_id: str
    rev: int
    ts: float
    points: int
    spend_cents: int
    as_of: float
    cause: str


@dataclass(frozen=True, slots=True)
class RedeemAsked:
    """A redemption request, in its member's event order."""

    customer_id: str
    redemption_id: str
    points: int
    channel: str
    ts: float
    event_id: str
    order_ref: str | None = None


ToBook = Opened | Returned | Voided | Cancelled | Fulfilled | CategoryKnown | Tick
ToIdentity = PurchaseSeen | LinkSeen | Tick
ToLedger = TxnPoints | RedeemAsked | Tick
