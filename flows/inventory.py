"""Inventory flow: stock movements from stores, web and warehouses in; live, versioned stock out.

Consumes `omni.inventory`, `omni.pos` and the `purchase` events of
`omni.clickstream`; keeps on-hand, reserved and available per SKU and
location (CONTRACT.md "Stock semantics") and writes every SKU's stock to
Redis, fenced by version; keeps online orders line by line and decides
checkout holds (CONTRACT.md "Orders", "Reservations"); raises stock alerts;
routes every invalid event to the dead-letter stream.

Till events go through a per-store journal (a void names a sale, not SKUs),
purchases and cancels through a per-order book (a whole-order cancel names
an order, not SKUs); both hand SKU movements to the ledgers.

Run it with `omnistream flow inventory` (recovery on by default); see `flows.run`.
"""

from __future__ import annotations

from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.operators import StatefulBatchLogic
from bytewax.outputs import Sink

from events.dead_letter import DeadLetter
from events.models import Count, Event, OrderCancel, Purchase, Return, Sale, Void
from events.stock import SkuStock
from events.topics import Topic
from flows.decoding import BatchDecoder
from flows.kafka_source import KafkaRecord
from flows.metrics import DUPLICATES, UNMATCHED_CANCELS, UNMATCHED_VOIDS, StateEntities
from flows.order_routing import OrderRouter
from flows.sinks import FlowRecord, is_dead_letter
from flows.wiring import decoded_input, records_out
from omnistream.settings import Settings
from operators.availability import SellableFlips
from operators.ledger_shard import LedgerUnit
from operators.movements import HELD_BEFORE, REJECTED_BEFORE, Move, StockMovement, inventory_movement
from operators.order_book import OrderBook
from operators.shard_keys import add_to_group
from operators.stock_ledger import StockLedger
from operators.txn_journal import TxnJournal
from state.connection import connect
from state.reservations import PriorDecisions

FLOW = "inventory"
# Order books are held in this many keyed shards of order ids (their snapshot rows, as for the ledgers).
INPUT_TOPICS = (Topic.INVENTORY, Topic.POS, Topic.CLICKSTREAM)
# Reported when a shard snapshots (once per epoch per shard that changed): counting on every batch costs more.
_ENTITIES = StateEntities(FLOW)
TillEvent = Sale | Return | Void
OrderEvent = Purchase | OrderCancel
_INVENTORY, _POS = Topic.INVENTORY, Topic.POS
_HOLD = Move.HOLD


def build_flow(
    settings: Settings,
    generation: str = "",
    *,
    source: Source[KafkaRecord] | None = None,
    sink: Sink[FlowRecord] | None = None,
) -> Dataflow:
    """Stock movements in; absolute, versioned stock per SKU, stock alerts and dead letters out.

    `generation` names the lineage of flow state (see `flows.launcher.ensure_recovery`).
    `source` and `sink` default to the flow's Kafka topics and its Redis/Kafka
    sink; tests pass their own, and then nothing connects to a broker or Redis.
    """
    flow = Dataflow(FLOW)
    sink_is_redis = sink is None
    decoded = decoded_input(
        flow, settings, INPUT_TOPICS, lambda topics: BatchDecoder(FLOW, topics, StockMovements), source
    )
    split = op.branch("is_dead_letter", decoded, is_dead_letter)
    ready = op.branch("is_movement", split.falses, is_movement)
    till = op.branch("is_till", ready.falses, is_till_event)
    by_store = op.key_on("by_store", till.trues, lambda event: event.store_id)
    till_moves = op.key_rm("till_moves", op.stateful_batch("txn_journal", by_store, JournalLogic(settings)))
    by_order_shard = op.flat_map_batch("by_order_shard", till.falses, OrderRouter().group)
    order_moves = op.key_rm("order_moves", op.stateful_batch("order_book", by_order_shard, OrderBookLogic(settings)))
    movements = op.merge("movements", ready.trues, till_moves, order_moves)
    by_sku = op.flat_map_batch("by_sku", movements, SkuRouter().group)
    # With the real sink, a recovery replay keeps the hold decisions it already published (`PriorDecisions`).
    ledgers = op.stateful_batch("ledgers", by_sku, LedgerLogic(settings, prior_decisions=sink_is_redis))
    ledger_out = op.key_rm("ledger_out", ledgers)
    records_out(FLOW, op.merge("records", split.trues, ledger_out), settings, generation, sink)
    return flow


class StockMovements:
    """One batch of decoded events as the stock steps take them (a `flows.decoding.DecodedBatch`).

    Inventory events become movements (a count keeps where it was read, for
    its late-count history), till events go on to the per-store journal, and
    purchases and order cancels to the per-order book; other clickstream
    events change no stock. This flow owns the dead letters of all three
    topics (`flows.dead_letters`), so they come out here too, with those of
    events dated more than `Settings.max_future_s` ahead of the wall clock
    (the decoder refuses them): the ledger runs on each SKU's event time, and
    one sale from a till whose clock is a year ahead would lapse every hold of
    its SKU and age out its order lines.
    """

    __slots__ = ("out",)

    def __init__(self) -> None:
        # Any: the next step splits by type (`is_dead_letter`, `is_till_event`).
        self.out: list[Any] = []

    def add(self, topic: Topic, event: Event, record: KafkaRecord) -> None:
        kind = type(event)
        if topic is _INVENTORY:
            if kind is OrderCancel:
                self.out.append(event)
            else:
                source = (*record[:3], record.value) if kind is Count else None
                self.out.append(inventory_movement(event, source))  # type: ignore[arg-type]
        elif topic is _POS or kind is Purchase:
            self.out.append(event)

    def add_dead_letter(self, letter: DeadLetter) -> None:
        self.out.append(letter)

    def add_raw(self, topic: Topic, record: KafkaRecord, latest_s: float) -> int:
        raise AssertionError(f"the inventory flow decodes every topic it reads, not {topic.value}")

    def output(self) -> list[Any]:
        return self.out


def is_movement(item: StockMovement | TillEvent | OrderEvent) -> bool:
    return type(item) is StockMovement


def is_till_event(item: TillEvent | OrderEvent) -> bool:
    kind = type(item)
    return kind is not Purchase and kind is not OrderCancel


class JournalLogic:
    """Builds the per-store `TxnJournal` step logic (a Bytewax builder)."""

    def __init__(self, settings: Settings) -> None:
        self.retention_s = settings.dedup_window_s

    def __call__(self, resume: bytes | None) -> _JournalStep:
        journal = TxnJournal.from_bytes(resume) if resume is not None else TxnJournal(self.retention_s)
        return _JournalStep(journal)


class _JournalStep(StatefulBatchLogic[TillEvent, StockMovement, bytes]):
    def __init__(self, journal: TxnJournal) -> None:
        self.journal = journal

    def on_batch(self, events: list[TillEvent]) -> tuple[list[StockMovement], bool]:
        moves: list[StockMovement] = []
        unmatched_before = self.journal.unmatched_voids
        for event in events:
            moves += self.journal.apply(event)
        if self.journal.unmatched_voids != unmatched_before:
            UNMATCHED_VOIDS.labels(FLOW).inc(self.journal.unmatched_voids - unmatched_before)
        return moves, StatefulBatchLogic.RETAIN

    def snapshot(self) -> bytes:
        _ENTITIES.report("till_transactions", self.journal, len(self.journal))
        return self.journal.to_bytes()


class OrderBookLogic:
    """Builds the step logic of one shard of the order book (a Bytewax builder)."""

    def __init__(self, settings: Settings) -> None:
        self.retention_s = settings.order_retention_s

    def __call__(self, resume: bytes | None) -> _OrderBookStep:
        book = OrderBook.from_bytes(resume) if resume is not None else OrderBook(self.retention_s)
        return _OrderBookStep(book)


class _OrderBookStep(StatefulBatchLogic[list[OrderEvent], StockMovement, bytes]):
    def __init__(self, book: OrderBook) -> None:
        self.book = book

    def on_batch(self, groups: list[list[OrderEvent]]) -> tuple[list[StockMovement], bool]:
        moves: list[StockMovement] = []
        book = self.book
        unmatched_before = book.unmatched_cancels
        for events in groups:
            for event in events:
                moves += book.apply(event)
        if book.unmatched_cancels != unmatched_before:
            UNMATCHED_CANCELS.labels(FLOW).inc(book.unmatched_cancels - unmatched_before)
        return moves, StatefulBatchLogic.RETAIN

    def snapshot(self) -> bytes:
        _ENTITIES.report("orders", self.book, len(self.book))
        return self.book.to_bytes()


class SkuRouter:
    """Groups a batch's movements by SKU: one routed item per SKU per batch, not one per movement.

    The SKU is the key of the ledger step, and so the unit of its snapshots:
    Bytewax snapshots only the keys a movement reached in the epoch, so an
    epoch's snapshot costs what moved, whatever the number of SKUs held
    (`operators.ledger_shard`; `benchmarks/snapshots.py`).
    """

    def group(self, moves: list[StockMovement]) -> list[tuple[str, list[StockMovement]]]:
        groups: dict[str, list[StockMovement]] = {}
        for move in moves:
            add_to_group(groups, move.sku, move)
        return list(groups.items())


class LedgerLogic:
    """Builds the step logic of one SKU's `StockLedger` (a Bytewax builder).

    `prior_decisions`: look up the hold decisions already published in Redis (the real sink's), so a
    recovery replay keeps them; off with an injected sink, which must leave Redis alone.
    """

    def __init__(self, settings: Settings, prior_decisions: bool = False) -> None:
        self.dedup_window_s = settings.dedup_window_s
        self.count_window_s = settings.count_window_s
        self.order_retention_s = settings.order_retention_s
        self.low_stock_threshold = settings.low_stock_threshold
        self.redis_url = settings.redis.url if prior_decisions else None

        self.units = 0  # SKU ledgers built in this process (new or restored), for the state gauge
        self._prior: PriorDecisions | None = None  # one Redis reader for every SKU's step, made on the first hold

    def prior(self) -> PriorDecisions | None:
        """The reader of published hold decisions, or None when this flow must leave Redis alone."""
        if self.redis_url is None:
            return None
        if self._prior is None:
            self._prior = PriorDecisions(connect(self.redis_url, timeout_s=10.0))
        return self._prior

    def __call__(self, resume: bytes | None) -> _LedgerStep:
        self.units += 1
        return _LedgerStep(LedgerUnit(self.new_ledger, resume), self, restored=resume is not None)

    def new_ledger(self, sku: str) -> StockLedger:
        return StockLedger(sku, self.dedup_window_s, self.count_window_s, self.order_retention_s,
                           self.low_stock_threshold)  # fmt: skip


class _LedgerStep(StatefulBatchLogic[list[StockMovement], FlowRecord, bytes]):
    """One SKU's ledger, and its sellable flips for `omni.availability` (the customers flow's back-in-stock watches).

    The flips are worked out here, not in a step of their own keyed by SKU: that step's snapshot,
    one more key per SKU moved, doubled what an epoch's snapshot pauses the flow for. They need no
    snapshot: every change of the ledger was announced, so the state last announced is the
    restored ledger's own (`_prime`).
    """

    __slots__ = ("flips", "logic", "unit")

    def __init__(self, unit: LedgerUnit, logic: LedgerLogic, *, restored: bool = False) -> None:
        self.unit = unit
        self.logic = logic
        self.flips: SellableFlips | None = None if restored else SellableFlips()

    def on_batch(self, groups: list[list[StockMovement]]) -> tuple[list[FlowRecord], bool]:
        unit = self.unit
        duplicates_before = unit.duplicates
        flips = self.flips if self.flips is not None else self._prime()
        out: list[FlowRecord] = []
        if self.logic.redis_url is not None:
            groups = self._with_prior_decisions(groups)
        for moves in groups:
            records = unit.apply(moves)
            out += records
            for record in records:
                if type(record) is SkuStock:
                    out += flips.changes(record)
        if unit.duplicates != duplicates_before:
            DUPLICATES.labels(FLOW).inc(unit.duplicates - duplicates_before)
        return out, StatefulBatchLogic.RETAIN

    def _prime(self) -> SellableFlips:
        """After a restore: the sellable state last announced, which is the restored ledger's."""
        flips = self.flips = SellableFlips()
        stock = self.unit.stock()
        if stock is not None:
            flips.changes(stock)  # announced before the snapshot: learnt, not announced again
        return flips

    def _with_prior_decisions(self, groups: list[list[StockMovement]]) -> list[list[StockMovement]]:
        """The batch with each hold already decided and published marked so (`StockMovement.prior`)."""
        holds = [move.order_id for moves in groups for move in moves if move.kind == _HOLD]
        if not holds:
            return groups
        prior = self.logic.prior()
        assert prior is not None, "looked up only with the real sink"
        decided = prior.held(holds)  # type: ignore[arg-type]
        if not decided:
            return groups
        return [
            [
                move._replace(prior=HELD_BEFORE if decided[move.order_id] else REJECTED_BEFORE)
                if move.kind == _HOLD and move.order_id in decided
                else move
                for move in moves
            ]
            for moves in groups
        ]

    def snapshot(self) -> bytes:
        _ENTITIES.report("sku_ledgers", self.logic, self.logic.units)
        if self.flips is not None:
            self.flips.forget_seen()  # memory for what moved in one snapshot interval only
        return self.unit.to_bytes()
