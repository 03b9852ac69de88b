"""The merchandising flow's stages: decoding into merchandising signals, the till journal, the SKU shards.

`flows.merchandising` wires them. Stock movements keep the role they play for
merchandising (`operators.merch.sku_merch.Role`): a till sale or an online
order is demand where it happens, a supplier receipt is fresh stock, a
transfer out/in is stock in flight. Till events need the per-store journal
first (a void names a transaction, not SKUs), as in the inventory flow.
"""

from __future__ import annotations

import math
import os
import pickle
import threading
from typing import Any, NamedTuple

from bytewax.operators import StatefulBatchLogic

from events.dead_letter import DeadLetter
from events.models import (
    Event,
    OrderCancel,
    PriceChange,
    ProductUpsert,
    Purchase,
    Receipt,
    Return,
    Sale,
    TransferIn,
    TransferOut,
    Void,
)
from events.suggestions import Suggestion
from events.topics import Topic
from flows.decoding import BatchDecoder
from flows.kafka_source import KafkaRecord, unread_partitions
from flows.metrics import MERCH_SUGGESTIONS, StateEntities
from flows.order_routing import OrderRouter
from omnistream.settings import Settings
from operators.merch.markdown import MarkdownPolicy
from operators.merch.sku_merch import (
    Hold,
    MerchConfig,
    MerchInput,
    MerchMove,
    MerchShard,
    Release,
    Role,
    SuggestionDoc,
    Tick,
)
from operators.merch.transfers import TransferPolicy
from operators.movements import Move, StockMovement, inventory_movement
from operators.order_book import OrderBook
from operators.shard_keys import ShardKeys, add_to_group
from operators.txn_journal import TxnJournal
from state import keys
from state.doc_writer import FencedDoc

FLOW = "merchandising"
INPUT_TOPICS = (Topic.INVENTORY, Topic.POS, Topic.CLICKSTREAM, Topic.CATALOG)
TillEvent = Sale | Return | Void | Release  # a release follows its store's till events through the journal
_ENTITIES = StateEntities(FLOW)
_INVENTORY, _POS, _CATALOG = Topic.INVENTORY, Topic.POS, Topic.CATALOG
_ROLES: dict[type, Role] = {Receipt: Role.RECEIPT, TransferOut: Role.SENT, TransferIn: Role.ARRIVED}


class DecoderClock:
    """One decoder thread's view of its input: newest event time per partition, and the batches it numbered.

    Each batch's output opens with a `Hold`: the shards' clock may not pass the oldest
    newest event time among this worker's Kafka partitions that still have messages to
    read (`flows.kafka_source.unread_partitions`; read to the end, a partition holds no one
    back), nor the batch's oldest till event until every store's `Release` (sent after
    that store's till events, through the journal) has come.
    """

    __slots__ = ("newest", "order_shard", "origin", "partial", "seq")

    def __init__(self, partial: frozenset[str]) -> None:
        self.order_shard = OrderRouter().shard_of
        self.origin = f"{os.getpid()}/{threading.get_ident()}"
        self.newest: dict[tuple[str, int], float] = {}
        self.partial = partial  # topics only partly decoded (the clickstream's purchases)
        self.seq = 0

    def hold(self, oldest_till: float, stores: int) -> Hold:
        """The hold of the batch just decoded (the source has moved past it)."""
        self.seq += 1
        unread = unread_partitions()
        unread_ts = math.inf
        if unread is not None:
            newest = self.newest
            for part in unread:
                ts = newest.get(part)
                if ts is None:
                    # Nothing decoded from it yet: it may still bring anything. A partly decoded topic (views
                    # and carts skipped undecoded, without a time) holds only from its first purchase on, or
                    # a clickstream that is never quite read to its end would stop the clock for good.
                    if part[0] in self.partial:
                        continue
                    ts = -math.inf
                if ts < unread_ts:
                    unread_ts = ts
        return Hold(self.origin, self.seq, unread_ts, oldest_till, stores)


class OrderRelease(NamedTuple):
    """Order shard `shard`'s events of batch `seq` of decoder `origin` have passed the order book.

    The order book step hands it on as a `Release`: to the SKU shards, the book is one more
    path that events take after their batch's `Hold`, as the store journal is.
    """

    shard: str
    origin: str
    seq: int


OrderEvent = Purchase | OrderCancel | OrderRelease


class MerchBatch:
    """One batch of decoded events as the flow's next steps take them (a `flows.decoding.DecodedBatch`).

    Till events go on whole (to the per-store journal), and so do purchases and
    order cancels (to the order book, which knows an order's lines when a cancel
    names only the order); inventory events become `MerchMove`s; catalog events pass
    as they are; a `Hold` opens the output (`DecoderClock`). This flow owns no topic's
    dead letters (`flows.dead_letters`): malformed events are the inventory and
    recommend flows' to report, and are skipped here.
    """

    __slots__ = ("clock", "oldest_till", "order_shards", "out", "stores")

    def __init__(self, clock: DecoderClock) -> None:
        self.out: list[Any] = []
        self.clock = clock
        self.oldest_till = math.inf  # of the till and order events: both take a path of their own
        self.stores: set[str] = set()
        self.order_shards: set[str] = set()

    def add(self, topic: Topic, event: Event, record: KafkaRecord) -> None:
        if topic is _INVENTORY and type(event) is not OrderCancel:
            role = _ROLES.get(type(event), Role.STOCK)
            move = inventory_movement(event)  # type: ignore[arg-type]
            ts = move.ts
            if role is Role.SENT or role is Role.ARRIVED:
                transfer: TransferOut | TransferIn = event  # type: ignore[assignment]
                self.out.append(MerchMove(move, role, transfer.transfer_id, transfer.peer_location_id))
            else:
                self.out.append(MerchMove(move, role))
        else:
            ts = event.ts.timestamp()
            if topic is _POS:
                self.out.append(event)
                self.stores.add(event.store_id)  # type: ignore[attr-defined]  # the POS topic carries till events only
                if ts < self.oldest_till:
                    self.oldest_till = ts
            elif topic is _CATALOG:
                self.out.append(event)
            elif type(event) is Purchase or type(event) is OrderCancel:
                order: Purchase | OrderCancel = event
                self.out.append(order)
                self.order_shards.add(self.clock.order_shard(order.order_id))
                if ts < self.oldest_till:
                    self.oldest_till = ts
        part = (record.topic, record.partition)
        newest = self.clock.newest
        if ts > newest.get(part, -math.inf):
            newest[part] = ts

    def add_dead_letter(self, letter: DeadLetter) -> None:
        raise AssertionError("the merchandising flow owns no topic's dead letters")

    def add_raw(self, topic: Topic, record: KafkaRecord, latest_s: float) -> int:
        raise AssertionError(f"the merchandising flow decodes every topic it reads, not {topic.value}")

    def output(self) -> list[Any]:
        clock = self.clock
        hold = clock.hold(self.oldest_till, len(self.stores) + len(self.order_shards))
        origin, seq = clock.origin, hold.seq
        return [
            hold,
            *self.out,
            *(Release(store, origin, seq) for store in sorted(self.stores)),
            *(OrderRelease(shard, origin, seq) for shard in sorted(self.order_shards)),
        ]


class Decoder(BatchDecoder[Any]):
    """Raw records to till events, `MerchMove`s and catalog events; only purchases of the clickstream are decoded.

    One `DecoderClock` per worker thread (Bytewax calls one decoder object from every worker of the process).
    """

    def __init__(self, source_topics: dict[str, Topic]) -> None:
        self._clocks: dict[int, DecoderClock] = {}
        self._partial = frozenset(name for name, topic in source_topics.items() if topic is Topic.CLICKSTREAM)
        super().__init__(FLOW, source_topics, self._new_batch, wanted={Topic.CLICKSTREAM: b'"purchase"'})

    def _new_batch(self) -> MerchBatch:
        clock = self._clocks.get(threading.get_ident())
        if clock is None:
            clock = self._clocks[threading.get_ident()] = DecoderClock(self._partial)
        return MerchBatch(clock)


def is_till_event(item: object) -> bool:
    """Till events, and the `Release`s that follow them through the store journal."""
    return type(item) in (Sale, Return, Void, Release)


class JournalLogic:
    """Builds the per-store `TxnJournal` step: till events to movements, a sale's lines as demand."""

    def __init__(self, settings: Settings) -> None:
        self.retention_s = settings.dedup_window_s

    def __call__(self, resume: bytes | None) -> _JournalStep:
        journal = TxnJournal.from_bytes(resume) if resume is not None else TxnJournal(self.retention_s)
        return _JournalStep(journal)


class _JournalStep(StatefulBatchLogic[TillEvent, MerchMove | Release, bytes]):
    def __init__(self, journal: TxnJournal) -> None:
        self.journal = journal

    def on_batch(self, events: list[TillEvent]) -> tuple[list[MerchMove | Release], bool]:
        out: list[MerchMove | Release] = []
        for event in events:
            if isinstance(event, Release):
                out.append(event)  # after this store's till events of its batch
                continue
            # A sale lowers on-hand: demand. A return, or a void's compensation, gives units back: stock only
            # (a voided sale still counted as demand: the shopper wanted the goods at the till).
            out += [MerchMove(m, Role.DEMAND if m.qty < 0 else Role.STOCK) for m in self.journal.apply(event)]
        return out, StatefulBatchLogic.RETAIN

    def snapshot(self) -> bytes:
        return self.journal.to_bytes()


def is_order_event(item: object) -> bool:
    """Purchases and order cancels, and the `OrderRelease`s that follow them through the order book."""
    kind = type(item)
    return kind is Purchase or kind is OrderCancel or kind is OrderRelease


class OrderBookLogic:
    """Builds one order shard's `OrderBook` step: an order's reservations are demand, its cancels stock only."""

    def __init__(self, settings: Settings) -> None:
        self.retention_s = settings.order_retention_s

    def __call__(self, resume: bytes | None) -> _OrderBookStep:
        return _OrderBookStep(OrderBook.from_bytes(resume) if resume is not None else OrderBook(self.retention_s))


class _OrderBookStep(StatefulBatchLogic[list[OrderEvent], MerchMove | Release, bytes]):
    def __init__(self, book: OrderBook) -> None:
        self.book = book

    def on_batch(self, groups: list[list[OrderEvent]]) -> tuple[list[MerchMove | Release], bool]:
        out: list[MerchMove | Release] = []
        for events in groups:
            for event in events:
                if type(event) is OrderRelease:
                    out.append(Release(event.shard, event.origin, event.seq))
                    continue
                moves: list[StockMovement] = self.book.apply(event)  # type: ignore[arg-type]
                # An online order's reservation is demand at its fulfilment location (a cancel: the shopper wanted
                # the goods when ordering, as a voided till sale still counts).
                out += [MerchMove(m, Role.DEMAND if m.kind is Move.RESERVE else Role.STOCK) for m in moves]
        return out, StatefulBatchLogic.RETAIN

    def snapshot(self) -> bytes:
        _ENTITIES.report("orders", self.book, len(self.book))
        return self.book.to_bytes()


class SkuShards:
    """Groups a batch's signals by SKU shard (one routed item per shard per batch); every shard hears the time.

    Each `Hold` and `Release` goes to every shard where it stands, and so does a `Tick` for each review step
    the batch's items fall in (once per step per batch): a shard whose SKUs are quiet still
    sees every step of event time begin, so it reviews at the same steps whatever way the
    input was cut into batches and whichever path (direct, or through the till journal) an
    item took (`operators.merch.sku_merch.MerchShard`).
    """

    def __init__(self, shards: int, step_s: float) -> None:
        self._names = [f"sku:{i}" for i in range(shards)]
        self._shard = ShardKeys("sku:", shards)
        self._step_s = step_s

    def group(self, items: list[MerchInput]) -> list[tuple[str, list[MerchInput]]]:
        groups: dict[str, list[MerchInput]] = {}
        shard = self._shard
        names = self._names
        step_s = self._step_s
        ticked: set[float] = set()
        for item in items:
            kind = type(item)
            if kind is Hold or kind is Release:
                for name in names:
                    add_to_group(groups, name, item)
                continue
            if kind is MerchMove:
                move = item.move  # type: ignore[union-attr]
                add_to_group(groups, shard(move.sku), item)
                ts = move.ts
            else:
                event: ProductUpsert | PriceChange = item  # type: ignore[assignment]
                add_to_group(groups, shard(event.sku), event)
                ts = event.ts.timestamp()
            step = ts // step_s
            if step not in ticked:
                ticked.add(step)
                tick = Tick(ts)
                for name in names:
                    add_to_group(groups, name, tick)
        return list(groups.items())


def merch_config(settings: Settings) -> MerchConfig:
    """The merchandising policies of `settings.merch`."""
    m = settings.merch
    transfer = TransferPolicy(
        lead_time_days=m.lead_time_days, horizon_days=m.horizon_days, trigger_cover_days=m.trigger_cover_days,
        target_cover_days=m.target_cover_days, keep_days=m.keep_days, min_keep_units=m.min_keep_units,
        min_lot=m.min_lot, cost_per_transfer=m.transfer_cost, cost_per_unit=m.transfer_cost_per_unit,
        margin_rate=m.margin_rate,
    )  # fmt: skip
    markdown = None
    if m.season_end is not None:
        markdown = MarkdownPolicy(
            season_end_ts=m.season_end.timestamp(), floor_share=m.markdown_floor_share,
            max_discount=m.markdown_max_discount, step=m.markdown_step, min_cover_days=m.markdown_min_cover_days,
            min_age_days=m.markdown_min_age_days, elasticity=m.markdown_elasticity, max_change=m.markdown_max_change,
            cadence_days=m.markdown_cadence_days,
        )  # fmt: skip
    return MerchConfig(
        transfer, markdown, half_life_s=m.half_life_s, basket_cap=m.basket_cap, review_interval_s=m.review_interval_s,
        review_step_s=m.review_step_s, held=True, transit_timeout_s=m.transit_timeout_s,
        dedup_window_s=settings.dedup_window_s, count_window_s=settings.count_window_s,
        order_retention_s=settings.order_retention_s,
    )  # fmt: skip


class MerchLogic:
    """Builds the step logic of one shard of SKUs (a Bytewax builder)."""

    def __init__(self, settings: Settings) -> None:
        self.config = merch_config(settings)

    def __call__(self, resume: bytes | None) -> _MerchStep:
        shard: MerchShard = pickle.loads(resume) if resume else MerchShard(self.config)
        shard.config = self.config  # the policies in force now, not those of the snapshot
        shard.reset_holds()  # the decoders of this run are new ones
        for sku in shard.skus.values():
            sku.config = self.config
        return _MerchStep(shard)


class _MerchStep(StatefulBatchLogic[list[MerchInput], Suggestion | FencedDoc, bytes]):
    def __init__(self, shard: MerchShard) -> None:
        self.shard = shard

    def on_batch(self, groups: list[list[MerchInput]]) -> tuple[list[Suggestion | FencedDoc], bool]:
        items = groups[0] if len(groups) == 1 else [item for group in groups for item in group]
        return _records(*self.shard.apply(items)), StatefulBatchLogic.RETAIN

    def on_eof(self) -> tuple[list[Suggestion | FencedDoc], bool]:
        """The input ended (a replay read to its end): what waited is applied, what changed reviewed."""
        return _records(*self.shard.finish()), StatefulBatchLogic.RETAIN

    def snapshot(self) -> bytes:
        _ENTITIES.report("merch_skus", self.shard, len(self.shard))
        return pickle.dumps(self.shard, protocol=pickle.HIGHEST_PROTOCOL)


def _records(records: list[Suggestion], docs: list[SuggestionDoc]) -> list[Suggestion | FencedDoc]:
    for record in records:
        MERCH_SUGGESTIONS.labels(FLOW, record.kind, record.status).inc()
    out: list[Suggestion | FencedDoc] = [*records]
    out += [fenced(doc) for doc in docs]
    return out


def fenced(doc: SuggestionDoc) -> FencedDoc:
    """A SKU's suggestions document as the sink writes it, with the SKU in or out of its kind's index set."""
    return FencedDoc(keys.suggestions(doc.kind, doc.sku), doc.version, doc.doc, as_of=doc.as_of,
                     flag_set=keys.suggestion_skus(doc.kind), flag_member=doc.sku, flagged=doc.open)  # fmt: skip
