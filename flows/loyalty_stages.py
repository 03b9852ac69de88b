"""The loyalty flow's steps: the decoder and the Bytewax logic of its keyed stages (wiring in `flows/loyalty.py`).

Each stage is a thin adapter over a pure shard of `operators.loyalty`: the batch's items go
in, what comes out is routed on as `ShardBatch`es (`LoyaltyStage` names where) or, from the
member ledger, shaped into the documents the API serves and the entries `omni.loyalty` carries.
"""

from __future__ import annotations

import pickle
import threading
from collections.abc import Callable
from enum import StrEnum
from typing import Any

import msgspec
import orjson
from bytewax.operators import StatefulBatchLogic

from events.dead_letter import DeadLetter
from events.models import (
    Event,
    Fulfilment,
    IdentityLink,
    LineItem,
    OrderCancel,
    ProductUpsert,
    Purchase,
    Redemption,
    Return,
    Sale,
    Void,
)
from events.topics import Topic
from flows.decoding import BatchDecoder
from flows.kafka_source import KafkaRecord
from flows.keyed import RouterPerThread
from flows.metrics import DUPLICATES, LOYALTY_ENTRIES, LOYALTY_REDEMPTIONS
from flows.rules_watch import resolve_rules_path
from flows.sinks import TopicRecord
from omnistream.settings import Settings
from operators.keyed_shards import ShardBatch, ShardRouter
from operators.loyalty.book import TxnBook
from operators.loyalty.identity import IdentityBook
from operators.loyalty.ledger import MemberLedger
from operators.loyalty.records import (
    Cancelled,
    CategoryKnown,
    Fulfilled,
    Line,
    LinkSeen,
    Opened,
    PurchaseSeen,
    RedeemAsked,
    Returned,
    Tick,
    Voided,
)
from operators.loyalty.rules import EarnRules, cents
from state import keys
from state.doc_writer import FencedDoc

FLOW = "loyalty"


class LoyaltyStage(StrEnum):
    """Where a `ShardBatch` of the loyalty flow goes; the values prefix the stages' Bytewax keys (`book:3`)."""

    IDENTITY = "identity"
    BOOK = "book"
    LEDGER = "ledger"
    SINK = "sink"
    """Records for the sink (documents, ledger entries, dead letters): not a keyed stage."""


Routed = ShardBatch[LoyaltyStage, Any]
_IDENTITY, _BOOK, _LEDGER, _SINK = LoyaltyStage.IDENTITY, LoyaltyStage.BOOK, LoyaltyStage.LEDGER, LoyaltyStage.SINK
_DUPLICATES = DUPLICATES.labels(FLOW)
_ENTRY = msgspec.json.Encoder()


def ungroup(batch: Routed) -> list[Any]:
    """The records of a `LoyaltyStage.SINK` batch, one by one for the sink."""
    return batch.items


def lines_of(items: list[LineItem]) -> tuple[Line, ...]:
    return tuple(Line(item.sku, item.qty, cents(item.unit_price)) for item in items)


# --------------------------------------------------------------------------------------------- decode


class LoyaltyBatch:
    """One batch of decoded events as the loyalty flow routes them (a `flows.decoding.DecodedBatch`).

    Member sales, returns and voids go to their transaction's book shard, online orders and
    identity links to their account's identity shard, order cancels and fulfilments to their
    order's book shard, redemptions to their member's ledger shard, product categories to every
    book shard; malformed `members` events become dead letters (this flow owns them).
    """

    __slots__ = ("clock", "letters", "max_ts", "router")

    def __init__(self, router: ShardRouter[LoyaltyStage, Any], clock: _Clock) -> None:
        self.router = router
        self.clock = clock
        self.letters: list[DeadLetter] = []
        self.max_ts = 0.0

    def add(self, topic: Topic, event: Event, record: KafkaRecord) -> None:
        ts = event.ts.timestamp()
        if ts > self.max_ts:
            self.max_ts = ts
        route = self.router.add
        kind = type(event)
        if kind is Sale:
            sale: Sale = event  # type: ignore[assignment]
            if sale.customer_id is not None:
                route(_BOOK, sale.txn_id, Opened(sale.txn_id, sale.customer_id, "pos", ts, lines_of(sale.items),
                                                 sale.event_id))  # fmt: skip
        elif kind is Purchase:
            order: Purchase = event  # type: ignore[assignment]
            if order.user_id is not None:
                route(_IDENTITY, order.user_id, PurchaseSeen(order.user_id, order.order_id, order.channel, ts,
                                                             lines_of(order.items), order.event_id))  # fmt: skip
        elif kind is Return:
            back: Return = event  # type: ignore[assignment]
            if back.original_txn_id is not None:
                returned = tuple((item.sku, item.qty) for item in back.items)
                route(_BOOK, back.original_txn_id, Returned(back.original_txn_id, back.event_id, ts, returned))
        elif kind is Void:
            void: Void = event  # type: ignore[assignment]
            route(_BOOK, void.original_txn_id, Voided(void.original_txn_id, void.event_id, ts))
        elif kind is OrderCancel:
            cancel: OrderCancel = event  # type: ignore[assignment]
            sku: str | None = cancel.sku  # a whole-order cancel names no SKU (CONTRACT.md)
            qty: int | None = getattr(cancel, "qty", None)
            route(_BOOK, cancel.order_id, Cancelled(cancel.order_id, cancel.event_id, ts, sku, qty))
        elif kind is Fulfilment:
            shipped: Fulfilment = event  # type: ignore[assignment]
            route(_BOOK, shipped.order_id, Fulfilled(shipped.order_id, shipped.event_id, ts, shipped.sku, shipped.qty))
        elif kind is ProductUpsert:
            product: ProductUpsert = event  # type: ignore[assignment]
            self.router.add_to_every(_BOOK, CategoryKnown(product.sku, product.category))
        elif kind is IdentityLink:
            link: IdentityLink = event  # type: ignore[assignment]
            route(_IDENTITY, link.user_id, LinkSeen(link.user_id, link.customer_id, ts, link.event_id))
        elif kind is Redemption:
            ask: Redemption = event  # type: ignore[assignment]
            route(_LEDGER, ask.customer_id, RedeemAsked(ask.customer_id, ask.redemption_id, ask.points, ask.channel,
                                                        ts, ask.event_id, ask.order_ref))  # fmt: skip

    def add_dead_letter(self, letter: DeadLetter) -> None:
        self.letters.append(letter)

    def add_raw(self, topic: Topic, record: KafkaRecord, latest_s: float) -> int:
        return 0  # no raw topics

    def output(self) -> list[Routed]:
        """The batch's groups, each stage's clock tick after them when event time moved on, then the dead letters."""
        router = self.router
        tick = self.clock.tick(self.max_ts)
        if tick is not None:
            for stage in (_IDENTITY, _BOOK, _LEDGER):
                router.add_to_every(stage, tick)
        router.add_all_to_single(_SINK, self.letters)
        return router.drain()


class _Clock:
    """The newest event time a decoder thread has seen, sent on as a `Tick` at most every `tick_s` of it."""

    def __init__(self, tick_s: float) -> None:
        self.tick_s = tick_s
        self._local = threading.local()

    def tick(self, ts: float) -> Tick | None:
        last: float = getattr(self._local, "last", 0.0)
        if ts - last < self.tick_s:
            return None
        self._local.last = ts
        return Tick(ts)


# Only these events of topics another flow dead-letters are this flow's business (a false positive costs a decode).
_WANTED = {
    Topic.CLICKSTREAM: b'"purchase"',
    Topic.INVENTORY: b'"order_id"',  # order cancels and fulfilments: the inventory events naming an order
    Topic.CATALOG: b'"product_upsert"',
}


class Decoder(BatchDecoder[Routed]):
    """Raw Kafka messages to `ShardBatch`es for the identity, book and ledger shards; never raises."""

    def __init__(self, source_topics: dict[str, Topic], settings: Settings) -> None:
        super().__init__(FLOW, source_topics, self._new_batch, wanted=_WANTED)
        self._routers: RouterPerThread[LoyaltyStage, Any] = RouterPerThread(settings.loyalty.shards)
        self._clock = _Clock(settings.loyalty.tick_s)

    def _new_batch(self) -> LoyaltyBatch:
        return LoyaltyBatch(self._routers.get(), self._clock)


# --------------------------------------------------------------------------------------------- stages


def load_rules(settings: Settings) -> EarnRules:
    """The earn rules file; a relative path that does not exist here is looked up in the checkout, as the
    fraud rules' (`flows.rules_watch.resolve_rules_path`), so the default works from any directory."""
    return EarnRules.load(resolve_rules_path(settings.loyalty.rules_path))


class _Step(StatefulBatchLogic[list[Any], Routed, bytes]):
    """A keyed shard whose whole state is one picklable operator object."""

    def __init__(self, state: Any, shards: int) -> None:
        self.state = state
        self.router: ShardRouter[LoyaltyStage, Any] = ShardRouter(shards)

    def snapshot(self) -> bytes:
        return pickle.dumps(self.state, protocol=pickle.HIGHEST_PROTOCOL)

    @staticmethod
    def items(groups: list[list[Any]]) -> list[Any]:
        return groups[0] if len(groups) == 1 else [item for group in groups for item in group]


def _resume(resume: bytes | None, make: Callable[[], Any], rules: EarnRules | None = None) -> Any:
    """The shard's state from its snapshot, or new. The rules file in force replaces the one a snapshot
    carries: a restart is how a changed rules file takes effect (for what is processed from then on)."""
    state = pickle.loads(resume) if resume is not None else make()
    if rules is not None and resume is not None:
        state.rules = rules
    return state


class IdentityStage:
    """Builds the `identity` step: resolves online orders to members; on to the book shards."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def __call__(self, resume: bytes | None) -> _IdentityStep:
        s = self.settings.loyalty
        return _IdentityStep(_resume(resume, lambda: IdentityBook(s.link_lookback_s, s.txn_retention_s)), s.shards)


class _IdentityStep(_Step):
    state: IdentityBook

    def on_batch(self, groups: list[list[Any]]) -> tuple[list[Routed], bool]:
        router = self.router
        for opened in self.state.apply(self.items(groups)):
            router.add(_BOOK, opened.txn_id, opened)
        return router.drain(), StatefulBatchLogic.RETAIN


class BookStage:
    """Builds the `book` step: each transaction's absolute points; on to the members' ledger shards."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.rules = load_rules(settings)

    def __call__(self, resume: bytes | None) -> _BookStep:
        s = self.settings.loyalty
        return _BookStep(_resume(resume, lambda: TxnBook(self.rules, s.txn_retention_s), self.rules), s.shards)


class _BookStep(_Step):
    state: TxnBook

    def on_batch(self, groups: list[list[Any]]) -> tuple[list[Routed], bool]:
        router, book = self.router, self.state
        duplicates = book.stats["duplicates"]
        for points in book.apply(self.items(groups)):
            router.add(_LEDGER, points.customer_id, points)
        if book.stats["duplicates"] > duplicates:
            _DUPLICATES.inc(book.stats["duplicates"] - duplicates)
        return router.drain(), StatefulBatchLogic.RETAIN


class LedgerStage:
    """Builds the `ledger` step: balances, decisions and entries, shaped for Redis and `omni.loyalty`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.rules = load_rules(settings)

    def __call__(self, resume: bytes | None) -> _LedgerStep:
        s = self.settings.loyalty
        return _LedgerStep(
            _resume(resume, lambda: MemberLedger(self.rules, s.return_window_s, s.expiry_s, s.tier_window_s,
                                                 s.lateness_s, s.entries_kept), self.rules),
            s.shards,
            s.redemption_ttl_s,
        )  # fmt: skip


class _LedgerStep(_Step):
    state: MemberLedger

    def __init__(self, state: MemberLedger, shards: int, decision_ttl_s: float) -> None:
        super().__init__(state, shards)
        self.decision_ttl_s = decision_ttl_s

    def on_batch(self, groups: list[list[Any]]) -> tuple[list[Routed], bool]:
        ledger = self.state
        duplicates = ledger.stats["duplicates"]
        out = ledger.apply(self.items(groups))
        if ledger.stats["duplicates"] > duplicates:
            _DUPLICATES.inc(ledger.stats["duplicates"] - duplicates)
        records: list[Any] = [TopicRecord(Topic.LOYALTY, e.customer_id, _ENTRY.encode(e)) for e in out.entries]
        kinds: dict[str, int] = {}
        for entry in out.entries:
            kinds[entry.kind] = kinds.get(entry.kind, 0) + 1
        for kind, n in kinds.items():
            LOYALTY_ENTRIES.labels(FLOW, kind).inc(n)
        for decision in out.decisions:
            LOYALTY_REDEMPTIONS.labels(FLOW, decision.status, decision.reason or "none").inc()
            records.append(FencedDoc(keys.loyalty_redemption(decision.customer_id, decision.redemption_id), 1,
                                     _ENTRY.encode(decision), ttl_s=self.decision_ttl_s))  # fmt: skip
        for member in out.changed:
            records.append(FencedDoc(keys.loyalty_member(member.customer_id), member.version,
                                     orjson.dumps(ledger.doc(member)), as_of=member.as_of))  # fmt: skip
        self.router.add_all_to_single(_SINK, records)
        return self.router.drain(), StatefulBatchLogic.RETAIN
